"""Xet over HTTP: the Hub API's Xet token routes and the CAS API that ``hf_xet`` calls.

Token routes (``/api/{models|datasets}/{repo}/xet-{read|write}-token/{revision}``) answer the token in the
JSON body and in ``X-Xet-*`` headers (``huggingface_hub`` reads one or the other depending on the path).
The CAS API lives under :data:`CAS_PREFIX` (the ``casUrl`` the token routes name):

- ``POST /v1/xorbs/default/{hash}``: a serialized xorb, validated while it streams into the blob store;
- ``POST /v1/shards``: files and their chunk runs, validated, then recorded for the token's repo;
- ``GET /v1/reconstructions/{file hash}`` (``Range`` optional): terms and signed fetch URLs;
- ``GET /v1/chunks/default-merkledb/{hash}`` (and ``default``): a global dedup answer, or 404;
- ``GET /v1/fetch/{xorb hash}?…``: one signed byte range of a stored xorb (no Authorization header).

The v2 routes a newer client tries first answer 404, which makes it use v1. Every rule about who may do
what is in :mod:`fmhub.server._auth`; every rule about the data is in :mod:`fmhub.xet`.
"""

from __future__ import annotations

import asyncio
import io
import tempfile
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from fmhub.errors import InvalidInputError, PayloadTooLargeError, PermissionDeniedError, XetFileNotFoundError
from fmhub.server._auth import (
    ReaderDep,
    StoreDep,
    WriterDep,
    XetGrant,
    check_fetch,
    may_read_blob,
    may_read_xet_file,
    mint_xet_token,
    proposable_repo,
    sign_fetch,
    visible_repo,
    xet_caller,
)
from fmhub.server._hf import HTTP_CHUNK, repo_type_of
from fmhub.server._lfs import BodyReader
from fmhub.store import Store
from fmhub.xet import XetStorage, from_hex
from fmhub.xet._xorb import MAX_XORB_BYTES

__all__ = ["router", "CAS_PREFIX", "MAX_SHARD_BYTES"]

router = APIRouter()

#: Where the CAS API is mounted on the hub (its ``casUrl``).
CAS_PREFIX = "/xet-cas"
#: Largest shard accepted (a 100 GB file's shard is ~80 MB).
MAX_SHARD_BYTES = 512 * 1024 * 1024
_SPOOL_IN_MEMORY = 8 * 1024 * 1024
_PREFIXES = ("default", "default-merkledb")
#: Xorbs taken in at once per worker. A client sends many in parallel; each in flight holds a few MB of
#: buffers and a core's worth of decompressing and hashing, so more at once only costs memory. The others
#: wait unread (TCP holds them back) until a slot frees.
XORBS_AT_ONCE = 2


def _xorb_slots(request: Request) -> asyncio.Semaphore:
    state = request.app.state
    if getattr(state, "xorb_slots", None) is None:
        state.xorb_slots = asyncio.Semaphore(XORBS_AT_ONCE)
    return state.xorb_slots


def _cas_url(request: Request) -> str:
    return str(request.base_url).rstrip("/") + CAS_PREFIX


def _token_answer(request: Request, token: str, expires: int) -> JSONResponse:
    cas = _cas_url(request)
    return JSONResponse({"casUrl": cas, "accessToken": token, "exp": expires},
                        headers={"X-Xet-Cas-Url": cas, "X-Xet-Access-Token": token,
                                 "X-Xet-Token-Expiration": str(expires)})


@router.get("/api/{plural}/{namespace}/{name}/xet-write-token/{revision:path}", tags=["huggingface"],
            summary="A Xet write token for the repo (uploads of large files through huggingface_hub)")
def xet_write_token(store: StoreDep, caller: WriterDep, request: Request, plural: str, namespace: str, name: str,
                    revision: str) -> JSONResponse:
    # Writers, and readers uploading for a pull request (``?create_pr=1`` or their own ``refs/pr/N``): a write
    # token uploads bytes; the commit naming them is checked on its own.
    repo, _ = proposable_repo(store, caller, repo_type_of(plural), f"{namespace}/{name}", upload_only=True)
    return _token_answer(request, *mint_xet_token(request, caller, repo, "write"))


