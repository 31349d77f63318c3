"""Repository versions as plain records, read out of one store and written into another (mirroring).

:func:`collect` gathers what a set of revisions of a repo needs: the repo's settings, every commit reachable
from them (full history, so parents always exist), their trees and the refs that name them. :func:`apply`
writes such records into a store inside a transaction the caller holds, so a mirror import lands with the
other domains' records in one commit. Ids are recomputed on the way in (tree ids from entries, commit ids
from their content, as ``fsck`` does): a record that does not hash to its id is refused.

The bytes of files are not handled here: the caller stores blobs first (they are content-addressed, so a
blob no tree names yet is only unreferenced content, which ``gc`` collects after its grace period).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from fmhub.errors import IntegrityError, InvalidInputError, RevisionNotFoundError
from fmhub.store import _schema as t
from fmhub.store.blobs import check_sha256
from fmhub.store.objects import Commit, Ref, Repo, compute_commit_id, compute_tree_id
from fmhub.store.paths import validate_ref_name, validate_repo_id, validate_repo_type, validate_stored_path
from fmhub.store.store import PR_REF, Store, _aware, _now, _repo_key, _upsert

__all__ = ["RepoSnapshot", "RefUpdate", "collect", "apply", "commit_to_json", "commit_from_json",
           "ref_to_json", "ref_from_json", "tree_to_json", "tree_from_json", "missing_objects", "check_safety",
           "held_trees", "held_commits"]

Tree = dict[str, tuple[str, int]]


@dataclass
class RepoSnapshot:
    """Versions of one repo: its settings, commits (oldest first), the trees they name and the refs to them."""

    repo: Repo
    commits: list[Commit]
    trees: dict[str, Tree]
    refs: list[Ref]

    def blobs(self) -> dict[str, int]:
        """sha256 → size of every file of every tree."""
        return {sha: size for tree in self.trees.values() for sha, size in tree.values()}


@dataclass
class RefUpdate:
    """What :func:`apply` did (or refused to do) with one incoming ref."""

    repo: str
    kind: str
    name: str
    old: str | None
    new: str
    outcome: str  # created | fast-forward | unchanged | forced | conflict
    detail: str = ""


# -- records ------------------------------------------------------------------------------------------


def commit_to_json(commit: Commit) -> dict[str, Any]:
    return {"oid": commit.oid, "tree_id": commit.tree_id, "parents": list(commit.parents), "author": commit.author,
            "title": commit.title, "message": commit.message,
            "created_at": commit.created_at.isoformat(timespec="microseconds"), "generation": commit.generation}


def commit_from_json(data: dict[str, Any]) -> Commit:
    """A commit record, checked: its id must be the hash of its content."""
    try:
        created = datetime.fromisoformat(data["created_at"])
        created = created.replace(tzinfo=UTC) if created.tzinfo is None else created.astimezone(UTC)
        commit = Commit(str(data["oid"]), check_sha256(data["tree_id"]), tuple(str(p) for p in data["parents"]),
                        str(data["author"]), str(data["title"]), str(data["message"]), created, int(data["generation"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidInputError(f"malformed commit record: {exc}") from None
    expected = compute_commit_id(commit.tree_id, commit.parents, commit.author, commit.title, commit.message,
                                 commit.created_at)
    if expected != commit.oid:
        raise IntegrityError(f"commit {commit.oid}: its content hashes to {expected}", expected=commit.oid,
                             actual=expected)
    return commit


def ref_to_json(ref: Ref) -> dict[str, Any]:
    return {"kind": ref.kind, "name": ref.name, "commit": ref.commit_oid, "message": ref.message,
            "created_at": ref.created_at.isoformat(), "updated_at": ref.updated_at.isoformat()}


def ref_from_json(data: dict[str, Any]) -> Ref:
    try:
        kind = data["kind"]
        if kind not in ("branch", "tag"):
            raise ValueError(f"ref kind {kind!r}")
        return Ref(kind, validate_ref_name(data["name"]), str(data["commit"]), data.get("message"),
                   datetime.fromisoformat(data["created_at"]).astimezone(UTC),
                   datetime.fromisoformat(data["updated_at"]).astimezone(UTC))
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidInputError(f"malformed ref record: {exc}") from None


def tree_to_json(tree_id: str, tree: Tree) -> dict[str, Any]:
    return {"tree_id": tree_id, "entries": [[path, sha, size] for path, (sha, size) in sorted(tree.items())]}


def tree_from_json(data: dict[str, Any]) -> tuple[str, Tree]:
    """A tree record, checked: paths are ones a store may hold, and the entries hash to the tree id."""
    try:
        tree_id = check_sha256(data["tree_id"])
        tree: Tree = {}
        for path, sha, size in data["entries"]:
            if not isinstance(size, int) or size < 0:
                raise ValueError(f"size {size!r} of {path!r}")
            tree[validate_stored_path(path)] = (check_sha256(sha), size)
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidInputError(f"malformed tree record: {exc}") from None
    actual = compute_tree_id(tree)
    if actual != tree_id:
        raise IntegrityError(f"tree {tree_id}: its entries hash to {actual}", expected=tree_id, actual=actual)
    return tree_id, tree


# -- reading ------------------------------------------------------------------------------------------


def collect(store: Store, repo_id: str, revisions: Sequence[str] = (), *, repo_type: str = "model") -> RepoSnapshot:
    """The records the given revisions need (every branch and tag when none is named).

    A revision that is a branch or tag brings that ref; a commit id brings its history and no ref.
    """
    repo_id = validate_repo_id(repo_id)
    repo_type = validate_repo_type(repo_type)
    with store.db.read() as conn:
        row = store._repo_row(conn, repo_type, repo_id)
        repo = store._repo(row)
        ref_rows = conn.execute(select(t.refs).where(t.refs.c.repo_pk == row.pk, t.refs.c.kind.in_(("branch", "tag")))
                                .order_by(t.refs.c.kind, t.refs.c.name)).all()
        refs = [Ref(r.kind, r.name, r.commit_oid, r.message, _aware(r.created_at), _aware(r.updated_at))
                for r in ref_rows]
        if revisions:
            chosen: list[Ref] = []
            heads: list[str] = []
            for revision in revisions:
                named = [ref for ref in refs if ref.name == revision.removeprefix("refs/heads/").removeprefix(
                    "refs/tags/") and not (revision.startswith("refs/heads/") and ref.kind != "branch")
                    and not (revision.startswith("refs/tags/") and ref.kind != "tag")]
                commit = store._resolve(conn, row, revision)
                heads.append(commit.oid)
                # The ref the revision resolved through (a branch wins over a same-named tag, as in resolving).
                for ref in sorted(named, key=lambda r: r.kind != "branch")[:1]:
                    if ref not in chosen:
                        chosen.append(ref)
            refs = chosen
        else:
            heads = [ref.commit_oid for ref in refs]
        by_oid = {r.oid: store._commit_from_row(r) for r in conn.execute(
            select(t.commits).where(t.commits.c.repo_pk == row.pk))}
        wanted: dict[str, Commit] = {}
        stack = list(heads)
        while stack:
            oid = stack.pop()
            if oid in wanted:
                continue
            if oid not in by_oid:
                raise RevisionNotFoundError(repo_id, oid)
            wanted[oid] = by_oid[oid]
            stack.extend(wanted[oid].parents)
        commits = sorted(wanted.values(), key=lambda c: (c.generation, c.created_at, c.oid))
        trees = {tree_id: store._load_tree(conn, tree_id) for tree_id in dict.fromkeys(c.tree_id for c in commits)}
    return RepoSnapshot(repo, commits, trees, refs)


def missing_objects(store: Store, snapshot: RepoSnapshot) -> list[str]:
    """What the store lacks for these records to be complete: files (by sha256 and size) the trees name."""
    missing = []
    for sha, size in sorted(snapshot.blobs().items()):
        actual = store.blob_size(sha)
        if actual != size:
            missing.append(sha if actual is None else f"{sha} (holds {actual} bytes, {size} expected)")
    return missing


# -- writing ------------------------------------------------------------------------------------------


def _is_ancestor(commits: dict[str, list[str]], ancestor: str, descendant: str) -> bool:
    stack, seen = [descendant], set()
    while stack:
        oid = stack.pop()
        if oid == ancestor:
            return True
        if oid in seen:
            continue
        seen.add(oid)
        stack.extend(commits.get(oid, ()))
    return False


@dataclass
class AppliedRepo:
    """The outcome of :func:`apply` for one repo."""

    repo_pk: int
    created: bool
    commits_added: int
    trees_added: int
    refs: list[RefUpdate] = field(default_factory=list)


def apply(store: Store, conn: Connection, snapshot: RepoSnapshot, *, force: bool = False,
          actor: str | None = None) -> AppliedRepo:
    """Write a snapshot's repo, trees, commits and refs in ``conn``'s transaction.

    Every commit's tree and parents must be in the snapshot or already in the repo, and every file the trees
    name in the store (store blobs first). A branch moves only forward (the incoming commit descends from
    its current one) and a tag never moves; other ref changes are reported as conflicts and left alone,
    unless ``force``. The audit log records the import; the search index follows (write hooks other than
    lineage, which travels as records).
    """
    repo = snapshot.repo
    repo_id, repo_type = validate_repo_id(repo.repo_id), validate_repo_type(repo.repo_type)
    row = store._repo_row(conn, repo_type, repo_id, required=False)
    created = row is None
    now = _now()
    if created:
        namespace, name = repo_id.split("/")
        validate_ref_name(repo.default_branch)
        conn.execute(insert(t.repos).values(
            repo_type=repo_type, namespace=namespace, name=name, key=_repo_key(repo_type, repo_id),
            private=bool(repo.private), default_branch=repo.default_branch, created_at=repo.created_at,
            updated_at=now))
        row = store._repo_row(conn, repo_type, repo_id)
    existing = {r.oid: json.loads(r.parents) for r in conn.execute(
        select(t.commits.c.oid, t.commits.c.parents).where(t.commits.c.repo_pk == row.pk))}
    known_trees = set(snapshot.trees)
    incoming = {c.oid: c for c in snapshot.commits}
    for commit in snapshot.commits:
        for parent in commit.parents:
            if parent not in incoming and parent not in existing:
                raise InvalidInputError(f"commit {commit.oid} of {repo_id}: its parent {parent} is neither in the "
                                        "bundle nor on this hub", hint="import the bundle this one was made --since")
    trees_added = 0
    needed_trees = {c.tree_id for c in snapshot.commits if c.oid not in existing}
    for tree_id in sorted(needed_trees):
        if tree_id not in known_trees:
            if conn.execute(select(t.trees.c.tree_id).where(t.trees.c.tree_id == tree_id)).first() is None:
                raise InvalidInputError(f"tree {tree_id} of {repo_id} is neither in the bundle nor on this hub",
                                        hint="import the bundle this one was made --since")
            continue
        tree = snapshot.trees[tree_id]
        inserted = _upsert(conn, t.trees, {"tree_id": tree_id, "file_count": len(tree),
                                           "total_size": sum(size for _, size in tree.values())},
                           key="tree_id", returning=True).first()
        if inserted is not None:
            trees_added += 1
            if tree:
                conn.execute(insert(t.tree_entries), [{"tree_id": tree_id, "path": p, "blob_sha256": s, "size": n}
                                                      for p, (s, n) in tree.items()])
    added = [c for c in snapshot.commits if c.oid not in existing]
    if added:  # ON CONFLICT DO NOTHING: a concurrent import of the same commits is no error (they are identical)
        _upsert(conn, t.commits, [
            {"repo_pk": row.pk, "oid": c.oid, "tree_id": c.tree_id, "parents": json.dumps(list(c.parents)),
             "author": c.author, "title": c.title, "message": c.message, "created_at": c.created_at,
             "generation": c.generation} for c in added], key=("repo_pk", "oid"))
    graph = {**existing, **{c.oid: list(c.parents) for c in snapshot.commits}}
    result = AppliedRepo(row.pk, created, len(added), trees_added)
    for ref in snapshot.refs:
        if ref.commit_oid not in graph:
            raise InvalidInputError(f"{ref.kind} {ref.name} of {repo_id} points to {ref.commit_oid}, which the "
                                    "bundle does not hold")
        if PR_REF.fullmatch(ref.name):
            continue
        current = conn.execute(select(t.refs.c.commit_oid).where(  # locked: no commit moves it under us (PostgreSQL)
            t.refs.c.repo_pk == row.pk, t.refs.c.kind == ref.kind, t.refs.c.name == ref.name)
            .with_for_update()).scalar_one_or_none()
        update_ = RefUpdate(repo_id, ref.kind, ref.name, current, ref.commit_oid, "created")
        if current is None:
            conn.execute(insert(t.refs).values(repo_pk=row.pk, kind=ref.kind, name=ref.name, commit_oid=ref.commit_oid,
                                               message=ref.message, created_at=ref.created_at,
                                               updated_at=ref.updated_at))
        elif current == ref.commit_oid:
            update_.outcome = "unchanged"
        else:
            forward = ref.kind == "branch" and _is_ancestor(graph, current, ref.commit_oid)
            if not forward and not force:
                update_.outcome = "conflict"
                update_.detail = ("tags never move" if ref.kind == "tag" else
                                  f"this hub's {ref.name} ({current[:12]}) is not an ancestor of the incoming "
                                  f"{ref.commit_oid[:12]}")
            else:
                update_.outcome = "fast-forward" if forward else "forced"
                conn.execute(update(t.refs).where(t.refs.c.repo_pk == row.pk, t.refs.c.kind == ref.kind,
                                                  t.refs.c.name == ref.name)
                             .values(commit_oid=ref.commit_oid, updated_at=ref.updated_at))
        result.refs.append(update_)
    if created and not any(u.kind == "branch" and u.name == repo.default_branch and u.outcome != "conflict"
                           for u in result.refs):
        raise InvalidInputError(f"the bundle does not hold {repo_id}'s default branch {repo.default_branch!r}, "
                                "which a new repo needs", hint=f"export {repo_id} with its default branch too")
    conn.execute(update(t.repos).where(t.repos.c.pk == row.pk).values(updated_at=now))
    store._audit(conn, actor, "mirror.import", repo_type, repo_id,
                 detail={"commits": len(added), "refs": {f"{u.kind}/{u.name}": u.outcome for u in result.refs}})
    _reindex(store, conn, repo_type, repo_id, row.pk)
    return result


def _reindex(store: Store, conn: Connection, repo_type: str, repo_id: str, repo_pk: int) -> None:
    """Bring the indexes kept by write hooks (search) to the repo's new head; lineage is imported as records."""
    from fmhub.store.hooks import WriteContext, registered_write_hooks

    head = conn.execute(select(t.refs.c.commit_oid).join_from(t.refs, t.repos, t.repos.c.pk == t.refs.c.repo_pk)
                        .where(t.refs.c.repo_pk == repo_pk, t.refs.c.kind == "branch",
                               t.refs.c.name == t.repos.c.default_branch)).scalar_one_or_none()
    if head is None:
        return
    for hook in registered_write_hooks():
        if hook.name != "lineage":
            hook.after_write(WriteContext(store, conn, "index", repo_type, repo_id, None, head))



