"""The explainer interface, one explanation, and the attribution methods every explainer shares.

An :class:`Explainer` knows one kind of input (``tokens`` of a text, ``pixels`` of an image): how one input
becomes model inputs and *units* (what an attribution is of: a token, an image region), how units are removed
(for occlusion and the faithfulness measures), and how Captum reaches the input for integrated gradients.
A task names its explainer (``Task.explains``); the methods are the same for every explainer:

- ``integrated-gradients`` (Sundararajan et al. 2017): gradients of the label's probability (Captum's
  ``Saliency``, raw) along the straight path from a baseline (text: the padding token in place of every token's
  embedding; images: zero pixel values, the normalized mean colour), points batched; needs a format with the
  ``gradients`` capability (torch weights); its *completeness* (attributions sum to f(x) − f(baseline)) is checked
  and the path's worst intervals halved until it holds (``_integrate``: every earlier point is reused);
- ``occlusion`` (Captum's feature ablation): the probability lost when one unit is removed — gradient-free, so it
  explains ONNX and int8 variants too;
- ``attention-rollout`` (Abnar & Zuidema 2020): attention of the pooled position to each input through all
  layers — label-agnostic, the weak baseline; needs a transformer with ``attentions``.
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

import numpy as np

from fmhub.errors import InvalidInputError
from fmhub.explain._integrate import Evaluate, integrate

__all__ = ["Explainer", "Prepared", "Explanation", "Completeness", "METHODS", "DEFAULT_STEPS", "MAX_STEPS",
           "TOLERANCE", "probabilities", "MethodUnavailableError", "straight_path"]

#: The attribution methods, and what each needs of the model's format (``fmhub.formats`` capabilities).
METHODS: dict[str, str | None] = {"integrated-gradients": "gradients", "occlusion": None,
                                  "attention-rollout": "attentions"}
DEFAULT_STEPS = 4  # integrated-gradients steps to start from (uniform trapezoid points, both ends included)
MAX_STEPS = 512  # the most steps (points on the path) the automatic raise goes to
TOLERANCE = 0.05  # completeness: |sum(attributions) - (f(x) - f(baseline))| within 5% of |f(x) - f(baseline)|
_ABSOLUTE = 1e-3  # ... or this much probability, when f(x) and f(baseline) are nearly equal


class MethodUnavailableError(InvalidInputError):
    """The method cannot explain this model (its format has no gradients, it has no attention, ...)."""


@dataclass
class Prepared:
    """One input made ready to explain: its model inputs (a batch of one) and the units attributions are of."""

    inputs: dict[str, np.ndarray]
    units: list[str]  # what each attribution is of: a token's text, an image region ("r2c3")
    source: Any  # what the input was (the text; the RGB image) for rendering
    spans: list[tuple[int, int]] | None = None  # text: each unit's character offsets in the source
    grid: tuple[int, int] | None = None  # images: the units as rows × columns of regions
    extra: dict[str, Any] = field(default_factory=dict)  # the explainer's own (token positions, patch size)


@dataclass
class Completeness:
    """Integrated gradients' completeness check: the attributions' sum against f(x) − f(baseline)."""

    attributions_sum: float
    expected: float  # f(x) − f(baseline), in probability of the label
    error: float  # |attributions_sum − expected|
    tolerance: float  # what the error had to be within
    steps: int  # the steps it took
    holds: bool


@dataclass
class Explanation:
    """Attributions of one input for one label, by one method (positive: the unit supports the label)."""

    method: str
    label: str  # the label explained
    label_id: int
    predicted: str  # the model's top label
    probability: float  # the model's probability of ``label``
    units: list[str]
    scores: list[float]
    kind: str  # the explainer: tokens, pixels
    spans: list[tuple[int, int]] | None = None
    grid: tuple[int, int] | None = None
    completeness: Completeness | None = None
    source: Any = field(default=None, repr=False)  # the text (JSON keeps it); images stay out of the JSON

    def top(self, k: int = 5) -> list[tuple[str, float]]:
        """The ``k`` units that support the label most, best first."""
        order = np.argsort(-np.asarray(self.scores, dtype=np.float64), kind="stable")[:k]
        return [(self.units[i], float(self.scores[i])) for i in order]

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["source"] = self.source if isinstance(self.source, str) else None
        out["spans"] = [list(s) for s in self.spans] if self.spans is not None else None
        out["grid"] = list(self.grid) if self.grid is not None else None
        return out


def probabilities(loaded: Any, inputs: dict[str, np.ndarray]) -> np.ndarray:
    """Softmax probabilities ``(batch, labels)`` of a loaded model version (any format)."""
    logits = loaded.logits(inputs).astype(np.float64)
    logits -= logits.max(-1, keepdims=True)
    return (np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)).astype(np.float32)


def _torch_probabilities(loaded: Any, run: Callable[..., Any]) -> Callable[..., Any]:
    """A Captum forward function: the model's softmax probabilities as a torch tensor (numpy formats too)."""
    import torch

    def forward(*args: Any) -> Any:
        if loaded.form.torch and torch.is_grad_enabled():
            return torch.softmax(run(*args).float(), dim=-1)
        with torch.no_grad():
            out = run(*args)
        out = out if isinstance(out, torch.Tensor) else torch.from_numpy(np.asarray(out))
        return torch.softmax(out.float(), dim=-1)

    return forward


