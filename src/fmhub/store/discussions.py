"""Discussions and pull requests of a repo: the review workflow (propose a version, review it, merge it).

A pull request is a discussion with a ref, ``refs/pr/{num}``, created at the target branch's head; commits
go to that ref like to a branch while it is open (:meth:`Store.commit` records them in its timeline).
Merging applies the pull request's changes since its base onto the target branch in one commit whose
parents are the target's head and the pull request's head; a path both sides changed differently is a
conflict and nothing is written. Every write is one transaction with its audit-log entry.

Example:
    >>> pr = create_discussion(store, "acme/bert", title="v2", author="alice", pull_request=True)
    >>> store.commit("acme/bert", ops, revision=pr.git_reference, title="new weights", author="alice")
    >>> merge_pull_request(store, "acme/bert", pr.num, actor="bob")
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection, func, insert, select, update

from fmhub.errors import DiscussionNotFoundError, InvalidInputError, MergeConflictError, RevisionNotFoundError
from fmhub.store import _schema as t
from fmhub.store.objects import Commit
from fmhub.store.paths import validate_repo_id, validate_repo_type
from fmhub.store.store import Store, _aware, _check_author, _now

__all__ = ["Discussion", "DiscussionEvent", "FileChange", "create_discussion", "get_discussion", "list_discussions",
           "comment", "edit_comment", "hide_comment", "rename", "change_status", "merge_pull_request",
           "pull_request_changes", "MAX_TITLE", "MAX_COMMENT"]

MAX_TITLE = 200
MAX_COMMENT = 65_536
#: Text files up to this size get a line diff in a pull request's details; larger or binary ones a summary.
MAX_DIFF_FILE = 256 * 1024
STATUSES = ("open", "closed", "merged", "draft")


@dataclass(frozen=True)
class DiscussionEvent:
    id: str  # 24 hex digits, as the Hub's event ids
    kind: str  # comment | status-change | title-change | commit
    author: str
    created_at: datetime
    content: str | None  # comment text, new status, new title, commit oid
    detail: str | None  # old title (title-change), commit title (commit)
    edits: int = 0
    hidden: bool = False


@dataclass(frozen=True)
class Discussion:
    repo_type: str
    repo_id: str
    num: int
    title: str
    author: str
    is_pull_request: bool
    status: str
    created_at: datetime
    updated_at: datetime
    target_branch: str | None = None
    base_commit: str | None = None
    head_commit: str | None = None  # the pull request's ref
    merge_commit: str | None = None
    events: list[DiscussionEvent] = field(default_factory=list)

    @property
    def git_reference(self) -> str | None:
        return f"refs/pr/{self.num}" if self.is_pull_request else None


@dataclass(frozen=True)
class FileChange:
    """A file a pull request adds, modifies or deletes relative to its base."""

    path: str
    change: str  # added | modified | deleted
    old: tuple[str, int] | None  # (sha256, size) at the base
    new: tuple[str, int] | None  # (sha256, size) at the pull request's head


def _event_id(pk: int) -> str:
    return f"{pk:024x}"


def _text(value: object, what: str, limit: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInputError(f"the {what} is empty")
    value = value.strip()
    if len(value) > limit:
        raise InvalidInputError(f"the {what} is over {limit} characters")
    return value


def _row(store: Store, conn: Connection, repo_type: str, repo_id: str, num: int, *, lock: bool = False):
    repo = store._repo_row(conn, repo_type, repo_id)
    query = select(t.discussions).where(t.discussions.c.repo_pk == repo.pk, t.discussions.c.num == num)
    row = conn.execute(query.with_for_update() if lock else query).one_or_none()
    if row is None:
        raise DiscussionNotFoundError(repo_id, num)
    return repo, row


def _add_event(conn: Connection, discussion_pk: int, kind: str, author: str, content: str | None,
               detail: str | None = None) -> int:
    now = _now()
    pk = conn.execute(insert(t.discussion_events).values(
        discussion_pk=discussion_pk, kind=kind, author=author, created_at=now, content=content, detail=detail,
        edits=0, hidden=False)).inserted_primary_key[0]
    conn.execute(update(t.discussions).where(t.discussions.c.pk == discussion_pk).values(updated_at=now))
    return pk


def _event(row) -> DiscussionEvent:
    return DiscussionEvent(_event_id(row.pk), row.kind, row.author, _aware(row.created_at), row.content, row.detail,
                           row.edits, bool(row.hidden))


def _discussion(conn: Connection, repo, row, *, events: bool) -> Discussion:
    head = None
    if row.is_pull_request:
        head = conn.execute(select(t.refs.c.commit_oid).where(
            t.refs.c.repo_pk == repo.pk, t.refs.c.kind == "pr", t.refs.c.name == f"refs/pr/{row.num}")).scalar()
    found = []
    if events:
        found = [_event(e) for e in conn.execute(select(t.discussion_events).where(
            t.discussion_events.c.discussion_pk == row.pk).order_by(t.discussion_events.c.pk))]
    return Discussion(repo.repo_type, f"{repo.namespace}/{repo.name}", row.num, row.title, row.author,
                      bool(row.is_pull_request), row.status, _aware(row.created_at), _aware(row.updated_at),
                      row.target_branch, row.base_commit, head, row.merge_commit, found)


def create_discussion(store: Store, repo_id: str, *, repo_type: str = "model", title: str, author: str,
                      description: str | None = None, pull_request: bool = False,
                      target_branch: str | None = None, actor: str | None = None, draft: bool = True) -> Discussion:
    """Open a discussion, or a pull request against ``target_branch`` (default: the default branch) whose
    ref ``refs/pr/{num}`` starts at that branch's head. ``description`` is its first comment.

    A pull request opened empty is a *draft* (as on the Hub) until its first commit opens it; ``draft=False``
    opens it at once (a pull request created together with its first commit)."""
    repo_id, repo_type = validate_repo_id(repo_id), validate_repo_type(repo_type)
    title, author = _text(title, "title", MAX_TITLE), _check_author(author)
    description = _text(description, "description", MAX_COMMENT) if description and description.strip() else None
    now = _now()
    with store.db.write() as conn:
        repo = store._repo_row(conn, repo_type, repo_id)
        branch = base = None
        if pull_request:
            branch = (target_branch or repo.default_branch).removeprefix("refs/heads/")
            base = conn.execute(select(t.refs.c.commit_oid).where(
                t.refs.c.repo_pk == repo.pk, t.refs.c.kind == "branch", t.refs.c.name == branch)).scalar()
            if base is None:  # a tag, a commit id or nothing: pull requests target branches
                missing = RevisionNotFoundError(repo_id, branch)
                missing.message = f"{branch!r} is not a branch of {repo_id!r}: pull requests target branches"
                raise missing
        # Numbers are per repo; the unique (repo_pk, num) constraint turns a race into a retryable error.
        num = (conn.execute(select(func.max(t.discussions.c.num)).where(t.discussions.c.repo_pk == repo.pk))
               .scalar() or 0) + 1
        pk = conn.execute(insert(t.discussions).values(
            repo_pk=repo.pk, num=num, title=title, author=author, is_pull_request=pull_request,
            status="draft" if pull_request and draft else "open",
            target_branch=branch, base_commit=base, created_at=now, updated_at=now)).inserted_primary_key[0]
        if pull_request:
            conn.execute(insert(t.refs).values(repo_pk=repo.pk, kind="pr", name=f"refs/pr/{num}", commit_oid=base,
                                               created_at=now, updated_at=now))
        if description:
            _add_event(conn, pk, "comment", author, description)
        store._audit(conn, actor or author, "pr.create" if pull_request else "discussion.create", repo_type,
                     repo_id, ref=f"refs/pr/{num}" if pull_request else None, commit_oid=base,
                     detail={"num": num, "title": title[:200]})
        return _discussion(conn, repo, _fresh(conn, pk), events=True)


def _fresh(conn: Connection, pk: int):
    return conn.execute(select(t.discussions).where(t.discussions.c.pk == pk)).one()


def get_discussion(store: Store, repo_id: str, num: int, *, repo_type: str = "model") -> Discussion:
    repo_id, repo_type = validate_repo_id(repo_id), validate_repo_type(repo_type)
    with store.db.read() as conn:
        repo, row = _row(store, conn, repo_type, repo_id, num)
        return _discussion(conn, repo, row, events=True)


def list_discussions(store: Store, repo_id: str, *, repo_type: str = "model", pull_requests: bool | None = None,
                     status: str | None = None, author: str | None = None) -> list[Discussion]:
    """Newest first; ``pull_requests`` True/False keeps only pull requests/discussions; ``status`` is one of
    open (drafts included, as on the Hub: they are not closed), closed, merged, draft (None: all)."""
    repo_id, repo_type = validate_repo_id(repo_id), validate_repo_type(repo_type)
    if status is not None and status not in STATUSES:
        raise InvalidInputError(f"unknown status {status!r}", hint=f"use one of {', '.join(STATUSES)}")
    with store.db.read() as conn:
        repo = store._repo_row(conn, repo_type, repo_id)
        query = select(t.discussions).where(t.discussions.c.repo_pk == repo.pk).order_by(t.discussions.c.num.desc())
        if pull_requests is not None:
            query = query.where(t.discussions.c.is_pull_request == pull_requests)
        if status is not None:
            query = query.where(t.discussions.c.status.in_(("open", "draft") if status == "open" else (status,)))
        if author:
            query = query.where(func.lower(t.discussions.c.author) == author.lower())
        return [_discussion(conn, repo, row, events=False) for row in conn.execute(query)]


def comment(store: Store, repo_id: str, num: int, text: str, *, repo_type: str = "model",
            author: str) -> DiscussionEvent:
    repo_id, repo_type = validate_repo_id(repo_id), validate_repo_type(repo_type)
    text, author = _text(text, "comment", MAX_COMMENT), _check_author(author)
    with store.db.write() as conn:
        _, row = _row(store, conn, repo_type, repo_id, num, lock=True)
        pk = _add_event(conn, row.pk, "comment", author, text)
        store._audit(conn, author, "discussion.comment", repo_type, repo_id, detail={"num": num})
        return _event(conn.execute(select(t.discussion_events).where(t.discussion_events.c.pk == pk)).one())


def _comment_row(conn: Connection, discussion_pk: int, event_id: str):
    try:
        pk = int(event_id, 16)
    except (TypeError, ValueError):
        pk = -1
    row = conn.execute(select(t.discussion_events).where(
        t.discussion_events.c.pk == pk, t.discussion_events.c.discussion_pk == discussion_pk,
        t.discussion_events.c.kind == "comment")).one_or_none()
    if row is None:
        raise InvalidInputError(f"no comment {event_id!r} in this discussion")
    return row


def edit_comment(store: Store, repo_id: str, num: int, event_id: str, text: str, *, repo_type: str = "model",
                 editor: str, may_moderate: bool = False) -> DiscussionEvent:
    """Replace a comment's text: its author may (a moderator too)."""
    from fmhub.errors import PermissionDeniedError

    repo_id, repo_type = validate_repo_id(repo_id), validate_repo_type(repo_type)
    text = _text(text, "comment", MAX_COMMENT)
    with store.db.write() as conn:
        _, row = _row(store, conn, repo_type, repo_id, num, lock=True)
        event = _comment_row(conn, row.pk, event_id)
        if event.author.lower() != editor.lower() and not may_moderate:
            raise PermissionDeniedError("only a comment's author edits it")
        conn.execute(update(t.discussion_events).where(t.discussion_events.c.pk == event.pk)
                     .values(content=text, edits=event.edits + 1))
        store._audit(conn, editor, "discussion.comment.edit", repo_type, repo_id, detail={"num": num})
        return _event(conn.execute(select(t.discussion_events).where(t.discussion_events.c.pk == event.pk)).one())


