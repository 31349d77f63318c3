"""A server in this process for a little while: uvicorn in a thread on an ephemeral loopback port.

For ``serve-check`` pipeline steps and tests, which need a real HTTP server but not a process of its own.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["running"]


@contextmanager
def running(app: Any, *, ready_path: str | None = "/readyz", timeout: float = 120.0) -> Iterator[str]:
    """Serve ``app`` on 127.0.0.1 (a free port) until the block ends; yield its base URL once it is up
    (and, with ``ready_path``, once that path answers 200)."""
    import httpx
    import uvicorn

    # IPPROTO_TCP, not socket()'s default 0: asyncio sets TCP_NODELAY only on sockets that say TCP, and
    # without it every response waits ~40 ms on Nagle's algorithm and the client's delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.02)
        while ready_path is not None and httpx.get(url + ready_path, timeout=10).status_code != 200:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{ready_path} did not answer 200: {httpx.get(url + ready_path).text[:500]}")
            time.sleep(0.05)
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
