"""Pruning: the asked sparsity (zeros counted), whole FFN neurons removed, the variant reloads."""

from __future__ import annotations

import json

import pytest
import torch

import fmhub
from fmhub.client import Hub
from fmhub.optimize import prune
from fmhub.optimize._prune import sparsity_of


def test_unstructured_pruning_reaches_the_asked_sparsity(classifier: str) -> None:
    outcome = prune(classifier, "acme/clf-sparse", sparsity=0.5, report=False)
    loaded = fmhub.load("acme/clf-sparse")
    weights = [m.weight for n, m in loaded.model.named_modules()
               if isinstance(m, torch.nn.Linear) and not n.startswith("classifier") and "pooler" not in n]
    zeros = sum(int((w == 0).sum()) for w in weights)
    total = sum(w.numel() for w in weights)
    assert zeros == round(0.5 * total)  # exactly the asked share, counted on the reloaded weights
    assert outcome.variant["sparsity"] == pytest.approx(sparsity_of(loaded.model))
    parent = fmhub.load(classifier).model
    assert torch.equal(parent.classifier.weight, loaded.model.classifier.weight)  # the head is kept
    assert outcome.variant["parity"]["positions"] > 0 and "min_agreement" not in outcome.variant["parity"]


def test_neuron_pruning_shrinks_the_model_and_it_reloads(classifier: str, capsys) -> None:
    from transformers import AutoModelForSequenceClassification

    from fmhub.cli import main

    assert main(["optimize", "prune", classifier, "--output", "acme/clf-ffn", "--sparsity", "0.5",
                 "--structured", "neurons", "--eval-skip", "robustness,baseline,slices"]) == 0
    assert "variant vs parent" in capsys.readouterr().out
    loaded = fmhub.load("acme/clf-ffn")
    assert loaded.config.intermediate_size == 37 - round(0.5 * 37)  # every layer keeps the same 18 neurons
    assert loaded.parameters() < fmhub.load(classifier).parameters()
    AutoModelForSequenceClassification.from_pretrained(loaded.folder)  # plain transformers loads it too
    with Hub.open() as hub:
        [card] = hub.list_evaluations(model="acme/clf-ffn")
        report = json.loads(hub.read_bytes("acme/clf-ffn", card.report_path, card.card_commit))
    assert card.metrics["parameters"] == loaded.parameters()
    # like for like: the variant is measured at the parent card's length (the parent trained at 32 of 64 positions)
    assert report["max_length"] == 32 and report["efficiency"]["sequence_length"] <= 32


def test_bad_options(classifier: str, capsys) -> None:
    from fmhub.cli import main

    for argv, needle in ((["--sparsity", "1"], "--sparsity 1.0 must be between 0 and 1"),
                         (["--sparsity", "0"], "--sparsity 0.0 must be between 0 and 1"),
                         (["--structured", "blocks"], "unknown --structured 'blocks'"),
                         (["--structured", "heads", "--sparsity", "0.2"], "removes no head of 2 per layer"),
                         (["--structured", "neurons", "--sparsity", "0.01"], "removes no neuron of 37 per layer")):
        assert main(["optimize", "prune", classifier, "--output", "acme/x", *argv]) == 2
        assert needle in capsys.readouterr().err


def test_head_pruning_narrows_attention_and_the_variant_reloads_exports_and_serves(classifier: str, capsys) -> None:
    from transformers import AutoModelForSequenceClassification

    from fmhub.cli import main
    from fmhub.optimize import export_onnx
    from fmhub.formats.pruned_heads import heads_of
    from fmhub.serve import ServeConfig, app_for

    assert main(["optimize", "prune", classifier, "--output", "acme/clf-heads", "--sparsity", "0.5",
                 "--structured", "heads", "--eval-skip", "robustness,baseline,slices"]) == 0
    assert "variant vs parent" in capsys.readouterr().out
    parent, loaded = fmhub.load(classifier), fmhub.load("acme/clf-heads")
    assert loaded.format == "torch-pruned-heads" and heads_of(loaded.model) == 1 and heads_of(parent.model) == 2
    layer = loaded.model.bert.encoder.layer[0].attention
    assert layer.self.query.weight.shape == (16, 32) and layer.output.dense.weight.shape == (32, 16)
    kept = loaded.variant["kept"][0][0]  # the kept head's rows are the parent's, unchanged
    assert torch.equal(layer.self.query.weight, parent.model.bert.encoder.layer[0].attention.self.query
                       .weight[kept * 16:(kept + 1) * 16])
    assert loaded.parameters() == parent.parameters() - 2 * (3 * 16 * 32 + 3 * 16 + 32 * 16)
    with pytest.raises(Exception, match="size mismatch|mismatched|shape"):  # why the format has its own name
        AutoModelForSequenceClassification.from_pretrained(loaded.folder)
    onnx = export_onnx("acme/clf-heads", "acme/clf-heads-onnx", report=False)  # fusions told of 1 head, parity held
    assert onnx.variant["parity"]["max_abs_logit_diff"] <= 1e-3 and "optimizer" in onnx.variant["graph_optimization"]
    texts = ["the striker scored a late goal", "shares fell in london"]
    batch = loaded.tokenizer(texts, padding=True, return_tensors="np")
    expected = loaded.logits(batch["input_ids"], batch["attention_mask"]).argmax(-1)
    from fastapi.testclient import TestClient

    with TestClient(app_for(ServeConfig(model="acme/clf-heads", threads=1), load_first=True)) as client:
        answers = client.post("/v1/classify", json={"inputs": texts}).json()
    labels = [loaded.config.id2label[int(i)] for i in expected]
    assert [a[0]["label"] for a in answers] == labels
    tuned = prune(classifier, "acme/clf-heads-ft", sparsity=0.5, structured="heads", finetune_steps=2,
                  finetune_learning_rate=1e-3, max_length=32, report=False)  # the engine trains the narrower model
    assert tuned.variant["finetune"]["steps"] == 2 and heads_of(fmhub.load("acme/clf-heads-ft").model) == 1
