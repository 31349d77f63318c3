"""Writes that rename a repo or rewrite its history (the Hub's ``move_repo``, ``super_squash`` and
``permanently_delete_lfs_files``), and what those need to read (old names, where each file first appeared).

Each write is a single transaction recorded in the audit log, like every other write of the store.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, insert, select, update

from fmhub.errors import InvalidInputError, RepoExistsError, RevisionNotFoundError
from fmhub.store import _schema as t
from fmhub.store.objects import Commit, Repo
from fmhub.store.paths import validate_ref_name, validate_repo_id, validate_repo_type
from fmhub.store.store import PR_REF, Store, _aware, _check_author, _now, _repo_key

__all__ = ["move_repo", "redirected_repo", "squash_history", "FirstSeen", "files_first_seen", "purge_files",
           "repo_holds_blob"]


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
        moved = store._repo(store._repo_row(conn, repo_type, to_id))
        held = set(conn.execute(select(t.tree_entries.c.blob_sha256).join(
            t.commits, t.commits.c.tree_id == t.tree_entries.c.tree_id).where(t.commits.c.repo_pk == row.pk)).scalars())
        held |= set(conn.execute(select(t.lfs_uploads.c.sha256).where(t.lfs_uploads.c.repo_pk == row.pk)).scalars())
    if namespace.lower() != row.namespace.lower():  # the new namespace's key wraps them; the old one's may let go
        store.blobs.bind_scopes(sorted(held))
    return moved


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


@dataclass(frozen=True)
class FirstSeen:
    """Where a file's bytes first appeared in a repo's history: through which ref, in which commit, at which path.

    ``ref`` is None for commits no ref reaches any more (a deleted branch, a squashed history).
    """

    sha256: str
    size: int
    path: str
    ref: str | None
    commit_oid: str
    at: datetime


def _ref_order(conn, repo) -> list[tuple[str, str]]:
    """(ref name, head) of every ref, the default branch first, then branches, tags and pull requests by name."""
    rows = conn.execute(select(t.refs.c.kind, t.refs.c.name, t.refs.c.commit_oid).where(t.refs.c.repo_pk == repo.pk))
    rank = {"branch": 1, "tag": 2, "pr": 3}
    ordered = sorted(rows, key=lambda r: (0 if r.kind == "branch" and r.name == repo.default_branch else rank[r.kind],
                                          r.name))
    return [(r.name, r.commit_oid) for r in ordered]


def files_first_seen(store: Store, repo_id: str, *, repo_type: str = "model") -> list[FirstSeen]:
    """Every distinct file content (sha256) of the repo's whole history, once, where it first appeared: refs are
    walked default branch first, each from its root commit up, then commits no ref reaches."""
    repo_id, repo_type = validate_repo_id(repo_id), validate_repo_type(repo_type)
    with store.db.read() as conn:
        repo = store._repo_row(conn, repo_type, repo_id)
        commits = {row.oid: row for row in conn.execute(select(
            t.commits.c.oid, t.commits.c.tree_id, t.commits.c.parents, t.commits.c.created_at, t.commits.c.generation)
            .where(t.commits.c.repo_pk == repo.pk))}
        walks: list[tuple[str | None, list[str]]] = []
        reached: set[str] = set()
        for name, head in _ref_order(conn, repo):
            history, todo = [], [head]
            while todo:
                oid = todo.pop()
                if oid in reached or oid not in commits:
                    continue
                reached.add(oid)
                history.append(oid)
                todo.extend(json.loads(commits[oid].parents))
            walks.append((name, sorted(history, key=lambda o: (commits[o].generation, commits[o].created_at))))
        walks.append((None, sorted((o for o in commits if o not in reached),
                                   key=lambda o: (commits[o].generation, commits[o].created_at))))
        found: dict[str, FirstSeen] = {}
        seen_trees: set[str] = set()
        for ref, history in walks:
            for oid in history:
                row = commits[oid]
                if row.tree_id in seen_trees:
                    continue
                seen_trees.add(row.tree_id)
                for path, (sha256, size) in sorted(store._load_tree(conn, row.tree_id).items()):
                    if sha256 not in found:
                        found[sha256] = FirstSeen(sha256, size, path, ref, oid, _aware(row.created_at))
        return list(found.values())


def purge_files(store: Store, repo_id: str, sha256s: list[str], *, repo_type: str = "model",
                actor: str | None = None) -> dict[str, str]:
    """Remove files with these contents from every commit of the repo: a history rewrite.

    Each commit whose tree (or an ancestor's) changes is replaced by one without the files (same author, time
    and message; new oid), refs and pull requests move to the replacements, the replaced commits are deleted,
    and the repo forgets it received the bytes (a later commit must upload them again). The bytes themselves go
    at the next ``fmhub gc`` unless another repo holds them.

    Returns:
        old commit oid → new commit oid, for the commits replaced.
    """
    repo_id, repo_type = validate_repo_id(repo_id), validate_repo_type(repo_type)
    doomed = set(sha256s)
    with store.db.write() as conn:
        repo = store._repo_row(conn, repo_type, repo_id)
        rows = list(conn.execute(select(t.commits).where(t.commits.c.repo_pk == repo.pk)
                                 .order_by(t.commits.c.generation, t.commits.c.created_at)))
        replaced: dict[str, str] = {}
        for row in rows:  # parents before children: generation orders history
            parents = json.loads(row.parents)
            new_parents = [replaced.get(p, p) for p in parents]
            tree = store._load_tree(conn, row.tree_id)
            kept = {path: entry for path, entry in tree.items() if entry[0] not in doomed}
            if len(kept) == len(tree) and new_parents == parents:
                continue
            tree_id = store._save_tree(conn, kept) if len(kept) != len(tree) else row.tree_id
            replaced[row.oid] = store._insert_commit(conn, repo.pk, tree_id, new_parents, row.author, row.title,
                                                     row.message, _aware(row.created_at), row.generation)
        for old, new in replaced.items():
            conn.execute(update(t.refs).where(t.refs.c.repo_pk == repo.pk, t.refs.c.commit_oid == old)
                         .values(commit_oid=new, updated_at=_now()))
            for column in (t.discussions.c.base_commit, t.discussions.c.merge_commit):
                conn.execute(update(t.discussions).where(t.discussions.c.repo_pk == repo.pk, column == old)
                             .values({column.name: new}))
        if replaced:
            conn.execute(delete(t.commits).where(t.commits.c.repo_pk == repo.pk, t.commits.c.oid.in_(list(replaced))))
        conn.execute(delete(t.lfs_uploads).where(t.lfs_uploads.c.repo_pk == repo.pk,
                                                 t.lfs_uploads.c.sha256.in_(list(doomed))))
        conn.execute(update(t.repos).where(t.repos.c.pk == repo.pk).values(updated_at=_now()))
        store._audit(conn, actor, "lfs.purge", repo_type, repo_id,
                     detail={"sha256": sorted(doomed)[:100], "commits_rewritten": len(replaced)})
        return replaced


def repo_holds_blob(store: Store, repo_id: str, sha256: str, *, repo_type: str = "model") -> bool:
    """Whether a commit of the repo (any revision, reachable or not) holds a file with these bytes."""
    repo_id, repo_type = validate_repo_id(repo_id), validate_repo_type(repo_type)
    with store.db.read() as conn:
        repo = store._repo_row(conn, repo_type, repo_id)
        return conn.execute(select(t.commits.c.oid).join(t.tree_entries, t.tree_entries.c.tree_id == t.commits.c.tree_id)
                            .where(t.commits.c.repo_pk == repo.pk, t.tree_entries.c.blob_sha256 == sha256)
                            .limit(1)).first() is not None
