"""fmhub train from the command line: YAML config, flags winning over it, runs listed, errors exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from fmhub.cli import main


def test_train_from_yaml_then_runs_show(tiny_model: str, tiny_data: str, tmp_path: Path, capsys) -> None:
    (tmp_path / "train.yaml").write_text(
        f"task: text-classification\nmodel: {tiny_model}\ndata: {tiny_data}\noutput: acme/yaml-bert\n"
        "learning-rate: 0.001\nbatch_size: 8\nmax_length: 32\nepochs: 5\nthreads: 1\nattention-dropout: model\n")
    assert main(["train", "-c", str(tmp_path / "train.yaml"), "--epochs", "1", "--eval-split", "none"]) == 0
    out = capsys.readouterr().out
    assert "trained 11 steps (1.00 epochs" in out and "committed" in out  # --epochs 1 beat the YAML's 5
    run_id = out.split("; run ")[1].split()[0]
    assert main(["runs", "list"]) == 0
    assert run_id in capsys.readouterr().out
    assert main(["runs", "show", run_id]) == 0
    shown = capsys.readouterr().out
    assert "acme/yaml-bert" in shown and "completed" in shown
    from transformers import AutoConfig

    from fmhub.client import Hub

    with Hub.open() as hub:
        assert AutoConfig.from_pretrained(hub.download("acme/yaml-bert")).attention_probs_dropout_prob == 0.1  # model's


@pytest.mark.parametrize(("argv", "needle"), [
    (["--task", "translation"], "unknown --task"),
    (["--lr", "-1"], "--learning-rate"),
    (["--freeze", "attention"], "only embeddings can be frozen by name"),
    (["--attention-dropout", "lots"], "--attention-dropout 'lots' is not a number"),
    (["--max-length", "4096"], "beyond the model's 64 positions"),
    (["--label-column", "topic"], "no column 'topic'"),
    (["--eval-split", "none", "--early-stopping-patience", "2"], "early stopping needs an evaluation split"),
    (["--precision", "fp64"], "--precision"),
])
def test_bad_options_exit_2_before_training(tiny_model: str, tiny_data: str, capsys, argv, needle) -> None:
    base = {"--task": "text-classification", "--model": tiny_model, "--data": tiny_data, "--output": "acme/never"}
    for flag, value in zip(argv[::2], argv[1::2]):
        base[flag] = value
    assert main(["train", *[x for pair in base.items() for x in pair]]) == 2
    assert needle in capsys.readouterr().err


def test_freeze_embeddings_and_layers_keep_their_weights(tiny_model: str, tiny_data: str, capsys) -> None:
    import torch
    from safetensors.torch import load_file

    from fmhub.client import Hub

    assert main(["train", "--task", "text-classification", "--model", tiny_model, "--data", tiny_data, "--output",
                 "acme/frozen", "--lr", "1e-3", "--batch-size", "8", "--max-length", "32", "--epochs", "1",
                 "--freeze", "embeddings", "--freeze-layers", "1"]) == 0
    with Hub.open() as hub:
        base = load_file(str(hub.download(tiny_model) / "model.safetensors"))
        tuned = load_file(str(hub.download("acme/frozen") / "model.safetensors"))
    for name, value in base.items():
        key = name if name in tuned else f"bert.{name}"
        same = torch.equal(value, tuned[key])
        assert same == (".embeddings." in f".{name}" or ".layer.0." in f".{name}"), name


def test_a_diverging_loss_stops_with_a_clear_error(tiny_model: str, tiny_data: str) -> None:
    from fmhub.runs import Runs
    from fmhub.store import open_store
    from fmhub.train import TrainConfig, TrainingDivergedError, train

    config = TrainConfig.from_flat(dict(task="text-classification", model=tiny_model, data=tiny_data, output="acme/boom",
                         learning_rate=1e30, max_grad_norm=0, batch_size=8, max_length=32, threads=1))
    with pytest.raises(TrainingDivergedError, match="loss became") as error:
        train(config)
    assert "--learning-rate" in error.value.hint
    with open_store() as store:
        (run,) = Runs(store.db).list()
    assert run.status == "failed" and "loss became" in run.summary["error"]


def test_ctrl_c_prints_the_resume_command_and_resume_says_where(tiny_model: str, tiny_data: str, capsys,
                                                                monkeypatch) -> None:
    import signal

    from fmhub.cli import _common

    update = _common.WorkProgress.update

    def ctrl_c_at_step_3(self, step: int, total: int, loss: float, rate: float) -> None:  # the user's Ctrl-C
        update(self, step, total, loss, rate)
        if step == 3 and not getattr(self, "_pressed", False):
            self._pressed = True
            signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(_common.WorkProgress, "update", ctrl_c_at_step_3)
    argv = ["train", "--task", "text-classification", "--model", tiny_model, "--data", tiny_data, "--output",
            "acme/ctrl-c", "--lr", "1e-3", "--batch-size", "8", "--max-length", "32", "--epochs", "1"]
    assert main(argv) == 130
    err = capsys.readouterr().err
    assert "Ctrl-C (3 steps done): finishing the current step, saving a checkpoint" in err
    assert "stopped at step 3" in err
    command = err.split("resume with: ")[1].splitlines()[0]
    assert command.startswith("fmhub train ") and command.endswith(" --resume") and "acme/ctrl-c" in command
    monkeypatch.setattr(_common.WorkProgress, "update", update)
    assert main([*argv, "--resume"]) == 0
    captured = capsys.readouterr()
    run_id = err.split("; run ")[1].split()[0]
    assert f"resuming run {run_id} from step 3" in captured.err
    assert f"run {run_id}" in captured.out  # the same run, completed
