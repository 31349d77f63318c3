"""The write side of the Hugging Face Hub protocol: repos, settings, branches, tags, preupload, commits.

Shapes follow what ``huggingface_hub`` sends and parses (``hf_api.py``, ``_commit_api.py``). Large files
arrive through Xet (:mod:`fmhub.server._xet`) or the Git LFS batch API (:mod:`fmhub.server._lfs`) and are
referenced by ``lfsFile`` lines, by sha256 either way.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from fmhub.accounts import Principal
from fmhub.cards import parse_card, validate_metadata
from fmhub.errors import (
    BlobNotFoundError,
    ConflictError,
    FmhubError,
    InvalidInputError,
    PayloadTooLargeError,
    RefExistsError,
    RepoExistsError,
    RevisionNotFoundError,
)
from fmhub.server._auth import (
    AuthenticatedDep,
    ReaderDep,
    StoreDep,
    WriterDep,
    check_namespace_write,
    may_reference_blob,
    proposable_repo,
    writable_repo,
)
from fmhub.http import error_response
from fmhub.server._gitfiles import git_rules, is_binary_sample
from fmhub.server._hf import URL_PREFIX, repo_type_of, repo_url
from fmhub.store import AddFile, Commit, DeleteFile, DeleteFolder, Operation, Repo, Store, discussions
from fmhub.store.blobs import check_sha256
from fmhub.store.gitoids import content_git_sha1
from fmhub.store.paths import validate_path, validate_repo_id, validate_stored_path

__all__ = ["router", "MAX_NDJSON_LINE"]

router = APIRouter(tags=["huggingface"])

#: One NDJSON line of a commit holds at most one inline (base64) file; larger files go through LFS.
MAX_NDJSON_LINE = 64 * 1024 * 1024
#: Bytes of a file's head the client sends with preupload (``sample``) for binary detection.
_SAMPLE_BYTES = 512


# -- repos -----------------------------------------------------------------------------------------


class _RepoRequest(BaseModel):
    # strict: JSON types as documented (private: 0 is not false); unknown fields are ignored, as the Hub does
    model_config = ConfigDict(extra="ignore", strict=True)
    name: str = Field(min_length=1, max_length=96)
    organization: str | None = None
    type: str | None = None
    private: bool | None = None
    visibility: str | None = None


def _named_repo(caller: Principal, body: _RepoRequest) -> tuple[str, str]:
    repo_type = body.type or "model"
    if repo_type not in URL_PREFIX:
        raise InvalidInputError(f"repo type {repo_type!r} is not served by fmhub", hint="use 'model' or 'dataset'")
    namespace = body.organization or caller.user
    return repo_type, validate_repo_id(f"{namespace}/{body.name}")


def _private(body_private: bool | None, visibility: str | None) -> bool | None:
    if visibility is not None:
        if visibility not in ("public", "private"):
            raise InvalidInputError(f"visibility {visibility!r} is not supported", hint="use 'public' or 'private'")
        return visibility == "private"
    return body_private


@router.post("/api/repos/create", summary="Create a repo (409 if it exists)")
def create_repo(store: StoreDep, caller: WriterDep, request: Request, body: _RepoRequest) -> JSONResponse:
    repo_type, repo_id = _named_repo(caller, body)
    check_namespace_write(caller, repo_id.split("/")[0])
    try:
        repo = store.create_repo(repo_id, repo_type=repo_type, private=bool(_private(body.private, body.visibility)),
                                 author=caller.user, actor=caller.user)
    except RepoExistsError as exc:  # huggingface_hub's exist_ok reads the url from the 409 body
        return error_response(exc, url=repo_url(request, (repo_type, repo_id)))
    return JSONResponse({"url": repo_url(request, repo), "name": repo.repo_id, "id": repo.repo_id})


@router.delete("/api/repos/delete", summary="Delete a repo")
def delete_repo(store: StoreDep, caller: WriterDep, body: _RepoRequest) -> dict[str, Any]:
    repo_type, repo_id = _named_repo(caller, body)
    repo = writable_repo(store, caller, repo_type, repo_id)
    store.delete_repo(repo.repo_id, repo_type=repo.repo_type, actor=caller.user)
    return {"deleted": repo.repo_id}


class _Settings(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    private: bool | None = None
    visibility: str | None = None
    gated: str | bool | None = None


@router.put("/api/{plural}/{namespace}/{name}/settings", summary="Change a repo's visibility")
def update_settings(store: StoreDep, caller: WriterDep, plural: str, namespace: str, name: str,
                    body: _Settings) -> dict[str, Any]:
    repo = writable_repo(store, caller, repo_type_of(plural), f"{namespace}/{name}")
    if body.gated not in (None, False):
        raise InvalidInputError("gated repos are not supported by fmhub", hint="use a private repo and org roles")
    private = _private(body.private, body.visibility)
    if private is None:
        raise InvalidInputError("nothing to change", hint='send {"visibility": "private"} or {"private": true}')
    repo = store.update_repo(repo.repo_id, repo_type=repo.repo_type, private=private, actor=caller.user)
    return {"id": repo.repo_id, "private": repo.private}


# -- branches and tags -----------------------------------------------------------------------------


class _BranchRequest(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    startingPoint: str | None = None  # noqa: N815 - the Hub's field name


@router.post("/api/{plural}/{namespace}/{name}/branch/{branch:path}", summary="Create a branch")
def create_branch(store: StoreDep, caller: WriterDep, plural: str, namespace: str, name: str, branch: str,
                  body: _BranchRequest | None = None) -> dict[str, Any]:
    repo = writable_repo(store, caller, repo_type_of(plural), f"{namespace}/{name}")
    try:
        ref = store.create_branch(repo.repo_id, branch, revision=body.startingPoint if body else None,
                                  repo_type=repo.repo_type, actor=caller.user)
    except RefExistsError as exc:
        exc.message = f"Reference refs/heads/{branch} already exists"  # the Hub's wording, which clients match
        raise
    return {"name": ref.name, "ref": f"refs/heads/{ref.name}", "targetCommit": ref.commit_oid}


@router.delete("/api/{plural}/{namespace}/{name}/branch/{branch:path}", summary="Delete a branch")
def delete_branch(store: StoreDep, caller: WriterDep, plural: str, namespace: str, name: str,
                  branch: str) -> dict[str, Any]:
    repo = writable_repo(store, caller, repo_type_of(plural), f"{namespace}/{name}")
    try:
        store.delete_branch(repo.repo_id, branch, repo_type=repo.repo_type, actor=caller.user)
    except RevisionNotFoundError as exc:
        exc.message = f"Invalid rev id: {branch}"  # the Hub's wording
        raise
    return {"deleted": branch}


class _TagRequest(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    tag: str
    message: str | None = None


@router.post("/api/{plural}/{namespace}/{name}/tag/{revision:path}", summary="Tag a revision")
def create_tag(store: StoreDep, caller: WriterDep, plural: str, namespace: str, name: str, revision: str,
               body: _TagRequest) -> dict[str, Any]:
    repo = writable_repo(store, caller, repo_type_of(plural), f"{namespace}/{name}")
    ref = store.create_tag(repo.repo_id, body.tag, revision=revision, message=body.message,
                           repo_type=repo.repo_type, actor=caller.user)
    return {"name": ref.name, "ref": f"refs/tags/{ref.name}", "targetCommit": ref.commit_oid}


@router.delete("/api/{plural}/{namespace}/{name}/tag/{tag:path}", summary="Delete a tag")
def delete_tag(store: StoreDep, caller: WriterDep, plural: str, namespace: str, name: str,
               tag: str) -> dict[str, Any]:
    repo = writable_repo(store, caller, repo_type_of(plural), f"{namespace}/{name}")
    store.delete_tag(repo.repo_id, tag, repo_type=repo.repo_type, actor=caller.user)
    return {"deleted": tag}


# -- preupload -------------------------------------------------------------------------------------


class _PreuploadFile(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    path: str
    size: int = Field(ge=0)
    sample: str | None = None


class _PreuploadRequest(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    files: list[_PreuploadFile] = Field(max_length=10_000)


def _sample(item: _PreuploadFile) -> bytes:
    if not item.sample:
        return b""
    try:
        return base64.b64decode(item.sample[:4 * _SAMPLE_BYTES], validate=True)[:_SAMPLE_BYTES]
    except binascii.Error:
        raise InvalidInputError(f"preupload: the sample of {item.path!r} is not valid base64") from None


@router.post("/api/{plural}/{namespace}/{name}/preupload/{revision:path}",
             summary="Decide inline or LFS upload per file; report ignored and unchanged files")
def preupload(store: StoreDep, caller: WriterDep, plural: str, namespace: str, name: str, revision: str,
              body: _PreuploadRequest, create_pr: bool = False) -> dict[str, Any]:
    """As the Hub decides: LFS for files of 10 MB or more, for paths the revision's ``.gitattributes`` marks
    ``filter=lfs`` and for binary contents (the sample); ``shouldIgnore`` for paths its ``.gitignore``
    matches; ``oid`` (git blob id, or sha256 for LFS) of a file already there with the same size, so the
    client skips unchanged files. Readers of the repo may ask too, for a pull request (``create_pr=1``, or
    ``refs/pr/N`` of their own)."""
    repo, _ = proposable_repo(store, caller, repo_type_of(plural), f"{namespace}/{name}", revision=revision,
                              create_pr=create_pr)
    files = store.list_files(repo.repo_id, revision, repo_type=repo.repo_type)
    current = {e.path: e for e in files}
    # A .gitignore uploaded in this commit applies to it (its sample is the whole file when it is small).
    new_ignore = next((item for item in body.files if item.path == ".gitignore" and item.size <= _SAMPLE_BYTES), None)
    rules = git_rules(store, files, gitignore=_sample(new_ignore) if new_ignore is not None else None)
    decided = []
    for item in body.files:
        path = validate_path(item.path)
        lfs = rules.is_lfs(path, item.size) or is_binary_sample(_sample(item))
        existing = current.get(path)
        same_size = existing if existing is not None and existing.size == item.size else None
        decided.append((item.path, path, lfs, same_size))
    sha1 = content_git_sha1(store, {e.blob_sha256: e.size for _, _, lfs, e in decided if e is not None and not lfs})
    answers = []
    for raw, path, lfs, existing in decided:
        oid = None if existing is None else existing.blob_sha256 if lfs else sha1[existing.blob_sha256]
        answers.append({"path": raw, "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": rules.ignored(path),
                        "oid": oid})
    return {"files": answers}


# -- validate-yaml ---------------------------------------------------------------------------------


class _YamlRequest(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    content: str = Field(max_length=1024 * 1024)
    repoType: str = "model"  # noqa: N815 - the Hub's field name


@router.post("/api/validate-yaml", summary="Validate a repo card's YAML metadata")
def validate_yaml(caller: ReaderDep, body: _YamlRequest) -> JSONResponse:
    try:
        metadata = parse_card(body.content).metadata
    except InvalidInputError as exc:
        return JSONResponse({"errors": [{"message": exc.message}], "warnings": []}, status_code=400,
                            headers={"X-Error-Message": exc.message[:200].encode("latin-1", "replace").decode()})
    result = validate_metadata(metadata, body.repoType if body.repoType in URL_PREFIX else "model")
    warnings = [{"message": w} for w in result.warnings]
    if result.errors:
        return JSONResponse({"errors": [{"message": e} for e in result.errors], "warnings": warnings},
                            status_code=400, headers={"X-Error-Message": "invalid metadata in README.md"})
    return JSONResponse({"warnings": warnings})


# -- commit ----------------------------------------------------------------------------------------


async def _ndjson_lines(request: Request, limit: int) -> AsyncIterator[bytes]:
    """The body's lines, refusing (413) bodies over ``limit`` before reading them when the size is declared."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLargeError(f"the commit body is {int(declared)} bytes, over this hub's limit of {limit}",
                                   hint="upload large files through LFS (huggingface_hub does for files ≥ 10 MB)")
    received = 0
    pending = bytearray()
    async for chunk in request.stream():
        received += len(chunk)
        if received > limit:
            raise PayloadTooLargeError(f"the commit body is over this hub's limit of {limit} bytes")
        pending += chunk
        while (newline := pending.find(b"\n")) >= 0:
            line = bytes(pending[:newline])
            del pending[:newline + 1]
            if line.strip():
                yield line
        if len(pending) > MAX_NDJSON_LINE:
            raise PayloadTooLargeError(f"a commit line is over {MAX_NDJSON_LINE} bytes",
                                       hint="upload large files through LFS")
    if pending.strip():
        yield bytes(pending)


