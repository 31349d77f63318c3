"""Explanations of tiny models: IG completeness, the planted keyword first, occlusion on the ONNX variant
agreeing in sign with IG on the parent, faithfulness above the random baseline, bad input refused."""

from __future__ import annotations

import numpy as np
import pytest

import fmhub
from fmhub.errors import InvalidInputError
from fmhub.explain import ExplainArgs, MethodUnavailableError, explain

KEYWORD = "robot"  # the planted word (tests/explain/conftest.py)

TEXTS = ["goal match robot team player", "chip robot data", "league coach win robot score goal"]


def test_integrated_gradients_are_complete_and_find_the_planted_word(keyword_model: str) -> None:
    loaded = fmhub.load(keyword_model)
    results = explain(loaded, TEXTS, ExplainArgs(method="integrated-gradients", steps=8, faithfulness=True))
    for (explanation, measured), text in zip(results, TEXTS, strict=True):
        assert explanation.label == "yes" == explanation.predicted
        check = explanation.completeness
        assert check is not None and check.holds and check.steps >= 8
        # completeness: the attributions sum to f(x) − f(baseline) within the tolerance
        assert abs(sum(explanation.scores) - check.expected) <= max(0.05 * abs(check.expected), 1e-3)
        assert explanation.top(1)[0][0] == KEYWORD
        start, end = explanation.spans[explanation.units.index(KEYWORD)]
        assert text[start:end] == KEYWORD
        assert measured["comprehensiveness"] > 0.2


def test_occlusion_on_the_onnx_variant_agrees_in_sign_with_ig_on_the_parent(keyword_model: str) -> None:
    from fmhub.optimize import export_onnx

    export_onnx(keyword_model, "acme/keyword-onnx", report=False)
    parent, variant = fmhub.load(keyword_model), fmhub.load("acme/keyword-onnx")
    assert variant.format == "onnx"
    with pytest.raises(MethodUnavailableError, match="occlusion"):
        explain(variant, TEXTS[:1], ExplainArgs(method="integrated-gradients"))
    ig = explain(parent, TEXTS, ExplainArgs(method="integrated-gradients"))
    occlusion = explain(variant, TEXTS, ExplainArgs())  # the default for a format without gradients
    for (mine, _), (theirs, _) in zip(occlusion, ig, strict=True):
        assert mine.method == "occlusion" and mine.units == theirs.units
        assert mine.top(1)[0][0] == KEYWORD
        for unit, _ in theirs.top(2):  # the parent's top tokens keep their sign on the variant
            i = theirs.units.index(unit)
            assert np.sign(mine.scores[i]) == np.sign(theirs.scores[i])


def test_attention_rollout_and_a_chosen_label(keyword_model: str) -> None:
    loaded = fmhub.load(keyword_model)
    [(rolled, _)] = explain(loaded, TEXTS[:1], ExplainArgs(method="attention-rollout"))
    assert len(rolled.scores) == len(rolled.units) == 5 and all(s > 0 for s in rolled.scores)
    [(other, _)] = explain(loaded, TEXTS[:1], ExplainArgs(method="occlusion", label="no"))
    assert other.label == "no" and other.predicted == "yes"
    # removing the keyword raises p(no): it is the most negative token for "no"
    assert other.units[int(np.argmin(other.scores))] == KEYWORD


def test_bad_options_are_input_errors(keyword_model: str) -> None:
    loaded = fmhub.load(keyword_model)
    with pytest.raises(InvalidInputError, match="not one of the model's labels"):
        explain(loaded, TEXTS[:1], ExplainArgs(label="maybe"))
    with pytest.raises(InvalidInputError, match="no such method"):
        explain(loaded, TEXTS[:1], ExplainArgs(method="lime"))
    with pytest.raises(InvalidInputError, match="beyond the model's 64 positions"):
        explain(loaded, TEXTS[:1], ExplainArgs(max_length=1000))