def check_safety(store: Store, snapshot: RepoSnapshot, *, allow_pickle: bool) -> None:
    """The checks a commit makes on the files it adds (safetensors headers; pickles found by content, refused
    unless ``allow_pickle``), for the files of mirrored trees that no tree of this store holds yet.

    Raises:
        InvalidWeightsError, UnsafeFileError: as :meth:`Store.commit` would.
    """
    from fmhub.store.objects import AddFile

    shas = sorted({sha for tree in snapshot.trees.values() for sha, _ in tree.values()})
    known = store.blobs_in_trees(shas)
    operations: dict[tuple[str, str], AddFile] = {}
    for tree in snapshot.trees.values():
        for path, (sha, size) in tree.items():
            if sha not in known:
                operations.setdefault((path, sha), AddFile(path, sha, size))
    if operations:
        store._check_safety(list(operations.values()), allow_pickle=allow_pickle)


def held_trees(store: Store, tree_ids: Sequence[str]) -> set[str]:
    """Which of these trees the store holds."""
    found: set[str] = set()
    with store.db.read() as conn:
        for start in range(0, len(tree_ids), 500):
            found |= set(conn.execute(select(t.trees.c.tree_id).where(
                t.trees.c.tree_id.in_(list(tree_ids[start:start + 500])))).scalars())
    return found


def held_commits(store: Store, repo_type: str, repo_id: str, oids: Sequence[str]) -> set[str]:
    """Which of these commits the repo holds (none when there is no such repo)."""
    found: set[str] = set()
    with store.db.read() as conn:
        row = store._repo_row(conn, repo_type, repo_id, required=False)
        if row is None:
            return found
        for start in range(0, len(oids), 500):
            found |= set(conn.execute(select(t.commits.c.oid).where(
                t.commits.c.repo_pk == row.pk, t.commits.c.oid.in_(list(oids[start:start + 500])))).scalars())
    return found
