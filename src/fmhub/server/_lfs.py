"""The Git LFS batch API for large files: batch → signed PUT (streamed, hashed) → verify.

``huggingface_hub`` PUTs the bytes to the ``href`` the batch answer gives, without its token, as it
would to S3; so the href carries its own HMAC signature naming repo, object, size, expiry and the hub
token that asked for it. When the URL is used, that token must still be active and its user still allowed
to write to the repo: revoking the token (or losing write access) kills its upload URLs at once, as it
does its Xet tokens. The bytes stream into the blob store, hashed on the way; a wrong sha256 or size
stores nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import anyio.from_thread
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from fmhub.accounts import Principal
from fmhub.errors import (
    AuthenticationError,
    BlobNotFoundError,
    FmhubError,
    InvalidInputError,
    PayloadTooLargeError,
    RepoNotFoundError,
)
from fmhub.server._auth import StoreDep, WriterDep, caller_of_token, may_reference_blob, proposable_repo
from fmhub.server._hf import repo_url
from fmhub.store import Repo, Store
from fmhub.store.blobs import check_sha256

__all__ = ["router", "UPLOAD_URL_TTL", "BodyReader"]

router = APIRouter(tags=["git-lfs"])

#: Seconds an upload URL stays valid (a 100 GB file at 50 MB/s takes ~35 min).
UPLOAD_URL_TTL = 3 * 3600
_LFS_JSON = "application/vnd.git-lfs+json"
_BRIDGE_CHUNK = 1024 * 1024  # bytes handed from the event loop to the writing thread at a time


def _signing_key(request: Request) -> bytes:
    state = request.app.state
    if getattr(state, "lfs_key", None) is None:
        store: Store = state.store
        state.lfs_key = bytes.fromhex(store.shared_setting("lfs_signing_key", lambda: secrets.token_hex(32)))
    return state.lfs_key


def _signature(key: bytes, repo_type: str, repo_id: str, oid: str, size: int, expires: int, token: int) -> str:
    message = "\n".join(("upload", repo_type, repo_id.lower(), oid, str(size), str(expires), str(token))).encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


class _LfsObject(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    oid: str
    size: int


class _BatchRequest(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    operation: str
    objects: list[_LfsObject] = Field(max_length=10_000)
    transfers: list[str] | None = None
    hash_algo: str = "sha256"


def _repo_from_git_path(namespace: str, name_git: str) -> str:
    if not name_git.endswith(".git"):
        raise InvalidInputError("the LFS API lives under /{repo_id}.git/info/lfs/")
    return f"{namespace}/{name_git[:-4]}"


def _already_usable(store: Store, caller: Principal, repo: Repo, oid: str, size: int) -> bool:
    """True if the object is stored and this repo may reference it without receiving the bytes again."""
    if store.blob_size(oid) != size:  # a blob, or a file held otherwise (Xet chunks)
        return False
    return may_reference_blob(store, caller, repo, oid)


def _batch(store: Store, caller: Principal, request: Request, repo_type: str, namespace: str, name_git: str,
           body: _BatchRequest) -> JSONResponse:
    # Writers, and readers uploading for a pull request: bytes alone change nothing (commits are checked).
    repo, _ = proposable_repo(store, caller, repo_type, _repo_from_git_path(namespace, name_git), upload_only=True)
    if body.operation != "upload":
        raise InvalidInputError(f"LFS operation {body.operation!r} is not supported",
                                hint="download files with GET /{repo_id}/resolve/{revision}/{path}")
    if body.hash_algo != "sha256":
        raise InvalidInputError(f"hash_algo {body.hash_algo!r} is not supported", hint="use sha256")
    limit = request.app.state.config.max_file_bytes
    key = _signing_key(request)
    # The URL names the hub token by its id (never its secret): the upload checks it is still active.
    token = caller.token_id if caller.token_id is not None else 0
    expires = int(time.time()) + UPLOAD_URL_TTL
    base = str(request.base_url).rstrip("/")
    objects: list[dict[str, Any]] = []
    for obj in body.objects:
        answer: dict[str, Any] = {"oid": obj.oid, "size": obj.size, "authenticated": True}
        try:
            oid = check_sha256(obj.oid)
        except InvalidInputError:
            answer["error"] = {"code": 422, "message": "oid must be a sha256 hex digest"}
            objects.append(answer)
            continue
        if obj.size < 0 or obj.size > limit:
            answer["error"] = {"code": 413 if obj.size > limit else 422,
                               "message": f"size must be between 0 and this hub's limit of {limit} bytes"}
        elif not _already_usable(store, caller, repo, oid, obj.size):
            query = urlencode({"size": obj.size, "expires": expires, "token": token,
                               "sig": _signature(key, repo.repo_type, repo.repo_id, oid, obj.size, expires, token)})
            answer["actions"] = {
                "upload": {"href": f"{base}/api/lfs/upload/{repo.repo_type}/{repo.repo_id}/{oid}?{query}",
                           "header": {}, "expires_in": UPLOAD_URL_TTL},
                "verify": {"href": f"{repo_url(request, repo)}.git/info/lfs/objects/verify", "header": {}},
            }
        objects.append(answer)
    return JSONResponse({"transfer": "basic", "objects": objects, "hash_algo": "sha256"}, media_type=_LFS_JSON)


@router.post("/{namespace}/{name_git}/info/lfs/objects/batch", summary="Git LFS batch (upload) for a model repo")
def lfs_batch_model(store: StoreDep, caller: WriterDep, request: Request, namespace: str, name_git: str,
                    body: _BatchRequest) -> JSONResponse:
    return _batch(store, caller, request, "model", namespace, name_git, body)


@router.post("/datasets/{namespace}/{name_git}/info/lfs/objects/batch",
             summary="Git LFS batch (upload) for a dataset repo")
def lfs_batch_dataset(store: StoreDep, caller: WriterDep, request: Request, namespace: str, name_git: str,
                      body: _BatchRequest) -> JSONResponse:
    return _batch(store, caller, request, "dataset", namespace, name_git, body)


class BodyReader(io.RawIOBase):
    """A blocking file over the request's async body, for the blob store's writer thread."""

    def __init__(self, chunks: AsyncIterator[bytes], limit: int) -> None:
        self._chunks = chunks
        self._buffer = memoryview(b"")
        self._limit = limit
        self.received = 0

    def readable(self) -> bool:
        return True

    async def _next(self) -> bytes:
        gathered = bytearray()
        async for chunk in self._chunks:  # hand over ~1 MB at a time: fewer thread hops
            gathered += chunk
            if len(gathered) >= _BRIDGE_CHUNK:
                break
        return bytes(gathered)

    def readinto(self, buffer) -> int:  # type: ignore[override]
        if not self._buffer:
            data = anyio.from_thread.run(self._next)
            if not data:
                return 0
            self.received += len(data)
            if self.received > self._limit:
                raise InvalidInputError(f"the upload is longer than the {self._limit} bytes the batch declared")
            self._buffer = memoryview(data)
        count = min(len(buffer), len(self._buffer))
        buffer[:count] = self._buffer[:count]
        self._buffer = self._buffer[count:]
        return count


@router.put("/api/lfs/upload/{repo_type}/{namespace}/{name}/{oid}",
            summary="Receive an LFS object (the signed URL from the batch answer)")
async def lfs_upload(store: StoreDep, request: Request, repo_type: str, namespace: str, name: str, oid: str,
                     size: int, expires: int, token: int, sig: str) -> JSONResponse:
    repo_id = f"{namespace}/{name}"
    invalid = AuthenticationError("invalid or expired upload URL", hint="ask the LFS batch endpoint for a new one")
    try:
        oid = check_sha256(oid)
    except InvalidInputError:
        raise invalid from None
    expected = _signature(_signing_key(request), repo_type, repo_id, oid, size, expires, token)
    if not hmac.compare_digest(expected, sig) or expires < time.time():
        raise invalid
    # Checked now, not when the URL was made: a revoked or expired token, or a user who lost write
    # access to the repo, uploads nothing (the same 401 whatever failed; a deleted repo is still a 404).
    try:
        caller = await run_in_threadpool(caller_of_token, request, token)
        if caller is None:
            raise invalid
        await run_in_threadpool(lambda: proposable_repo(store, caller, repo_type, repo_id, upload_only=True))
    except RepoNotFoundError:
        raise
    except FmhubError:
        raise invalid from None
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) != size:
        raise (PayloadTooLargeError if int(declared) > size else InvalidInputError)(
            f"the body is {declared} bytes, the batch declared {size}")
    reader = io.BufferedReader(BodyReader(request.stream(), size), buffer_size=_BRIDGE_CHUNK)
    await run_in_threadpool(store.put_stream, reader, expected_sha256=oid, expected_size=size)
    await run_in_threadpool(store.record_upload, repo_id, oid, repo_type=repo_type)
    return JSONResponse({}, media_type=_LFS_JSON)


def _verify(store: Store, caller: Principal, repo_type: str, namespace: str, name_git: str,
            body: _LfsObject) -> JSONResponse:
    repo, _ = proposable_repo(store, caller, repo_type, _repo_from_git_path(namespace, name_git), upload_only=True)
    oid = check_sha256(body.oid)
    size = store.blob_size(oid) if store.has_upload(repo.repo_id, oid, repo_type=repo.repo_type) else None
    if size is None:
        raise BlobNotFoundError(oid)
    if size != body.size:
        raise InvalidInputError(f"object {oid} holds {size} bytes, not {body.size}")
    return JSONResponse({}, media_type=_LFS_JSON)


@router.post("/{namespace}/{name_git}/info/lfs/objects/verify", summary="Git LFS verify for a model repo")
def lfs_verify_model(store: StoreDep, caller: WriterDep, namespace: str, name_git: str,
                     body: _LfsObject) -> JSONResponse:
    return _verify(store, caller, "model", namespace, name_git, body)


@router.post("/datasets/{namespace}/{name_git}/info/lfs/objects/verify", summary="Git LFS verify for a dataset repo")
def lfs_verify_dataset(store: StoreDep, caller: WriterDep, namespace: str, name_git: str,
                       body: _LfsObject) -> JSONResponse:
    return _verify(store, caller, "dataset", namespace, name_git, body)
