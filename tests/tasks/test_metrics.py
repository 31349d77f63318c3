"""The report card's NumPy metrics agree exactly with scikit-learn and seqeval (recomputed independently).

Integers must be equal and floats equal within 1e-12; undefined metrics (NaN or an exception in the reference) must
be None. Hypothesis draws random inputs with many ties (small integer weights) and tags that exercise every seqeval
chunking rule; hand-written cases pin the edges.
"""

from __future__ import annotations

import json
import math
import warnings
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from seqeval import metrics as seqeval_metrics
from sklearn import metrics as sk
from sklearn.calibration import calibration_curve

from fmhub.tasks._metrics import (
    calibration,
    classification_metrics,
    entity_metrics,
    language_model_metrics,
    largest_gap,
)

TOLERANCE = 1e-12
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TAGS = ["O", "O", "B-PER", "I-PER", "E-PER", "S-PER", "B-LOC", "I-LOC", "E-LOC", "S-LOC", "B-MISC", "I-MISC",
        "B", "I", "."]


def _close(actual: float | None, expected: float | None) -> bool:
    if expected is None or (isinstance(expected, float) and math.isnan(expected)):
        return actual is None
    return isinstance(actual, float) and abs(actual - float(expected)) <= TOLERANCE


def _assert_plain(value: Any) -> None:
    """JSON-ready: only plain Python types, no NaN/inf."""
    json.dumps(value, allow_nan=False)
    if isinstance(value, dict):
        for item in value.values():
            _assert_plain(item)
    elif isinstance(value, list):
        for item in value:
            _assert_plain(item)
    else:
        assert value is None or type(value) in (float, int, str, bool), type(value)


# --- classification ---------------------------------------------------------------------------------------------


def _sklearn_roc_auc(gold: np.ndarray, probabilities: np.ndarray) -> float | None:
    k = probabilities.shape[1]
    if k < 2:
        return None
    try:
        if k == 2:
            return float(sk.roc_auc_score(gold, probabilities[:, 1]))
        return float(sk.roc_auc_score(gold, probabilities, multi_class="ovr", average="macro", labels=range(k)))
    except ValueError:
        return None


def _check_classification(gold: np.ndarray, probabilities: np.ndarray) -> dict:
    k = probabilities.shape[1]
    names = [f"label{i}" for i in range(k)]
    result = classification_metrics(gold, probabilities, names)
    _assert_plain(result)
    pred = probabilities.argmax(axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = {
            "accuracy": sk.accuracy_score(gold, pred),
            "f1_macro": sk.f1_score(gold, pred, average="macro", zero_division=0),
            "f1_micro": sk.f1_score(gold, pred, average="micro", zero_division=0),
            "f1_weighted": sk.f1_score(gold, pred, average="weighted", zero_division=0),
            "precision_macro": sk.precision_score(gold, pred, average="macro", zero_division=0),
            "recall_macro": sk.recall_score(gold, pred, average="macro", zero_division=0),
            "roc_auc_ovr": _sklearn_roc_auc(gold, probabilities),
        }
        p, r, f, s = sk.precision_recall_fscore_support(gold, pred, labels=range(k), zero_division=0)
        matrix = sk.confusion_matrix(gold, pred, labels=range(k)).tolist()  # warns for k == 1
    assert set(result["metrics"]) == set(expected)
    for name, value in expected.items():
        assert _close(result["metrics"][name], value), (name, result["metrics"][name], value)
    assert [row["label"] for row in result["per_class"]] == names
    for i, row in enumerate(result["per_class"]):
        assert _close(row["precision"], p[i]) and _close(row["recall"], r[i]) and _close(row["f1"], f[i]), (i, row)
        assert row["support"] == int(s[i])
    assert result["confusion_matrix"] == matrix
    return result


@st.composite
def _classification_inputs(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    k = draw(st.integers(1, 5))
    n = draw(st.integers(1, 40))
    gold = np.array(draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n)), dtype=np.int64)
    if draw(st.booleans()):  # small integer weights: many ties within rows (argmax) and across rows (AUC ranks)
        weights = draw(st.lists(st.lists(st.integers(0, 3), min_size=k, max_size=k), min_size=n, max_size=n))
        raw = np.array(weights, dtype=np.float64) + 0.5
    else:
        weights = draw(st.lists(st.lists(st.floats(0.0, 1.0), min_size=k, max_size=k), min_size=n, max_size=n))
        raw = np.array(weights, dtype=np.float64) + 1e-3
    return gold, raw / raw.sum(axis=1, keepdims=True)


