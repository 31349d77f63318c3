"""Dynamic batching: requests' inputs wait in an asyncio queue until a batch is full or the wait is over.

Each input is one :class:`Item` with a future. The batcher takes the first waiting item; when nothing else is
waiting (one request in flight) it runs it at once — a wait would only add latency, which the naive
one-request-at-a-time server does not pay. Otherwise it keeps taking items until it holds ``max_batch_size``
of them or ``max_wait_ms`` have passed since the first (under load the model is busy, so requests queue up
anyway and the next batch takes every waiting one),
drops the ones whose request gave up (timed out or disconnected), and runs the batch function in the
model's single worker thread — so the event loop keeps accepting requests while the model works, and
batches of different endpoints never run at once. Each item's future gets its result, or its own
error (one bad input fails only its request).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any

from fmhub.errors import OverloadedError
from fmhub.tasks import Item

__all__ = ["Batcher", "Item"]


class Batcher:
    """One queue and one batching task for an endpoint; ``process`` maps a list of items to their results."""

    def __init__(self, name: str, process: Callable[[list[Item]], list[Any]], executor: Executor, *,
                 max_batch_size: int, max_wait_ms: float, queue: QueueGauge,
                 on_batch: Callable[[str, int], None] | None = None) -> None:
        self.name = name
        self._process = process
        self._executor = executor
        self._max_batch = max_batch_size
        self._max_wait = max_wait_ms / 1000.0
        self._queue: asyncio.Queue[Item] = asyncio.Queue()
        self._shared = queue
        self._on_batch = on_batch
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"batcher-{self.name}")

    async def stop(self) -> None:
        """Finish what is queued, then end the batching task (a graceful shutdown drains before this)."""
        while not self._queue.empty():
            await asyncio.sleep(0.01)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def submit(self, texts: list[str], parameters: dict[str, Any]) -> list[asyncio.Future[Any]]:
        """Queue every text of one request (all or none: a full queue raises OverloadedError → 429)."""
        self._shared.reserve(len(texts))
        loop = asyncio.get_running_loop()
        futures = []
        for text in texts:
            future: asyncio.Future[Any] = loop.create_future()
            self._queue.put_nowait(Item(text, parameters, future))
            futures.append(future)
        return futures

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            await asyncio.sleep(0)  # requests already received get their turn to queue their inputs
            deadline = loop.time() + self._max_wait
            while len(batch) < self._max_batch and (len(batch) > 1 or not self._queue.empty()):
                if not self._queue.empty():
                    batch.append(self._queue.get_nowait())
                    continue
                left = deadline - loop.time()
                if left <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(self._queue.get(), left))
                except TimeoutError:
                    break
            self._shared.release(len(batch))
            live = [item for item in batch if not item.future.done()]  # cancelled: the request gave up
            if not live:
                continue
            if self._on_batch:
                self._on_batch(self.name, len(live))
            try:
                results = await loop.run_in_executor(self._executor, self._process, live)
            except Exception as exc:  # the batch function failed as a whole: every request in it learns why
                results = [exc] * len(live)
            for item, result in zip(live, results, strict=True):
                if item.future.done():
                    continue
                if isinstance(result, BaseException):
                    item.future.set_exception(result)
                else:
                    item.future.set_result(result)


class QueueGauge:
    """Inputs waiting across every endpoint's queue, against ``--max-queue``."""

    def __init__(self, limit: int, on_change: Callable[[int], None] | None = None) -> None:
        self.limit = limit
        self.depth = 0
        self._on_change = on_change

    def reserve(self, count: int) -> None:
        if self.depth + count > self.limit:
            raise OverloadedError(self.depth, self.limit)
        self._set(self.depth + count)

    def release(self, count: int) -> None:
        self._set(max(0, self.depth - count))

    def _set(self, depth: int) -> None:
        self.depth = depth
        if self._on_change:
            self._on_change(depth)
