"""The hub's FastAPI application: the store over HTTP, in the Hugging Face Hub protocol."""

from __future__ import annotations

import ctypes
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from fmhub._version import __version__
from fmhub.accounts import Accounts
from fmhub.indexing import backfill_pending, reindex
from fmhub.http import HUB_ERRORS, BodyLimitMiddleware, document_errors, install_error_handlers, serve_docs
from fmhub.server import (_admin, _evals, _hf, _hf_discussions, _hf_manage, _hf_write, _lfs, _lineage, _mirror, _runs,
                          _search, _signing, _xet, web)
from fmhub.server._protocol import RequestIdMiddleware, install_repo_not_found, install_repo_redirects
from fmhub.server._auth import HubConfig
from fmhub.store import Store, open_store

__all__ = ["create_app", "HubConfig"]


def _return_large_buffers_to_the_os() -> None:
    """Serve large transfers in bounded memory under glibc.

    Each transfer thread allocates MB-sized buffers; glibc's default raises its mmap threshold to the largest
    freed buffer, so later ones come from per-thread arenas that keep the memory after use (measured: a
    1 GiB Xet download pushed the server from 160 to 215 MB). A fixed threshold keeps buffers over 256 KiB
    in their own mappings, returned when freed; fewer arenas bound what small objects keep.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl, …): nothing to tune
        return
    m_mmap_threshold, m_arena_max = -3, -8
    mallopt(m_mmap_threshold, 256 * 1024)
    mallopt(m_arena_max, 2)


def create_app(store: Store | None = None, config: HubConfig | None = None) -> FastAPI:
    """Build the hub app over ``store`` (default: the store the environment names, opened at startup).

    On first start (no account yet) an administrator is created and its token printed once to stderr;
    with ``FMHUB_ADMIN_TOKEN`` set, that value is the administrator's token instead.

    Example:
        uvicorn --factory fmhub.server:create_app   # or: fmhub server
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        _return_large_buffers_to_the_os()
        owned = store is None
        app.state.store = open_store() if owned else store
        app.state.store.db.ensure_schema()  # fail at start, not on the first request
        if backfill_pending(app.state.store):  # repos from before the search index and lineage graph existed
            print("fmhub: indexing the existing repos for search and lineage (once) …", file=sys.stderr, flush=True)
            reindex(app.state.store)
        app.state.config = config or HubConfig.from_env()
        app.state.accounts = Accounts(app.state.store.db)
        app.state.lfs_key = None
        app.state.xet_key = None
        secret = app.state.accounts.bootstrap_admin(name=app.state.config.admin_name,
                                                    token=app.state.config.admin_token)
        if secret is not None:
            print(f"fmhub: created the administrator {app.state.config.admin_name!r}. Its token, shown only "
                  f"this once (store it now):\n  {secret}", file=sys.stderr, flush=True)
        try:
            yield
        finally:
            if owned:
                app.state.store.close()

    app = FastAPI(title="fmhub", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Self-hosted hub for foundation models; speaks the Hugging Face Hub protocol.")
    app.state.xet_misses = _hf.XetMisses()
    serve_docs(app)
    install_error_handlers(app)
    install_repo_not_found(app)
    install_repo_redirects(app)
    # Commits, LFS uploads, xorbs and shards stream their bodies and enforce their own (larger) limits.
    app.add_middleware(BodyLimitMiddleware, streaming_markers=("/commit/", "/api/lfs/upload/", "/api/fmhub/mirror/import",
                                                               _xet.CAS_PREFIX + "/v1/xorbs/",
                                                               _xet.CAS_PREFIX + "/v1/shards"))
    app.add_middleware(RequestIdMiddleware)

    @app.get("/healthz", tags=["ops"], summary="The process is up")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"], summary="The metadata database and blob store answer")
    def readyz(request: Request) -> JSONResponse:
        ready_store: Store = request.app.state.store
        ready_store.list_repos(limit=1)
        ready_store.blobs.exists("0" * 64)
        return JSONResponse({"status": "ready"})

    app.include_router(_hf.resolve_fast_lane())  # downloads first: see there why no path changes its route
    # Write routes first: their paths are more specific than the read side's catch-alls.
    app.include_router(_admin.router)
    app.include_router(_evals.router)
    app.include_router(_lineage.router)
    app.include_router(_runs.router)
    app.include_router(_signing.router)
    app.include_router(_mirror.router)
    app.include_router(_hf_write.router)
    app.include_router(_hf_manage.router)
    app.include_router(_hf_discussions.router)
    app.include_router(_lfs.router)
    app.include_router(_xet.router)
    app.include_router(_hf.router)
    app.include_router(_search.router)  # after the read side: /api/{plural} must not shadow /api/whoami-v2
    web.install(app)  # the web UI last: its page routes never shadow an API route
    document_errors(app, HUB_ERRORS)
    return app
