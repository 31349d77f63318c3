"""Metrics of an evaluation report card, in pure NumPy, with scikit-learn's and seqeval's exact semantics.

Every function returns plain Python values (``float``, ``int``, ``str``, ``list``, ``dict``, ``None``), ready for
``json.dumps(..., allow_nan=False)``: a metric that is undefined is ``None``, never NaN or infinity.

- ``classification_metrics``: the prediction of a row is the first maximum of its probabilities (``np.argmax``).
  Accuracy and micro/weighted/macro F1, macro precision/recall equal scikit-learn's ``*_score`` with
  ``zero_division=0`` and its default label set: the labels that occur in gold or predictions (not all ``k``), so a
  label that never occurs does not drag the macro average to 0. ``per_class`` and the confusion matrix cover all
  ``k`` labels (an absent label has zero scores and support). ``roc_auc_ovr`` is the binary AUC of the second
  column when ``k == 2`` and otherwise the unweighted mean of the one-vs-rest AUCs of the ``k`` labels; each AUC is
  the Mann–Whitney statistic with average ranks for tied scores (equal to the area under the ROC curve). It is
  ``None`` where scikit-learn gives NaN or raises: a label without positives or negatives in gold, ``k == 1``,
  no rows, or (``k > 2``) rows that do not sum to 1 within ``np.allclose``'s tolerance.
- ``calibration``: top-label calibration over ``bins`` equal-width bins of [0, 1], with scikit-learn's
  ``calibration_curve(strategy="uniform")`` binning: bin ``b`` holds ``edges[b] < c <= edges[b + 1]`` (bin 0 also
  holds 0), i.e. ``np.searchsorted(edges[1:-1], c, side="left")``. ECE = Σ_b count_b / n · |accuracy_b − confidence_b|.
- ``entity_metrics``: seqeval's default (conlleval-compatible, non-strict) chunking of BIO/IOBES tags: sentences are
  joined with an ``"O"`` between them, an ``I-``/``E-`` tag after ``O`` starts an entity, a type change ends one and
  starts another. Entity-level micro precision/recall/F1 and per-type scores equal ``seqeval.metrics``; accuracy is
  token accuracy over all tags.
- ``language_model_metrics``: loss, perplexity and bits per token from a summed negative log-likelihood in nats.
- ``largest_gap``: the widest spread of one metric between slices (groups) of the evaluation data.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["calibration", "classification_metrics", "entity_metrics", "language_model_metrics", "largest_gap"]

_MAX_LOG_PERPLEXITY = 700.0  # exp(700) ≈ 1e304 is still a finite float


def _divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """Element-wise ``numerator / denominator`` as float64, 0.0 where the denominator is 0 (``zero_division=0``)."""
    numerator = np.asarray(numerator, dtype=np.float64)
    denominator = np.asarray(denominator, dtype=np.float64)
    safe = np.where(denominator == 0, 1.0, denominator)
    return np.where(denominator == 0, 0.0, numerator / safe)


def _floats(values: np.ndarray) -> list[float]:
    return [float(v) for v in values]


def _binary_auc(positive: np.ndarray, scores: np.ndarray) -> float | None:
    """ROC AUC of boolean labels against scores (Mann–Whitney U with average ranks); None without both classes."""
    n = positive.shape[0]
    n_pos = int(np.count_nonzero(positive))
    n_neg = n - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    order = np.argsort(scores, kind="mergesort")
    ordered = scores[order]
    starts = np.concatenate(([0], np.flatnonzero(ordered[1:] != ordered[:-1]) + 1))
    ends = np.concatenate((starts[1:], [n]))
    ranks = np.empty(n, dtype=np.float64)
    ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)  # 1-based average rank of each tie group
    u = float(ranks[positive].sum()) - n_pos * (n_pos + 1) / 2.0
    return u / (n_pos * n_neg)


def _roc_auc_ovr(gold: np.ndarray, probabilities: np.ndarray) -> float | None:
    """scikit-learn's ``roc_auc_score`` (binary for k == 2, macro one-vs-rest over all k labels otherwise)."""
    n, k = probabilities.shape
    if n == 0 or k < 2:
        return None
    if k == 2:
        return _binary_auc(gold == 1, probabilities[:, 1])
    if not np.allclose(1, probabilities.sum(axis=1)):
        return None  # scikit-learn refuses scores that are not probabilities
    aucs = []
    for label in range(k):
        auc = _binary_auc(gold == label, probabilities[:, label])
        if auc is None:
            return None  # one undefined class makes the macro average undefined (NaN in scikit-learn)
        aucs.append(auc)
    return float(np.mean(aucs))


