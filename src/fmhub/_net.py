"""Network checks the servers (``fmhub server``, ``fmhub serve``) share before they start."""

from __future__ import annotations

import socket

from fmhub.errors import InvalidInputError

__all__ = ["check_port"]


def check_port(host: str, port: int) -> None:
    """Fail with the fix when nothing could listen at ``host:port`` (taken, or an address this machine lacks), as
    uvicorn would a moment later with a logged error and exit 1 — before a server announces itself or records a
    deployment, and as an input error (exit 2)."""
    if port == 0:
        return
    try:
        found = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, proto, _, address = found[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds: TIME_WAIT is no owner
            probe.bind(address)
    except OSError as error:
        raise InvalidInputError(f"cannot listen on {host}:{port}: {error.strerror or error}",
                                hint="pick a free --port, or stop what is listening there") from None
