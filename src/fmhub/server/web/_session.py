"""Who is looking at a page: web sessions (log in with a token) and CSRF protection of forms.

A session is an access token of its own, issued at log-in for the user of the token given (same
role, named ``web session``, expiring after :data:`SESSION_TTL` or with the token given, whichever comes
first, and made from it: revoking that token ends the session at once): the accounts module already stores
tokens salted and hashed, checks expiry and revokes them, so the server keeps no session secret in
clear, and log-out revokes the session for good (a stolen cookie stops working too). The cookie
holds ``<token id>.<secret>``; it is HttpOnly, SameSite=Lax and Secure over https.

Pages resolve the viewer with :func:`viewer`: an ``Authorization: Bearer`` header is read exactly as
the API reads it (:func:`fmhub.server._auth.principal`), else the session cookie. Access decisions
then go through the same :mod:`fmhub.server._auth` functions as the API's (``visible_repo``...).

Forms carry a CSRF field: an HMAC, keyed by a random per-browser cookie (``fmhub_csrf``, HttpOnly,
SameSite=Strict), of the session cookie (double submit bound to the session); a POST must echo it,
and a POST whose ``Origin`` names another site is refused before that.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

from fastapi import Request
from fastapi.responses import Response

from fmhub.accounts import Accounts, Principal
from fmhub.errors import AuthenticationError, FmhubError, InvalidInputError, PermissionDeniedError
from fmhub.server._auth import principal

__all__ = ["viewer", "viewer_or_none", "LoginRequired", "log_in", "log_out", "csrf_field", "read_form",
           "pending_cookies", "SESSION_COOKIE", "CSRF_COOKIE", "SESSION_NAME", "SESSION_TTL"]

SESSION_COOKIE = "fmhub_session"
CSRF_COOKIE = "fmhub_csrf"
SESSION_NAME = "web session"
SESSION_TTL = timedelta(hours=12)
_MAX_FORM_BYTES = 64 * 1024
_UNSET = object()


class LoginRequired(FmhubError):
    """The hub requires a log-in (``--require-auth``) and the browser has none: pages redirect to /login."""


def _accounts(request: Request) -> Accounts:
    return request.app.state.accounts


def _session_secret(request: Request) -> tuple[int, str] | None:
    raw = request.cookies.get(SESSION_COOKIE, "")
    token_id, _, secret = raw.partition(".")
    if not token_id.isdigit() or not secret or len(raw) > 600:
        return None
    return int(token_id), secret


def viewer(request: Request) -> Principal | None:
    """The viewer of a page: the bearer token's user, else the session's, else None (anonymous).

    Raises:
        AuthenticationError: a bearer token that is invalid (as the API answers).
        LoginRequired: nobody is logged in and the hub requires authentication.
    """
    cached = getattr(request.state, "viewer", _UNSET)
    if cached is not _UNSET:
        return cached  # type: ignore[return-value]
    found: Principal | None = None
    if request.headers.get("authorization"):
        found = principal(request)
    else:
        session = _session_secret(request)
        if session is not None:
            try:
                candidate = _accounts(request).authenticate(session[1])
            except AuthenticationError:  # expired or revoked: anonymous, and the cookie is dropped
                request.state.clear_session = True
            else:
                if candidate.token_name == SESSION_NAME:  # only session tokens are accepted from the cookie
                    found = candidate
        if found is None and request.app.state.config.require_auth:
            raise LoginRequired("this hub requires logging in", hint="log in with a token")
    request.state.viewer = found
    return found


def viewer_or_none(request: Request) -> Principal | None:
    """The viewer already resolved for this request, or None (templates must never raise)."""
    value = getattr(request.state, "viewer", _UNSET)
    if value is _UNSET:
        try:
            return viewer(request)
        except FmhubError:
            return None
    return value  # type: ignore[return-value]


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def log_in(request: Request, response: Response, token: str) -> Principal:
    """Check ``token`` and start a session for its user (the cookie is set on ``response``)."""
    token = token.strip()
    who = _accounts(request).authenticate(token)  # AuthenticationError: one message, no oracle
    # The session hangs from the token that opened it: revoking that token, or its expiry, ends the session.
    info, secret = _accounts(request).create_token(who.user, name=SESSION_NAME, role=who.token_role,
                                                   expires_at=datetime.now(UTC) + SESSION_TTL, parent=who.token_id)
    response.set_cookie(SESSION_COOKIE, f"{info.id}.{secret}", max_age=int(SESSION_TTL.total_seconds()),
                        httponly=True, samesite="lax", secure=_secure(request), path="/")
    return who


def log_out(request: Request, response: Response) -> None:
    """Revoke the session token (if it is still valid) and drop the cookie."""
    session = _session_secret(request)
    if session is not None:
        try:
            who = _accounts(request).authenticate(session[1])
            if who.token_name == SESSION_NAME:
                _accounts(request).revoke_token(session[0], user=who.user)
        except FmhubError:
            pass  # already invalid: nothing to revoke
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=_secure(request))


# -- CSRF -------------------------------------------------------------------------------------------


def _csrf_key(request: Request) -> str:
    key = request.cookies.get(CSRF_COOKIE)
    if not key or len(key) != 43:
        key = getattr(request.state, "new_csrf", None) or secrets.token_urlsafe(32)
        request.state.new_csrf = key
    return key


def csrf_field(request: Request) -> str:
    """The value a form's hidden ``csrf`` field must carry for this browser and session."""
    key = _csrf_key(request)
    return hmac.new(key.encode(), request.cookies.get(SESSION_COOKIE, "").encode(), hashlib.sha256).hexdigest()


def pending_cookies(request: Request, response: Response) -> None:
    """Set the CSRF cookie a page just created, drop a dead session cookie."""
    key = getattr(request.state, "new_csrf", None)
    if key:
        response.set_cookie(CSRF_COOKIE, key, httponly=True, samesite="strict", secure=_secure(request), path="/")
    if getattr(request.state, "clear_session", False):
        response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=_secure(request))


async def read_form(request: Request) -> dict[str, str]:
    """The POSTed form (urlencoded), once its origin and CSRF field are checked.

    Raises:
        PermissionDeniedError: another site's form, or a missing or wrong CSRF field.
        InvalidInputError: a body that is too large or not a form.
    """
    origin = request.headers.get("origin")
    if origin and origin != "null":
        host = urlsplit(origin).netloc
        if host != request.headers.get("host", ""):
            raise PermissionDeniedError("this form was sent from another site", hint="use the form on this hub")
    body = await request.body()
    if len(body) > _MAX_FORM_BYTES:
        raise InvalidInputError("the form is too large")
    try:
        fields = {k: v[-1] for k, v in parse_qs(body.decode("utf-8"), keep_blank_values=True).items()}
    except UnicodeDecodeError:
        raise InvalidInputError("the form is not UTF-8") from None
    key = request.cookies.get(CSRF_COOKIE)
    expected = hmac.new(key.encode(), request.cookies.get(SESSION_COOKIE, "").encode(), hashlib.sha256).hexdigest() \
        if key else None
    if expected is None or not hmac.compare_digest(expected, fields.get("csrf", "")):
        raise PermissionDeniedError("the form has expired or was not sent from this hub",
                                    hint="reload the page and send the form again")
    return fields