def hide_comment(store: Store, repo_id: str, num: int, event_id: str, *, repo_type: str = "model",
                 actor: str) -> DiscussionEvent:
    """Hide a comment (moderation; the caller checks the right). Its text is kept for the audit trail."""
    repo_id, repo_type = validate_repo_id(repo_id), validate_repo_type(repo_type)
    with store.db.write() as conn:
        _, row = _row(store, conn, repo_type, repo_id, num, lock=True)
        event = _comment_row(conn, row.pk, event_id)
        conn.execute(update(t.discussion_events).where(t.discussion_events.c.pk == event.pk).values(hidden=True))
        store._audit(conn, actor, "discussion.comment.hide", repo_type, repo_id, detail={"num": num})
        return _event(conn.execute(select(t.discussion_events).where(t.discussion_events.c.pk == event.pk)).one())


def rename(store: Store, repo_id: str, num: int, title: str, *, repo_type: str = "model",
           actor: str) -> DiscussionEvent:
    repo_id, repo_type = validate_repo_id(repo_id), validate_repo_type(repo_type)
    title = _text(title, "title", MAX_TITLE)
    with store.db.write() as conn:
        _, row = _row(store, conn, repo_type, repo_id, num, lock=True)
        conn.execute(update(t.discussions).where(t.discussions.c.pk == row.pk).values(title=title))
        pk = _add_event(conn, row.pk, "title-change", actor, title, row.title)
        store._audit(conn, actor, "discussion.title", repo_type, repo_id, detail={"num": num, "title": title})
        return _event(conn.execute(select(t.discussion_events).where(t.discussion_events.c.pk == pk)).one())


