"""Templates, security headers and the HTML error page of the web UI.

Every page is rendered here, so every page gets the same headers: a Content-Security-Policy that runs
only the hub's own script files (no inline script, no inline event handler, no ``eval``), no framing,
no MIME sniffing. Pages are HTML views of the same store the API serves; user content (cards, file
previews) reaches a template only escaped or through :mod:`fmhub.server.web._markdown`'s sanitizer.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from fmhub.errors import FmhubError, http_status

__all__ = ["render", "error_page", "security_headers", "repo_path", "STATIC", "plotly_url", "fmt_size", "CSP"]

HERE = Path(__file__).parent
STATIC = "/static"

#: Scripts and styles from this origin only. Plotly draws with inline style attributes set from script,
#: which CSP counts as inline styles, so styles allow 'unsafe-inline' (scripts never do); cards are
#: sanitized so user content carries no style either way.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")


def security_headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
    response.headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"
    response.headers.setdefault("Cache-Control", "no-store")  # pages may show private repos
    return response


def repo_path(repo_type: str, repo_id: str) -> str:
    """The repo's page path: ``/ns/name`` for models, ``/datasets/ns/name`` for datasets (the Hub's shapes)."""
    return ("/datasets/" if repo_type == "dataset" else "/") + repo_id


def rev_part(revision: str) -> str:
    """A revision as one URL path segment (a ``/`` in a branch name is quoted, as the Hub does)."""
    return quote(revision, safe="")


def fmt_size(size: int | float | None) -> str:
    if size is None:
        return ""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return str(size)


def fmt_ago(value: datetime | str | None) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    seconds = (datetime.now(UTC) - value).total_seconds()
    for limit, unit in ((60, "second"), (3600, "minute"), (86400, "hour"), (86400 * 30, "day"),
                        (86400 * 365, "month")):
        if seconds < limit:
            size = {"second": 1, "minute": 60, "hour": 3600, "day": 86400, "month": 86400 * 30}[unit]
            n = max(1, int(seconds // size))
            return f"{n} {unit}{'s' if n != 1 else ''} ago"
    return value.strftime("%Y-%m-%d")


def fmt_time(value: datetime | None) -> str:
    return "" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def fmt_num(value: Any, digits: int = 4) -> str:
    """A metric for people: fractions to 4 decimals, large numbers with separators, missing as —."""
    if value is None or isinstance(value, bool):
        return "—" if value is None else str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "—"
        if abs(value) >= 1000:
            return f"{value:,.1f}"
        return f"{value:.{digits}f}"
    return str(value)


def fmt_delta(value: Any) -> str:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        return "—"
    return f"{value:+.4f}"


def to_json_script(value: Any) -> Markup:
    """JSON for a ``<script type="application/json">`` data island: ``<``, ``>``, ``&`` escaped, never executed."""
    text = json.dumps(value, separators=(",", ":"), allow_nan=False, default=str)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return Markup(text)  # noqa: S704 - escaped above; the island's type makes the browser treat it as data


@lru_cache(maxsize=1)
def plotly_url() -> str:
    import plotly

    return f"{STATIC}/vendor/plotly-{plotly.__version__}.min.js"


def _main_metric(run: Any) -> Any:
    from fmhub.server.web._records import main_metric

    return main_metric(run)


@lru_cache(maxsize=1)
def _env() -> Environment:
    env = Environment(loader=FileSystemLoader(str(HERE / "templates")), autoescape=select_autoescape(default=True),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, auto_reload=False)
    env.filters.update(size=fmt_size, ago=fmt_ago, time=fmt_time, num=fmt_num, delta=fmt_delta,
                       json_island=to_json_script, rev=rev_part, urlq=lambda v: quote(str(v), safe=""))
    env.globals.update(repo_path=repo_path, static=STATIC, plotly_url=plotly_url,
                       urlencode=urlencode, short=lambda oid: (oid or "")[:8], main_metric=_main_metric)
    return env


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """Render ``template`` with the viewer, the CSRF field value and the page's context; add the security headers."""
    from fmhub.server.web._session import csrf_field, pending_cookies, viewer_or_none

    html = _env().get_template(template).render(request=request, viewer=viewer_or_none(request),
                                                csrf=csrf_field(request), version=request.app.version, **context)
    response = HTMLResponse(html, status_code=status_code)
    pending_cookies(request, response)
    return security_headers(response)


def error_page(request: Request, error: FmhubError | None = None, *, status: int | None = None,
               title: str | None = None, message: str | None = None) -> HTMLResponse:
    """The HTML answer to a bad request: the status the API would give, the error's message and hint."""
    code = status or (http_status(error) if error is not None else 500)
    heading = title or {400: "Bad request", 401: "Log in needed", 403: "Not allowed", 404: "Not found",
                        409: "Conflict", 413: "Too large"}.get(code, "Error")
    return render(request, "error.html", status_code=code, heading=heading, code=code,
                  message=message if message is not None else (error.message if error else ""),
                  hint=error.hint if error is not None else None)