def classification_metrics(gold: np.ndarray, probabilities: np.ndarray, label_names: list[str]) -> dict:
    """Accuracy, F1/precision/recall averages, ROC AUC, per-class scores and the confusion matrix.

    ``gold``: int array (n,) with values in [0, k); ``probabilities``: float array (n, k), rows summing to 1;
    ``k = len(label_names)``. The prediction is ``np.argmax`` of each row (the first maximum on ties).
    """
    k = len(label_names)
    gold = np.asarray(gold)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if k == 0:
        raise ValueError("label_names is empty")
    if gold.ndim != 1 or probabilities.shape != (gold.shape[0], k):
        raise ValueError(f"expected gold (n,) and probabilities (n, {k}); got {gold.shape} and {probabilities.shape}")
    if gold.size and (not np.issubdtype(gold.dtype, np.integer) or gold.min() < 0 or gold.max() >= k):
        raise ValueError(f"gold labels must be integers in [0, {k})")
    if not np.all(np.isfinite(probabilities)):
        raise ValueError("probabilities contain NaN or infinity")
    gold = gold.astype(np.int64, copy=False)
    n = gold.shape[0]
    predicted = probabilities.argmax(axis=1) if n else np.zeros(0, dtype=np.int64)

    matrix = np.bincount(gold * k + predicted, minlength=k * k).reshape(k, k)
    tp = np.diagonal(matrix)
    support = matrix.sum(axis=1)
    predicted_count = matrix.sum(axis=0)
    precision = _divide(tp, predicted_count)
    recall = _divide(tp, support)
    f1 = _divide(2.0 * tp, support + predicted_count)  # scikit-learn's (1 + β²)·tp / (β²·true + predicted)

    metrics: dict[str, float | None]
    if n == 0:
        metrics = dict.fromkeys(("accuracy", "f1_macro", "f1_micro", "f1_weighted", "precision_macro",
                                 "recall_macro", "roc_auc_ovr"))
    else:
        present = (support + predicted_count) > 0  # scikit-learn's default labels: those in gold ∪ predictions
        tp_total, true_total, predicted_total = tp.sum(), support.sum(), predicted_count.sum()
        metrics = {
            "accuracy": float(np.mean(gold == predicted)),
            "f1_macro": float(np.mean(f1[present])),
            "f1_micro": float(_divide(2.0 * tp_total, true_total + predicted_total)),
            "f1_weighted": float(np.average(f1[present], weights=support[present])),
            "precision_macro": float(np.mean(precision[present])),
            "recall_macro": float(np.mean(recall[present])),
            "roc_auc_ovr": _roc_auc_ovr(gold, probabilities),
        }
    per_class = [
        {"label": name, "precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
         "support": int(support[i])}
        for i, name in enumerate(label_names)
    ]
    return {"metrics": metrics, "per_class": per_class, "confusion_matrix": matrix.tolist()}


def calibration(confidence: np.ndarray, correct: np.ndarray, bins: int = 15) -> dict:
    """Top-label calibration: ``confidence`` = probability of the predicted class (n,), ``correct`` = bool (n,).

    Returns the expected calibration error (None without rows) and every one of the ``bins`` equal-width bins of
    [0, 1] (an empty bin has count 0 and None confidence/accuracy).
    """
    if bins < 1:
        raise ValueError("bins must be at least 1")
    confidence = np.asarray(confidence, dtype=np.float64).reshape(-1)
    correct = np.asarray(correct, dtype=bool).reshape(-1)
    if confidence.shape != correct.shape:
        raise ValueError(f"confidence and correct differ in length: {confidence.shape[0]} != {correct.shape[0]}")
    if confidence.size and not (confidence.min() >= 0.0 and confidence.max() <= 1.0):  # also rejects NaN
        raise ValueError("confidence has values outside [0, 1]")
    edges = np.linspace(0.0, 1.0, bins + 1)
    ids = np.searchsorted(edges[1:-1], confidence, side="left")
    counts = np.bincount(ids, minlength=bins)
    confidence_sums = np.bincount(ids, weights=confidence, minlength=bins)
    correct_sums = np.bincount(ids, weights=correct.astype(np.float64), minlength=bins)
    nonempty = counts > 0
    mean_confidence = _divide(confidence_sums, counts)
    accuracy = _divide(correct_sums, counts)

    n = confidence.shape[0]
    ece = float(np.sum(counts[nonempty] / n * np.abs(accuracy[nonempty] - mean_confidence[nonempty]))) if n else None
    rows = [
        {"lower": float(edges[b]), "upper": float(edges[b + 1]), "count": int(counts[b]),
         "confidence": float(mean_confidence[b]) if nonempty[b] else None,
         "accuracy": float(accuracy[b]) if nonempty[b] else None}
        for b in range(bins)
    ]
    return {"ece": ece, "bins": rows}


def _split_tag(tag: str) -> tuple[str, str]:
    """seqeval's (prefix, type) of a tag: ``"B-PER"`` → ("B", "PER"), ``"O"`` → ("O", "_")."""
    if not tag:
        raise ValueError("empty tag")
    return tag[0], tag[1:].split("-", maxsplit=1)[-1] or "_"


def _end_of_chunk(prev_tag: str, tag: str, prev_type: str, type_: str) -> bool:
    if prev_tag in ("E", "S"):
        return True
    if prev_tag in ("B", "I") and tag in ("B", "S", "O"):
        return True
    return prev_tag not in ("O", ".") and prev_type != type_


