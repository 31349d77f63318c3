"""--precision and --compile on a tiny BERT, and the run summary's fixed and per-step costs."""

from __future__ import annotations

import json
import re

import pytest
import torch

from fmhub.cards import parse_card
from fmhub.client import Hub
from fmhub.errors import InvalidInputError
from fmhub.runs import Runs
from fmhub.store import open_store
from fmhub.train import TrainConfig, train
from fmhub.train import _compute as compute
from fmhub.train._compute import Precision, resolve_precision


def config(tiny_model: str, tiny_data: str, output: str, **overrides) -> TrainConfig:
    options = dict(task="text-classification", model=tiny_model, data=tiny_data, output=output, epochs=3,
                   batch_size=8, learning_rate=3e-3, max_length=32, threads=1, seed=0)
    return TrainConfig.from_flat({**options, **overrides})


def losses(tiny_model: str, tiny_data: str, output: str, **overrides) -> tuple[list[float], object]:
    seen: list[float] = []
    outcome = train(config(tiny_model, tiny_data, output, **overrides),
                    on_metrics=lambda step, epoch, m: seen.append(m["loss"]) if "loss" in m else None)
    return seen, outcome


def test_bf16_autocast_trains_as_well_and_says_so(tiny_model: str, tiny_data: str) -> None:
    fp32, plain = losses(tiny_model, tiny_data, "acme/fp32", precision="fp32")
    bf16, mixed = losses(tiny_model, tiny_data, "acme/bf16", precision="bf16")
    assert mixed.prepared.precision == "bf16" and plain.prepared.precision == "fp32"
    # The same data and initial weights: the first losses agree to bfloat16's precision, but are not identical
    # (the forward pass really ran in bfloat16).
    assert bf16[:3] == pytest.approx(fp32[:3], rel=2e-2) and bf16[:3] != fp32[:3]
    assert mixed.result.metrics["eval_accuracy"] >= 0.9
    with Hub.open() as hub:
        folder = hub.download("acme/bf16", revision=mixed.commit)
    from safetensors.torch import load_file

    assert {t.dtype for t in load_file(str(folder / "model.safetensors")).values()} == {torch.float32}
    assert json.loads((folder / "training_args.json").read_text())["precision_used"] == "bf16"
    assert "| precision used | `bf16` |" in parse_card((folder / "README.md").read_text()).body
    with open_store() as store:
        record = Runs(store.db).get(mixed.run_id)
    assert record.config["precision"] == "bf16" and record.config["precision_used"] == "bf16"
    assert record.summary["precision"] == "bf16" and record.summary["compiled"] is False


def test_auto_picks_bf16_only_where_it_is_native(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compute, "native_bf16", lambda device: False)
    assert resolve_precision("auto", "cpu") == "fp32"
    assert resolve_precision("auto", "cuda") == "fp16"  # a GPU without bfloat16 (pre-Ampere): fp16 + scaler
    monkeypatch.setattr(compute, "native_bf16", lambda device: True)
    assert resolve_precision("auto", "cpu") == "bf16" and resolve_precision("auto", "cuda") == "bf16"
    assert resolve_precision("fp32", "cpu") == "fp32" and resolve_precision("fp16", "cpu") == "fp16"


def test_auto_run_records_the_precision_it_used(tiny_model: str, tiny_data: str) -> None:
    outcome = train(config(tiny_model, tiny_data, "acme/auto", precision="auto", max_steps=2, eval_split="none"))
    expected = "bf16" if compute.native_bf16("cpu") else "fp32"
    assert outcome.prepared.precision == expected
    with open_store() as store:
        record = Runs(store.db).get(outcome.run_id)
    assert record.config["precision"] == "auto" and record.summary["precision"] == expected