@SETTINGS
@given(_classification_inputs())
def test_classification_matches_sklearn(inputs: tuple[np.ndarray, np.ndarray]) -> None:
    _check_classification(*inputs)


def test_classification_class_never_predicted() -> None:
    gold = np.array([0, 1, 2, 2, 1, 0])
    probabilities = np.array([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.6, 0.3, 0.1], [0.3, 0.6, 0.1],
                              [0.1, 0.8, 0.1], [0.5, 0.4, 0.1]])
    result = _check_classification(gold, probabilities)
    assert result["per_class"][2] == {"label": "label2", "precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 2}
    assert result["metrics"]["roc_auc_ovr"] is not None


def test_classification_class_absent_from_gold() -> None:
    gold = np.array([0, 1, 0, 1])
    probabilities = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6], [0.3, 0.6, 0.1]])
    result = _check_classification(gold, probabilities)
    assert result["metrics"]["roc_auc_ovr"] is None  # label 2 has no positives
    assert result["per_class"][2]["support"] == 0
    # A label neither in gold nor predicted stays out of the macro average (scikit-learn's default labels).
    gold, probabilities = np.array([0, 1]), np.array([[0.9, 0.05, 0.05], [0.1, 0.8, 0.1]])
    assert _check_classification(gold, probabilities)["metrics"]["f1_macro"] == 1.0


def test_classification_single_class() -> None:
    result = _check_classification(np.array([0, 0, 0]), np.ones((3, 1)))
    assert result["metrics"]["accuracy"] == 1.0 and result["metrics"]["roc_auc_ovr"] is None
    assert result["confusion_matrix"] == [[3]]
    # Two labels, one in gold: scikit-learn's binary AUC is NaN.
    result = _check_classification(np.array([1, 1]), np.array([[0.4, 0.6], [0.7, 0.3]]))
    assert result["metrics"]["roc_auc_ovr"] is None


def test_classification_all_correct_and_ties() -> None:
    gold = np.array([0, 1, 2, 3])
    result = _check_classification(gold, np.eye(4) * 0.9 + 0.025)
    assert result["metrics"]["accuracy"] == 1.0 and result["metrics"]["roc_auc_ovr"] == 1.0
    assert result["metrics"]["f1_macro"] == 1.0
    # A tie predicts the first maximum, and tied scores share an average rank.
    result = _check_classification(np.array([0, 1, 1, 0]), np.full((4, 2), 0.5))
    assert result["confusion_matrix"] == [[2, 0], [2, 0]] and result["metrics"]["roc_auc_ovr"] == 0.5


def test_classification_not_probabilities_and_empty() -> None:
    gold = np.array([0, 1, 2])
    result = _check_classification(gold, np.array([[2.0, 1.0, 0.5], [0.1, 3.0, 0.1], [0.2, 0.1, 4.0]]))
    assert result["metrics"]["roc_auc_ovr"] is None  # scikit-learn raises for k > 2
    empty = classification_metrics(np.zeros(0, dtype=int), np.zeros((0, 2)), ["a", "b"])
    _assert_plain(empty)
    assert all(value is None for value in empty["metrics"].values())
    assert empty["confusion_matrix"] == [[0, 0], [0, 0]] and empty["per_class"][1]["support"] == 0


def test_classification_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        classification_metrics(np.array([0, 3]), np.full((2, 3), 1 / 3), ["a", "b", "c"])
    with pytest.raises(ValueError):
        classification_metrics(np.array([0, 1]), np.full((2, 2), 0.5), ["a", "b", "c"])
    with pytest.raises(ValueError):
        classification_metrics(np.array([0, 1]), np.array([[0.5, np.nan], [0.5, 0.5]]), ["a", "b"])


# --- calibration ------------------------------------------------------------------------------------------------


