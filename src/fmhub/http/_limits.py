"""Request body limits, enforced before the body is buffered (413 with the usual JSON error body)."""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["BodyLimitMiddleware", "MAX_JSON_BYTES"]

#: JSON request bodies (repo create, preupload, LFS batch...): generous for 10,000 file entries.
MAX_JSON_BYTES = 16 * 1024 * 1024


class _TooLarge(Exception):
    pass


class BodyLimitMiddleware:
    """Refuse request bodies over ``limit`` bytes, except on routes that stream bodies with their own limits.

    A declared ``Content-Length`` over the limit is refused before any byte is read; an undeclared
    (chunked) body is counted as it arrives and refused once it passes the limit.
    """

    def __init__(self, app: ASGIApp, *, limit: int = MAX_JSON_BYTES, streaming_markers: tuple[str, ...] = (),
                 server: str = "hub") -> None:
        self.app = app
        self.limit = limit
        self.server = server  # how the refusal names this server
        self.streaming_markers = streaming_markers  # path fragments of routes that enforce their own limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or any(marker in scope["path"] for marker in self.streaming_markers):
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(send)
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _TooLarge:
            if not started:
                await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        message = f"the request body is over this {self.server}'s limit of {self.limit} bytes"
        body = json.dumps({"error": message}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"x-error-message", message.encode())]})
        await send({"type": "http.response.body", "body": body})
