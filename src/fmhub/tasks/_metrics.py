"""Metrics of an evaluation report card, computed by scikit-learn and seqeval.

Every function returns plain Python values (``float``, ``int``, ``str``, ``list``, ``dict``, ``None``), ready for
``json.dumps(..., allow_nan=False)``: a metric that is undefined is ``None``, never NaN or infinity.

- ``classification_metrics``: the prediction of a row is the first maximum of its probabilities (``np.argmax``).
  Accuracy and micro/weighted/macro F1, macro precision/recall are scikit-learn's ``*_score`` with
  ``zero_division=0`` and its default label set (the labels that occur in gold or predictions, so a label that
  never occurs does not drag the macro average to 0). ``per_class`` and the confusion matrix cover all ``k``
  labels. ``roc_auc_ovr`` is ``roc_auc_score`` (binary on the second column for ``k == 2``, macro one-vs-rest over
  the ``k`` labels otherwise); ``None`` where scikit-learn gives NaN or raises (a label without positives or
  negatives in gold, ``k == 1``, no rows, rows that are not probabilities).
- ``calibration``: top-label calibration over ``bins`` equal-width bins of [0, 1] with scikit-learn's
  ``calibration_curve(strategy="uniform")``; ECE = Σ_b count_b / n · |accuracy_b − confidence_b|.
- ``entity_metrics``: seqeval's default (conlleval-compatible) entity precision/recall/F1, per-type report and
  token accuracy.
- ``language_model_metrics``: loss, perplexity and bits per token from a summed negative log-likelihood in nats.
- ``largest_gap``: the widest spread of one metric between slices (groups) of the evaluation data.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

__all__ = ["calibration", "classification_metrics", "entity_metrics", "language_model_metrics", "largest_gap"]

_MAX_LOG_PERPLEXITY = 700.0  # exp(700) ≈ 1e304 is still a finite float


def _defined(value: Any) -> float | None:
    """A library's score as a plain float, None for NaN."""
    value = float(value)
    return None if math.isnan(value) else value


def _roc_auc_ovr(gold: np.ndarray, probabilities: np.ndarray) -> float | None:
    from sklearn.metrics import roc_auc_score

    k = probabilities.shape[1]
    if gold.shape[0] == 0 or k < 2:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # an undefined class warns and gives NaN: None below
            if k == 2:
                return _defined(roc_auc_score(gold, probabilities[:, 1]))
            return _defined(roc_auc_score(gold, probabilities, multi_class="ovr", average="macro", labels=range(k)))
    except ValueError:  # one class only in gold, or scores that are not probabilities
        return None


def classification_metrics(gold: np.ndarray, probabilities: np.ndarray, label_names: list[str]) -> dict:
    """Accuracy, F1/precision/recall averages, ROC AUC, per-class scores and the confusion matrix.

    ``gold``: int array (n,) with values in [0, k); ``probabilities``: float array (n, k), rows summing to 1;
    ``k = len(label_names)``. The prediction is ``np.argmax`` of each row (the first maximum on ties).
    """
    from sklearn import metrics as sk

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
    labels = list(range(k))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # k == 1 and absent labels warn; zero_division=0 says what they give
        matrix = sk.confusion_matrix(gold, predicted, labels=labels) if n else np.zeros((k, k), dtype=np.int64)
        precision, recall, f1, support = sk.precision_recall_fscore_support(gold, predicted, labels=labels,
                                                                            zero_division=0) if n else \
            (np.zeros(k), np.zeros(k), np.zeros(k), np.zeros(k, dtype=np.int64))
        metrics: dict[str, float | None]
        if n == 0:
            metrics = dict.fromkeys(("accuracy", "f1_macro", "f1_micro", "f1_weighted", "precision_macro",
                                     "recall_macro", "roc_auc_ovr"))
        else:
            metrics = {
                "accuracy": float(sk.accuracy_score(gold, predicted)),
                "f1_macro": float(sk.f1_score(gold, predicted, average="macro", zero_division=0)),
                "f1_micro": float(sk.f1_score(gold, predicted, average="micro", zero_division=0)),
                "f1_weighted": float(sk.f1_score(gold, predicted, average="weighted", zero_division=0)),
                "precision_macro": float(sk.precision_score(gold, predicted, average="macro", zero_division=0)),
                "recall_macro": float(sk.recall_score(gold, predicted, average="macro", zero_division=0)),
                "roc_auc_ovr": _roc_auc_ovr(gold, probabilities),
            }
    per_class = [
        {"label": name, "precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
         "support": int(support[i])}
        for i, name in enumerate(label_names)
    ]
    return {"metrics": metrics, "per_class": per_class, "confusion_matrix": np.asarray(matrix).tolist()}


