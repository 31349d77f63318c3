"""The read side of the Hugging Face Hub protocol: file downloads, repo info, trees, refs, commits, listings.

Shapes follow what ``huggingface_hub`` parses (``file_download.py``, ``hf_api.py``). Every route goes
through :func:`~fmhub.server._auth.visible_repo`, so a private repo answers exactly like a missing one to
anyone who may not see it.
"""

from __future__ import annotations

import html
import json
import re
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import parse_qs, quote, unquote, urlencode

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.convertors import Convertor, register_url_convertor

from fmhub.accounts import Principal
from fmhub.cards import card_tags, parse_card
from fmhub.errors import FmhubError, InvalidInputError, RepoNotFoundError
from fmhub.server._auth import ReaderDep, StoreDep, can_see, visible_repo
from fmhub.store import Commit, Repo, Store, TreeEntry
from fmhub.store.gitoids import content_git_sha1
from fmhub.store.history import last_commits
from fmhub.store.paths import validate_folder, validate_path
from fmhub.server._gitfiles import LFS_THRESHOLD, describe_files, git_rules, rules_for_commit, rules_for_revision
from fmhub.xet import XetStorage

__all__ = ["router", "PAGE_SIZE", "LFS_THRESHOLD", "URL_PREFIX", "RepoDep", "repo_type_of", "repo_url", "iso",
           "split_raw"]

router = APIRouter()

#: Items per page of trees and commit lists (the Hub pages with ``Link: <…>; rel="next"``).
PAGE_SIZE = 1000
COMMITS_PAGE_SIZE = 50

URL_PREFIX = {"model": "", "dataset": "datasets/"}


def repo_url(request: Request, repo: Repo | tuple[str, str]) -> str:
    """The repo's web URL on this server (``…/datasets/ns/name`` for datasets), as the Hub answers it."""
    repo_type, repo_id = (repo.repo_type, repo.repo_id) if isinstance(repo, Repo) else repo
    return f"{str(request.base_url).rstrip('/')}/{URL_PREFIX[repo_type]}{repo_id}"