def change_status(store: Store, repo_id: str, num: int, status: str, *, repo_type: str = "model", actor: str,
                  text: str | None = None) -> DiscussionEvent:
    """Close or reopen (``open``/``closed``; setting the current status again is recorded, as on the Hub;
    ``open`` also publishes a draft pull request); merged pull requests stay merged. ``text`` adds a comment."""
    repo_id, repo_type = validate_repo_id(repo_id), validate_repo_type(repo_type)
    if status not in ("open", "closed"):
        raise InvalidInputError(f"status {status!r} cannot be set", hint="use 'open' or 'closed' (merging merges)")
    with store.db.write() as conn:
        _, row = _row(store, conn, repo_type, repo_id, num, lock=True)
        if row.status == "merged":
            raise InvalidInputError(f"#{num} is merged; its status no longer changes")
        conn.execute(update(t.discussions).where(t.discussions.c.pk == row.pk).values(status=status))
        pk = _add_event(conn, row.pk, "status-change", actor, status)
        if text and text.strip():
            _add_event(conn, row.pk, "comment", actor, _text(text, "comment", MAX_COMMENT))
        store._audit(conn, actor, "discussion.status", repo_type, repo_id, detail={"num": num, "status": status})
        return _event(conn.execute(select(t.discussion_events).where(t.discussion_events.c.pk == pk)).one())


