"""Errors as the Hugging Face client reads them: status from one table, ``X-Error-Code``, JSON body."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from fmhub.errors import HF_ERROR_CODE, FmhubError, http_status

__all__ = ["install_error_handlers", "error_response", "header_safe"]


def header_safe(text: str) -> str:
    """Header values must be latin-1 and one line."""
    # Control characters (a NUL in a user's name echoed back) are illegal in headers: shown as '?'.
    text = "".join(ch if ch.isprintable() or ch.isspace() else "?" for ch in text)
    return " ".join(text.split()).encode("latin-1", "replace").decode("latin-1")[:500]


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
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        return JSONResponse({"error": f"invalid request: {problems}"}, status_code=400,
                            headers={"X-Error-Message": header_safe(problems)})

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)
