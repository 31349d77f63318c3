"""HTTP answers and transport failures → :mod:`fmhub.errors`, so remote calls fail like local ones.

The hub answers errors with a status from :data:`fmhub.errors.HTTP_STATUS`, an ``X-Error-Code`` for the
three errors ``huggingface_hub`` knows, and a JSON body ``{"error": ..., "hint": ...}``. The class is
rebuilt from those (an ``X-Fmhub-Error`` header naming the class wins when a server sends one); the
message and hint are the server's, and structured fields (``repo_id``, ``revision``, ``path``...) are
filled from what the client asked for.
"""

from __future__ import annotations

import inspect
from typing import Any

import httpx

from fmhub import errors
from fmhub.errors import (
    AuthenticationError,
    BlobNotFoundError,
    ConfigError,
    ConflictError,
    EmptyCommitError,
    EntryNotFoundError,
    FmhubError,
    IntegrityError,
    InvalidInputError,
    PayloadTooLargeError,
    PermissionDeniedError,
    ProtectedRefError,
    RefExistsError,
    RepoExistsError,
    RepoNotFoundError,
    RevisionNotFoundError,
    StorageUnavailableError,
)

__all__ = ["error_from_response", "unreachable"]

_BY_HF_CODE: dict[str, type[FmhubError]] = {
    "RepoNotFound": RepoNotFoundError,
    "RevisionNotFound": RevisionNotFoundError,
    "EntryNotFound": EntryNotFoundError,
}
_BY_STATUS: dict[int, type[FmhubError]] = {
    400: InvalidInputError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    409: ConflictError,  # hubs before issue 28 answered a stale parent commit with 409
    412: ConflictError,
    413: PayloadTooLargeError,
    422: IntegrityError,
    502: StorageUnavailableError,
    503: StorageUnavailableError,
    504: StorageUnavailableError,
}


def _named_class(name: str | None) -> type[FmhubError] | None:
    cls = getattr(errors, name, None) if name and name in errors.__all__ else None
    return cls if isinstance(cls, type) and issubclass(cls, FmhubError) else None


def _class_for(status: int, code: str | None, message: str) -> type[FmhubError]:
    if code in _BY_HF_CODE:
        return _BY_HF_CODE[code]
    # Statuses several classes share are told apart by the message the server's class wrote.
    lowered = message.lower()
    if status == 400 and lowered.startswith("no changes to commit"):
        return EmptyCommitError
    if status == 403 and "default branch" in lowered:
        return ProtectedRefError
    if status == 404 and lowered.startswith("blob "):
        return BlobNotFoundError
    if status == 409 and "already exists" in lowered:
        return RepoExistsError if " repository " in lowered else RefExistsError
    return _BY_STATUS.get(status, FmhubError)


def _build(cls: type[FmhubError], message: str, hint: str | None, fields: dict[str, Any]) -> FmhubError:
    """An instance of ``cls`` with the server's message and hint, and its structured fields set.

    The classes' constructors write their own messages; the server's (already written by the same
    classes, with what the server knows) is kept instead.
    """
    error = cls.__new__(cls)
    FmhubError.__init__(error, message, hint=hint)
    for name in list(inspect.signature(cls.__init__).parameters)[1:]:
        if name not in ("message", "hint", "args", "kwargs"):
            setattr(error, name, fields.get(name))
    return error


def error_from_response(response: httpx.Response, *, token_given: bool, **fields: Any) -> FmhubError:
    """The fmhub error an HTTP error answer stands for (the body must have been read)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    body = body if isinstance(body, dict) else {}
    message = body.get("error") if isinstance(body.get("error"), str) else None
    message = message or response.headers.get("x-error-message") or \
        f"{response.request.method} {response.request.url} answered {response.status_code} {response.reason_phrase}"
    hint = body.get("hint") if isinstance(body.get("hint"), str) else None
    # Structured fields the server states (a SignatureError's reason and item) complete what the client knows.
    fields = {**{k: body[k] for k in ("reason", "item") if isinstance(body.get(k), str)}, **fields}
    cls = _named_class(response.headers.get("x-fmhub-error")) or \
        _class_for(response.status_code, response.headers.get("x-error-code"), message)
    if cls is AuthenticationError:
        # The server's hint speaks HTTP (an Authorization header); a client user sets a token.
        hint = ("the token was refused: check --token / FMHUB_TOKEN" if token_given
                else "give a token with --token or FMHUB_TOKEN")
    return _build(cls, message, hint, fields)


def unreachable(endpoint: str, exc: Exception) -> FmhubError:
    """A transport failure (refused, reset, timed out, bad URL) as one line naming the endpoint."""
    if isinstance(exc, (httpx.UnsupportedProtocol, httpx.InvalidURL)):
        return ConfigError(f"the hub endpoint {endpoint!r} is not a usable URL: {exc}",
                           hint="use --endpoint / FMHUB_ENDPOINT like http://host:8000")
    reason = str(exc) or type(exc).__name__
    return StorageUnavailableError(f"cannot reach the hub at {endpoint}: {reason}",
                                   hint="check --endpoint / FMHUB_ENDPOINT and that `fmhub server` runs there")