def _check_calibration(confidence: np.ndarray, correct: np.ndarray, bins: int) -> dict:
    result = calibration(confidence, correct, bins=bins)
    _assert_plain(result)
    edges = np.linspace(0.0, 1.0, bins + 1)
    assert len(result["bins"]) == bins
    assert [(row["lower"], row["upper"]) for row in result["bins"]] == list(zip(edges[:-1], edges[1:]))
    if confidence.size == 0:
        assert result["ece"] is None and all(row["count"] == 0 for row in result["bins"])
        return result
    prob_true, prob_pred = calibration_curve(correct.astype(int), confidence, n_bins=bins, strategy="uniform")
    counts = np.bincount(np.searchsorted(edges[1:-1], confidence), minlength=bins)
    assert [row["count"] for row in result["bins"]] == counts.tolist()
    nonempty = [row for row in result["bins"] if row["count"]]
    assert all(row["confidence"] is None and row["accuracy"] is None for row in result["bins"] if not row["count"])
    assert len(nonempty) == len(prob_true)
    for row, accuracy, mean_confidence in zip(nonempty, prob_true, prob_pred):
        assert _close(row["accuracy"], accuracy) and _close(row["confidence"], mean_confidence), row
    # Every row lies in its bin: (lower, upper], with 0 in the first bin.
    for row in nonempty:
        members = confidence[(confidence > row["lower"]) & (confidence <= row["upper"])]
        if row["lower"] == 0.0:
            members = confidence[confidence <= row["upper"]]
        assert members.size == row["count"]
    n = confidence.size
    expected_ece = float(np.sum(counts[counts > 0] / n * np.abs(prob_true - prob_pred)))
    assert _close(result["ece"], expected_ece)
    return result


@st.composite
def _calibration_inputs(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, int]:
    bins = draw(st.integers(1, 20))
    edges = np.linspace(0.0, 1.0, bins + 1).tolist()
    value = st.one_of(st.floats(0.0, 1.0), st.sampled_from(edges))  # bin edges exercise the searchsorted side
    n = draw(st.integers(1, 60))
    confidence = np.array(draw(st.lists(value, min_size=n, max_size=n)), dtype=np.float64)
    correct = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool)
    return confidence, correct, bins


@SETTINGS
@given(_calibration_inputs())
def test_calibration_matches_sklearn(inputs: tuple[np.ndarray, np.ndarray, int]) -> None:
    _check_calibration(*inputs)


def test_calibration_edges() -> None:
    result = _check_calibration(np.array([0.0, 0.2, 0.2000001, 0.4, 1.0]), np.array([1, 0, 1, 1, 1], bool), 5)
    assert [row["count"] for row in result["bins"]] == [2, 2, 0, 0, 1]
    assert result["bins"][2]["confidence"] is None
    perfect = _check_calibration(np.array([1.0, 1.0]), np.array([True, True]), 15)
    assert perfect["ece"] == 0.0
    _check_calibration(np.zeros(0), np.zeros(0, bool), 10)
    with pytest.raises(ValueError):
        calibration(np.array([1.5]), np.array([True]))


# --- entities ---------------------------------------------------------------------------------------------------


def _check_entities(gold: list[list[str]], predicted: list[list[str]]) -> dict:
    result = entity_metrics(gold, predicted)
    _assert_plain(result)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = {
            "precision": seqeval_metrics.precision_score(gold, predicted),
            "recall": seqeval_metrics.recall_score(gold, predicted),
            "f1": seqeval_metrics.f1_score(gold, predicted),
        }
        try:
            expected["accuracy"] = seqeval_metrics.accuracy_score(gold, predicted)
        except ZeroDivisionError:
            expected["accuracy"] = None
        report = seqeval_metrics.classification_report(gold, predicted, output_dict=True)
    assert set(result["metrics"]) == set(expected)
    for name, value in expected.items():
        assert _close(result["metrics"][name], value), (name, result["metrics"][name], value)
    types = sorted(name for name in report if not name.endswith(" avg"))
    assert [row["type"] for row in result["per_type"]] == types
    for row in result["per_type"]:
        reference = report[row["type"]]
        assert _close(row["precision"], reference["precision"]) and _close(row["recall"], reference["recall"])
        assert _close(row["f1"], reference["f1-score"]) and row["support"] == int(reference["support"])
    return result


@st.composite
def _tag_inputs(draw: st.DrawFn) -> tuple[list[list[str]], list[list[str]]]:
    lengths = draw(st.lists(st.integers(0, 8), min_size=1, max_size=5))
    tag = st.sampled_from(TAGS)
    gold = [draw(st.lists(tag, min_size=length, max_size=length)) for length in lengths]
    predicted = [[draw(tag) if draw(st.integers(0, 2)) == 0 else g for g in sentence] for sentence in gold]
    return gold, predicted