def _field(value: dict, key: str, kind: type, line: int, *, required: bool = True) -> Any:
    item = value.get(key)
    if item is None and not required:
        return None
    if not isinstance(item, kind) or isinstance(item, bool) and kind is int:
        raise InvalidInputError(f"commit line {line}: {key!r} must be a {kind.__name__}")
    return item


def _lfs_reference(store: Store, caller: Principal, repo: Repo, oid: str, line: int) -> int:
    """Size of an LFS object the commit may reference: uploaded to this repo, or readable elsewhere."""
    try:
        oid = check_sha256(oid)
    except InvalidInputError:
        raise InvalidInputError(f"commit line {line}: 'oid' must be a sha256 hex digest") from None
    size = store.blob_size(oid) if may_reference_blob(store, caller, repo, oid) else None
    if size is None:
        raise BlobNotFoundError(oid)  # same answer whether the bytes exist elsewhere or not at all
    return size


def _folders_deleted_by_name(store: Store, repo: Repo, revision: str, operations: list[Operation]) -> list[Operation]:
    """``deletedFile`` of a folder's name deletes the folder, as on the Hub (``delete_file("folder")`` and
    ``delete_folder("folder")`` without the trailing ``/`` send it that way)."""
    files = {e.path for e in store.list_files(repo.repo_id, revision, repo_type=repo.repo_type)}
    folders = {p.rsplit("/", 1)[0] for p in files if "/" in p}
    folders |= {f.rsplit("/", i)[0] for f in list(folders) for i in range(1, f.count("/") + 1)}
    return [DeleteFolder(op.path) if isinstance(op, DeleteFile) and op.path not in files and op.path in folders
            else op for op in operations]