#: Files up to this size are answered in one piece; larger ones stream in HTTP_CHUNK pieces, so a
#: download holds ~2 chunks in memory (measured: 64 concurrent downloads of 10 MiB peaked at 565 MB
#: with 4 MiB chunks).
SMALL_FILE = 1024 * 1024
HTTP_CHUNK = 1024 * 1024
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def iso(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


# -- downloads -------------------------------------------------------------------------------------


def split_raw(request: Request, marker: str) -> tuple[list[str], str, str]:
    """Split the *raw* URL path so a quoted ``/`` in a revision (``refs%2Fpr%2F1``) stays in it.

    Returns (repo id parts, revision, file path), each percent-decoded exactly once.
    """
    raw = request.scope.get("raw_path", request.url.path.encode()).decode("latin-1").split("?", 1)[0]
    parts = raw.strip("/").split("/")
    if parts and parts[0] == "api":  # /api/{plural}/{namespace}/{name}/{marker}/...
        parts = parts[2:]
    elif parts and parts[0] == "datasets":
        parts = parts[1:]
    # Routing guarantees the shape {namespace}/{name}/{marker}/{revision}/{path...}; a repo may itself
    # be called "resolve", so positions, not a search for the marker, decide.
    if len(parts) < (5 if marker == "resolve" else 4) or parts[2] != marker:
        raise InvalidInputError(f"expected /{{repo_id}}/{marker}/{{revision}}/{{path}}")
    repo_parts = [unquote(p) for p in parts[:2]]
    revision = unquote(parts[3])
    path = "/".join(unquote(p) for p in parts[4:])
    return repo_parts, revision, path


def _parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``Range: bytes=a-b`` → [start, end) or None for the whole file; raises for unsatisfiable ranges."""
    if not header:
        return None
    match = _RANGE.match(header.strip())
    if not match or (not match.group(1) and not match.group(2)):
        return None  # multi-range or garbage: serve the whole file (RFC 9110 allows ignoring Range)
    first, last = match.group(1), match.group(2)
    if first:
        start = int(first)
        end = min(int(last) + 1, size) if last else size
    else:  # suffix: the last N bytes
        start, end = max(0, size - int(last)), size
    if start >= size or start >= end:
        raise _Unsatisfiable(size)
    return start, end


class _Unsatisfiable(Exception):
    def __init__(self, size: int) -> None:
        self.size = size


class XetMisses:
    """Blobs recently found not held as Xet files, remembered for ``ttl`` seconds (``app.state.xet_misses``).

    Every download asks whether its blob is held as Xet chunks (then the answer carries the Xet headers): a
    read transaction per request, a fifth of a small file's cost. Most blobs are not, and a stale "no" is
    harmless: the client downloads with the resolve GET, which serves any blob. So only misses are kept,
    briefly; a shard upload in this process forgets them at once, other workers within ``ttl``. A "yes" is
    always looked up (a stale one would send clients to Xet for a file gc has dropped).
    """

    def __init__(self, ttl: float = 10.0, size: int = 4096) -> None:
        self.ttl, self.size = ttl, size
        self._until: dict[str, float] = {}

    def __contains__(self, sha256: str) -> bool:
        until = self._until.get(sha256)
        return until is not None and until > time.monotonic()

    def add(self, sha256: str) -> None:
        if len(self._until) >= self.size:
            self._until = {}  # bounded; no bookkeeping per hit
        self._until[sha256] = time.monotonic() + self.ttl

    def clear(self) -> None:
        self._until = {}


def _xet_headers(store: Store, request: Request, repo: Repo, commit_oid: str, sha256: str) -> dict[str, str]:
    """The headers that make a Xet client download a file through Xet (see :mod:`fmhub.server._xet`); none
    for files stored as plain blobs, which the client then downloads with this route's GET."""
    misses: XetMisses | None = getattr(request.app.state, "xet_misses", None)
    if misses is not None and sha256 in misses:
        return {}
    found = XetStorage(store).file_by_sha256(sha256)
    if found is None:
        if misses is not None:
            misses.add(sha256)
        return {}
    refresh = f"{str(request.base_url).rstrip('/')}/api/{repo.repo_type}s/{repo.repo_id}/xet-read-token/{commit_oid}"
    return {"X-Xet-Hash": found.file_hash, "X-Xet-Refresh-Route": refresh, "Link": f'<{refresh}>; rel="xet-auth"'}


def _resolve_file(store: Store, caller: Principal | None, repo_type: str,
                  request: Request) -> tuple[Repo, Commit, TreeEntry]:
    repo_parts, revision, path = split_raw(request, "resolve")
    repo_id = "/".join(repo_parts)
    seen: list[Repo] = []

    def visible(repo: Repo) -> None:  # visible_repo's rule, checked inside the store's one read
        if not can_see(caller, repo):
            raise RepoNotFoundError(repo_type, repo_id)  # word for word what a missing repo raises
        seen.append(repo)

    commit, entry = store.get_entry(repo_id, path, revision, repo_type=repo_type, check=visible)
    return seen[0], commit, entry


def _not_modified(request: Request, etag: str) -> bool:
    """Whether ``If-None-Match`` names this ETag (or ``*``): the client's copy is current."""
    header = request.headers.get("if-none-match")
    if not header:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in header.split(",")}
    return etag in tags or "*" in tags