@contextlib.contextmanager
def frozen(model: Any) -> Iterator[None]:
    """No gradients for the weights during the call: integrated gradients need them only at the input (Captum's
    scaled inputs carry ``requires_grad``), and skipping the weights' gradients halves the backward pass."""
    trainable = [p for p in model.parameters() if p.requires_grad]
    for p in trainable:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in trainable:
            p.requires_grad_(True)


@contextlib.contextmanager
def eager_attention(model: Any) -> Iterator[None]:
    """Attention weights need transformers' eager attention (SDPA does not return them): switched for the call."""
    config = getattr(model, "config", None)
    current = getattr(config, "_attn_implementation", None)
    switch = current not in (None, "eager") and hasattr(model, "set_attn_implementation")
    if switch:
        model.set_attn_implementation("eager")
    try:
        yield
    finally:
        if switch:
            model.set_attn_implementation(current)


def rollout(attentions: list[np.ndarray]) -> np.ndarray:
    """Attention rollout (Abnar & Zuidema 2020) of one input: ``(positions, positions)`` from per-layer
    ``(heads, positions, positions)`` weights — heads averaged, the residual path added as identity, rows
    renormalized, layers multiplied from the first up."""
    result = None
    for layer in attentions:
        a = layer.mean(0)
        a = 0.5 * a + 0.5 * np.eye(a.shape[-1])
        a = a / a.sum(-1, keepdims=True)
        result = a if result is None else a @ result
    return result


class Explainer(abc.ABC):
    """How one kind of input is explained (see the module docstring). Subclass, implement the abstract methods,
    register an instance (:func:`fmhub.explain.register`), and name it in the task (``Task.explains``)."""

    name: ClassVar[str]
    unit: ClassVar[str]  # what one unit is, in words ("token", "region")

    @abc.abstractmethod
    def prepare(self, loaded: Any, value: Any, *, max_length: int) -> Prepared:
        """One input (a text; an image value) as model inputs and units."""

    @abc.abstractmethod
    def remove(self, loaded: Any, prepared: Prepared, removed: np.ndarray) -> dict[str, np.ndarray]:
        """Model inputs of ``len(removed)`` rows, each the input with the units ``removed[i]`` (bool per unit) taken
        out (text: deleted; images: set to the baseline)."""

    @abc.abstractmethod
    def ablation(self, loaded: Any, prepared: Prepared) -> tuple[Any, Any, Any, Callable[[Any], Any]]:
        """(input tensor, baseline, feature mask of unit ids, forward of the input tensor → probabilities) for
        Captum's feature ablation; positions outside every unit carry the id ``len(units)``."""

    @abc.abstractmethod
    def path(self, loaded: Any, prepared: Prepared, target: int) -> Evaluate:
        """Integrated gradients' straight path for ``target``: a function of points α ``(k,)`` giving f(α) (the
        label's probability) and the gradient · (input − baseline) per unit ``(k, units)`` — usually
        :func:`straight_path` of the model input the explainer interpolates."""

    def integrated_gradients(self, loaded: Any, prepared: Prepared, target: int, steps: int
                             ) -> tuple[np.ndarray, float, float]:
        """(attribution per unit, sum of all attributions, f(x) − f(baseline)) with ``steps`` uniform points,
        no refinement: Captum's ``riemann_trapezoid`` with ``n_steps=steps``, scaled by n/(n − 1) (Captum's weights
        sum to (n − 1)/n)."""
        integral, _, _ = integrate(self.path(loaded, prepared, target), steps=steps, max_steps=steps,
                                   tolerance=1.0, absolute=0.0)
        scores = integral.attributions
        return scores, float(scores.sum()), integral.expected

    @abc.abstractmethod
    def attention_rollout(self, loaded: Any, prepared: Prepared) -> np.ndarray:
        """Attention-rollout relevance per unit (raises :class:`MethodUnavailableError` without attention)."""

    @abc.abstractmethod
    def read_request(self, loaded: Any, value: Any, *, max_tokens: int, max_pixels: int, truncate: bool) -> Any:
        """One input of a ``/v1/explain`` request (a text; a base64 image) checked against the server's limits,
        as :meth:`prepare` takes it (an input error — 422, 413 — names the limit)."""

    def batch_size(self, prepared: Prepared) -> int:
        """Perturbed inputs per forward pass (occlusion, integrated-gradients steps)."""
        return 32

    # -- the methods, the same for every explainer -----------------------------------------------------------

    def occlusion(self, loaded: Any, prepared: Prepared, target: int) -> np.ndarray:
        """Probability of ``target`` lost when each unit is removed (Captum ``FeatureAblation``)."""
        from captum.attr import FeatureAblation

        tensor, baseline, mask, forward = self.ablation(loaded, prepared)
        attributions = FeatureAblation(forward).attribute(
            tensor, baselines=baseline, target=target, feature_mask=mask,
            perturbations_per_eval=self.batch_size(prepared))
        flat_mask = mask.reshape(-1).numpy()
        flat = attributions.detach().reshape(-1).double().numpy()
        out = np.zeros(len(prepared.units), dtype=np.float64)
        # every position of a unit carries the unit's attribution: take one per unit
        for unit in range(len(prepared.units)):
            where = np.flatnonzero(flat_mask == unit)
            if len(where):
                out[unit] = flat[where[0]]
        return out

    def completed_integrated_gradients(self, loaded: Any, prepared: Prepared, target: int, steps: int,
                                       max_steps: int = MAX_STEPS, tolerance: float = TOLERANCE
                                       ) -> tuple[np.ndarray, Completeness]:
        """Integrated gradients from ``steps`` uniform points, the worst intervals halved (up to ``max_steps``
        points in all) until completeness holds within ``tolerance``."""
        integral, allowed, holds = integrate(self.path(loaded, prepared, target), steps=steps, max_steps=max_steps,
                                             tolerance=tolerance, absolute=_ABSOLUTE)
        scores = integral.attributions
        total = float(scores.sum())
        return scores, Completeness(total, integral.expected, abs(total - integral.expected), float(allowed),
                                    integral.steps, holds)

    def explain(self, loaded: Any, prepared: Prepared, method: str, *, label: int | None = None,
                steps: int = DEFAULT_STEPS, max_steps: int = MAX_STEPS, tolerance: float = TOLERANCE,
                probs: np.ndarray | None = None) -> Explanation:
        """Attributions of ``prepared`` for ``label`` (default: the predicted one) by ``method``."""
        require(loaded, method)
        labels = loaded.labels
        probs = probabilities(loaded, prepared.inputs)[0] if probs is None else probs
        predicted = int(np.argmax(probs))
        target = predicted if label is None else int(label)
        completeness = None
        if method == "integrated-gradients":
            scores, completeness = self.completed_integrated_gradients(loaded, prepared, target, steps, max_steps,
                                                                       tolerance)
        elif method == "occlusion":
            scores = self.occlusion(loaded, prepared, target)
        else:
            scores = self.attention_rollout(loaded, prepared)
        return Explanation(method, labels[target], target, labels[predicted], float(probs[target]),
                           list(prepared.units), [float(x) for x in scores], self.name, prepared.spans,
                           prepared.grid, completeness, prepared.source)