@router.get("/api/{plural}/{namespace}/{name}/xet-read-token/{revision:path}", tags=["huggingface"],
            summary="A Xet read token for the repo (downloads through huggingface_hub)")
def xet_read_token(store: StoreDep, caller: ReaderDep, request: Request, plural: str, namespace: str, name: str,
                   revision: str) -> JSONResponse:
    repo = visible_repo(store, caller, repo_type_of(plural), f"{namespace}/{name}")
    return _token_answer(request, *mint_xet_token(request, caller, repo, "read"))


# -- CAS: uploads -----------------------------------------------------------------------------------


def _check_prefix(prefix: str) -> None:
    if prefix not in _PREFIXES:
        raise InvalidInputError(f"unknown CAS prefix {prefix!r}", hint="use 'default'")


@router.post(CAS_PREFIX + "/v1/xorbs/{prefix}/{xorb_hash}", tags=["xet"], summary="Upload a xorb")
async def upload_xorb(store: StoreDep, request: Request, prefix: str, xorb_hash: str) -> JSONResponse:
    grant: XetGrant = await run_in_threadpool(xet_caller, request, "write")
    _check_prefix(prefix)
    from_hex(xorb_hash, "xorb hash")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_XORB_BYTES:
        raise PayloadTooLargeError(f"a xorb is at most {MAX_XORB_BYTES} bytes, this one {declared}")
    async with _xorb_slots(request):
        body = io.BufferedReader(BodyReader(request.stream(), 2 * MAX_XORB_BYTES), buffer_size=1024 * 1024)
        inserted = await run_in_threadpool(XetStorage(store).receive_xorb, xorb_hash, body, repo=grant.repo,
                                           uploader=grant.caller.user if grant.caller else None)
    return JSONResponse({"was_inserted": inserted})


async def _spool(request: Request, limit: int) -> tempfile.SpooledTemporaryFile:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLargeError(f"a shard is at most {limit} bytes, this one {declared}")
    spool = tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY)
    received = 0
    try:
        async for piece in request.stream():
            received += len(piece)
            if received > limit:
                raise PayloadTooLargeError(f"a shard is at most {limit} bytes")
            spool.write(piece)  # memory up to 8 MB, then a temporary file (shards are rarely that large)
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    return spool


@router.post(CAS_PREFIX + "/v1/shards", tags=["xet"], summary="Upload a shard: register files for the repo")
async def upload_shard(store: StoreDep, request: Request) -> JSONResponse:
    grant: XetGrant = await run_in_threadpool(xet_caller, request, "write")
    caller = grant.caller
    spool = await _spool(request, MAX_SHARD_BYTES)
    with spool:
        await run_in_threadpool(
            XetStorage(store).receive_shard, spool, repo=grant.repo, actor=caller.user if caller else "anonymous",
            may_read=lambda sha256: may_read_blob(store, caller, sha256),
            max_file_bytes=request.app.state.config.max_file_bytes)
    request.app.state.xet_misses.clear()  # files this shard registered now download through Xet
    return JSONResponse({"result": 1})


# -- CAS: downloads ---------------------------------------------------------------------------------


def _range(header: str | None) -> tuple[int, int] | None:
    """``bytes=a-b`` (inclusive) → [a, b + 1); None for no header."""
    if not header:
        return None
    unit, _, span = header.strip().partition("=")
    first, _, last = span.partition("-")
    if unit != "bytes" or not first.isdigit() or not (last.isdigit() or last == ""):
        raise InvalidInputError(f"unsupported Range {header[:80]!r}", hint="use bytes=START-END")
    start = int(first)
    end = int(last) + 1 if last else 2**63
    if end <= start:
        raise InvalidInputError(f"empty Range {header[:80]!r}")
    return start, end


