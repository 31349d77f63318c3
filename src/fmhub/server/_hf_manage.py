"""Repo management routes of the Hugging Face protocol: move (rename), super-squash, auth-check, LFS files.

Shapes follow ``huggingface_hub``'s ``move_repo``, ``super_squash_history``, ``auth_check``, ``list_lfs_files``
and ``permanently_delete_lfs_files``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from fmhub.errors import InvalidInputError, RepoExistsError
from fmhub.server._auth import ReaderDep, StoreDep, WriterDep, check_namespace_write, visible_repo, writable_repo
from fmhub.server._gitfiles import GitRules, git_rules
from fmhub.server._hf import iso, repo_type_of, repo_url
from fmhub.store import Repo, Store
from fmhub.store.blobs import check_sha256
from fmhub.store.paths import validate_repo_id, validate_repo_type
from fmhub.store.rewrite import (FirstSeen, files_first_seen, move_repo, purge_files, repo_holds_blob,
                                 squash_history)

__all__ = ["router"]

router = APIRouter(tags=["huggingface"])


class _MoveRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    fromRepo: str  # noqa: N815 - the Hub's field names
    toRepo: str  # noqa: N815
    type: str = "model"


@router.post("/api/repos/move", summary="Rename a repo or move it to another namespace")
def move(store: StoreDep, caller: WriterDep, request: Request, body: _MoveRequest) -> dict[str, Any]:
    """Needs write access to both namespaces; history, refs and visibility move with the repo."""
    repo_type = validate_repo_type(body.type)
    repo = writable_repo(store, caller, repo_type, body.fromRepo)
    target = validate_repo_id(body.toRepo)
    check_namespace_write(caller, target.split("/")[0])
    try:
        moved = move_repo(store, repo.repo_id, target, repo_type=repo_type, actor=caller.user)
    except RepoExistsError as exc:
        exc.message = f"A {repo_type} repository called {target} already exists"  # the Hub's wording
        raise
    return {"url": repo_url(request, moved), "id": moved.repo_id}


class _SquashRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    message: str | None = Field(default=None, max_length=10_000)


@router.post("/api/{plural}/{namespace}/{name}/super-squash/{branch:path}",
             summary="Replace a branch's history by one commit holding its current files")
def super_squash(store: StoreDep, caller: WriterDep, plural: str, namespace: str, name: str, branch: str,
                 body: _SquashRequest | None = None) -> dict[str, Any]:
    repo = writable_repo(store, caller, repo_type_of(plural), f"{namespace}/{name}")
    commit = squash_history(store, repo.repo_id, branch, repo_type=repo.repo_type,
                            title=body.message if body else None, author=caller.user, actor=caller.user)
    return {"commitId": commit.oid}


@router.get("/api/{plural}/{namespace}/{name}/auth-check", summary="200 if the caller may read the repo")
def auth_check(store: StoreDep, caller: ReaderDep, plural: str, namespace: str, name: str) -> dict[str, Any]:
    """As for any read: a private repo the caller may not see answers exactly like a missing one."""
    repo = visible_repo(store, caller, repo_type_of(plural), f"{namespace}/{name}")
    return {"id": repo.repo_id, "private": repo.private}


# -- LFS files: list, permanently delete ------------------------------------------------------------


def _lfs_files(store: Store, repo: Repo) -> list[FirstSeen]:
    """The repo's LFS files over its whole history, each content once (where it first appeared), judged LFS by
    the ``.gitattributes`` and size rules of the commit it first appeared in."""
    rules: dict[str, GitRules] = {}
    found = []
    for item in files_first_seen(store, repo.repo_id, repo_type=repo.repo_type):
        if item.commit_oid not in rules:
            rules[item.commit_oid] = git_rules(store, store.list_files(repo.repo_id, item.commit_oid,
                                                                       repo_type=repo.repo_type))
        if rules[item.commit_oid].is_lfs(item.path, item.size):
            found.append(item)
    return found


@router.get("/api/{plural}/{namespace}/{name}/lfs-files",
            summary="The repo's LFS files over its whole history (writers), to find what to delete for good")
def list_lfs_files(store: StoreDep, caller: WriterDep, plural: str, namespace: str, name: str) -> list[dict[str, Any]]:
    repo = writable_repo(store, caller, repo_type_of(plural), f"{namespace}/{name}")
    return [{"fileOid": f.sha256, "oid": f.sha256, "filename": f.path, "size": f.size, "pushedAt": iso(f.at),
             "ref": f.ref} for f in _lfs_files(store, repo)]


class _Deletions(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    sha: list[str] = Field(max_length=1000)
    rewriteHistory: bool = True  # noqa: N815 - the Hub's field name


class _DeleteLfsRequest(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    deletions: _Deletions


@router.post("/api/{plural}/{namespace}/{name}/lfs-files/batch",
             summary="Permanently delete LFS files: remove them from every commit of the repo (writers)")
def delete_lfs_files(store: StoreDep, caller: WriterDep, plural: str, namespace: str, name: str,
                     body: _DeleteLfsRequest) -> dict[str, Any]:
    """A history rewrite: commits holding the files (and their descendants) get new ids, refs and pull requests
    follow. Only LFS files of this repo may be named; the bytes go at the next ``fmhub gc`` unless another repo
    holds them."""
    repo = writable_repo(store, caller, repo_type_of(plural), f"{namespace}/{name}")
    if not body.deletions.rewriteHistory:
        raise InvalidInputError("fmhub deletes LFS files by rewriting history only",
                                hint="send rewriteHistory: true (huggingface_hub's default)")
    wanted = {check_sha256(sha) for sha in body.deletions.sha}
    known = {f.sha256 for f in _lfs_files(store, repo)}
    if unknown := sorted(wanted - known):
        raise InvalidInputError(f"not an LFS file of {repo.repo_id}: {', '.join(unknown[:5])}",
                                hint="list them with list_lfs_files")
    replaced = purge_files(store, repo.repo_id, sorted(wanted), repo_type=repo.repo_type, actor=caller.user)
    return {"deleted": sorted(wanted), "rewrittenCommits": len(replaced)}


class _Target(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    type: str = "model"
    name: str


class _DuplicateFile(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    sha256: str
    filename: str | None = None
    xetHash: str | None = None  # noqa: N815 - the Hub's field name


class _DuplicateRequest(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    target: _Target
    files: list[_DuplicateFile] = Field(max_length=1000)


@router.post("/api/{plural}/{namespace}/{name}/lfs-files/duplicate",
             summary="Let another repo reference this repo's LFS files (copy_files across repos)")
def duplicate_lfs_files(store: StoreDep, caller: WriterDep, plural: str, namespace: str, name: str,
                        body: _DuplicateRequest) -> dict[str, Any]:
    """The caller must be able to read this repo and write the target; each file must be in this repo's history.
    The target is then granted the bytes (as if uploaded to it), so its next commit may name them; nothing is
    copied (content addressing). Files not in this repo are answered in ``failed``, as the Hub does."""
    source = visible_repo(store, caller, repo_type_of(plural), f"{namespace}/{name}")
    target = writable_repo(store, caller, validate_repo_type(body.target.type), body.target.name)
    failed = []
    for item in body.files:
        sha256 = check_sha256(item.sha256)
        if not repo_holds_blob(store, source.repo_id, sha256, repo_type=source.repo_type):
            failed.append({"sha256": sha256, "error": f"not a file of {source.repo_id}"})
            continue
        store.record_upload(target.repo_id, sha256, repo_type=target.repo_type)
    return {"failed": failed}
