"""Repo management routes of the Hugging Face protocol: move (rename), super-squash, auth-check.

Shapes follow ``huggingface_hub``'s ``move_repo``, ``super_squash_history`` and ``auth_check``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from fmhub.errors import RepoExistsError
from fmhub.server._auth import ReaderDep, StoreDep, WriterDep, check_namespace_write, visible_repo, writable_repo
from fmhub.server._hf import repo_type_of, repo_url
from fmhub.store.paths import validate_repo_id, validate_repo_type
from fmhub.store.rewrite import move_repo, squash_history

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
