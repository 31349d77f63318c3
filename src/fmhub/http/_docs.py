"""The ``/docs`` page of fmhub's HTTP servers, served from files installed with fmhub, not from a CDN.

FastAPI's default page loads Swagger UI from jsDelivr, which an air-gapped site cannot reach (the page
stays blank). Here the same page takes its script, stylesheet and icon from ``/docs-assets/``, a copy of
Swagger UI installed by the ``swagger-ui-bundle`` package; ``/openapi.json`` is unchanged.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import HTMLResponse

__all__ = ["ASSETS", "serve_docs"]

#: Where the Swagger UI files are mounted.
ASSETS = "/docs-assets"


def serve_docs(app: FastAPI) -> None:
    """Add ``/docs`` and the files it needs to ``app`` (created with ``docs_url=None, redoc_url=None``)."""
    import swagger_ui_bundle
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.staticfiles import StaticFiles

    app.mount(ASSETS, StaticFiles(directory=str(swagger_ui_bundle.swagger_ui_path)), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=app.openapi_url or "/openapi.json", title=f"{app.title} - API",
                                   swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{ASSETS}/swagger-ui.css",
                                   swagger_favicon_url=f"{ASSETS}/favicon-32x32.png")