def _file_response(store: Store, caller: Principal | None, request: Request, repo_type: str, *,
                   inline_bytes: int = SMALL_FILE) -> Response:
    """The answer to a resolve request; bodies up to ``inline_bytes`` are read here, larger ones stream."""
    repo, commit, entry = _resolve_file(store, caller, repo_type, request)
    lfs = rules_for_commit(store, repo, commit.oid).is_lfs(entry.path, entry.size)
    headers = {
        "X-Repo-Commit": commit.oid,
        "X-Linked-Size": str(entry.size),
        "Accept-Ranges": "bytes",
        "Content-Disposition": f"inline; filename*=UTF-8''{quote(entry.path.rsplit('/', 1)[-1], safe='')}",
        "Cache-Control": "private, max-age=0",  # a branch can move: revalidate (the ETag is the content)
    }
    if lfs:  # as on the Hub: an LFS file is named by its sha256, and may be held as Xet chunks
        headers["ETag"] = headers["X-Linked-Etag"] = f'"{entry.blob_sha256}"'
        headers.update(_xet_headers(store, request, repo, commit.oid, entry.blob_sha256))
    else:  # a regular git file by its git blob id: the client's local-dir check hashes only sha256 ETags
        headers["ETag"] = f'"{content_git_sha1(store, {entry.blob_sha256: entry.size})[entry.blob_sha256]}"'
    if _not_modified(request, headers["ETag"]):  # the ETag names the content: the same tag, the same bytes
        return Response(status_code=304, headers=headers)
    accel = request.app.state.config.accel_redirect
    local = store.blobs.local_path(entry.blob_sha256) if accel and request.method == "GET" else None
    if local is not None and local.is_file():  # not for files held as Xet chunks: those stream from here
        # Behind nginx: it serves the blob itself (sendfile, Range) from an internal location; the
        # protocol headers travel with this answer (nginx adds them back, see docs/hub-server.md).
        return Response(status_code=200, headers={
            **headers, "X-Accel-Redirect": accel + "/".join(local.parts[-3:]), "Content-Length": "0"})
    try:
        span = _parse_range(request.headers.get("range"), entry.size)
    except _Unsatisfiable as exc:
        return Response(status_code=416, headers={**headers, "Content-Range": f"bytes */{exc.size}"})
    start, end = span if span else (0, entry.size)
    headers["Content-Length"] = str(end - start)
    status = 206 if span else 200
    if span:
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{entry.size}"
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers, media_type="application/octet-stream")
    if end - start <= inline_bytes:  # read here, in the caller's thread: no per-chunk thread hops
        return Response(b"".join(store.iter_file(entry, start, end)), status_code=status, headers=headers,
                        media_type="application/octet-stream")
    body: Iterator[bytes] = store.iter_file(entry, start, end, chunk_size=HTTP_CHUNK)
    return StreamingResponse(body, status_code=status, headers=headers, media_type="application/octet-stream")


#: Bodies read on the event loop when the store is local (see :func:`_answer_file`).
INLINE_BYTES = 64 * 1024


async def _answer_file(store: Store, caller: Principal | None, request: Request, repo_type: str) -> Response:
    """Answer on the event loop when the store reads locally, else from the thread pool.

    With SQLite metadata (WAL: a read never waits for a writer) and blobs in local files, resolving a
    file is two indexed queries on cached statements (commits and trees are cached: they never change)
    and, for a small file, one read of at most :data:`INLINE_BYTES`: less time than the hop to a worker
    thread and back, which was most of a small file's cost (``bench/small_file_bench.py``). Larger
    bodies stream from the thread pool as before; PostgreSQL or S3 (network round trips) stay off the loop.
    """
    if store.reads_locally:
        return _file_response(store, caller, request, repo_type, inline_bytes=INLINE_BYTES)
    return await run_in_threadpool(_file_response, store, caller, request, repo_type)


async def resolve_model_file(store: StoreDep, caller: ReaderDep, request: Request, namespace: str, name: str,
                             rest: str) -> Response:
    """Download a file of a model repo (HF protocol); ``Range`` gives 206."""
    return await _answer_file(store, caller, request, "model")


async def resolve_dataset_file(store: StoreDep, caller: ReaderDep, request: Request, namespace: str, name: str,
                               rest: str) -> Response:
    """Download a file of a dataset repo (HF protocol); ``Range`` gives 206."""
    return await _answer_file(store, caller, request, "dataset")


_RESOLVE_ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {"description": "The file's bytes", "content": {"application/octet-stream": {}}},
    206: {"description": "The bytes of the requested Range"},
    304: {"description": "If-None-Match names the file's ETag (sha256 of an LFS file, git blob id of a regular "
                         "one): the client's copy is current"},
    416: {"description": "The Range lies outside the file"},
}

for _method in ("GET", "HEAD"):
    router.add_api_route("/{namespace}/{name}/resolve/{rest:path}", resolve_model_file, methods=[_method],
                         operation_id=f"resolve_model_file_{_method.lower()}", tags=["huggingface"],
                         responses=_RESOLVE_ANSWERS)
    router.add_api_route("/datasets/{namespace}/{name}/resolve/{rest:path}", resolve_dataset_file,
                         methods=[_method], operation_id=f"resolve_dataset_file_{_method.lower()}",
                         tags=["huggingface"], responses=_RESOLVE_ANSWERS)


class _HubNamespace(Convertor):
    """A path segment that is not ``api``: the resolve route's namespace in :func:`resolve_fast_lane`."""

    regex = r"(?!api/)[^/]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