@router.post("/api/{plural}/{namespace}/{name}/commit/{revision:path}",
             summary="Commit (NDJSON: header, file, lfsFile, deletedFile, deletedFolder lines)")
async def create_commit(store: StoreDep, caller: WriterDep, request: Request, plural: str, namespace: str,
                        name: str, revision: str) -> JSONResponse:
    create_pr = request.query_params.get("create_pr") in ("1", "true", "True")
    # Writers commit anywhere; readers only propose: a new pull request, or commits to one they opened.
    repo, _ = await run_in_threadpool(lambda: proposable_repo(store, caller, repo_type_of(plural),
                                                              f"{namespace}/{name}", revision=revision,
                                                              create_pr=create_pr))
    config = request.app.state.config
    header: dict[str, Any] | None = None
    operations: list[Operation] = []
    number = 0
    async for raw in _ndjson_lines(request, config.max_commit_bytes):
        number += 1
        try:
            item = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise InvalidInputError(f"commit line {number} is not JSON") from None
        if not isinstance(item, dict) or not isinstance(item.get("value"), dict):
            raise InvalidInputError(f"commit line {number} must be {{\"key\": ..., \"value\": {{...}}}}")
        key, value = item.get("key"), item["value"]
        if key == "header":
            if header is not None or number != 1:
                raise InvalidInputError("the commit header must be the first line, once")
            header = value
        elif header is None:
            raise InvalidInputError("the commit header must be the first line")
        elif key == "file":
            path = validate_path(_field(value, "path", str, number))
            if value.get("encoding", "base64") != "base64":
                raise InvalidInputError(f"commit line {number}: only base64 content is supported")
            try:
                data = base64.b64decode(_field(value, "content", str, number), validate=True)
            except binascii.Error:
                raise InvalidInputError(f"commit line {number}: 'content' is not valid base64") from None
            blob = await run_in_threadpool(store.put_bytes, data)
            operations.append(AddFile(path, blob.sha256, blob.size))
        elif key == "lfsFile":
            path = validate_path(_field(value, "path", str, number))
            if value.get("algo", "sha256") != "sha256":
                raise InvalidInputError(f"commit line {number}: only sha256 LFS objects are supported")
            oid = _field(value, "oid", str, number)
            size = await run_in_threadpool(_lfs_reference, store, caller, repo, oid, number)
            declared = _field(value, "size", int, number, required=False)
            if declared is not None and declared != size:
                raise InvalidInputError(f"commit line {number}: {path!r} declares {declared} bytes, "
                                        f"the uploaded object has {size}")
            operations.append(AddFile(path, oid.lower(), size))
        elif key == "deletedFile":
            operations.append(DeleteFile(validate_stored_path(_field(value, "path", str, number))))
        elif key == "deletedFolder":
            operations.append(DeleteFolder(_field(value, "path", str, number).rstrip("/")))
        else:
            raise InvalidInputError(f"commit line {number}: unsupported operation {key!r}",
                                    hint="fmhub accepts header, file, lfsFile, deletedFile and deletedFolder")
    if header is None:
        raise InvalidInputError("empty commit request: expected a header line and operations")
    if any(isinstance(op, DeleteFile) for op in operations):
        operations = await run_in_threadpool(_folders_deleted_by_name, store, repo, revision, operations)
    summary = header.get("summary")
    if not isinstance(summary, str) or not summary.strip():
        raise InvalidInputError("the commit header needs a 'summary'")
    description = header.get("description") or ""
    parent = header.get("parentCommit")
    if not isinstance(description, str) or (parent is not None and not isinstance(parent, str)):
        raise InvalidInputError("'description' and 'parentCommit' must be strings")
    pr_url = None
    if create_pr:  # a pull request against `revision`, opened with this commit as its first one
        commit, number = await run_in_threadpool(_commit_as_pull_request, store, caller, repo, revision, operations,
                                                 summary, description, parent, config.allow_pickle)
        pr_url = f"{repo_url(request, repo)}/discussions/{number}"
    else:
        try:
            commit = await run_in_threadpool(
                lambda: store.commit(repo.repo_id, operations, repo_type=repo.repo_type, revision=revision,
                                     title=summary, message=description, author=caller.user, parent_commit=parent,
                                     allow_pickle=config.allow_pickle, actor=caller.user))
        except ConflictError as exc:  # the Hub's wording first, which clients match; then what moved
            exc.message = f"The branch was updated since you opened this page. Please refresh and try again. " \
                          f"({exc.message})"
            raise
    url = f"{repo_url(request, repo)}/commit/{commit.oid}"
    return JSONResponse({"success": True, "commitOid": commit.oid, "commitUrl": url, "commitMessage": summary,
                         "hookOutput": "", "pullRequestUrl": pr_url})


