"""Faithfulness of attributions, measured by taking units out and watching the label's probability.

- **comprehensiveness** (ERASER, DeYoung et al. 2020): p(label | x) − p(label | x without its top-k% units),
  averaged over k ∈ {1, 5, 10, 20, 50}: high when the units an explanation ranks first are the ones the model
  needs;
- **sufficiency**: p(label | x) − p(label | only the top-k% units), same bins: low (even negative) when those
  units alone keep the prediction;
- **deletion AUC** (Petsiuk et al. 2018): the area under p(label) as units are deleted best first, in tenths of
  the input: low when the probability falls fast.

Units are "removed" as the explainer removes them (text: deleted, as ERASER does; images: set to the baseline).
Every measure is model-agnostic (any format's forward), so a random attribution and attention rollout are
measured the same way as the baselines a method must beat.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fmhub.explain._base import Explainer, Prepared, probabilities

__all__ = ["faithfulness", "BINS", "DELETION_STEPS", "spearman"]

BINS = (0.01, 0.05, 0.10, 0.20, 0.50)
DELETION_STEPS = 10


def _top(scores: np.ndarray, count: int) -> np.ndarray:
    chosen = np.zeros(len(scores), dtype=bool)
    chosen[np.argsort(-scores, kind="stable")[:count]] = True
    return chosen


def faithfulness(explainer: Explainer, loaded: Any, prepared: Prepared, target: int, scores: np.ndarray,
                 original: float | None = None) -> dict[str, float]:
    """Comprehensiveness, sufficiency and deletion AUC of one input's attributions (one forward pass)."""
    scores = np.asarray(scores, dtype=np.float64)
    n = len(scores)
    if n == 0:
        return {"comprehensiveness": 0.0, "sufficiency": 0.0, "deletion_auc": float(original or 0.0)}
    counts = [max(1, int(round(b * n))) for b in BINS]
    removed = [_top(scores, k) for k in counts]  # comprehensiveness: the top units out
    kept_only = [~_top(scores, k) for k in counts]  # sufficiency: everything but the top units out
    fractions = np.linspace(0.0, 1.0, DELETION_STEPS + 1)
    deleted = [_top(scores, int(round(f * n))) for f in fractions]
    masks = np.stack(removed + kept_only + deleted)
    p = np.empty(len(masks), dtype=np.float64)
    step = max(1, explainer.batch_size(prepared))
    for start in range(0, len(masks), step):
        p[start:start + step] = probabilities(loaded, explainer.remove(loaded, prepared,
                                                                       masks[start:start + step]))[:, target]
    base = float(probabilities(loaded, prepared.inputs)[0, target]) if original is None else float(original)
    k = len(BINS)
    curve = p[2 * k:]
    return {"comprehensiveness": float(np.mean(base - p[:k])), "sufficiency": float(np.mean(base - p[k:2 * k])),
            "deletion_auc": float(np.trapezoid(curve, fractions))}


def spearman(a: np.ndarray, b: np.ndarray) -> float | None:
    """Spearman's rank correlation of two attributions of the same units (None when either is constant)."""
    from scipy.stats import spearmanr

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if len(a) < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return None
    return float(spearmanr(a, b).statistic)
