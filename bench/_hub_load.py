"""The load generator of ``hub_bench.py``: many keep-alive downloaders in one process, counted in a window.

``raw`` speaks HTTP/1.1 on asyncio streams (tens of thousands of small requests/s per core, so the
servers, not the client, are measured); ``httpx`` uses httpx.AsyncClient (a few hundred per core).
"""

from __future__ import annotations

import asyncio
import resource
import statistics
import time
from array import array

__all__ = ["LOAD_CLIENTS", "child_load"]


class _Downloads:
    """Counts of one load process: requests that completed inside the window, and what went wrong."""

    def __init__(self, warmup: float, duration: float) -> None:
        self.begin = time.perf_counter()
        self.window_start = self.begin + warmup
        self.window_end = self.window_start + duration
        self.ok = 0
        self.bytes = 0
        self.errors: dict[str, int] = {}
        self.latencies = array("d")

    def record(self, sent: float, problem: str | None, received: int) -> None:
        done = time.perf_counter()
        if problem is not None:  # an error counts wherever it happens, warm-up included
            self.errors[problem] = self.errors.get(problem, 0) + 1
        elif self.window_start <= done <= self.window_end:
            self.ok += 1
            self.bytes += received
            self.latencies.append(done - sent)

    def summary(self) -> dict:
        lat = self.latencies
        quantiles = statistics.quantiles(lat, n=100) if len(lat) >= 2 else [0.0] * 99
        return {"ok": self.ok, "bytes": self.bytes, "errors": self.errors,
                "latency_ms": {"p50": quantiles[49] * 1000, "p90": quantiles[89] * 1000,
                               "p99": quantiles[98] * 1000, "max": max(lat, default=0.0) * 1000}}


async def _load_raw(url: str, concurrency: int, stats: _Downloads, expected: int) -> None:
    """Keep-alive HTTP/1.1 GETs on plain asyncio streams: ~40k small requests/s on one core, 50-100× httpx."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host, port = parts.hostname, parts.port or 80
    request = (f"GET {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nUser-Agent: fmhub-hub-bench\r\n"
               "Accept: */*\r\n\r\n").encode()

    async def one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> tuple[str | None, int, bool]:
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = lines[0].split(b" ", 2)[1]
        length, keep = None, True
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection" and value.strip().lower() == b"close":
                keep = False
        if length is None:
            raise ValueError("no Content-Length")
        received = 0
        while received < length:
            chunk = await reader.read(min(1 << 20, length - received))
            if not chunk:
                raise asyncio.IncompleteReadError(b"", length - received)
            received += len(chunk)
        if status != b"200":
            return f"HTTP {status.decode()}", received, keep
        return (None if received == expected else "wrong size"), received, keep

    async def downloader() -> None:
        reader = writer = None
        while (sent := time.perf_counter()) < stats.window_end:
            problem, received, keep = None, 0, False
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection(host, port, limit=1 << 20)
                problem, received, keep = await asyncio.wait_for(one(reader, writer), timeout=60)
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, asyncio.TimeoutError,
                    ValueError, IndexError) as exc:
                problem = type(exc).__name__
            stats.record(sent, problem, received)
            if not keep and writer is not None:
                writer.close()
                reader = writer = None
            if problem is not None and received == 0:
                await asyncio.sleep(0.01)  # a refused connection must not spin the loop
        if writer is not None:
            writer.close()

    await asyncio.gather(*(downloader() for _ in range(concurrency)))


async def _load_httpx(url: str, concurrency: int, stats: _Downloads, expected: int) -> None:
    """The same with httpx.AsyncClient: realistic client code, but a few hundred requests/s per core at most."""
    import httpx

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(60.0)) as client:

        async def downloader() -> None:
            while (sent := time.perf_counter()) < stats.window_end:
                problem, received = None, 0
                try:
                    async with client.stream("GET", url) as response:
                        async for chunk in response.aiter_raw():
                            received += len(chunk)
                    if response.status_code != 200:
                        problem = f"HTTP {response.status_code}"
                    elif received != expected:
                        problem = "wrong size"
                except httpx.HTTPError as exc:
                    problem = type(exc).__name__
                stats.record(sent, problem, received)
                if problem is not None and received == 0:
                    await asyncio.sleep(0.01)

        await asyncio.gather(*(downloader() for _ in range(concurrency)))


LOAD_CLIENTS = {"raw": _load_raw, "httpx": _load_httpx}


def child_load(args: dict) -> dict:
    usage_before = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    stats = _Downloads(args["warmup"], args["duration"])
    asyncio.run(LOAD_CLIENTS[args["client"]](args["url"], args["concurrency"], stats, args["expected"]))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result = stats.summary()
    result["wall_s"] = time.perf_counter() - start
    result["cpu_s"] = (usage.ru_utime - usage_before.ru_utime) + (usage.ru_stime - usage_before.ru_stime)
    return result