def _start_of_chunk(prev_tag: str, tag: str, prev_type: str, type_: str) -> bool:
    if tag in ("B", "S"):
        return True
    if prev_tag in ("E", "S", "O") and tag in ("E", "I"):
        return True
    return tag not in ("O", ".") and prev_type != type_


def _entities(sentences: Sequence[Sequence[str]]) -> dict[str, set[tuple[int, int]]]:
    """Entities of tag sentences as {type: {(start, end)}} over seqeval's concatenation (an "O" after each)."""
    tags = [tag for sentence in sentences for tag in (*sentence, "O")]
    found: dict[str, set[tuple[int, int]]] = {}
    prev_tag, prev_type, begin = "O", "", 0
    for i, chunk in enumerate([*tags, "O"]):
        tag, type_ = _split_tag(chunk)
        if _end_of_chunk(prev_tag, tag, prev_type, type_):
            found.setdefault(prev_type, set()).add((begin, i - 1))
        if _start_of_chunk(prev_tag, tag, prev_type, type_):
            begin = i
        prev_tag, prev_type = tag, type_
    return found


def _prf(tp: int, predicted: int, true: int) -> tuple[float, float, float]:
    """seqeval's precision, recall and F1 (0.0 on a zero division)."""
    precision = tp / predicted if predicted else 0.0
    recall = tp / true if true else 0.0
    denominator = precision + recall
    return precision, recall, (2 * precision * recall / denominator if denominator else 0.0)


def entity_metrics(gold: list[list[str]], predicted: list[list[str]]) -> dict:
    """Entity-level scores of BIO/IOBES tag sequences with seqeval's default (non-strict, conlleval) semantics.

    ``metrics``: micro entity precision/recall/F1 and token accuracy (None without tokens); ``per_type``: one row
    per entity type found in gold or predictions, sorted by type, with the support counted in gold.
    """
    if len(gold) != len(predicted) or any(len(g) != len(p) for g, p in zip(gold, predicted)):
        raise ValueError("gold and predicted tag sequences differ in shape")
    gold_entities = _entities(gold)
    predicted_entities = _entities(predicted)
    per_type = []
    tp_total = predicted_total = true_total = 0
    for type_ in sorted(gold_entities.keys() | predicted_entities.keys()):
        true_set = gold_entities.get(type_, set())
        predicted_set = predicted_entities.get(type_, set())
        tp = len(true_set & predicted_set)
        precision, recall, f1 = _prf(tp, len(predicted_set), len(true_set))
        per_type.append({"type": type_, "precision": precision, "recall": recall, "f1": f1, "support": len(true_set)})
        tp_total += tp
        predicted_total += len(predicted_set)
        true_total += len(true_set)
    precision, recall, f1 = _prf(tp_total, predicted_total, true_total)
    tokens = sum(len(sentence) for sentence in gold)
    matches = sum(g == p for gs, ps in zip(gold, predicted) for g, p in zip(gs, ps))
    accuracy = matches / tokens if tokens else None
    return {"metrics": {"precision": precision, "recall": recall, "f1": f1, "accuracy": accuracy},
            "per_type": per_type}


def language_model_metrics(nll_sum: float, tokens: int) -> dict:
    """Loss, perplexity and bits per token of a summed negative log-likelihood in nats over ``tokens`` tokens.

    All None without tokens or with a non-finite sum; the perplexity's exponent is capped at 700 (stays finite).
    """
    tokens = int(tokens)
    if tokens < 0:
        raise ValueError("tokens must not be negative")
    nll_sum = float(nll_sum)
    if tokens == 0 or not math.isfinite(nll_sum):
        return {"loss": None, "perplexity": None, "bits_per_token": None}
    loss = nll_sum / tokens
    return {"loss": loss, "perplexity": math.exp(min(loss, _MAX_LOG_PERPLEXITY)), "bits_per_token": loss / math.log(2)}


def largest_gap(groups: list[dict[str, Any]], metric: str) -> dict | None:
    """The pair of groups with the largest difference of ``metric`` among those where it is not None.

    ``groups``: ``[{"value": str, "rows": int, "metrics": {metric: float | None, ...}}, ...]``. Returns
    ``{"metric", "gap", "best": value, "worst": value}`` (the first group on ties), or None when fewer than two
    groups have the metric.
    """
    scored = []
    for group in groups:
        value = (group.get("metrics") or {}).get(metric)
        if value is not None and not (isinstance(value, float) and math.isnan(value)):
            scored.append((group["value"], float(value)))
    if len(scored) < 2:
        return None
    best = max(range(len(scored)), key=lambda i: scored[i][1])  # max/min return the first extreme on ties
    worst = min((i for i in range(len(scored)) if i != best), key=lambda i: scored[i][1])
    return {"metric": metric, "gap": scored[best][1] - scored[worst][1], "best": scored[best][0],
            "worst": scored[worst][0]}
