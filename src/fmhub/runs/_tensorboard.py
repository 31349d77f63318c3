"""Scalars as TensorBoard event files, so ``tensorboard --logdir`` shows a run's curves."""

from __future__ import annotations

import math
import os
from pathlib import Path

from fmhub.errors import ConfigError

__all__ = ["TensorBoardWriter"]


class TensorBoardWriter:
    """Write scalar metrics to event files under ``logdir`` (torch's ``SummaryWriter``, kept simple).

    Non-finite values (NaN, ±inf) are skipped, as :meth:`fmhub.runs.Runs.log` skips them, so the curves and
    the run record agree.

    Example:
        >>> with TensorBoardWriter("out/tensorboard") as tb:
        ...     tb.scalars(100, {"loss": 0.41, "learning_rate": 4.9e-5})

    Raises:
        ConfigError: the ``tensorboard`` package is not installed.
    """

    def __init__(self, logdir: str | os.PathLike[str], *, purge_step: int | None = None) -> None:
        """``purge_step``: continue a run's curves from this step (a resumed run): TensorBoard hides the
        values earlier event files hold at this step and later, so each curve stays one line."""
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as exc:  # torch present without tensorboard (a partial install)
            raise ConfigError(f"cannot write TensorBoard files: {exc}",
                              hint="install fmhub's dependencies again: pip install -e .") from None
        self.logdir = Path(logdir)
        self.logdir.mkdir(parents=True, exist_ok=True)
        self._writer = SummaryWriter(log_dir=str(self.logdir), purge_step=purge_step)

    def scalars(self, step: int, metrics: dict[str, float]) -> None:
        """Add one value per metric at ``step`` (each metric is its own curve, named by its key)."""
        if self._writer is None:
            raise ValueError("the TensorBoard writer is closed")
        for key, value in metrics.items():
            number = float(value)
            if math.isfinite(number):
                self._writer.add_scalar(key, number, global_step=step)

    def flush(self) -> None:
        if self._writer is not None:
            self._writer.flush()

    def close(self) -> None:
        """Flush and close the event file (idempotent)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def __enter__(self) -> TensorBoardWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
