"""``fmhub runs list|show|compare`` end to end, as a user types them (in-process, on the embedded store;
tests/server/test_runs_api.py runs them against a hub server)."""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console

from fmhub.cli import main
from fmhub.cli._common import console
from fmhub.runs import RunInfo, Runs
from fmhub.store import open_store


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(autouse=True)
def _wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tables at a terminal's width, not captured output's 80 columns (cells would be cut with …)."""
    monkeypatch.setattr(console, "width", 220)


@pytest.fixture
def recorded() -> tuple[RunInfo, RunInfo]:
    """Two runs on the embedded store: a finished one with epochs and a running one with another lr."""
    with open_store() as store:
        runs = Runs(store.db)
        first = runs.start(task="text-classification", config={"lr": 5e-5, "epochs": 2, "optim": {"wd": 0.01}},
                           command="fmhub train acme/minilm acme/bbc", base_model="acme/minilm",
                           base_commit="a" * 40, dataset="acme/bbc", dataset_commit="b" * 40,
                           output="acme/minilm-bbc", name="baseline", created_by="alice")
        for step in (1, 2, 3, 4):
            runs.log(first.id, step * 10, {"loss": 1 / step}, epoch=step / 2)
        runs.log(first.id, 40, {"eval_loss": 0.31, "eval_f1": 0.88}, epoch=2.0)
        first = runs.finish(first.id, "completed", summary={"eval_loss": 0.31, "eval_f1": 0.88},
                            output_commit="c" * 40)
        second = runs.start(task="text-classification", config={"lr": 1e-4, "epochs": 2, "optim": {"wd": 0.01}},
                            command="fmhub train acme/minilm acme/bbc --lr 1e-4", base_model="acme/minilm",
                            base_commit="a" * 40, dataset="acme/bbc", dataset_commit="b" * 40,
                            output="acme/minilm-bbc-2", name="higher-lr")
        runs.log(second.id, 10, {"eval_loss": 0.35, "eval_f1": 0.91}, epoch=1.0)
    return first, second


def test_list_shows_runs_newest_first(capsys, recorded: tuple[RunInfo, RunInfo]) -> None:
    first, second = recorded
    code, out, _ = run(capsys, "runs", "list")
    assert code == 0
    assert out.index(second.id) < out.index(first.id)
    for text in ("baseline", "higher-lr", "completed", "running", "acme/minilm", "acme/bbc", "eval_f1=0.88",
                 "eval_f1=0.91"):
        assert text in out, text
    code, out, _ = run(capsys, "runs", "list", "--status", "completed")
    assert code == 0 and first.id in out and second.id not in out
    code, out, _ = run(capsys, "runs", "list", "--task", "token-classification")
    assert code == 0 and "r-" not in out


def test_show_prints_fields_latest_metrics_and_epochs(capsys, recorded: tuple[RunInfo, RunInfo]) -> None:
    first, _ = recorded
    code, out, _ = run(capsys, "runs", "show", first.id[:7])
    assert code == 0
    for text in (first.id, "baseline", "completed", "fmhub train acme/minilm acme/bbc", "acme/minilm@aaaaaaaaaaaa",
                 "acme/bbc@bbbbbbbbbbbb", "acme/minilm-bbc@cccccccccccc", "alice", "optim.wd", "torch",
                 "latest metrics", "per epoch"):
        assert text in out, text
    epoch_rows = [line for line in out.splitlines() if re.match(r"^│ [12] ", line)]
    assert len(epoch_rows) == 2 and "0.5" in epoch_rows[0] and "0.88" in epoch_rows[1]


def test_compare_shows_differing_config_and_best_metric(capsys, recorded: tuple[RunInfo, RunInfo]) -> None:
    first, second = recorded
    code, out, _ = run(capsys, "runs", "compare", first.id, second.id[:8])
    assert code == 0 and first.id in out and second.id in out
    rows = {line.split("│")[1].strip(): line for line in out.splitlines() if line.count("│") == 4}
    assert "lr" in rows and "epochs" not in rows and "optim.wd" not in rows  # only what differs
    assert "5e-05" in rows["lr"] and "0.0001" in rows["lr"]
    assert "0.88" in rows["eval_f1"] and "0.91" in rows["eval_f1"]


def test_compare_highlights_the_best_value(monkeypatch: pytest.MonkeyPatch,
                                           recorded: tuple[RunInfo, RunInfo]) -> None:
    from fmhub.cli import _runs_commands

    terminal = Console(file=io.StringIO(), force_terminal=True, color_system="standard", width=220)
    monkeypatch.setattr(_runs_commands, "console", terminal)
    assert main(["runs", "compare", recorded[0].id, recorded[1].id]) == 0
    out = terminal.file.getvalue()
    bold_green = "\x1b[1;32m"
    assert bold_green + "0.91" in out and bold_green + "0.88" not in out  # higher F1 is better
    assert bold_green + "0.31" in out and bold_green + "0.35" not in out  # lower loss is better


def test_unknown_or_ambiguous_input_exits_2_with_a_hint(capsys, recorded: tuple[RunInfo, RunInfo]) -> None:
    code, _, err = run(capsys, "runs", "show", "r-ffffffffffff")
    assert code == 2 and "not found" in err and "fmhub runs list" in err
    code, _, err = run(capsys, "runs", "compare", recorded[0].id)
    assert code == 2 and "at least two runs" in err
    code, _, err = run(capsys, "runs", "list", "--endpoint", "http://127.0.0.1:9")  # nothing listens there
    assert code == 2 and "cannot reach the hub at http://127.0.0.1:9" in err and "--endpoint" in err
    code, _, err = run(capsys, "runs", "list", "--status", "done")
    assert code == 2 and "invalid run status" in err


def test_list_with_no_runs(capsys) -> None:
    code, out, err = run(capsys, "runs", "list")
    assert code == 0 and out == "" and "no runs" in err
