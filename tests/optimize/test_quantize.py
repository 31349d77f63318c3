"""Dynamic int8 quantization (ONNX Runtime and PyTorch): still classifies, reloads without pickle, card says so."""

from __future__ import annotations

import numpy as np
import pytest

import fmhub
from fmhub.cards import parse_card
from fmhub.client import Hub
from fmhub.errors import InvalidInputError
from fmhub.optimize import export_onnx, quantize


def _accuracy(model: fmhub.LoadedModel, tiny_data: str) -> float:
    from fmhub.data import load

    test = load(tiny_data, split="test")
    batch = model.tokenizer(list(test["text"]), padding=True, return_tensors="np")
    return float((model.logits(batch["input_ids"], batch["attention_mask"]).argmax(-1) == np.asarray(test["label"]))
                 .mean())


@pytest.mark.parametrize("backend", ["onnx", "torch"])
def test_int8_variant_still_classifies_and_reloads(classifier: str, tiny_data: str, backend: str) -> None:
    outcome = quantize(classifier, f"acme/clf-int8-{backend}", backend=backend, report=False)
    loaded = fmhub.load(outcome.repo)
    assert loaded.format == ("onnx" if backend == "onnx" else "torch-int8")
    parent = fmhub.load(classifier)
    assert _accuracy(loaded, tiny_data) >= _accuracy(parent, tiny_data) - 0.1 and _accuracy(loaded, tiny_data) > 0.8
    with Hub.open() as hub:
        folder = hub.download(outcome.repo)
        card = parse_card(hub.read_bytes(outcome.repo, "README.md").decode()).metadata
    assert card["base_model"] == classifier and card["base_model_relation"] == "quantized"
    assert card["fmhub"]["variant"]["quantized"] == "dynamic-int8" and card["fmhub"]["variant"]["backend"] == backend
    names = {p.name for p in folder.iterdir()}
    assert not any(n.endswith((".bin", ".pt", ".pkl")) for n in names)
    if backend == "onnx":
        import onnx

        ops = {n.op_type for n in onnx.load(str(folder / "model.onnx")).graph.node}
        assert ops & {"DynamicQuantizeMatMul", "MatMulInteger", "DynamicQuantizeLinear"}
        assert "QAttention" in ops  # the fused attention's projections are int8 too
    else:
        from safetensors import safe_open

        with safe_open(str(folder / "model.safetensors"), "np") as f:
            int8 = [k for k in f.keys() if k.endswith(".weight_int8")]
            assert int8 and all(f.get_tensor(k).dtype == np.int8 for k in int8)
    with pytest.raises(InvalidInputError, match="already quantized"):
        quantize(outcome.repo, "acme/twice", backend="onnx", report=False)


def test_an_onnx_parent_is_quantized_and_carded_against_it_and_bad_options_fail_first(classifier: str,
                                                                                      capsys) -> None:
    import json

    from fmhub.cli import main

    export_onnx(classifier, "acme/clf-onnx", report=False)
    assert main(["optimize", "quantize", "acme/clf-onnx", "--output", "acme/clf-onnx-int8", "--eval-skip",
                 "robustness,baseline"]) == 0
    out = capsys.readouterr().out
    assert "argmax agreement" in out and "variant vs parent acme/clf-onnx@" in out and "batch-1 speed-up" in out
    with Hub.open() as hub:
        [card] = hub.list_evaluations(model="acme/clf-onnx-int8")
        report = json.loads(hub.read_bytes("acme/clf-onnx-int8", card.report_path, card.card_commit))
        readme = hub.read_bytes("acme/clf-onnx-int8", "README.md").decode()
        parent_commit = hub.repo_info("acme/clf-onnx").commit.oid
    parent = report["parent"]
    assert parent["repo"] == "acme/clf-onnx" and parent["commit"] == parent_commit
    assert parent["delta"]["accuracy"] == pytest.approx(report["metrics"]["accuracy"] - parent["metrics"]["accuracy"])
    assert parent["size_ratio"] > 0 and parent["speedup"] > 0 and "**Against the parent**" in readme
    for argv, needle in ((["--method", "static-int4"], "unknown --method 'static-int4'"),
                         (["--backend", "tensorrt"], "unknown --backend 'tensorrt'"),
                         (["--min-agreement", "2"], "--min-agreement 2.0 must be in [0, 1]")):
        assert main(["optimize", "quantize", classifier, "--output", "acme/x", *argv]) == 2
        assert needle in capsys.readouterr().err
    assert main(["optimize", "quantize", "acme/clf-onnx", "--output", "acme/x", "--backend", "torch"]) == 2
    assert "the torch backend quantizes a torch model" in capsys.readouterr().err
    assert main(["optimize", "quantize", classifier, "--output", "not a repo"]) == 2


def test_static_int8_of_a_text_classifier_calibrates_and_leaves_nothing_behind(
        classifier: str, tiny_data: str, tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    # ONNX Runtime's symbolic shape inference used to give up on a BERT graph (sequence lengths meeting through
    # reshapes) and dump its partial graph into the working directory
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    outcome = quantize(classifier, "acme/clf-static", method="static-int8", data=tiny_data, calibration_rows=32,
                       report=False)
    loaded = fmhub.load(outcome.repo)
    assert loaded.format == "onnx" and _accuracy(loaded, tiny_data) > 0.8
    assert list(work.iterdir()) == []