def _commit_as_pull_request(store: Store, caller: Principal, repo: Repo, revision: str, operations: list[Operation],
                            summary: str, description: str, parent: str | None,
                            allow_pickle: bool) -> tuple[Commit, int]:
    """Open a pull request against ``revision`` and commit to it; if the commit is refused, the pull request
    is closed again (with the reason), so a failed upload leaves no half-made review behind."""
    if parent is not None and store.resolve_revision(repo.repo_id, revision, repo_type=repo.repo_type).oid != parent:
        raise ConflictError(f"{revision!r} of {repo.repo_id!r} moved: expected head {parent}", expected=parent)
    pr = discussions.create_discussion(store, repo.repo_id, repo_type=repo.repo_type, title=summary,
                                       description=description or None, author=caller.user, pull_request=True,
                                       target_branch=revision, draft=False)
    try:
        commit = store.commit(repo.repo_id, operations, repo_type=repo.repo_type, revision=pr.git_reference,
                              title=summary, message=description, author=caller.user, allow_pickle=allow_pickle,
                              actor=caller.user)
    except FmhubError as exc:
        discussions.change_status(store, repo.repo_id, pr.num, "closed", repo_type=repo.repo_type,
                                  actor=caller.user, text=f"The commit that opened this pull request failed: {exc}")
        raise
    return commit, pr.num


# -- whoami ----------------------------------------------------------------------------------------


@router.get("/api/whoami-v2", summary="The token's user, organizations and role")
def whoami(request: Request, caller: AuthenticatedDep) -> dict[str, Any]:
    accounts = request.app.state.accounts
    account = accounts.get(caller.user)
    orgs = []
    for member in accounts.memberships(caller.user):
        org = accounts.get(member.org)
        orgs.append({"type": "org", "id": org.name, "name": org.name, "fullname": org.fullname or org.name,
                     "roleInOrg": member.role, "isEnterprise": False})
    return {
        "type": "user",
        "id": caller.user,
        "name": caller.user,
        "fullname": account.fullname or caller.user,
        "email": account.email,
        "isPro": False,
        "canPay": False,
        "isAdmin": caller.is_admin,
        "orgs": orgs,
        "auth": {"type": "access_token",
                 "accessToken": {"displayName": caller.token_name, "role": caller.token_role}},
    }

