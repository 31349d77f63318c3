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
        # removing the top tokens (the keyword) takes away nearly all that separates the input from the baseline
        assert measured["comprehensiveness"] >= 0.8 * check.expected > 0.05


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


def test_a_vision_transformer_is_explained_by_every_method(tmp_path) -> None:
    """A random-init ViT (16×16 inputs, 4-pixel patches): regions are its patches, so rollout lines up."""
    import io

    import torch
    from PIL import Image
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    from fmhub.client import Hub

    torch.manual_seed(0)
    folder = tmp_path / "vit"
    ViTForImageClassification(ViTConfig(image_size=16, patch_size=4, hidden_size=32, num_hidden_layers=2,
                                        num_attention_heads=2, intermediate_size=37, num_labels=3,
                                        id2label={0: "a", 1: "b", 2: "c"}, label2id={"a": 0, "b": 1, "c": 2})
                              ).save_pretrained(folder)
    ViTImageProcessor(size={"height": 16, "width": 16}).save_pretrained(folder)
    with Hub.open() as hub:
        hub.create_repo("acme/tiny-vit")
        hub.upload(folder, "acme/tiny-vit")
    loaded = fmhub.load("acme/tiny-vit")
    out = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(out, "PNG")
    image = out.getvalue()
    by_method = {m: explain(loaded, [image], ExplainArgs(method=m, steps=16, faithfulness=True))[0]
                 for m in ("integrated-gradients", "occlusion", "attention-rollout")}
    for explanation, measured in by_method.values():
        assert explanation.grid == (4, 4) and len(explanation.scores) == 16 and explanation.kind == "pixels"
        assert set(measured) == {"comprehensiveness", "sufficiency", "deletion_auc"}
    ig = by_method["integrated-gradients"][0]
    assert ig.completeness.holds and ig.completeness.error <= ig.completeness.tolerance
    assert all(s > 0 for s in by_method["attention-rollout"][0].scores)
    # occlusion of one region is the probability its removal costs: recompute one by hand
    occlusion = by_method["occlusion"][0]
    from fmhub.explain import get, probabilities

    explainer = get("pixels")
    prepared = explainer.prepare(loaded, image, max_length=0)
    removed = np.zeros((1, 16), dtype=bool)
    removed[0, 5] = True
    full = probabilities(loaded, prepared.inputs)[0, occlusion.label_id]
    without = probabilities(loaded, explainer.remove(loaded, prepared, removed))[0, occlusion.label_id]
    assert occlusion.scores[5] == pytest.approx(full - without, abs=1e-5)
