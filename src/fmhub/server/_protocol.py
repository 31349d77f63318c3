"""Protocol details the Hugging Face client relies on across all routes: request ids, repo-shaped 404s and
redirects from the old names of moved repos."""

from __future__ import annotations

import re
import uuid

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fmhub.errors import FmhubError, RepoNotFoundError
from fmhub.http import error_response
from fmhub.server._auth import can_see, principal
from fmhub.store import Store
from fmhub.store.rewrite import redirected_repo

__all__ = ["RequestIdMiddleware", "install_repo_not_found", "install_repo_redirects", "redirect_target"]

#: Paths that name a repo: the client reads their 404 as "repository not found" only with ``X-Error-Code``.
#: A repo id without a namespace ("gpt2") matches no route of fmhub (every repo has one), so routing
#: answers these and they must say ``RepoNotFound`` (``repo_exists`` then returns False instead of raising).
_REPO_PATH = re.compile(r"^/(?:api/(?:models|datasets)/[^/]+(?:/.*)?|(?:datasets/)?[^/]+(?:/[^/]+)?/resolve/.+)$")


class RequestIdMiddleware:
    """Give every answer an ``X-Request-Id`` (the client quotes it in its error messages, so a user's
    report can be matched to the server's log line)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        await self.app(scope, receive, send_with_id)


def install_repo_not_found(app: FastAPI) -> None:
    """Answer unrouted repo-shaped paths (a repo id without a namespace) with ``RepoNotFound``."""

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404 and _REPO_PATH.match(request.url.path):
            parts = request.url.path.strip("/").split("/")
            repo_type = "dataset" if "datasets" in parts[:2] else "model"
            name = parts[2] if parts[0] == "api" else parts[1] if parts[0] == "datasets" else parts[0]
            return error_response(RepoNotFoundError(repo_type, name))
        hints = {404: "see /docs for the routes this hub serves", 405: "see /docs for the methods each route takes"}
        body = {"error": str(exc.detail), "hint": hints.get(exc.status_code, "see /docs")}
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)


def redirect_target(request: Request, exc: RepoNotFoundError) -> str | None:
    """Where a request naming a moved repo's old name goes: the same URL with the current name, if the
    caller may see the repo (otherwise the old name answers like a missing repo, as a private repo does)."""
    if exc.exists_as is not None or "/" not in exc.repo_id:
        return None
    store: Store = request.app.state.store
    try:
        repo = redirected_repo(store, exc.repo_id, repo_type=exc.repo_type)
        if repo is None or not can_see(principal(request), repo):
            return None
    except FmhubError:  # an invalid id or token: the original answer stands
        return None
    path = request.url.path
    # The old id as whole path segments: "/{ns}/{name}" followed by "/", ".git" (LFS) or the end.
    pattern = re.compile(r"/" + re.escape(exc.repo_id) + r"(?=/|\.git|$)", re.IGNORECASE)
    moved, count = pattern.subn("/" + repo.repo_id, path, count=1)
    if not count:
        return None
    return moved + (f"?{request.url.query}" if request.url.query else "")


def install_repo_redirects(app: FastAPI) -> None:
    """Answer requests naming a moved repo's old name with 307 to its new name (method and body kept), as the
    Hub does after ``move_repo``; the client follows it, so old ids in scripts and model cards keep working."""

    @app.exception_handler(RepoNotFoundError)
    async def _repo_not_found(request: Request, exc: RepoNotFoundError) -> Response:
        target = await run_in_threadpool(redirect_target, request, exc)
        if target is None:
            return error_response(exc)
        return RedirectResponse(target, status_code=307)
