"""Account pages: log in and out, your tokens, your organizations and their members, the audit log.

Forms change accounts through the same functions as the native API (``fmhub.server._admin``), so a
page can do exactly what the viewer's token could do with ``/api/fmhub/...``: a read-only session
sees its tokens but cannot mint one, only an organization's admins manage its members, only site
administrators read the audit log.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from fmhub.accounts import ORG_ROLES, TOKEN_ROLES
from fmhub.errors import AuthenticationError, FmhubError, InvalidInputError, PermissionDeniedError
from fmhub.server import _admin
from fmhub.server.web._render import error_page, render, security_headers
from fmhub.server.web._repo import store_of
from fmhub.server.web._routing import PageRoute, int_param
from fmhub.server.web._session import SESSION_NAME, LoginRequired, log_in, log_out, read_form, viewer

__all__ = ["router"]

router = APIRouter(route_class=PageRoute, include_in_schema=False)

#: Token lifetimes offered by the form (seconds; None: no expiry).
EXPIRIES = {"7d": 7 * 86400, "30d": 30 * 86400, "90d": 90 * 86400, "365d": 365 * 86400, "never": None}


def _safe_next(target: str | None) -> str:
    """Only a path on this hub (never ``//other.site`` or ``https://...``): no open redirect after log-in."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    parts = urlsplit(target)
    return "/" if parts.scheme or parts.netloc else target


def _signed_in(request: Request) -> Any:
    caller = viewer(request)
    if caller is None:
        raise LoginRequired("log in to see this page")
    return caller


def _see_other(url: str) -> Response:
    return security_headers(RedirectResponse(url, status_code=303))


@router.get("/login")
def login_form(request: Request) -> HTMLResponse:
    try:
        caller = viewer(request)
    except FmhubError:
        caller = None
    return render(request, "login.html", next=_safe_next(request.query_params.get("next")), error=None,
                  signed_in=caller)


@router.post("/login")
async def login(request: Request) -> Response:
    form = await read_form(request)
    target = _safe_next(form.get("next"))
    response = RedirectResponse(target, status_code=303)
    try:
        log_in(request, response, form.get("token", ""))
    except (AuthenticationError, InvalidInputError) as exc:
        return render(request, "login.html", status_code=401, next=target, error=exc.message, signed_in=None)
    return security_headers(response)


@router.post("/logout")
async def logout(request: Request) -> Response:
    await read_form(request)
    response = RedirectResponse("/", status_code=303)
    log_out(request, response)
    return security_headers(response)


# -- tokens -------------------------------------------------------------------------------------------


def _tokens_page(request: Request, caller: Any, *, created: dict[str, Any] | None = None, error: str | None = None,
                 status: int = 200) -> HTMLResponse:
    tokens = request.app.state.accounts.tokens(caller.user)
    return render(request, "tokens.html", status_code=status, tokens=[t for t in tokens if t.name != SESSION_NAME],
                  sessions=[t for t in tokens if t.name == SESSION_NAME and t.active], created=created, error=error,
                  roles=TOKEN_ROLES, expiries=list(EXPIRIES))


@router.get("/settings/tokens")
def tokens(request: Request) -> HTMLResponse:
    return _tokens_page(request, _signed_in(request))


@router.post("/settings/tokens")
async def create_token(request: Request) -> Response:
    caller = _signed_in(request)
    form = await read_form(request)
    expiry = form.get("expires", "30d")
    if expiry not in EXPIRIES:
        raise InvalidInputError(f"expires={expiry[:20]!r} is not one of {', '.join(EXPIRIES)}")
    try:
        body = _admin._NewToken(name=form.get("name", "").strip(), role=form.get("role", "read"),
                                expires_in_seconds=EXPIRIES[expiry])
        created = _admin.create_token(request, caller, body)
    except ValidationError as exc:
        return _tokens_page(request, caller, error="; ".join(e["msg"] for e in exc.errors()), status=400)
    except (InvalidInputError, PermissionDeniedError) as exc:
        return _tokens_page(request, caller, error=exc.message + (f" ({exc.hint})" if exc.hint else ""),
                            status=403 if isinstance(exc, PermissionDeniedError) else 400)
    return _tokens_page(request, caller, created=created)


@router.post("/settings/tokens/{token_id}/revoke")
async def revoke_token(request: Request, token_id: int) -> Response:
    caller = _signed_in(request)
    await read_form(request)
    _admin.revoke_token(request, caller, token_id)
    return _see_other("/settings/tokens")


# -- organizations ------------------------------------------------------------------------------------


@router.get("/settings/organizations")
def organizations(request: Request) -> HTMLResponse:
    caller = _signed_in(request)
    return render(request, "organizations.html", memberships=request.app.state.accounts.memberships(caller.user),
                  error=None)


@router.post("/settings/organizations")
async def create_org(request: Request) -> Response:
    caller = _signed_in(request)
    form = await read_form(request)
    try:
        _admin.create_org(request, caller, _admin._NewOrg(name=form.get("name", "").strip(),
                                                          fullname=form.get("fullname") or None))
    except (InvalidInputError, PermissionDeniedError, FmhubError) as exc:
        return render(request, "organizations.html", status_code=400 if not isinstance(exc, PermissionDeniedError) else 403,
                      memberships=request.app.state.accounts.memberships(caller.user), error=exc.message)
    return _see_other(f"/settings/organizations/{quote(form['name'].strip(), safe='')}")


@router.get("/settings/organizations/{org}")
def members(request: Request, org: str) -> HTMLResponse:
    caller = _signed_in(request)
    found = _admin.list_members(request, caller, org)  # 403 for non-members, 404 for no such org
    is_admin = caller.is_admin or caller.orgs.get(org.lower()) == "admin"
    return render(request, "members.html", org=org, members=found, is_admin=is_admin, roles=ORG_ROLES, error=None)


@router.post("/settings/organizations/{org}/members")
async def set_member(request: Request, org: str) -> Response:
    caller = _signed_in(request)
    form = await read_form(request)
    user = form.get("user", "").strip()
    if not user:
        raise InvalidInputError("name the user to add")
    if form.get("action") == "remove":
        _admin.remove_member(request, caller, org, user)
    else:
        _admin.set_member(request, caller, org, user, _admin._Role(role=form.get("role", "read")))
    return _see_other(f"/settings/organizations/{quote(org, safe='')}")


# -- audit --------------------------------------------------------------------------------------------


@router.get("/settings/audit")
def audit(request: Request) -> HTMLResponse:
    caller = _signed_in(request)
    if not caller.is_admin or caller.token_role != "write":  # the API's AdminDep rule
        raise PermissionDeniedError("the audit log is for site administrators (logged in with a write token)")
    params = request.query_params
    limit = int_param(request, "limit", 200, low=1, high=5000)
    events = store_of(request).audit_events(repo_id=params.get("repo") or None, actor=params.get("actor") or None,
                                            action=params.get("action") or None, limit=limit)
    return render(request, "audit.html", events=events, filters={k: params.get(k, "") for k in
                                                                 ("repo", "actor", "action")})


def forbidden(request: Request, message: str) -> HTMLResponse:
    return error_page(request, PermissionDeniedError(message))
