"""Distillation: the student learns the teacher's distribution (KL falls), its card names the teacher,
the run is tracked and resumes to the same weights; pruning's recovery fine-tune keeps the zeros."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

import fmhub
from fmhub.cards import parse_card
from fmhub.client import Hub
from fmhub.data import load
from fmhub.errors import InvalidInputError
from fmhub.optimize import distill, prune
from fmhub.optimize._prune import sparsity_of
from fmhub.runs import Runs
from fmhub.train import TrainConfig, train
from fmhub.train._distill import keep_layers, layer_indices


def _kl(teacher: fmhub.LoadedModel, student_logits, batch) -> float:
    """Mean KL(teacher ‖ student) over the rows, at temperature 1."""
    p = torch.log_softmax(torch.from_numpy(teacher.logits(batch["input_ids"], batch["attention_mask"])), -1)
    q = torch.log_softmax(torch.from_numpy(student_logits), -1)
    return float(torch.nn.functional.kl_div(q, p, log_target=True, reduction="batchmean"))


def _rows(loaded: fmhub.LoadedModel, data: str) -> dict[str, np.ndarray]:
    texts = list(load(data, split="train")["text"]) + list(load(data, split="test")["text"])
    encoded = loaded.tokenizer(texts, padding=True, truncation=True, max_length=32, return_tensors="np")
    return {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"]}


def test_layer_indices_are_evenly_spaced() -> None:
    assert layer_indices(6, 3) == [0, 2, 4]  # every other layer, as DistilBERT
    assert layer_indices(12, 4) == [0, 3, 6, 9]
    assert layer_indices(6, 4) == [0, 1, 3, 4]
    assert all(len(set(layer_indices(n, k))) == k for n in range(2, 25) for k in range(1, n))


def test_distillation_lowers_kl_to_the_teacher(classifier: str, tiny_data: str) -> None:
    teacher = fmhub.load(classifier)
    batch = _rows(teacher, tiny_data)
    start = copy.deepcopy(teacher.model)
    assert keep_layers(start, 1) == [0]
    with torch.inference_mode():
        before = _kl(teacher, start(**{k: torch.from_numpy(v) for k, v in batch.items()}).logits.numpy(), batch)

    outcome = distill(classifier, "acme/clf-student", student_layers=1, temperature=2.0, alpha=1.0, epochs=3,
                      learning_rate=3e-3, batch_size=8, max_length=32, eval_split=None, threads=1, report=False)
    student = fmhub.load("acme/clf-student")
    after = _kl(teacher, student.logits(batch["input_ids"], batch["attention_mask"]), batch)
    assert after < before / 2, (before, after)
    assert student.config.num_hidden_layers == 1 and student.parameters() < teacher.parameters()

    with Hub.open() as hub:
        card = parse_card((hub.download("acme/clf-student", revision=outcome.commit) / "README.md").read_text())
        run = Runs(hub.store.db).get(outcome.variant["run_id"])
    variant, lineage = card.metadata["fmhub"]["variant"], card.metadata["fmhub"]["lineage"]
    assert variant["method"] == "distill" and variant["layers_from"] == [0] and variant["alpha"] == 1.0
    assert variant["teacher"] == f"{teacher.repo}@{teacher.commit}"
    assert (lineage["parent"], lineage["parent_commit"]) == (teacher.repo, teacher.commit)
    assert card.metadata["base_model"] == classifier and "distill" in card.metadata["tags"]
    assert run.status == "completed" and run.output_commit == outcome.commit


def test_a_killed_distillation_resumes_to_the_same_weights(classifier: str, tiny_data: str) -> None:
    from safetensors.torch import load_file

    def config(output: str) -> TrainConfig:
        return TrainConfig.from_flat(dict(task="text-classification", model=classifier, teacher=classifier, student_layers=1,
                           hidden_loss=0.5, data=tiny_data, output=output, epochs=2, batch_size=8,
                           learning_rate=3e-3, max_length=32, threads=1, save_steps=4, eval_split=None))

    whole = train(config("acme/whole"))
    assert train(config("acme/resumed"), stop_after=6) is None
    resumed = train(config("acme/resumed"), resume=True)
    assert whole is not None and resumed is not None and resumed.result.steps == whole.result.steps
    with Hub.open() as hub:
        a = load_file(str(hub.download("acme/whole") / "model.safetensors"))
        b = load_file(str(hub.download("acme/resumed") / "model.safetensors"))
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-5, atol=1e-6)


def test_token_classification_student_with_hidden_state_loss(tiny_model: str, tiny_ner: str, capsys) -> None:
    from fmhub.cli import main

    assert train(TrainConfig.from_flat(dict(task="token-classification", model=tiny_model, data=tiny_ner, output="acme/ner-bert",
                             epochs=3, batch_size=8, learning_rate=3e-3, max_length=32, threads=1,
                             eval_split=None))) is not None
    assert main(["optimize", "distill", "--teacher", "acme/ner-bert", "--output", "acme/ner-student",
                 "--student-layers", "1", "--hidden-loss", "1.0", "--epochs", "1", "--learning-rate", "3e-3",
                 "--batch-size", "8", "--max-length", "32", "--eval-split", "none", "--eval-test-split",
                 "validation", "--eval-skip", "robustness,baseline,slices,efficiency"]) == 0
    out = capsys.readouterr().out
    assert "variant vs parent acme/ner-bert" in out and "distilled from" in out
    student = fmhub.load("acme/ner-student")
    assert student.task.name == "token-classification" and student.config.num_hidden_layers == 1
    with Hub.open() as hub:
        [card] = hub.list_evaluations(model="acme/ner-student")
    assert "f1" in card.metrics


def test_bad_teachers_and_options(classifier: str, tiny_model: str, tiny_data: str, capsys) -> None:
    from fmhub.cli import main

    cases = (
        (["--teacher", tiny_model, "--data", tiny_data], "has no task head"),  # no classification head
        (["--teacher", classifier, "--student-layers", "2"], "--student-layers 2: the model has 2 layers"),
        (["--teacher", classifier, "--alpha", "1.5"], "--alpha 1.5 must be in [0, 1]"),
        (["--teacher", classifier, "--temperature", "0"], "--temperature 0.0 must be a positive number"),
        (["--teacher", classifier, "--data", "acme/none"], "acme/none"),
        (["--teacher", classifier, "--output", "not a repo"], "repo id"),
    )
    for argv, needle in cases:
        output = [] if "--output" in argv else ["--output", "acme/x"]
        layers = [] if "--student-layers" in argv else ["--student-layers", "1"]
        assert main(["optimize", "distill", *argv, *output, *layers, "--max-length", "32", "--no-eval"]) == 2
        assert needle in capsys.readouterr().err, needle
    with Hub.open() as hub:
        assert "acme/x" not in [r.repo_id for r in hub.list_repos()]
    with pytest.raises(InvalidInputError, match="--hidden-loss needs a --teacher"):
        TrainConfig.from_flat(dict(task="text-classification", model=classifier, data=tiny_data, output="acme/x",
                    hidden_loss=1.0)).validate()
    with pytest.raises(InvalidInputError, match="distills single-label classifiers"):
        TrainConfig.from_flat(dict(task="masked-lm", model=classifier, teacher=classifier, data=tiny_data, output="acme/x")).validate()


def test_an_onnx_or_int8_variant_is_refused_as_teacher_or_base_model(classifier: str, tiny_data: str,
                                                                      capsys) -> None:
    from fmhub.cli import main
    from fmhub.optimize import export_onnx, quantize

    export_onnx(classifier, "acme/clf-onnx", report=False)
    quantize(classifier, "acme/clf-qt", backend="torch", report=False)
    with pytest.raises(InvalidInputError, match="a teacher must be torch weights"):
        distill("acme/clf-onnx", "acme/x", student_layers=1, report=False)
    for variant, form in (("acme/clf-onnx", "an ONNX"), ("acme/clf-qt", "a PyTorch int8")):
        for flags in (["--model", variant], ["--model", classifier, "--teacher", variant]):
            argv = ["train", "--task", "text-classification", *flags, "--data", tiny_data, "--output", "acme/x",
                    "--max-steps", "1", "--max-length", "32"]
            assert main(argv) == 2  # a clear message before training, not a transformers traceback
            err = capsys.readouterr().err
            assert f"is {form} variant; training needs a model with torch weights" in err, err
            assert f"use the model it was made from ({classifier.split('@')[0]})" in err
    with Hub.open() as hub:
        assert "acme/x" not in [r.repo_id for r in hub.list_repos()]


def test_pruning_with_a_recovery_fine_tune_keeps_the_sparsity(classifier: str) -> None:
    plain = prune(classifier, "acme/clf-sparse", sparsity=0.5, report=False)
    tuned = prune(classifier, "acme/clf-sparse-ft", sparsity=0.5, finetune_steps=4, finetune_learning_rate=1e-3,
                  max_length=32, report=False)
    a, b = fmhub.load(f"acme/clf-sparse@{plain.commit}").model, fmhub.load("acme/clf-sparse-ft").model
    assert sparsity_of(b) == pytest.approx(0.5, abs=1e-9) == tuned.variant["sparsity"]
    wa, wb = a.bert.encoder.layer[0].intermediate.dense.weight, b.bert.encoder.layer[0].intermediate.dense.weight
    assert torch.equal(wa == 0, wb == 0)  # the same weights are zero
    assert not torch.equal(wa, wb)  # and the others were trained
    finetune = tuned.variant["finetune"]
    assert finetune["steps"] == 4
    with Hub.open() as hub:
        run = Runs(hub.store.db).get(finetune["run_id"])
    assert run.status == "completed" and run.config["keep_zeros"] is True
