"""Discussions and pull requests in the Hugging Face protocol (``huggingface_hub.HfApi.create_discussion``,
``get_discussion_details``, ``comment_discussion``, ``merge_pull_request``, …).

Access follows the repo: whoever may see it reads its discussions; a signed-in reader (write token) opens
discussions, pull requests and comments, and commits to the pull requests they opened; merges and moderation
(hiding comments) need write access to the repo's namespace; a discussion's author or a writer renames, closes
and reopens it. The rules live in
:mod:`fmhub.store.discussions` and here only as who-may-call checks, like every other route.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from fmhub.accounts import Principal
from fmhub.errors import InvalidInputError, PermissionDeniedError
from fmhub.server._auth import (
    ReaderDep,
    StoreDep,
    WriterDep,
    require_write_token,
    visible_repo,
    writable_repo,
)
from fmhub.server._hf import iso, repo_type_of, repo_url
from fmhub.store import Repo, Store
from fmhub.store import discussions as d

__all__ = ["router", "discussion_url", "discussion_json"]

router = APIRouter(tags=["huggingface"])
PAGE = 50
_BASE = "/api/{plural}/{namespace}/{name}/discussions"


def discussion_url(request: Request, repo: Repo, num: int) -> str:
    return f"{repo_url(request, repo)}/discussions/{num}"


def _author(name: str) -> dict[str, Any]:
    return {"name": name, "type": "user", "fullname": name, "avatarUrl": "", "isPro": False, "isHf": False}


def _event_json(event: d.DiscussionEvent) -> dict[str, Any]:
    data: dict[str, Any]
    if event.kind == "comment":
        data = {"edited": event.edits > 0, "hidden": event.hidden, "numEdits": event.edits,
                "editors": [event.author] if event.edits else [],
                "latest": {"raw": event.content, "html": None, "updatedAt": iso(event.created_at),
                           "author": _author(event.author)}}
    elif event.kind == "status-change":
        data = {"status": event.content}
    elif event.kind == "commit":
        data = {"subject": event.detail or "", "oid": event.content}
    else:  # title-change
        data = {"from": event.detail, "to": event.content}
    return {"id": event.id, "type": event.kind, "createdAt": iso(event.created_at), "author": _author(event.author),
            "data": data}


def discussion_json(discussion: d.Discussion, repo: Repo) -> dict[str, Any]:
    comments = sum(1 for e in discussion.events if e.kind == "comment")
    return {"num": discussion.num, "title": discussion.title, "status": discussion.status,
            "author": _author(discussion.author), "createdAt": iso(discussion.created_at),
            "isPullRequest": discussion.is_pull_request, "repo": {"name": repo.repo_id, "type": repo.repo_type},
            "numComments": comments, "pinned": False, "topReactions": []}


def _may_moderate(caller: Principal | None, repo: Repo) -> bool:
    return caller is not None and caller.token_role == "write" and caller.can_write_namespace(repo.namespace)


class _NewDiscussion(BaseModel):
    model_config = ConfigDict(extra="ignore")
    title: str = Field(max_length=1000)
    description: str | None = Field(default=None, max_length=d.MAX_COMMENT * 2)
    pullRequest: bool = False  # noqa: N815 - the Hub's field name


@router.get(_BASE, summary="A repo's discussions and pull requests, newest first (50 per page, ?p=N)")
def list_discussions(store: StoreDep, caller: ReaderDep, plural: str, namespace: str, name: str, p: int = 0,
                     type: str = "all", status: str = "all", author: str | None = None) -> dict[str, Any]:
    repo = visible_repo(store, caller, repo_type_of(plural), f"{namespace}/{name}")
    if type not in ("all", "discussion", "pull_request") or p < 0:
        raise InvalidInputError("type must be all, discussion or pull_request; p a page number ≥ 0")
    kinds = {"all": None, "discussion": False, "pull_request": True}[type]
    found = d.list_discussions(store, repo.repo_id, repo_type=repo.repo_type, pull_requests=kinds,
                               status=None if status == "all" else status, author=author)
    page = found[p * PAGE:(p + 1) * PAGE]
    return {"discussions": [discussion_json(x, repo) for x in page], "count": len(found), "start": p * PAGE,
            "numItemsPerPage": PAGE, "numClosedDiscussions": sum(x.status == "closed" for x in found)}


@router.post(_BASE, summary="Open a discussion or a pull request")
def create_discussion(store: StoreDep, caller: WriterDep, request: Request, plural: str, namespace: str, name: str,
                      body: _NewDiscussion) -> dict[str, Any]:
    # Whoever may read the repo opens discussions and pull requests (with a write token); only writers merge.
    repo = visible_repo(store, caller, repo_type_of(plural), f"{namespace}/{name}")
    require_write_token(caller, "opening a discussion")
    created = d.create_discussion(store, repo.repo_id, repo_type=repo.repo_type, title=body.title,
                                  description=body.description, author=caller.user, pull_request=body.pullRequest)
    return {"num": created.num, "url": discussion_url(request, repo, created.num),
            "pullRequest": created.is_pull_request, "ref": created.git_reference}


def details_json(store: Store, discussion: d.Discussion, repo: Repo, *, diff: bool) -> dict[str, Any]:
    answer = discussion_json(discussion, repo)
    answer["events"] = [_event_json(e) for e in discussion.events]
    if discussion.is_pull_request:
        changes, conflicts = d.pull_request_changes(store, discussion)
        answer["changes"] = {"base": f"refs/heads/{discussion.target_branch}", "baseCommit": discussion.base_commit,
                             "headCommit": discussion.head_commit}
        if discussion.merge_commit:
            answer["changes"]["mergeCommitId"] = discussion.merge_commit
        answer["filesWithConflicts"] = conflicts
        answer["files"] = [{"path": c.path, "change": c.change, "size": c.new[1] if c.new else 0} for c in changes]
        if diff:
            answer["diff"] = d.unified_diff(store, changes)
    return answer


@router.get(_BASE + "/{num}", summary="A discussion with its events; a pull request with its changes (?diff=1)")
def get_discussion(store: StoreDep, caller: ReaderDep, plural: str, namespace: str, name: str, num: int,
                   diff: bool = False) -> dict[str, Any]:
    repo = visible_repo(store, caller, repo_type_of(plural), f"{namespace}/{name}")
    return details_json(store, d.get_discussion(store, repo.repo_id, num, repo_type=repo.repo_type), repo, diff=diff)


def _participant(store: Store, caller: Principal, plural: str, namespace: str, name: str) -> Repo:
    repo = visible_repo(store, caller, repo_type_of(plural), f"{namespace}/{name}")
    require_write_token(caller, "taking part in discussions")
    return repo


def _author_or_writer(store: Store, caller: Principal, repo: Repo, num: int) -> None:
    discussion = d.get_discussion(store, repo.repo_id, num, repo_type=repo.repo_type)
    if discussion.author.lower() != caller.user.lower() and not _may_moderate(caller, repo):
        raise PermissionDeniedError(f"only #{num}'s author or a writer of {repo.namespace!r} may do this")


class _Comment(BaseModel):
    model_config = ConfigDict(extra="ignore")
    comment: str = Field(max_length=d.MAX_COMMENT * 2)


@router.post(_BASE + "/{num}/comment", summary="Comment on a discussion or pull request")
def comment(store: StoreDep, caller: WriterDep, plural: str, namespace: str, name: str, num: int,
            body: _Comment) -> dict[str, Any]:
    repo = _participant(store, caller, plural, namespace, name)
    event = d.comment(store, repo.repo_id, num, body.comment, repo_type=repo.repo_type, author=caller.user)
    return {"newMessage": _event_json(event)}


class _Edit(BaseModel):
    model_config = ConfigDict(extra="ignore")
    content: str = Field(max_length=d.MAX_COMMENT * 2)


@router.post(_BASE + "/{num}/comment/{event_id}/edit", summary="Edit your comment")
def edit_comment(store: StoreDep, caller: WriterDep, plural: str, namespace: str, name: str, num: int,
                 event_id: str, body: _Edit) -> dict[str, Any]:
    repo = _participant(store, caller, plural, namespace, name)
    event = d.edit_comment(store, repo.repo_id, num, event_id, body.content, repo_type=repo.repo_type,
                           editor=caller.user)
    return {"updatedComment": _event_json(event)}


@router.post(_BASE + "/{num}/comment/{event_id}/hide", summary="Hide a comment (writers of the repo)")
def hide_comment(store: StoreDep, caller: WriterDep, plural: str, namespace: str, name: str, num: int,
                 event_id: str) -> dict[str, Any]:
    repo = writable_repo(store, caller, repo_type_of(plural), f"{namespace}/{name}")
    event = d.hide_comment(store, repo.repo_id, num, event_id, repo_type=repo.repo_type, actor=caller.user)
    return {"updatedComment": _event_json(event)}


class _Title(BaseModel):
    model_config = ConfigDict(extra="ignore")
    title: str = Field(max_length=1000)


@router.post(_BASE + "/{num}/title", summary="Rename a discussion (its author or a writer)")
def rename(store: StoreDep, caller: WriterDep, plural: str, namespace: str, name: str, num: int,
           body: _Title) -> dict[str, Any]:
    repo = _participant(store, caller, plural, namespace, name)
    _author_or_writer(store, caller, repo, num)
    return {"newTitle": _event_json(d.rename(store, repo.repo_id, num, body.title, repo_type=repo.repo_type,
                                             actor=caller.user))}


class _Status(BaseModel):
    model_config = ConfigDict(extra="ignore")
    status: str
    comment: str | None = Field(default=None, max_length=d.MAX_COMMENT * 2)


@router.post(_BASE + "/{num}/status", summary="Close or reopen (its author or a writer)")
def change_status(store: StoreDep, caller: WriterDep, plural: str, namespace: str, name: str, num: int,
                  body: _Status) -> dict[str, Any]:
    repo = _participant(store, caller, plural, namespace, name)
    _author_or_writer(store, caller, repo, num)
    event = d.change_status(store, repo.repo_id, num, body.status, repo_type=repo.repo_type, actor=caller.user,
                            text=body.comment)
    return {"newStatus": _event_json(event)}


class _Merge(BaseModel):
    model_config = ConfigDict(extra="ignore")
    comment: str | None = Field(default=None, max_length=d.MAX_COMMENT * 2)


@router.post(_BASE + "/{num}/merge", summary="Merge a pull request into its target branch (writers)")
async def merge(store: StoreDep, caller: WriterDep, plural: str, namespace: str, name: str, num: int,
                request: Request) -> dict[str, Any]:
    repo = await run_in_threadpool(writable_repo, store, caller, repo_type_of(plural), f"{namespace}/{name}")
    raw = await request.body()
    try:
        body = _Merge.model_validate_json(raw) if raw.strip() not in (b"", b"null") else _Merge()
    except ValueError:
        raise InvalidInputError('expected {"comment": "..."} or no body') from None
    commit = await run_in_threadpool(lambda: d.merge_pull_request(store, repo.repo_id, num, repo_type=repo.repo_type,
                                                                  actor=caller.user, text=body.comment))
    return {"commitOid": commit.oid, "commitUrl": f"{repo_url(request, repo)}/commit/{commit.oid}"}
