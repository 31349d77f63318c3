"""ONNX export of tiny models: parity with the parent, the variant's card and lineage, fmhub.load, bad input."""

from __future__ import annotations

import numpy as np
import pytest

import fmhub
from fmhub.cards import parse_card
from fmhub.client import Hub
from fmhub.errors import InvalidInputError, ParityError
from fmhub.optimize import export_onnx


def test_export_matches_the_parent_and_loads_by_its_card(classifier: str, topic_words) -> None:
    parent = classifier
    outcome = export_onnx(parent, "acme/clf-onnx", report=False)
    with Hub.open() as hub:
        parent_commit = hub.repo_info(parent).commit.oid
        folder = hub.download("acme/clf-onnx", revision=outcome.commit)
    import onnx

    graph = onnx.load(str(folder / "model.onnx"))
    assert graph.opset_import[0].version >= 17
    assert [d.dim_param for d in graph.graph.input[0].type.tensor_type.shape.dim] == ["batch", "sequence"]
    # The CPU-fast graph: attention fused (traced eagerly; the SDPA trace's IsNaN/Where masking is not fusable)
    # and residual layer norms left as Add + LayerNormalization (ORT's SkipLayerNormalization is slower on CPU).
    ops = [n.op_type for n in graph.graph.node]
    assert ops.count("Attention") == 2 and "LayerNormalization" in ops, sorted(set(ops))
    unfused = {"IsNaN", "Softmax", "SkipLayerNormalization"} & set(ops)
    assert not unfused, unfused
    card = parse_card((folder / "README.md").read_text()).metadata
    assert card["base_model"] == parent and card["fmhub"]["lineage"]["parent_commit"] == parent_commit
    variant = card["fmhub"]["variant"]
    assert variant["format"] == "onnx" and variant["parity"]["argmax_agreement"] == 1.0
    assert variant["parity"]["max_abs_logit_diff"] <= 1e-3 and "validation" in variant["parity"]["inputs"]

    # fmhub.load runs both by what their cards declare; the same texts get the same logits.
    onnx_model, torch_model = fmhub.load("acme/clf-onnx"), fmhub.load(parent)
    assert (onnx_model.format, torch_model.format) == ("onnx", "torch")
    texts = [" ".join(topic_words["sport"][:n]) for n in (2, 7)] + [" ".join(topic_words["tech"])]
    batch = onnx_model.tokenizer(texts, padding=True, return_tensors="np")
    got = onnx_model.logits(batch["input_ids"], batch["attention_mask"])
    expected = torch_model.logits(batch["input_ids"], batch["attention_mask"])
    np.testing.assert_allclose(got, expected, atol=1e-4)
    assert onnx_model.parameters() == pytest.approx(torch_model.parameters(), rel=0.05)


def test_tracing_switches_to_eager_attention_only_for_the_export(classifier: str) -> None:
    from fmhub.formats.onnx import _tracing

    model = fmhub.load(classifier).model
    before = model.config._attn_implementation
    assert before != "eager"
    with _tracing(model):
        assert model.config._attn_implementation == "eager"
    assert model.config._attn_implementation == before


def test_a_gpt2_classifier_exports_without_its_key_value_cache(tiny_model: str, tiny_data: str, tmp_path) -> None:
    import torch
    from transformers import AutoTokenizer, GPT2Config, GPT2ForSequenceClassification

    with Hub.open() as hub:
        tokenizer = AutoTokenizer.from_pretrained(hub.download(tiny_model))
    torch.manual_seed(0)
    labels = {0: "sport", 1: "tech"}
    GPT2ForSequenceClassification(GPT2Config(
        vocab_size=len(tokenizer), n_positions=64, n_embd=32, n_layer=2, n_head=2, bos_token_id=None,
        eos_token_id=None, pad_token_id=tokenizer.pad_token_id, id2label=labels,
        label2id={v: k for k, v in labels.items()})).save_pretrained(tmp_path / "gpt")
    tokenizer.save_pretrained(tmp_path / "gpt")
    with Hub.open() as hub:
        hub.create_repo("acme/gpt-clf")
        hub.upload(tmp_path / "gpt", "acme/gpt-clf")
    outcome = export_onnx("acme/gpt-clf", "acme/gpt-clf-onnx", data=tiny_data, report=False)
    assert outcome.variant["parity"]["argmax_agreement"] == 1.0
    assert "gpt2 fusions" in outcome.variant["graph_optimization"]


def test_a_tolerance_nothing_meets_fails_loudly_and_pushes_nothing(classifier: str) -> None:
    parent = classifier
    with pytest.raises(ParityError, match="tolerance 1e-12"):
        export_onnx(parent, "acme/never", tolerance=1e-12, optimize=True, report=False)
    with Hub.open() as hub:
        assert not any(r.repo_id == "acme/never" for r in hub.list_repos())


def test_bad_input(classifier: str, tiny_model: str, capsys) -> None:
    from fmhub.cli import main

    parent = classifier
    assert main(["optimize", "export-onnx", parent, "--output", "acme/x", "--opset", "13"]) == 2
    assert "--opset 13 must be 17 or more" in capsys.readouterr().err
    assert main(["optimize", "export-onnx", tiny_model, "--output", "acme/x"]) == 2
    assert "has no task head" in capsys.readouterr().err
    assert main(["optimize", "export-onnx", parent, "--output", "acme/clf-onnx", "--no-eval"]) == 0
    assert "argmax agreement 100.0%" in capsys.readouterr().out
    with pytest.raises(InvalidInputError, match="already onnx"):
        export_onnx("acme/clf-onnx", "acme/y", report=False)
