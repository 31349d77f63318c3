"""TensorBoard event files: what the writer writes, TensorBoard's own reader reads back."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from fmhub.runs import TensorBoardWriter


def _scalars(logdir: Path) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(logdir))
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def test_scalars_are_readable_by_tensorboard(tmp_path: Path) -> None:
    logdir = tmp_path / "tb" / "run"
    with TensorBoardWriter(logdir) as tb:
        tb.scalars(1, {"loss": 0.9, "learning_rate": 1e-4})
        tb.scalars(2, {"loss": 0.5, "eval/accuracy": 0.75, "grad_norm": math.nan})  # NaN skipped, like Runs.log
        tb.scalars(3, {"loss": 0.25})
    assert list(logdir.glob("events.out.tfevents.*"))
    scalars = _scalars(logdir)
    assert set(scalars) == {"loss", "learning_rate", "eval/accuracy"}
    assert scalars["loss"] == [(1, pytest.approx(0.9)), (2, pytest.approx(0.5)), (3, pytest.approx(0.25))]
    assert scalars["eval/accuracy"] == [(2, pytest.approx(0.75))]


def test_close_is_idempotent_and_final(tmp_path: Path) -> None:
    tb = TensorBoardWriter(tmp_path)
    tb.scalars(0, {"loss": 1.0})
    tb.close()
    tb.close()
    with pytest.raises(ValueError, match="closed"):
        tb.scalars(1, {"loss": 0.5})
    assert _scalars(tmp_path)["loss"] == [(0, 1.0)]