def _changes(base: dict[str, tuple[str, int]], head: dict[str, tuple[str, int]]) -> list[FileChange]:
    changes = []
    for path in sorted(set(base) | set(head)):
        old, new = base.get(path), head.get(path)
        if old != new:
            kind = "added" if old is None else "deleted" if new is None else "modified"
            changes.append(FileChange(path, kind, old, new))
    return changes


def pull_request_changes(store: Store, discussion: Discussion) -> tuple[list[FileChange], list[str]]:
    """The files the pull request changes since its base, and those that conflict with its target branch."""
    if not discussion.is_pull_request or discussion.base_commit is None or discussion.head_commit is None:
        return [], []
    with store.db.read() as conn:
        repo = store._repo_row(conn, discussion.repo_type, discussion.repo_id)
        base = store._load_tree(conn, store._commit(conn, repo.pk, discussion.base_commit).tree_id)
        head = store._load_tree(conn, store._commit(conn, repo.pk, discussion.head_commit).tree_id)
        target = base
        if discussion.status in ("open", "draft"):
            oid = conn.execute(select(t.refs.c.commit_oid).where(
                t.refs.c.repo_pk == repo.pk, t.refs.c.kind == "branch",
                t.refs.c.name == discussion.target_branch)).scalar()
            target = store._load_tree(conn, store._commit(conn, repo.pk, oid).tree_id) if oid else base
    changes = _changes(base, head)
    conflicts = [c.path for c in changes if target.get(c.path) != base.get(c.path) and target.get(c.path) != c.new]
    return changes, conflicts


def unified_diff(store: Store, changes: list[FileChange]) -> str:
    """A git-style diff of the changes: line diffs for small text files, a summary line for the rest."""
    parts = []
    for change in changes:
        texts = []
        for side in (change.old, change.new):
            if side is None:
                texts.append("")
            elif side[1] > MAX_DIFF_FILE:
                texts.append(None)
            else:
                raw = b"".join(store.iter_blob(side[0]))
                try:
                    texts.append(None if b"\0" in raw else raw.decode("utf-8"))
                except UnicodeDecodeError:
                    texts.append(None)
        header = f"diff --git a/{change.path} b/{change.path}\n"
        if None in texts:
            parts.append(header + f"Binary files a/{change.path} and b/{change.path} differ\n")
            continue
        lines = difflib.unified_diff(texts[0].splitlines(keepends=True), texts[1].splitlines(keepends=True),
                                     fromfile="/dev/null" if change.old is None else f"a/{change.path}",
                                     tofile="/dev/null" if change.new is None else f"b/{change.path}")
        parts.append(header + "".join(line if line.endswith("\n") else line + "\n" for line in lines))
    return "".join(parts)