def test_fp16_scales_the_loss_and_skips_a_step_whose_gradients_overflow() -> None:
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    precision = Precision("fp16", "cpu")
    before = [p.detach().clone() for p in model.parameters()]
    with precision.autocast():
        out = model(torch.randn(3, 4))
    assert out.dtype == torch.float16
    precision.backward(out.float().sum() * 1e30)  # overflows once scaled
    assert precision.step(optimizer, list(model.parameters()), 1.0) is False  # skipped: weights untouched, scale lowered
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    optimizer.zero_grad(set_to_none=True)
    with precision.autocast():
        loss = model(torch.randn(3, 4)).float().mean() * 0.01  # small: its float16 gradients need the scale
    precision.backward(loss)
    assert precision.step(optimizer, list(model.parameters()), 1e6) is True
    assert all(p.grad.abs().max() < 10 for p in model.parameters())  # unscaled before clipping: true-size gradients
    assert not all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_fp16_run_trains(tiny_model: str, tiny_data: str) -> None:
    seen, outcome = losses(tiny_model, tiny_data, "acme/fp16", precision="fp16", epochs=2)
    assert all(map(lambda v: v == v, seen)) and seen[-1] < seen[0]
    assert outcome.result.metrics["eval_accuracy"] >= 0.9


def test_unknown_precision_names_the_choices(tiny_model: str, tiny_data: str) -> None:
    with pytest.raises(InvalidInputError, match="precision"):
        config(tiny_model, tiny_data, "acme/x", precision="fp64")


def test_run_summary_separates_fixed_and_per_step_costs(tiny_model: str, tiny_data: str) -> None:
    outcome = train(config(tiny_model, tiny_data, "acme/costs", epochs=1, save_steps=5))
    timings = outcome.result.timings
    with open_store() as store:
        summary = Runs(store.db).get(outcome.run_id).summary
    for key in ("prepare_seconds", "setup_seconds", "train_seconds", "seconds_per_step", "first_step_extra_seconds",
                "evaluate_seconds", "checkpoint_seconds", "publish_seconds", "fixed_seconds", "total_seconds"):
        assert summary[key] == pytest.approx(timings[key], abs=1e-3), key
    steps = outcome.result.steps
    assert timings["evaluate_seconds"] > 0 and timings["checkpoint_seconds"] > 0  # one evaluation, 2+1 checkpoints
    # The whole run is its fixed part plus its steps at the per-step cost (the first one's warm-up is fixed).
    steady = timings["seconds_per_step"] * steps
    assert timings["fixed_seconds"] + steady == pytest.approx(timings["total_seconds"], rel=1e-6)
    assert timings["fixed_seconds"] >= timings["prepare_seconds"] + timings["publish_seconds"] + \
        timings["evaluate_seconds"]


