"""fmhub's mirror API: bundles of repo versions over HTTP, for ``fmhub mirror pull`` and ``fmhub mirror push``.

- ``GET /api/fmhub/mirror``: this hub speaks the mirror protocol (format and version);
- ``POST …/manifest`` ``{"repos": ["model/acme/clf@main", …]}``: the manifest of a bundle of those versions;
- ``POST …/export`` ``{"repos": […], "have": [object names]}``: that bundle (a streamed tar), without the
  objects the caller says it holds;
- ``POST …/have`` ``{"objects": [manifest entries]}``: which of them this hub holds (a pusher's question);
- ``POST …/import`` (a bundle as the body): import it, atomically, as ``fmhub mirror import`` does.

Reading answers a private repo the caller may not see exactly like a missing one; writing needs a write token
with write rights on each repo's namespace, checked from the manifest before any byte of a file is stored,
and the files pass the checks of a commit (pickles refused unless the hub allows them, safetensors validated).
"""

from __future__ import annotations

import io
from collections.abc import Iterator

import anyio.from_thread
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from fmhub.accounts import Principal
from fmhub.errors import RepoNotFoundError
from fmhub.mirror import FORMAT, VERSION, Target, import_bundle, iter_bundle, plan_export
from fmhub.mirror._import import present_objects
from fmhub.mirror._remote import ChunkReader, entries_from, parse_spec
from fmhub.server._auth import (ReaderDep, StoreDep, WriterDep, can_see, check_namespace_write, may_read_blob,
                                require_write_token, visible_repo)
from fmhub.store import Store
from fmhub.store.blobs import CHUNK_SIZE

__all__ = ["router"]

router = APIRouter(prefix="/api/fmhub/mirror", tags=["fmhub"])


class _Repos(BaseModel):
    model_config = ConfigDict(extra="forbid")
    repos: list[str] = Field(min_length=1, max_length=1000)
    have: list[str] = Field(default_factory=list, max_length=2_000_000)


class _Objects(BaseModel):
    model_config = ConfigDict(extra="forbid")
    objects: list[dict] = Field(max_length=1_000_000)


def _targets(store: Store, caller: Principal | None, specs: list[str]) -> list[Target]:
    targets = [parse_spec(spec) for spec in specs]
    for target in targets:
        visible_repo(store, caller, target.repo_type, target.repo_id)
    return targets


@router.get("", summary="This hub speaks fmhub's mirror protocol")
def capabilities() -> dict[str, object]:
    return {"format": FORMAT, "version": VERSION}


@router.post("/manifest", summary="The manifest of a bundle of repo versions")
def manifest(store: StoreDep, caller: ReaderDep, body: _Repos) -> Response:
    plan = plan_export(store, _targets(store, caller, body.repos))
    return Response(plan.manifest.to_bytes(), media_type="application/json")


@router.post("/export", summary="A bundle of repo versions (a tar), without the objects the caller holds")
def export(store: StoreDep, caller: ReaderDep, body: _Repos) -> StreamingResponse:
    plan = plan_export(store, _targets(store, caller, body.repos), have=body.have)
    return StreamingResponse(iter_bundle(store, plan), media_type="application/x-tar",
                             headers={"X-Fmhub-Bundle-Objects": str(sum(1 for e in plan.manifest.objects if e.in_bundle))})


@router.post("/have", summary="Which of these bundle objects this hub holds (what a push leaves out)")
def have(store: StoreDep, caller: WriterDep, body: _Objects) -> JSONResponse:
    require_write_token(caller, "asking what this hub holds")
    entries = entries_from(body.objects)
    held = present_objects(store, entries)
    # Knowing a sha256 must not tell whether someone else's private file is here: only readable blobs count.
    readable = {e.name for e in entries if e.kind != "blob" or (e.name in held and may_read_blob(store, caller, e.sha256))}
    return JSONResponse({"have": sorted(held & readable)})


@router.post("/import", summary="Import a bundle (the request body), verified and atomically")
async def import_(request: Request, store: StoreDep, caller: WriterDep,
                  force: bool = Query(False, description="Move refs even where this hub's branch is not an ancestor "
                                                         "of the incoming one.")) -> JSONResponse:
    require_write_token(caller, "importing a bundle")
    stream = request.stream()

    def chunks() -> Iterator[bytes]:
        while True:
            try:
                yield anyio.from_thread.run(stream.__anext__)
            except StopAsyncIteration:
                return

    def authorize(repo_type: str, repo_id: str) -> None:
        # The namespace first: a caller who may not write there gets the same answer whether or not a (private)
        # repo of that name exists, as when creating a repo.
        check_namespace_write(caller, repo_id.split("/", 1)[0])
        try:
            repo = store.get_repo(repo_id, repo_type=repo_type)
        except RepoNotFoundError:
            return
        if not can_see(caller, repo):
            raise RepoNotFoundError(repo_type, repo_id)

    reader = io.BufferedReader(ChunkReader(chunks()), CHUNK_SIZE)
    summary = await run_in_threadpool(import_bundle, store, reader, force=force, authorize=authorize,
                                      allow_pickle=request.app.state.config.allow_pickle, actor=caller.user)
    return JSONResponse(summary.to_json())