def _reconstruction(store: Store, request: Request, file_hash: str) -> dict[str, Any]:
    grant = xet_caller(request, "read")
    from_hex(file_hash, "file hash")
    plan = XetStorage(store).reconstruction(file_hash, _range(request.headers.get("range")),
                                            may_read=lambda sha256: may_read_xet_file(store, grant, sha256))
    base = _cas_url(request)
    fetch_info: dict[str, list[dict[str, Any]]] = {}
    for item in plan.fetch:
        query = sign_fetch(request, grant, item.xorb_hash, item.byte_start, item.byte_end)
        fetch_info.setdefault(item.xorb_hash, []).append({
            "range": {"start": item.start, "end": item.end},
            "url": f"{base}/v1/fetch/{item.xorb_hash}?{query}",
            "url_range": {"start": item.byte_start, "end": item.byte_end},
        })
    return {
        "offset_into_first_range": plan.offset_into_first_range,
        "terms": [{"hash": t.xorb_hash, "unpacked_length": t.unpacked_length, "range": {"start": t.start, "end": t.end}}
                  for t in plan.terms],
        "fetch_info": fetch_info,
    }


@router.get(CAS_PREFIX + "/v1/reconstructions/{file_hash}", tags=["xet"],
            summary="How to rebuild a file (Range: bytes=a-b for part of it): terms and signed fetch URLs")
def reconstruction(store: StoreDep, request: Request, file_hash: str) -> JSONResponse:
    return JSONResponse(_reconstruction(store, request, file_hash))


@router.get(CAS_PREFIX + "/v2/reconstructions/{file_hash}", tags=["xet"],
            summary="Not served: 404 makes the client use /v1/reconstructions")
@router.post(CAS_PREFIX + "/v2/shards", tags=["xet"], summary="Not served: 404 makes the client use /v1/shards")
def v2_not_served(request: Request) -> JSONResponse:
    xet_caller(request, "read")
    return JSONResponse({"error": "this hub serves the v1 CAS API"}, status_code=404)


@router.get(CAS_PREFIX + "/v1/chunks/{prefix}/{chunk_hash}", tags=["xet"],
            summary="Global dedup: a shard of xorbs holding this chunk that the caller may use (404: none)")
def dedup(store: StoreDep, request: Request, prefix: str, chunk_hash: str) -> Response:
    grant = xet_caller(request, "read")
    _check_prefix(prefix)
    answer = XetStorage(store).dedup_answer(chunk_hash, repo=grant.repo,
                                            may_read=lambda sha256: may_read_blob(store, grant.caller, sha256))
    if answer is None:
        return JSONResponse({"error": "no xorb this upload may use holds that chunk"}, status_code=404)
    return Response(answer, media_type="application/octet-stream")


@router.get(CAS_PREFIX + "/v1/fetch/{xorb_hash}", tags=["xet"],
            summary="One signed byte range of a xorb (the URL from a reconstruction; no token needed)")
def fetch(store: StoreDep, request: Request, xorb_hash: str, range: str, expires: int, token: int,  # noqa: A002
          repo_type: str, repo: str, sig: str) -> Response:
    signed_start, signed_end = check_fetch(request, xorb_hash, range, expires, token, repo_type, repo, sig)
    wanted = _range(request.headers.get("range"))
    if wanted is None:
        raise PermissionDeniedError("a fetch URL needs the Range header its reconstruction gave",
                                    hint=f"send Range: bytes={signed_start}-{signed_end}")
    start, end = wanted[0], min(wanted[1], signed_end + 1)
    if start < signed_start or start >= end:
        raise PermissionDeniedError("this URL is signed for another byte range")
    found = XetStorage(store).xorb_blob(xorb_hash)
    if found is None:
        raise XetFileNotFoundError(xorb_hash)
    blob_sha256, size = found
    end = min(end, size)
    headers = {"Content-Range": f"bytes {start}-{end - 1}/{size}", "Content-Length": str(end - start),
               "Cache-Control": "private, max-age=0"}
    body = store.blobs.iter_chunks(blob_sha256, start, end, chunk_size=HTTP_CHUNK)
    return StreamingResponse(body, status_code=206, headers=headers, media_type="application/octet-stream")
