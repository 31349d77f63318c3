"""Writes that rename a repo or rewrite a branch's history (the Hub's ``move_repo`` and ``super_squash``).

Both are single transactions recorded in the audit log, like every other write of the store.
"""

from __future__ import annotations

from sqlalchemy import delete, insert, select, update

from fmhub.errors import InvalidInputError, RepoExistsError, RevisionNotFoundError
from fmhub.store import _schema as t
from fmhub.store.objects import Commit, Repo
from fmhub.store.paths import validate_ref_name, validate_repo_id, validate_repo_type
from fmhub.store.store import PR_REF, Store, _check_author, _now, _repo_key

__all__ = ["move_repo", "redirected_repo", "squash_history"]


def move_repo(store: Store, from_id: str, to_id: str, *, repo_type: str = "model", actor: str | None = None) -> Repo:
    """Rename a repo or move it to another namespace, keeping its history, refs and settings.

    The old name keeps pointing at the repo (:func:`redirected_repo`; the hub answers requests naming it
    with a redirect) until a repo is created under it.

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
        old_key, new_key, now = row.key, _repo_key(repo_type, to_id), _now()
        conn.execute(update(t.repos).where(t.repos.c.pk == row.pk).values(
            namespace=namespace, name=name, key=new_key, updated_at=now))
        # The new name is no longer an alias of anything; the old one now is (unless only its case changed).
        conn.execute(delete(t.repo_redirects).where(t.repo_redirects.c.key.in_([old_key, new_key])))
        if old_key != new_key:
            conn.execute(insert(t.repo_redirects).values(key=old_key, repo_pk=row.pk, created_at=now))
        store._audit(conn, actor, "repo.move", repo_type, to_id, detail={"from": f"{row.namespace}/{row.name}"})
        return store._repo(store._repo_row(conn, repo_type, to_id))


def redirected_repo(store: Store, repo_id: str, *, repo_type: str = "model") -> Repo | None:
    """The repo an old name of a moved repo now points to, or None (no repo was ever moved away from it)."""
    repo_id, repo_type = validate_repo_id(repo_id), validate_repo_type(repo_type)
    with store.db.read() as conn:
        row = conn.execute(select(t.repos).join(t.repo_redirects, t.repo_redirects.c.repo_pk == t.repos.c.pk)
                           .where(t.repo_redirects.c.key == _repo_key(repo_type, repo_id))).one_or_none()
        return None if row is None else store._repo(row)


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
