"""Mount the web UI on the hub app: static files, page routers, HTML error pages for browsers."""

from __future__ import annotations

import gzip
from functools import lru_cache
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from fmhub.http import install_error_handlers
from fmhub.server.web import _account_pages, _hub_pages, _lineage_pages, _pr_pages, _repo_pages, _report_pages
from fmhub.server.web._render import HERE, STATIC, error_page, plotly_url

__all__ = ["install"]


class _Static(StaticFiles):
    """The UI's own files: never sniffed, cached briefly (they change with fmhub's version)."""

    def file_response(self, *args, **kwargs) -> Response:  # type: ignore[override]
        response = super().file_response(*args, **kwargs)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Cache-Control"] = "public, max-age=3600"
        return response


@lru_cache(maxsize=1)
def _plotly_bytes() -> tuple[bytes, bytes]:
    """plotly.js from the ``plotly`` wheel (its bundled copy), and the same gzipped once."""
    import plotly

    data = (Path(plotly.__file__).parent / "package_data" / "plotly.min.js").read_bytes()
    return data, gzip.compress(data, 6)


def _plotly(request: Request) -> Response:
    plain, packed = _plotly_bytes()
    headers = {"Cache-Control": "public, max-age=31536000, immutable", "X-Content-Type-Options": "nosniff",
               "Vary": "Accept-Encoding"}
    if "gzip" in request.headers.get("accept-encoding", ""):
        return Response(packed, media_type="text/javascript", headers={**headers, "Content-Encoding": "gzip"})
    return Response(plain, media_type="text/javascript", headers=headers)


def install(app: FastAPI) -> None:
    """Add the web UI to ``app``. Call after the API's routers: page routes must not shadow any of them."""
    app.add_api_route(plotly_url(), _plotly, methods=["GET"], include_in_schema=False)
    app.mount(STATIC, _Static(directory=str(HERE / "static")), name="static")
    app.include_router(_account_pages.router)
    app.include_router(_hub_pages.router)  # /, /models, /datasets, /-/...: before /{ns}/{name} could take them
    app.include_router(_report_pages.router)
    app.include_router(_lineage_pages.router)
    app.include_router(_pr_pages.router)
    app.include_router(_repo_pages.router)
    app.include_router(_hub_pages.profile_router)  # last: /{account} takes any single segment left

    json_errors = FastAPI()
    install_error_handlers(json_errors)
    # The API's own handler when the app has one (repo-shaped 404s say RepoNotFound), else the JSON default.
    api_http_error = app.exception_handlers.get(StarletteHTTPException,
                                                json_errors.exception_handlers[StarletteHTTPException])

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        """A browser asking for a page that does not exist gets an HTML page; API clients keep JSON."""
        wants_html = "text/html" in request.headers.get("accept", "")
        if wants_html and request.method in ("GET", "HEAD") and not request.url.path.startswith("/api/"):
            return error_page(request, status=exc.status_code, message="There is no page at this address."
                              if exc.status_code == 404 else str(exc.detail))
        return await api_http_error(request, exc)
