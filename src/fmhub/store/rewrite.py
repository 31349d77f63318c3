"""Writes that rename a repo or rewrite a branch's history (the Hub's ``move_repo`` and ``super_squash``).

Both are single transactions recorded in the audit log, like every other write of the store.
"""

from __future__ import annotations

from sqlalchemy import select, update

from fmhub.errors import InvalidInputError, RepoExistsError, RevisionNotFoundError
from fmhub.store import _schema as t
from fmhub.store.objects import Commit, Repo
from fmhub.store.paths import validate_ref_name, validate_repo_id, validate_repo_type
from fmhub.store.store import PR_REF, Store, _check_author, _now, _repo_key

__all__ = ["move_repo", "squash_history"]


def move_repo(store: Store, from_id: str, to_id: str, *, repo_type: str = "model", actor: str | None = None) -> Repo:
    """Rename a repo or move it to another namespace, keeping its history, refs and settings.

    Raises:
        RepoNotFoundError: ``from_id`` does not exist.
        RepoExistsError: ``to_id`` is taken (case-insensitively).
    """
    from_id, to_id = validate_repo_id(from_id), validate_repo_id(to_id)
    repo_type = validate_repo_type(repo_type)
    with store.db.write() as conn:
        row = store._repo_row(conn, repo_type, from_id)
        taken = store._repo_row(conn, repo_type, to_id, required=False)
        if taken is not None and taken.pk != row.pk:  # a change of case only is a rename of the same repo
            raise RepoExistsError(repo_type, f"{taken.namespace}/{taken.name}")
        namespace, name = to_id.split("/")
        conn.execute(update(t.repos).where(t.repos.c.pk == row.pk).values(
            namespace=namespace, name=name, key=_repo_key(repo_type, to_id), updated_at=_now()))
        store._audit(conn, actor, "repo.move", repo_type, to_id, detail={"from": f"{row.namespace}/{row.name}"})
        moved = store._repo(store._repo_row(conn, repo_type, to_id))
        held = set(conn.execute(select(t.tree_entries.c.blob_sha256).join(
            t.commits, t.commits.c.tree_id == t.tree_entries.c.tree_id).where(t.commits.c.repo_pk == row.pk)).scalars())
        held |= set(conn.execute(select(t.lfs_uploads.c.sha256).where(t.lfs_uploads.c.repo_pk == row.pk)).scalars())
    if namespace.lower() != row.namespace.lower():  # the new namespace's key wraps them; the old one's may let go
        store.blobs.bind_scopes(sorted(held))
    return moved


def squash_history(store: Store, repo_id: str, branch: str | None = None, *, repo_type: str = "model",
                   title: str | None = None, author: str, actor: str | None = None) -> Commit:
    """Replace a branch's history by one root commit holding its current files (``super_squash_history``).

    Other branches and tags keep the commits they point to; commits no ref reaches any more are left for
    ``gc`` like a deleted branch's.

    Raises:
        RevisionNotFoundError: ``branch`` is not a branch of the repo.
    """
    repo_id = validate_repo_id(repo_id)
    repo_type = validate_repo_type(repo_type)
    author = _check_author(author)
    with store.db.write() as conn:
        repo = store._repo_row(conn, repo_type, repo_id)
        name = branch.removeprefix("refs/heads/") if branch else repo.default_branch
        kind = "pr" if PR_REF.fullmatch(name) else "branch"  # a pull request's ref squashes like a branch
        if kind == "branch":
            name = validate_ref_name(name)
        ref = conn.execute(select(t.refs).where(t.refs.c.repo_pk == repo.pk, t.refs.c.kind == kind,
                                                t.refs.c.name == name).with_for_update()).one_or_none()
        if ref is None:
            raise RevisionNotFoundError(repo_id, name)
        head = store._commit(conn, repo.pk, ref.commit_oid)
        message = (title or "").strip() or "Super-squash branch '{}' using huggingface_hub".format(name)
        if len(message) > 10_000:
            raise InvalidInputError("the squash commit's message is over 10,000 characters")
        now = max(_now(), head.created_at)
        # A root commit: same tree, no parents. Its oid differs from any earlier root's (time and title differ).
        oid = store._insert_commit(conn, repo.pk, head.tree_id, [], author, message, "", now, 1)
        conn.execute(update(t.refs).where(t.refs.c.repo_pk == repo.pk, t.refs.c.kind == kind,
                                          t.refs.c.name == name).values(commit_oid=oid, updated_at=now))
        conn.execute(update(t.repos).where(t.repos.c.pk == repo.pk).values(updated_at=now))
        store._audit(conn, actor or author, "squash", repo_type, repo_id, ref=name, commit_oid=oid,
                     detail={"replaced": head.oid})
        return store._commit(conn, repo.pk, oid)