def resolve_fast_lane() -> APIRouter:
    """The resolve routes again, to be included before every other router (not in the OpenAPI document).

    Routing walks the routes in order and downloads are most of a hub's requests: behind ~70 API routes,
    matching cost a small file a third of its CPU. Ahead of them, the namespace refuses ``api``: no other
    GET or HEAD route can match ``/{namespace}/{name}/resolve/...`` otherwise (the others start with
    ``/api/``, or with ``/xet-cas/``, ``/datasets/`` followed by no ``resolve`` in third place), so every
    path goes where it went before; ``/api/...`` paths fall through to the routes above, in their place.
    """
    register_url_convertor("hub_namespace", _HubNamespace())
    lane = APIRouter()
    lane.add_api_route("/{namespace:hub_namespace}/{name}/resolve/{rest:path}", resolve_model_file,
                       methods=["GET", "HEAD"], include_in_schema=False)
    lane.add_api_route("/datasets/{namespace}/{name}/resolve/{rest:path}", resolve_dataset_file,
                       methods=["GET", "HEAD"], include_in_schema=False)
    return lane


# -- metadata --------------------------------------------------------------------------------------


def repo_type_of(plural: str) -> str:
    if plural not in ("models", "datasets"):
        raise RepoNotFoundError(plural, "?")
    return plural[:-1]


def api_repo(store: StoreDep, caller: ReaderDep, plural: str, namespace: str, name: str) -> Repo:
    """The repo an ``/api/{plural}/{namespace}/{name}/…`` route names, if the caller may see it."""
    return visible_repo(store, caller, repo_type_of(plural), f"{namespace}/{name}")


RepoDep = Annotated[Repo, Depends(api_repo)]


#: Cards larger than this are not parsed for ``cardData`` (the Hub's own limit is of this order).
MAX_CARD_BYTES = 1024 * 1024
_CARD_CACHE: dict[str, dict[str, Any]] = {}  # README blob sha256 -> metadata; blobs are immutable
_CARD_CACHE_SIZE = 1024


def card_metadata(store: Store, files: list[TreeEntry]) -> dict[str, Any] | None:
    """The YAML metadata of the revision's ``README.md``, or None (no card, too large or unparsable).

    A broken card never breaks repo info: it is reported by ``/api/validate-yaml`` and at upload.
    """
    entry = next((e for e in files if e.path == "README.md"), None)
    if entry is None or entry.size > MAX_CARD_BYTES:
        return None
    if entry.blob_sha256 not in _CARD_CACHE:
        text = b"".join(store.iter_file(entry)).decode("utf-8", "replace")
        try:
            metadata = parse_card(text).metadata
        except FmhubError:
            metadata = {}
        if len(_CARD_CACHE) >= _CARD_CACHE_SIZE:
            _CARD_CACHE.pop(next(iter(_CARD_CACHE)))
        _CARD_CACHE[entry.blob_sha256] = metadata
    return _CARD_CACHE[entry.blob_sha256] or None


def _repo_info(store: Store, repo: Repo, revision: str | None) -> dict[str, Any]:
    commit = store.resolve_revision(repo.repo_id, revision, repo_type=repo.repo_type)
    files = store.list_files(repo.repo_id, commit.oid, repo_type=repo.repo_type)
    siblings = []
    for item in describe_files(store, files, git_rules(store, files)):
        # sha256 is fmhub's addition (its own client names contents by it; huggingface_hub ignores it).
        sibling: dict[str, Any] = {"rfilename": item["path"], "size": item["size"], "blobId": item["oid"],
                                   "sha256": item["sha256"]}
        if lfs := item.get("lfs"):
            sibling["lfs"] = {"sha256": lfs["oid"], "size": lfs["size"], "pointerSize": lfs["pointerSize"]}
        if status := item.get("securityFileStatus"):
            sibling["securityFileStatus"] = status
        siblings.append(sibling)
    card = card_metadata(store, files)
    return {
        "_id": f"{repo.repo_type}/{repo.repo_id}",
        "id": repo.repo_id,
        "author": repo.namespace,
        "sha": commit.oid,
        "private": repo.private,
        "gated": False,
        "disabled": False,
        "downloads": 0,
        "likes": 0,
        "tags": card_tags(card, repo.repo_type) if card else [],
        "cardData": card,
        "createdAt": iso(repo.created_at),
        "lastModified": iso(commit.created_at),
        "updatedAt": iso(repo.updated_at),
        "defaultBranch": repo.default_branch,
        "siblings": siblings,
        "usedStorage": sum(entry.size for entry in files),
    }