def calibration(confidence: np.ndarray, correct: np.ndarray, bins: int = 15) -> dict:
    """Top-label calibration: ``confidence`` = probability of the predicted class (n,), ``correct`` = bool (n,).

    Returns the expected calibration error (None without rows) and every one of the ``bins`` equal-width bins of
    [0, 1] (an empty bin has count 0 and None confidence/accuracy).
    """
    from sklearn.calibration import calibration_curve

    if bins < 1:
        raise ValueError("bins must be at least 1")
    confidence = np.asarray(confidence, dtype=np.float64).reshape(-1)
    correct = np.asarray(correct, dtype=bool).reshape(-1)
    if confidence.shape != correct.shape:
        raise ValueError(f"confidence and correct differ in length: {confidence.shape[0]} != {correct.shape[0]}")
    if confidence.size and not (confidence.min() >= 0.0 and confidence.max() <= 1.0):  # also rejects NaN
        raise ValueError("confidence has values outside [0, 1]")
    edges = np.linspace(0.0, 1.0, bins + 1)
    n = confidence.shape[0]
    # calibration_curve gives the non-empty bins' accuracy and confidence; their counts come from the same binning.
    counts = np.bincount(np.searchsorted(edges[1:-1], confidence, side="left"), minlength=bins)
    nonempty = counts > 0
    accuracy = np.zeros(bins)
    mean_confidence = np.zeros(bins)
    if n:
        accuracy[nonempty], mean_confidence[nonempty] = calibration_curve(correct, confidence, n_bins=bins,
                                                                          strategy="uniform")
    ece = float(np.sum(counts[nonempty] / n * np.abs(accuracy[nonempty] - mean_confidence[nonempty]))) if n else None
    rows = [
        {"lower": float(edges[b]), "upper": float(edges[b + 1]), "count": int(counts[b]),
         "confidence": float(mean_confidence[b]) if nonempty[b] else None,
         "accuracy": float(accuracy[b]) if nonempty[b] else None}
        for b in range(bins)
    ]
    return {"ece": ece, "bins": rows}


def entity_metrics(gold: list[list[str]], predicted: list[list[str]]) -> dict:
    """Entity-level scores of BIO/IOBES tag sequences with seqeval's default (non-strict, conlleval) semantics.

    ``metrics``: micro entity precision/recall/F1 and token accuracy (None without tokens); ``per_type``: one row
    per entity type found in gold or predictions, sorted by type, with the support counted in gold.
    """
    from seqeval import metrics as seqeval

    if len(gold) != len(predicted) or any(len(g) != len(p) for g, p in zip(gold, predicted)):
        raise ValueError("gold and predicted tag sequences differ in shape")
    if any(not tag for sentence in (*gold, *predicted) for tag in sentence):
        raise ValueError("empty tag")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zero divisions warn; zero_division=0 says what they give
        report = seqeval.classification_report(gold, predicted, output_dict=True, zero_division=0) \
            if any(gold) or any(predicted) else {}
        per_type = [{"type": name, "precision": float(row["precision"]), "recall": float(row["recall"]),
                     "f1": float(row["f1-score"]), "support": int(row["support"])}
                    for name, row in sorted(report.items()) if not name.endswith(" avg")]
        scores = {name: float(score(gold, predicted, zero_division=0)) if per_type else 0.0
                  for name, score in (("precision", seqeval.precision_score), ("recall", seqeval.recall_score),
                                      ("f1", seqeval.f1_score))}
    tokens = sum(len(sentence) for sentence in gold)
    accuracy = float(seqeval.accuracy_score(gold, predicted)) if tokens else None
    return {"metrics": {**scores, "accuracy": accuracy}, "per_type": per_type}


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