def merge_pull_request(store: Store, repo_id: str, num: int, *, repo_type: str = "model", actor: str,
                       text: str | None = None) -> Commit:
    """Merge an open pull request into its target branch: one commit (parents: the target's head, the pull
    request's head) holding the target's files with the pull request's changes applied.

    Raises:
        MergeConflictError: both sides changed a file differently since the pull request began.
        InvalidInputError: not a pull request, not open, or no changes.
    """
    repo_id, repo_type = validate_repo_id(repo_id), validate_repo_type(repo_type)
    actor = _check_author(actor)
    with store.db.write() as conn:
        repo, row = _row(store, conn, repo_type, repo_id, num, lock=True)
        if not row.is_pull_request:
            raise InvalidInputError(f"#{num} is a discussion, not a pull request")
        if row.status not in ("open", "draft"):
            raise InvalidInputError(f"pull request #{num} is {row.status}", hint="only open pull requests merge")
        target_ref = conn.execute(select(t.refs).where(
            t.refs.c.repo_pk == repo.pk, t.refs.c.kind == "branch", t.refs.c.name == row.target_branch)
            .with_for_update()).one_or_none()
        if target_ref is None:
            raise InvalidInputError(f"the target branch {row.target_branch!r} no longer exists")
        head_oid = conn.execute(select(t.refs.c.commit_oid).where(
            t.refs.c.repo_pk == repo.pk, t.refs.c.kind == "pr", t.refs.c.name == f"refs/pr/{num}")).scalar_one()
        base = store._load_tree(conn, store._commit(conn, repo.pk, row.base_commit).tree_id)
        pr_head = store._commit(conn, repo.pk, head_oid)
        changes = _changes(base, store._load_tree(conn, pr_head.tree_id))
        if not changes:
            raise InvalidInputError(f"pull request #{num} changes nothing", hint="close it instead")
        target_head = store._commit(conn, repo.pk, target_ref.commit_oid)
        tree = store._load_tree(conn, target_head.tree_id)
        conflicts = [c.path for c in changes if tree.get(c.path) != base.get(c.path) and tree.get(c.path) != c.new]
        if conflicts:
            shown = ", ".join(conflicts[:10]) + (" …" if len(conflicts) > 10 else "")
            raise MergeConflictError(f"pull request #{num} conflicts with {row.target_branch!r} on {shown}",
                                     paths=conflicts)
        for change in changes:
            if change.new is None:
                tree.pop(change.path, None)
            else:
                tree[change.path] = change.new
        now = max(_now(), target_head.created_at, pr_head.created_at)
        tree_id = store._save_tree(conn, tree)
        title = f"Merge pull request #{num}: {row.title}"[:1000]
        oid = store._insert_commit(conn, repo.pk, tree_id, [target_head.oid, pr_head.oid], actor, title,
                                   (text or "").strip(), now, max(target_head.generation, pr_head.generation) + 1)
        conn.execute(update(t.refs).where(t.refs.c.repo_pk == repo.pk, t.refs.c.kind == "branch",
                                          t.refs.c.name == row.target_branch).values(commit_oid=oid, updated_at=now))
        conn.execute(update(t.discussions).where(t.discussions.c.pk == row.pk)
                     .values(status="merged", merge_commit=oid))
        if text and text.strip():
            _add_event(conn, row.pk, "comment", actor, _text(text, "comment", MAX_COMMENT))
        _add_event(conn, row.pk, "status-change", actor, "merged")
        conn.execute(update(t.repos).where(t.repos.c.pk == repo.pk).values(updated_at=now))
        store._audit(conn, actor, "pr.merge", repo_type, repo_id, ref=row.target_branch, commit_oid=oid,
                     detail={"num": num, "pr_head": pr_head.oid})
        return store._commit(conn, repo.pk, oid)