@router.get("/api/{plural}/{namespace}/{name}", tags=["huggingface"], summary="Repo info at the default branch")
def repo_info(store: StoreDep, repo: RepoDep) -> dict[str, Any]:
    return _repo_info(store, repo, None)


@router.get("/api/{plural}/{namespace}/{name}/revision/{revision:path}", tags=["huggingface"],
            summary="Repo info at a revision")
def repo_info_at(store: StoreDep, repo: RepoDep, revision: str) -> dict[str, Any]:
    return _repo_info(store, repo, revision)


def _page(request: Request, items: list[Any], size: int) -> JSONResponse:
    """One page of ``items`` with a ``Link: <…>; rel="next"`` header when more follow."""
    try:
        cursor = int(request.query_params.get("cursor", "0"))
    except ValueError:
        raise InvalidInputError("cursor must be an integer") from None
    if cursor < 0:
        raise InvalidInputError("cursor must be ≥ 0")
    page = items[cursor:cursor + size]
    headers = {}
    if cursor + size < len(items):
        query = dict(request.query_params)
        query["cursor"] = str(cursor + size)
        headers["Link"] = f'<{request.url.replace(query=urlencode(query))}>; rel="next"'
    return JSONResponse(page, headers=headers)


def _folder_item(path: str) -> dict[str, Any]:
    return {"type": "directory", "oid": "0" * 40, "size": 0, "path": path}


def _tree_items(store: Store, repo: Repo, revision: str, folder: str | None, recursive: bool) -> list[dict]:
    prefix = "" if not folder else validate_folder(folder) + "/"
    entries = store.list_files(repo.repo_id, revision, repo_type=repo.repo_type, folder=folder or None)
    items: list[dict | TreeEntry] = []
    seen_dirs: set[str] = set()
    for entry in entries:
        relative = entry.path[len(prefix):]
        parts = relative.split("/")
        # Every folder on the way is listed (recursive) or just the first one (not recursive).
        for depth in range(1, len(parts) if recursive else min(2, len(parts))):
            directory = prefix + "/".join(parts[:depth])
            if directory not in seen_dirs:
                seen_dirs.add(directory)
                items.append(_folder_item(directory))
        if recursive or len(parts) == 1:
            items.append(entry)
    files = [e for e in items if isinstance(e, TreeEntry)]
    described = iter(describe_files(store, files, rules_for_revision(store, repo.repo_id, revision, repo.repo_type)))
    return [next(described) if isinstance(e, TreeEntry) else e for e in items]


def _with_last_commits(store: Store, repo: Repo, revision: str, items: list[dict]) -> list[dict]:
    """``expand``: each file's and folder's last commit (``HfFileSystem.modified()`` reads it)."""
    found = last_commits(store, repo.repo_id, revision, [item["path"] for item in items], repo_type=repo.repo_type)
    for item in items:
        if commit := found.get(item["path"]):
            item["lastCommit"] = {"id": commit.oid, "title": commit.title, "date": iso(commit.created_at)}
    return items


