"""Integrated gradients' path integral, refined where it is wrong until completeness holds.

The integral of the gradient along the straight path from the baseline (α = 0) to the input (α = 1) is taken by
the trapezoid rule on points α₀ = 0 < α₁ < … < αₙ = 1. Every point's forward pass gives f(α) as well as the
gradient, so each interval [αᵢ, αᵢ₊₁] carries its own completeness check: its trapezoid sum against
f(αᵢ₊₁) − f(αᵢ), which the forward passes give exactly. The points start uniform (``steps`` of them, the
endpoints included: f(x) and f(baseline) come from the same passes, no extra forward), and while the whole
path's completeness error is above the tolerance, the intervals carrying most of the local error are halved —
every earlier point is kept, so raising the steps never recomputes one. A classifier's probability typically
rises in a narrow band of α; the points go there instead of being spread evenly (Gauss-Legendre's fixed nodes
hit or miss such a band, so their error is not monotone in the steps).

On a uniform grid, without refinement, the result is Captum's ``riemann_trapezoid`` integrated gradients with the
same number of steps (``tests/explain`` checks it).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["Integral", "integrate"]

#: ``evaluate(alphas)`` → (f at each α ``(k,)``, the gradient · (x − baseline) per unit at each α ``(k, units)``)
Evaluate = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


class Integral:
    """The path's points so far and what they give: attributions, their sum, f(x) − f(baseline)."""

    def __init__(self, alphas: np.ndarray, values: np.ndarray, gradients: np.ndarray) -> None:
        order = np.argsort(alphas, kind="stable")
        self.alphas, self.values, self.gradients = alphas[order], values[order], gradients[order]

    def add(self, alphas: np.ndarray, values: np.ndarray, gradients: np.ndarray) -> Integral:
        return Integral(np.concatenate([self.alphas, alphas]), np.concatenate([self.values, values]),
                        np.concatenate([self.gradients, gradients]))

    @property
    def steps(self) -> int:
        return len(self.alphas)

    @property
    def pieces(self) -> np.ndarray:
        """Per interval and unit, the trapezoid sum ``(intervals, units)``."""
        widths = np.diff(self.alphas)[:, None]
        return widths * (self.gradients[:-1] + self.gradients[1:]) / 2

    @property
    def attributions(self) -> np.ndarray:
        return self.pieces.sum(0)

    @property
    def expected(self) -> float:
        return float(self.values[-1] - self.values[0])

    @property
    def local_errors(self) -> np.ndarray:
        """Per interval: its trapezoid sum minus f(αᵢ₊₁) − f(αᵢ)."""
        return self.pieces.sum(1) - np.diff(self.values)

    def refinement(self, allowed: float, budget: int) -> np.ndarray:
        """The midpoints of the intervals to halve: the largest local errors first, until what is left of them
        sums to at most half the allowed error (at least one interval, at most ``budget``)."""
        local = np.abs(self.local_errors)
        order = np.argsort(-local, kind="stable")
        covered = np.cumsum(local[order])
        count = int(np.searchsorted(covered, local.sum() - allowed / 2)) + 1
        chosen = np.sort(order[:max(1, min(count, budget, len(order)))])
        return (self.alphas[chosen] + self.alphas[chosen + 1]) / 2


def integrate(evaluate: Evaluate, *, steps: int, max_steps: int, tolerance: float, absolute: float
              ) -> tuple[Integral, float, bool]:
    """Integrate ``evaluate`` from α = 0 to 1, starting from ``steps`` uniform points and halving the worst
    intervals until |Σ attributions − (f(1) − f(0))| ≤ max(``tolerance`` · |f(1) − f(0)|, ``absolute``) or
    ``max_steps`` points were evaluated.

    Returns:
        (the integral, the error allowed, whether completeness holds).
    """
    steps = max(2, int(steps))
    max_steps = max(steps, int(max_steps))
    alphas = np.linspace(0.0, 1.0, steps)
    integral = Integral(alphas, *evaluate(alphas))
    while True:
        expected = integral.expected
        allowed = max(tolerance * abs(expected), absolute)
        holds = abs(float(integral.attributions.sum()) - expected) <= allowed
        if holds or integral.steps >= max_steps:
            return integral, allowed, bool(holds)
        new = integral.refinement(allowed, max_steps - integral.steps)
        integral = integral.add(new, *evaluate(new))
