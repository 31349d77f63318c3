"""Metric values buffered on the training side and sent in batches, so logging costs no request per step."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from fmhub.errors import FmhubError, StorageUnavailableError
from fmhub.runs._runs import StepMetrics

__all__ = ["MetricsBuffer"]

#: Steps kept while the hub cannot be reached; past this, logging fails instead of growing without bound.
MAX_PENDING_STEPS = 100_000


class MetricsBuffer:
    """Collect a run's metric values and hand them to ``send`` in batches.

    A batch goes when ``max_steps`` steps are waiting, when ``max_seconds`` passed since the last one went,
    and at :meth:`flush` / :meth:`close` (a run's end). While the hub is unreachable
    (:class:`StorageUnavailableError`), values are kept and sent with the next batch, so a network blip
    does not stop a training run; any other error (an unknown run, a refused token) is raised at once.
    :meth:`close` raises if the last batch cannot be sent.

    Args:
        send: stores one batch, e.g. ``lambda batch: hub.log_run_metrics(run_id, batch)``.
        max_steps / max_seconds: when a batch goes (``max_steps=1``: every :meth:`log` sends at once).
        clock: seconds, monotonic (tests pass their own).

    Example:
        >>> with hub.run_metrics_logger(run.id) as metrics:
        ...     for step in range(1, 1001):
        ...         metrics.log(step, {"loss": loss}, epoch=step / 500)
    """

    def __init__(self, send: Callable[[list[StepMetrics]], Any], *, max_steps: int = 50, max_seconds: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if max_steps < 1 or max_seconds < 0:
            raise ValueError("max_steps must be ≥ 1 and max_seconds ≥ 0")
        self._send = send
        self.max_steps = max_steps
        self.max_seconds = max_seconds
        self._clock = clock
        self._pending: list[StepMetrics] = []
        self._last_sent = clock()
        self.batches_sent = 0

    @property
    def pending(self) -> Sequence[StepMetrics]:
        """Values logged and not sent yet."""
        return tuple(self._pending)

    def log(self, step: int, metrics: dict[str, float], epoch: float | None = None) -> None:
        """Buffer the values at ``step``; send the batch if it is due."""
        self._pending.append(StepMetrics(step, dict(metrics), epoch))
        if len(self._pending) >= self.max_steps or self._clock() - self._last_sent >= self.max_seconds:
            self._flush(final=False)

    def flush(self) -> None:
        """Send what is waiting now (raises if it cannot be sent)."""
        self._flush(final=True)

    def _flush(self, *, final: bool) -> None:
        if not self._pending:
            return
        batch = list(self._pending)
        try:
            self._send(batch)
        except StorageUnavailableError:
            self._last_sent = self._clock()  # try again after another interval, not at every step
            if final or len(self._pending) >= MAX_PENDING_STEPS:
                raise
            return
        except FmhubError:
            self._pending.clear()  # refused for good: resending the same values would be refused again
            raise
        del self._pending[:len(batch)]
        self._last_sent = self._clock()
        self.batches_sent += 1

    def close(self) -> None:
        """Send the last batch."""
        self.flush()

    def __enter__(self) -> MetricsBuffer:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        if exc_type is None:
            self.close()
            return
        try:  # the block failed: keep what can be kept, and let its error be the one raised
            self.close()
        except FmhubError:
            pass