def test_compile_trains_to_the_same_losses(tiny_model: str, tiny_data: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # Inductor's code generation takes minutes on 2 shared cores, so this test compiles with Dynamo's "eager"
    # backend: the same graph capture (and the same wrapper around the model), without generating C++.
    # bench/train_bench.py --compile measures the real inductor compile.
    real, calls = torch.compile, []

    def eager_backend(module, **options):
        calls.append(options)
        return real(module, **{**options, "backend": "eager"})

    monkeypatch.setattr(torch, "compile", eager_backend)
    eager, _ = losses(tiny_model, tiny_data, "acme/eager", max_steps=3, eval_split="none")
    assert calls == []
    compiled, outcome = losses(tiny_model, tiny_data, "acme/compiled", max_steps=3, eval_split="none", compile=True)
    assert calls == [{"dynamic": True}]
    assert compiled == pytest.approx(eager, rel=1e-4)
    with open_store() as store:
        assert Runs(store.db).get(outcome.run_id).summary["compiled"] is True
    with Hub.open() as hub:  # the published weights are the plain model's, not a compiled wrapper's
        folder = hub.download("acme/compiled", revision=outcome.commit)
    from safetensors.torch import load_file

    assert not any(name.startswith("_orig_mod") for name in load_file(str(folder / "model.safetensors")))


def test_command_line_precision_and_the_cost_line(tiny_model: str, tiny_data: str, capsys) -> None:
    from fmhub.cli import main

    assert main(["train", "--task", "text-classification", "--model", tiny_model, "--data", tiny_data, "--output",
                 "acme/cli-bf16", "--max-steps", "3", "--batch-size", "8", "--max-length", "32", "--threads", "1",
                 "--eval-split", "none", "--precision", "bf16"]) == 0
    out = capsys.readouterr().out
    assert "s fixed (loading " in out and "s per step; precision bf16" in out
    # a BERT classifier under bf16 on the CPU: the attention form timed faster here, in the line and the summary
    chosen = re.search(r"precision bf16, attention (sdpa|eager)", out)
    assert chosen, out
    run = json.loads(out.strip().splitlines()[-1])["run"]
    with open_store() as store:
        assert Runs(store.db).get(run).summary["attention"] == chosen.group(1)


def test_distillation_runs_teacher_and_student_in_the_precision(classifier: str, tiny_data: str) -> None:
    from fmhub.optimize import distill

    outcome = distill(classifier, "acme/student-bf16", student_layers=1, alpha=1.0, max_steps=3, learning_rate=3e-3,
                      batch_size=8, max_length=32, eval_split=None, threads=1, report=False, precision="bf16")
    with open_store() as store:
        record = Runs(store.db).get(outcome.variant["run_id"])
    assert record.config["precision"] == "bf16" and record.summary["precision"] == "bf16"
    assert record.config["teacher"].startswith(classifier)


def test_fp16_checkpoint_keeps_the_loss_scale(tmp_path) -> None:
    from fmhub.train._checkpoint import load_checkpoint, save_checkpoint

    torch.manual_seed(0)
    model = torch.nn.Linear(4, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    precision = Precision("fp16", "cpu")
    with precision.autocast():
        out = model(torch.randn(3, 4))
    precision.backward(out.float().sum() * 1e30)  # overflows: the scale is halved
    assert precision.step(optimizer, list(model.parameters())) is False
    lowered = precision.scaler.get_scale()
    assert lowered < Precision("fp16", "cpu").scaler.get_scale()
    path = save_checkpoint(tmp_path, 1, model, optimizer, {}, scaler=precision.scaler)
    assert json.loads((path / "scaler.json").read_text())["scale"] == lowered
    fresh = Precision("fp16", "cpu")
    load_checkpoint(path, model, optimizer, fresh.scaler)
    assert fresh.scaler.get_scale() == lowered
    assert fresh.scaler.state_dict() == precision.scaler.state_dict()  # the growth tracker too
    plain = save_checkpoint(tmp_path, 2, model, optimizer, {})  # fp32/bf16: no scaler, no file
    assert not (plain / "scaler.json").exists()


def test_resumed_fp16_run_continues_with_the_saved_loss_scale(tiny_model: str, tiny_data: str) -> None:
    from fmhub.train._checkpoint import latest_checkpoint
    from fmhub.train._loop import Trainer, checkpoint_dir, prepare

    cfg = config(tiny_model, tiny_data, "acme/fp16-resume", precision="fp16", save_steps=2, eval_split="none")
    assert train(cfg, stop_after=3) is None  # "killed" after step 3: the checkpoint of step 2 is kept
    found = latest_checkpoint(checkpoint_dir(cfg))
    saved = json.loads((found / "scaler.json").read_text())
    (found / "scaler.json").write_text(json.dumps({**saved, "scale": 1024.0}))  # a scale a fresh scaler never has
    with Hub.open() as hub:
        resumed = Trainer(prepare(cfg, hub), resume=True)
    assert resumed.state.step == 2 and resumed.precision.scaler.get_scale() == 1024.0
    assert Precision("fp16", "cpu").scaler.get_scale() != 1024.0


@pytest.mark.parametrize("max_norm", [0.5, 1e6])  # clipping, and a norm within the bound (factor 1)
def test_clipping_inside_the_fused_optimizer_matches_clip_grad_norm(max_norm: float) -> None:
    def model_and_optimizer(fused: bool):
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(16, 16), torch.nn.Linear(16, 3))
        return model, torch.optim.AdamW(model.parameters(), lr=1e-2, fused=fused)

    x = torch.randn(8, 16)
    folded, fused = model_and_optimizer(True)
    plain, loop = model_and_optimizer(False)
    for _ in range(3):
        for model in (folded, plain):
            (model(x).pow(2).sum() * 10).backward()  # gradient norm in the hundreds
        Precision("fp32", "cpu").step(fused, list(folded.parameters()), max_norm)
        torch.nn.utils.clip_grad_norm_(plain.parameters(), max_norm)
        loop.step()
        assert fused.grad_scale is None  # not left behind for a later step
        fused.zero_grad(), loop.zero_grad()
    for a, b in zip(folded.parameters(), plain.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert not torch.equal(folded[0].weight, model_and_optimizer(True)[0][0].weight)  # it did train