def straight_path(model: Any, forward: Callable[[Any], Any], start: Any, delta: Any, target: int, *, batch: int,
                  per_unit: Callable[[Any], np.ndarray]) -> Evaluate:
    """The path ``start + α · delta`` (tensors of one input, no batch axis) through ``forward`` (a batch of points →
    logits), as :meth:`Explainer.path` returns it: per point, the softmax probability of ``target`` and
    ``per_unit(gradient · delta)`` (``(k, *start.shape)`` → ``(k, units)``). Gradients come from Captum's
    ``Saliency`` (raw, not absolute), ``batch`` points per forward/backward, with the weights' gradients off."""
    import torch
    from captum.attr import Saliency

    batch = max(1, int(batch))

    def evaluate(alphas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        values, gradients = [], []
        with torch.inference_mode(False), torch.enable_grad(), frozen(model):
            for first in range(0, len(alphas), batch):
                chunk = torch.as_tensor(alphas[first:first + batch], dtype=start.dtype)
                points = (start + chunk.view(-1, *[1] * start.dim()) * delta).requires_grad_()  # (k, *input)
                seen: list[Any] = []

                def probabilities(x: Any) -> Any:
                    p = torch.softmax(forward(x).float(), dim=-1)
                    seen.append(p[:, target].detach())
                    return p

                grad = Saliency(probabilities).attribute(points, target=target, abs=False)
                values.append(seen[-1].double().numpy())
                gradients.append(per_unit((grad.detach() * delta).double()))
        return np.concatenate(values), np.concatenate(gradients)

    return evaluate


def require(loaded: Any, method: str) -> None:
    """Refuse, as an input error naming the alternative, a method this model's format cannot run."""
    if method not in METHODS:
        raise InvalidInputError(f"unknown explanation method {method!r}", hint=f"choose from {', '.join(METHODS)}")
    needs = METHODS[method]
    if needs is not None and needs not in loaded.capabilities:
        why = "has no gradients" if needs == "gradients" else "returns no attention weights"
        raise MethodUnavailableError(f"{method} cannot explain {loaded.repo or 'this model'}: its {loaded.format} "
                                     f"form {why}", hint="use --method occlusion (gradient-free: any format)")


def default_method(loaded: Any) -> str:
    """Integrated gradients where the format has gradients, else occlusion."""
    return "integrated-gradients" if "gradients" in loaded.capabilities else "occlusion"
