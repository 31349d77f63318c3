"""Errors as the Hugging Face client reads them: status from one table, ``X-Error-Code``, JSON body."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from fmhub.errors import HF_ERROR_CODE, FmhubError, SignatureError, http_status

__all__ = ["install_error_handlers", "error_response", "header_safe"]


def header_safe(text: str) -> str:
    """Header values must be latin-1, one line, and free of control characters (h11 refuses NUL, and the
    connection would drop with no answer at all): each control character becomes ``?``."""
    line = " ".join(text.split())
    line = "".join("?" if ord(ch) < 0x20 or 0x7F <= ord(ch) < 0xA0 else ch for ch in line)
    return line.encode("latin-1", "replace").decode("latin-1")[:500]


def error_response(error: FmhubError, **extra: object) -> JSONResponse:
    """The JSON error answer (``error``, ``hint``, and ``extra`` fields the client reads, e.g. ``url``)."""
    # X-Fmhub-Error names the class so fmhub's own client re-raises exactly what the store raised.
    headers = {"X-Error-Message": header_safe(error.message), "X-Fmhub-Error": type(error).__name__}
    for cls in type(error).__mro__:
        if cls in HF_ERROR_CODE:
            headers["X-Error-Code"] = HF_ERROR_CODE[cls]
            break
    body: dict[str, object] = {"error": error.message}
    if error.hint:
        body["hint"] = error.hint
    body.update(extra)
    return JSONResponse(body, status_code=http_status(error), headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(FmhubError)
    async def _fmhub_error(_request: Request, exc: FmhubError) -> JSONResponse:
        if isinstance(exc, SignatureError):  # what failed, for clients to act on (the file or key)
            return error_response(exc, reason=exc.reason, item=exc.item)
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        return JSONResponse({"error": f"invalid request: {problems}",
                             "hint": "see /docs for the types each field takes"}, status_code=400,
                            headers={"X-Error-Message": header_safe(problems)})

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        hints = {404: "see /docs for the routes this hub serves", 405: "see /docs for the methods each route takes"}
        body = {"error": str(exc.detail), "hint": hints.get(exc.status_code, "see /docs")}
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)


#: The body of every error answer, as the OpenAPI document describes it.
ERROR_SCHEMA = {
    "title": "Error",
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {"type": "string", "description": "What went wrong."},
        "hint": {"type": "string", "description": "How to fix it."},
    },
}

#: What each error status means on the hub's routes (a route answers the ones its checks can raise).
HUB_ERRORS = {
    "400": "Invalid input: a malformed body, name, path or parameter",
    "401": "No valid token where one is needed (or a signed URL no longer valid)",
    "403": "The token may not do this (read-only token, no write rights on the namespace)",
    "404": "No such repo, revision, file or route; a private repo the caller may not see answers the same",
    "409": "Conflict: the name exists, or the branch moved since the given parent commit",
    "413": "The body is over the hub's limit",
}


def document_errors(app: FastAPI, errors: dict[str, str]) -> None:
    """Describe ``errors`` (status → meaning), with the ``{error, hint}`` body, on every operation of the
    app's OpenAPI document, beside the 2xx answers FastAPI derives from the routes."""
    build = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = build()
        document.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
        reference = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
        for operations in document.get("paths", {}).values():
            for operation in operations.values():
                responses = operation.setdefault("responses", {})
                # FastAPI's own 422 describes pydantic's error list; fmhub answers validation errors as
                # {error, hint} instead (400 on the hub, 422 on fmhub serve).
                responses.pop("422", None)
                for status, meaning in errors.items():
                    responses[status] = {"description": meaning, "content": reference}
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]