def _tree(store: Store, repo: Repo, request: Request, recursive: bool, expand: bool) -> JSONResponse:
    _, revision, folder = split_raw(request, "tree")  # a quoted "/" in a branch name stays in the revision
    items = _tree_items(store, repo, revision, folder or None, recursive)
    if not expand:
        return _page(request, items, PAGE_SIZE)
    page = _page(request, items, PAGE_SIZE // 10)  # expanded pages are costlier: smaller, like the Hub's
    expanded = _with_last_commits(store, repo, revision, json.loads(page.body))
    return JSONResponse(expanded, headers={k: v for k, v in page.headers.items() if k.lower() == "link"})


@router.get("/api/{plural}/{namespace}/{name}/tree/{revision}", tags=["huggingface"], summary="List files")
def tree_root(store: StoreDep, repo: RepoDep, request: Request, revision: str,
              recursive: bool = False, expand: bool = False) -> JSONResponse:
    return _tree(store, repo, request, recursive, expand)


@router.get("/api/{plural}/{namespace}/{name}/tree/{revision}/{path:path}", tags=["huggingface"],
            summary="List files under a folder")
def tree_folder(store: StoreDep, repo: RepoDep, request: Request, revision: str, path: str,
                recursive: bool = False, expand: bool = False) -> JSONResponse:
    return _tree(store, repo, request, recursive, expand)


@router.post("/api/{plural}/{namespace}/{name}/paths-info/{revision:path}", tags=["huggingface"],
             summary="Describe given paths (files and folders) at a revision; missing paths are left out")
async def paths_info(store: StoreDep, repo: RepoDep, request: Request, revision: str) -> JSONResponse:
    body = await request.body()  # bounded by the JSON body limit; the client sends a form, JSON is accepted too
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            form = json.loads(body or b"{}")
            wanted, expand = form.get("paths", []), form.get("expand") in (True, "true", "True", "1")
        except (ValueError, AttributeError):
            raise InvalidInputError("expected a JSON object with a 'paths' list") from None
    else:
        form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=False)
        wanted, expand = form.get("paths", []), form.get("expand", [""])[-1] in ("true", "True", "1")
    if not isinstance(wanted, list) or not all(isinstance(p, str) for p in wanted) or len(wanted) > 10_000:
        raise InvalidInputError("'paths' must be a list of at most 10,000 strings")
    paths = {validate_path(p.rstrip("/")) for p in wanted}
    files = await run_in_threadpool(store.list_files, repo.repo_id, revision, repo_type=repo.repo_type)
    items: list[dict[str, Any] | TreeEntry] = []
    folders_found: set[str] = set()
    for entry in files:
        if entry.path in paths:
            items.append(entry)
        parts = entry.path.split("/")
        for depth in range(1, len(parts)):
            folder = "/".join(parts[:depth])
            if folder in paths and folder not in folders_found:
                folders_found.add(folder)
                items.append(_folder_item(folder))
    chosen = [e for e in items if isinstance(e, TreeEntry)]
    described = iter(await run_in_threadpool(lambda: describe_files(store, chosen, git_rules(store, files))))
    answer = [next(described) if isinstance(e, TreeEntry) else e for e in items]
    if expand:
        answer = await run_in_threadpool(_with_last_commits, store, repo, revision, answer)
    return JSONResponse(answer)


@router.get("/api/{plural}/{namespace}/{name}/refs", tags=["huggingface"], summary="Branches and tags")
def refs(store: StoreDep, repo: RepoDep, include_prs: bool = False) -> dict[str, Any]:
    found = store.list_refs(repo.repo_id, repo_type=repo.repo_type)
    return {
        # createdAt / updatedAt / message are fmhub's additions (huggingface_hub ignores unknown fields).
        "branches": [{"name": r.name, "ref": f"refs/heads/{r.name}", "targetCommit": r.commit_oid,
                      "createdAt": iso(r.created_at), "updatedAt": iso(r.updated_at)} for r in found.branches],
        "tags": [{"name": r.name, "ref": f"refs/tags/{r.name}", "targetCommit": r.commit_oid, "message": r.message,
                  "createdAt": iso(r.created_at), "updatedAt": iso(r.updated_at)} for r in found.tags],
        "converts": [],
        # Only when asked (?include_prs=1), as on the Hub.
        "pullRequests": [{"name": r.name, "ref": r.name, "targetCommit": r.commit_oid, "createdAt": iso(r.created_at),
                          "updatedAt": iso(r.updated_at)} for r in found.pull_requests] if include_prs else [],
    }


@router.get("/api/{plural}/{namespace}/{name}/commits/{revision:path}", tags=["huggingface"],
            summary="History from a revision, newest first")
def commits(store: StoreDep, repo: RepoDep, request: Request, revision: str) -> JSONResponse:
    history = store.list_commits(repo.repo_id, revision, repo_type=repo.repo_type)
    items = [{"id": c.oid, "authors": [{"user": c.author}], "date": iso(c.created_at), "title": c.title,
              "message": c.message, "parents": list(c.parents), "treeId": c.tree_id, "generation": c.generation}
             for c in history]
    if "formatted" in request.query_params.getlist("expand[]"):  # list_repo_commits(formatted=True): safe HTML
        for item in items:
            paragraphs = [p for p in item["message"].split("\n\n") if p.strip()]
            item["formatted"] = {"title": html.escape(item["title"]),
                                 "message": "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)}
    return _page(request, items, COMMITS_PAGE_SIZE)