@SETTINGS
@given(_tag_inputs())
def test_entities_match_seqeval(inputs: tuple[list[list[str]], list[list[str]]]) -> None:
    _check_entities(*inputs)


def test_entities_edges() -> None:
    # No entities at all.
    result = _check_entities([["O", "O"]], [["O", "O"]])
    assert result["per_type"] == [] and result["metrics"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0,
                                                               "accuracy": 1.0}
    # An I- tag without B- starts an entity; a type change splits one.
    result = _check_entities([["I-PER", "I-PER", "I-LOC"]], [["B-PER", "I-PER", "B-LOC"]])
    assert result["metrics"]["f1"] == 1.0
    # E-/S- tags, and entities never run across sentence boundaries.
    _check_entities([["B-LOC", "E-LOC", "S-PER"], ["I-PER", "E-PER"]], [["B-LOC", "I-LOC", "E-PER"], ["E-PER", "O"]])
    result = _check_entities([["O", "B-PER"], ["I-PER"]], [["O", "B-PER"], ["O"]])
    assert result["per_type"] == [{"type": "PER", "precision": 1.0, "recall": 0.5, "f1": 2 / 3, "support": 2}]
    # Predicted-only type (precision 0 by zero division of recall side), empty sentences, no tokens.
    _check_entities([["O"], []], [["S-MISC"], []])
    _check_entities([[]], [[]])
    empty = entity_metrics([], [])
    assert empty == {"metrics": {"precision": 0.0, "recall": 0.0, "f1": 0.0, "accuracy": None}, "per_type": []}
    with pytest.raises(ValueError):
        entity_metrics([["O"]], [["O", "O"]])


# --- language modelling and gaps ----------------------------------------------------------------------------------


def test_language_model_metrics() -> None:
    result = language_model_metrics(20.0, 10)
    assert result == {"loss": 2.0, "perplexity": math.exp(2.0), "bits_per_token": 2.0 / math.log(2)}
    assert language_model_metrics(0.0, 0) == {"loss": None, "perplexity": None, "bits_per_token": None}
    assert language_model_metrics(1e6, 1)["perplexity"] == math.exp(700)
    assert language_model_metrics(float("inf"), 3)["loss"] is None
    _assert_plain(language_model_metrics(1e6, 1))


def test_largest_gap() -> None:
    groups = [
        {"value": "a", "rows": 3, "metrics": {"f1": 0.5}},
        {"value": "b", "rows": 2, "metrics": {"f1": None}},
        {"value": "c", "rows": 4, "metrics": {"f1": 0.9}},
        {"value": "d", "rows": 1, "metrics": {"f1": 0.2}},
        {"value": "e", "rows": 1, "metrics": {}},
    ]
    gap = largest_gap(groups, "f1")
    assert gap is not None and gap["best"] == "c" and gap["worst"] == "d" and gap["metric"] == "f1"
    assert abs(gap["gap"] - 0.7) <= TOLERANCE
    assert largest_gap(groups[:2], "f1") is None
    assert largest_gap(groups, "accuracy") is None
    tied = largest_gap([{"value": name, "rows": 1, "metrics": {"m": 1.0}} for name in ("x", "y")], "m")
    assert tied == {"metric": "m", "gap": 0.0, "best": "x", "worst": "y"}


def test_the_metrics_are_scikit_learn_and_seqeval(monkeypatch) -> None:
    """The card's numbers come from the libraries themselves (not a re-implementation that agrees today)."""
    import seqeval.metrics
    import sklearn.metrics

    calls: list[str] = []

    def spy(module, name):
        real = getattr(module, name)

        def wrapped(*args, **kwargs):
            calls.append(name)
            return real(*args, **kwargs)
        monkeypatch.setattr(module, name, wrapped)

    for name in ("f1_score", "roc_auc_score", "confusion_matrix", "precision_recall_fscore_support"):
        spy(sklearn.metrics, name)
    for name in ("f1_score", "classification_report"):
        spy(seqeval.metrics, name)
    classification_metrics(np.array([0, 1, 1]), np.array([[0.8, 0.2], [0.3, 0.7], [0.6, 0.4]]), ["a", "b"])
    entity_metrics([["B-PER", "O"]], [["B-PER", "O"]])
    assert {"f1_score", "roc_auc_score", "confusion_matrix", "precision_recall_fscore_support",
            "classification_report"} <= set(calls)
