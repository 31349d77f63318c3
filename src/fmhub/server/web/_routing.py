"""Page routes: errors answered as HTML pages, and revision URLs read from the raw path.

Every page route uses :class:`PageRoute`, so a missing repo, revision or file (or a private repo the
viewer may not see: the same ``RepoNotFoundError``) becomes the HTML page of the status the API would
answer, never a traceback; a hub that requires log-in sends browsers to ``/login``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote, unquote

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool

from fmhub.errors import FmhubError, InvalidInputError, RepoNotFoundError
from fmhub.http import error_response
from fmhub.server._protocol import redirect_target
from fmhub.server.web._render import error_page
from fmhub.server.web._session import LoginRequired

__all__ = ["PageRoute", "raw_segments", "int_param", "login_redirect"]


def login_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)


class PageRoute(APIRoute):
    """An APIRoute whose errors are pages (HTML) with the API's status codes."""

    def get_route_handler(self) -> Callable[[Request], Any]:
        handler = super().get_route_handler()

        async def page_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except LoginRequired:
                return login_redirect(request)
            except FmhubError as exc:
                if isinstance(exc, RepoNotFoundError):  # a moved repo's old name: its pages redirect too
                    target = await run_in_threadpool(redirect_target, request, exc)
                    if target is not None:
                        return RedirectResponse(target, status_code=307)
                return _error(request, exc)
            except RequestValidationError as exc:
                problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:])}: {e['msg']}" for e in exc.errors())
                return _error(request, InvalidInputError(f"invalid request: {problems}"))

        return page_handler


def _error(request: Request, error: FmhubError) -> Response:
    # A page pattern (/{ns}/{name}/...) can catch an /api/... path no API route took: API clients get JSON.
    if request.url.path.startswith("/api/"):
        return error_response(error)
    return error_page(request, error)


def raw_segments(request: Request) -> list[str]:
    """The URL path's segments, each percent-decoded once (a quoted ``/`` in a branch name stays in it)."""
    raw = request.scope.get("raw_path") or request.url.path.encode()
    text = raw.decode("utf-8", "replace").split("?", 1)[0]
    return [unquote(part) for part in text.strip("/").split("/")]


def int_param(request: Request, name: str, default: int, *, low: int = 0, high: int = 10**9) -> int:
    """An integer query parameter; a bad value is a 400 page naming it."""
    value = request.query_params.get(name)
    if value in (None, ""):
        return default
    try:
        number = int(value)
    except ValueError:
        raise InvalidInputError(f"{name}={value[:40]!r} is not a number") from None
    if not low <= number <= high:
        raise InvalidInputError(f"{name} must be between {low} and {high}")
    return number
