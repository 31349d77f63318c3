"""Integrated gradients' adaptive path integral: points go where the probability changes, every earlier point is
reused, the completeness error falls to the tolerance; on a uniform grid it is Captum's trapezoid IG (rescaled:
Captum's trapezoid weights sum to (n − 1)/n)."""

from __future__ import annotations

import numpy as np
import pytest

import fmhub
from fmhub.explain import get
from fmhub.explain._integrate import integrate


def _sharp(seen: list[float], centre: float = 0.63, width: float = 0.005):
    """f(α) a logistic step at ``centre`` over two units (weights 0.7 / 0.3): the narrow band where a classifier's
    probability rises along the path."""
    weights = np.array([0.7, 0.3])

    def evaluate(alphas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        seen.extend(alphas.tolist())
        s = 1 / (1 + np.exp(-(alphas - centre) / width))
        return 0.1 + 0.8 * s, (0.8 * s * (1 - s) / width)[:, None] * weights

    return evaluate


def test_the_worst_intervals_are_halved_until_completeness_holds_and_no_point_is_evaluated_twice() -> None:
    seen: list[float] = []
    integral, allowed, holds = integrate(_sharp(seen), steps=8, max_steps=512, tolerance=0.05, absolute=1e-3)
    assert holds and integral.expected == pytest.approx(0.8, abs=1e-6)
    assert abs(integral.attributions.sum() - integral.expected) <= allowed == pytest.approx(0.04)
    assert integral.attributions == pytest.approx(0.8 * np.array([0.7, 0.3]), rel=0.05)
    assert len(seen) == len(set(seen)) == integral.steps  # earlier points reused, never recomputed
    # the points went to the band: uniform grids need three times as many points before completeness holds
    uniform = [n for n in range(2, 80)
               if integrate(_sharp([]), steps=n, max_steps=n, tolerance=0.05, absolute=1e-3)[2]]
    assert uniform[0] >= 3 * integral.steps

def test_the_error_falls_as_the_steps_are_raised_and_a_bound_is_reported_not_hidden() -> None:
    errors, steps = [], []
    for tolerance in (0.3, 0.1, 0.03, 0.01):
        integral, _, holds = integrate(_sharp([]), steps=4, max_steps=512, tolerance=tolerance, absolute=0.0)
        assert holds
        errors.append(abs(integral.attributions.sum() - integral.expected) / integral.expected)
        steps.append(integral.steps)
    assert steps == sorted(steps) and errors[-1] <= 0.01 and errors[-1] < errors[0]
    # out of budget: the points stop at max_steps and completeness is reported as not holding
    integral, allowed, holds = integrate(_sharp([]), steps=4, max_steps=6, tolerance=1e-6, absolute=0.0)
    assert not holds and integral.steps == 6


def test_a_uniform_grid_is_captums_trapezoid_integrated_gradients(keyword_model: str) -> None:
    import torch
    from captum.attr import LayerIntegratedGradients

    loaded = fmhub.load(keyword_model)
    explainer = get("tokens")
    prepared = explainer.prepare(loaded, "goal match robot team player", max_length=32)
    scores, total, expected = explainer.integrated_gradients(loaded, prepared, 1, 9)
    model = loaded.model
    ids = torch.from_numpy(prepared.inputs["input_ids"])
    mask = torch.from_numpy(prepared.inputs["attention_mask"])
    baseline = ids.clone()
    baseline[0, torch.from_numpy(prepared.extra["positions"])] = loaded.tokenizer.pad_token_id

    def forward(input_ids, attention_mask):
        return torch.softmax(model(input_ids=input_ids, attention_mask=attention_mask).logits.float(), dim=-1)

    with torch.inference_mode(False), torch.enable_grad():
        theirs = LayerIntegratedGradients(forward, model.get_input_embeddings()).attribute(
            ids, baselines=baseline, additional_forward_args=(mask,), target=1, n_steps=9,
            method="riemann_trapezoid")
    # Captum's trapezoid weighs its n points 1/n (the ends 1/(2n)): they sum to (n − 1)/n, not 1, so its
    # integral is short by 1/n — the same points and gradients, scaled back
    per_position = theirs.detach().double().sum(-1)[0].numpy() * 9 / 8
    assert scores == pytest.approx(per_position[prepared.extra["positions"]], abs=1e-5)
    assert total == pytest.approx(per_position.sum(), abs=1e-5)
    with torch.no_grad():
        ends = forward(torch.cat([ids, baseline]), torch.cat([mask, mask]))[:, 1].double()
    assert expected == pytest.approx(float(ends[0] - ends[1]), abs=1e-5)
