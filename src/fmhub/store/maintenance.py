"""Integrity checks (``fsck``) and garbage collection (``gc``) of a store.

``fsck`` trusts nothing: it re-hashes every blob, recomputes every tree and commit id, and follows
every reference (ref → commit → tree → blob). ``gc`` deletes what no commit can reach: orphan trees
(left by deleted repos) and unreferenced blobs whose last upload is older than a grace period.

Why gc cannot race an upload: an upload restarts the blob's clock (``blobs.last_put_at``) before
it writes, and a commit restarts it again in the transaction that records the tree. ``gc`` decides
and deletes inside a write transaction that excludes those writers (``BEGIN IMMEDIATE`` on SQLite,
an EXCLUSIVE table lock on PostgreSQL, which still lets readers through), so a blob is deleted only
when, at that moment, nothing references it and nobody has put it within the grace period.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, delete, func, select, text

from fmhub.errors import BlobNotFoundError, IntegrityError, InvalidInputError, RevokedKeyError
from fmhub.store import _schema as t
from fmhub.store.extensions import registered_extensions
from fmhub.store.objects import compute_commit_id, compute_tree_id
from fmhub.store.store import Store, _aware

__all__ = ["Problem", "FsckReport", "GcReport", "fsck", "gc", "DEFAULT_GC_GRACE_SECONDS"]

#: Unreferenced blobs younger than this are kept: an upload may be about to commit them.
DEFAULT_GC_GRACE_SECONDS = 3600.0

_BATCH = 256


@dataclass(frozen=True)
class Problem:
    """One inconsistency: what kind, which object, and what is wrong with it."""

    kind: str  # corrupt-blob | missing-blob | size-mismatch | bad-tree | bad-commit | dangling-ref | ...
    subject: str
    detail: str


@dataclass
class FsckReport:
    blobs_checked: int = 0
    bytes_checked: int = 0
    trees_checked: int = 0
    commits_checked: int = 0
    refs_checked: int = 0
    problems: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class GcReport:
    dry_run: bool
    trees_deleted: int = 0
    blobs_deleted: int = 0
    bytes_freed: int = 0
    blobs_kept_in_grace: int = 0
    temporary_files_removed: int = 0  # with dry_run: how many would be
    temporary_bytes_freed: int = 0
    deleted: list[str] = field(default_factory=list)
    #: Records storage extensions dropped before blobs were collected (e.g. ``{"xet files": 2}``).
    collected: dict[str, int] = field(default_factory=dict)


def _chunks(items: list[str], size: int = _BATCH) -> Iterator[list[str]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


# -- fsck ------------------------------------------------------------------------------------------


def fsck(store: Store, *, verify_blobs: bool = True, progress: Callable[[int], None] | None = None,
         on_total: Callable[[int], None] | None = None) -> FsckReport:
    """Check a whole store and report every inconsistency (it repairs nothing).

    Args:
        verify_blobs: re-hash the bytes of every blob (the slow, thorough part).
        progress: called with byte counts while blobs are re-hashed.
        on_total: called once with the total bytes to re-hash, before hashing starts.
    """
    report = FsckReport()
    stored = {blob.sha256: blob.size for blob in store.blobs.iter_blobs()}

    if verify_blobs:
        if on_total:
            on_total(sum(stored.values()))
        for sha, size in stored.items():
            try:
                actual_sha, actual_size = store.blobs.rehash(sha, progress)
            except BlobNotFoundError:  # deleted while we looked (gc); not an inconsistency
                continue
            except RevokedKeyError as exc:  # crypto-shredded on purpose: unreadable, not damaged
                report.warnings.append(f"blob {sha} cannot be checked: {exc.message}")
                continue
            except IntegrityError as exc:  # encrypted at rest and failing authentication
                report.blobs_checked += 1
                report.problems.append(Problem("corrupt-blob", sha, exc.message))
                continue
            report.blobs_checked += 1
            report.bytes_checked += actual_size
            if actual_sha != sha or actual_size != size:
                report.problems.append(Problem("corrupt-blob", sha, f"content hashes to {actual_sha} "
                                                                    f"({actual_size} bytes)"))

    held: dict[str, int] = {}
    for extension in registered_extensions():
        held.update(extension.held_blobs(store))
        for kind, subject, detail in extension.check(store, verify=verify_blobs):
            report.problems.append(Problem(kind, subject, f"{detail} ({extension.name})"))
    with store.db.read() as conn:
        _check_trees(conn, {**held, **stored}, report)
        commits = _check_commits(conn, report)
        _check_refs(conn, commits, report)

    for name in store.blobs.temporary_files():
        report.warnings.append(f"leftover of an interrupted upload: {name} (never visible; `fmhub gc` removes it)")
    return report


def _check_trees(conn: Connection, stored: dict[str, int], report: FsckReport) -> None:
    trees = {row.tree_id: row for row in conn.execute(select(t.trees))}
    entries: dict[str, dict[str, tuple[str, int]]] = {tree_id: {} for tree_id in trees}
    rows = conn.execute(select(t.tree_entries.c.tree_id, t.tree_entries.c.path, t.tree_entries.c.blob_sha256,
                               t.tree_entries.c.size))
    for tree_id, path, sha, size in rows:
        if tree_id not in entries:
            report.problems.append(Problem("bad-tree", tree_id, f"entry {path!r} belongs to no tree"))
            continue
        entries[tree_id][path] = (sha, size)
        if sha not in stored:
            report.problems.append(Problem("missing-blob", sha, f"{path!r} in tree {tree_id[:12]} needs it"))
        elif stored[sha] != size:
            report.problems.append(Problem("size-mismatch", sha, f"{path!r} in tree {tree_id[:12]} declares "
                                                                 f"{size} bytes, the blob holds {stored[sha]}"))
    for tree_id, tree in entries.items():
        report.trees_checked += 1
        row = trees[tree_id]
        if compute_tree_id(tree) != tree_id:
            report.problems.append(Problem("bad-tree", tree_id, "entries do not hash to the tree id"))
        if row.file_count != len(tree) or row.total_size != sum(size for _, size in tree.values()):
            report.problems.append(Problem("bad-tree", tree_id, "file count or total size does not match entries"))


def _check_commits(conn: Connection, report: FsckReport) -> set[tuple[int, str]]:
    tree_ids = set(conn.execute(select(t.trees.c.tree_id)).scalars())
    rows = conn.execute(select(t.commits)).all()
    known = {(row.repo_pk, row.oid) for row in rows}
    for row in rows:
        report.commits_checked += 1
        subject = row.oid
        parents = json.loads(row.parents)
        if row.tree_id not in tree_ids:
            report.problems.append(Problem("bad-commit", subject, f"its tree {row.tree_id[:12]} is missing"))
        expected = compute_commit_id(row.tree_id, parents, row.author, row.title, row.message, _aware(row.created_at))
        if expected != row.oid:
            report.problems.append(Problem("bad-commit", subject, f"its content hashes to {expected}"))
        for parent in parents:
            if (row.repo_pk, parent) not in known:
                report.problems.append(Problem("bad-commit", subject, f"its parent {parent} is missing"))
    return known


def _check_refs(conn: Connection, commits: set[tuple[int, str]], report: FsckReport) -> None:
    repos = conn.execute(select(t.repos)).all()
    names = {row.pk: f"{row.repo_type}:{row.namespace}/{row.name}" for row in repos}
    branches: set[tuple[int, str]] = set()
    for row in conn.execute(select(t.refs)):
        report.refs_checked += 1
        if row.kind == "branch":
            branches.add((row.repo_pk, row.name))
        if (row.repo_pk, row.commit_oid) not in commits:
            report.problems.append(Problem("dangling-ref", f"{names.get(row.repo_pk, row.repo_pk)} {row.kind} "
                                                           f"{row.name}", f"points to missing commit {row.commit_oid}"))
    for row in repos:
        if (row.pk, row.default_branch) not in branches:
            report.problems.append(Problem("dangling-ref", names[row.pk],
                                           f"default branch {row.default_branch!r} is missing"))


# -- gc --------------------------------------------------------------------------------------------


def _lock(conn: Connection, table) -> None:
    """Exclude writers of ``table`` for the rest of the transaction (SQLite's BEGIN IMMEDIATE already does)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text(f"LOCK TABLE {table.name} IN EXCLUSIVE MODE"))


#: Tables keyed by a blob's sha256 whose rows gc deletes with the blob (name in ``GcReport.collected``).
_BLOB_RECORDS = {"pickle scans": t.blob_scans, "git blob ids": t.git_blob_ids, "upload grants": t.lfs_uploads}
#: Of those, the ones that only cache what the bytes say: a row left by an older gc (which deleted the blob
#: without them) is dropped when no blob row and no bytes remain. Grants are not swept: an upload records its
#: grant after its blob, and a grant without bytes grants nothing.
_CACHE_RECORDS = {"pickle scans": t.blob_scans, "git blob ids": t.git_blob_ids}


def _count(conn: Connection, table, shas: list[str]) -> int:
    return conn.execute(select(func.count()).select_from(table).where(table.c.sha256.in_(shas))).scalar_one()


def _collect_stale_records(store: Store, stored: Collection[str], report: GcReport) -> None:
    """Drop cached per-blob rows (pickle scans, git blob ids) of blobs that are gone, rows and bytes."""
    for what, table in _CACHE_RECORDS.items():
        with store.db.write() as conn:
            _lock(conn, t.blobs)
            stale = [sha for sha in conn.execute(
                select(table.c.sha256).where(~select(t.blobs.c.sha256).where(t.blobs.c.sha256 == table.c.sha256)
                                             .exists())).scalars() if sha not in stored]
            if not stale:
                continue
            report.collected[what] = report.collected.get(what, 0) + len(stale)
            if not report.dry_run:
                for batch in _chunks(stale):
                    conn.execute(delete(table).where(table.c.sha256.in_(batch)))


def gc(store: Store, *, grace_seconds: float = DEFAULT_GC_GRACE_SECONDS, dry_run: bool = False) -> GcReport:
    """Delete trees no commit uses and blobs no tree uses (and not put within ``grace_seconds``).

    Args:
        grace_seconds: keep unreferenced blobs uploaded more recently than this (an upload's commit
            may be on its way).
        dry_run: report what would be deleted, delete nothing.
    """
    if grace_seconds < 0:
        raise InvalidInputError(f"grace period must be ≥ 0 seconds, got {grace_seconds}", hint="e.g. --grace 1h")
    report = GcReport(dry_run=dry_run)
    extensions = registered_extensions()
    cutoff = datetime.now(UTC) - timedelta(seconds=grace_seconds)
    cutoff_ts = time.time() - grace_seconds

    with store.db.write() as conn:
        _lock(conn, t.trees)
        orphans = list(conn.execute(
            select(t.trees.c.tree_id).where(~select(t.commits.c.oid).where(t.commits.c.tree_id == t.trees.c.tree_id)
                                            .exists())
        ).scalars())
        report.trees_deleted = len(orphans)
        if not dry_run:
            for batch in _chunks(orphans):
                conn.execute(delete(t.tree_entries).where(t.tree_entries.c.tree_id.in_(batch)))
                conn.execute(delete(t.trees).where(t.trees.c.tree_id.in_(batch)))

    # After the orphan trees, before the blobs: records that let go of blobs, so those go in this same run.
    for extension in extensions:
        for what, count in extension.collect(store, grace_seconds=grace_seconds, dry_run=dry_run).items():
            report.collected[what] = report.collected.get(what, 0) + count

    stored = {blob.sha256: blob for blob in store.blobs.iter_blobs()}
    with store.db.read() as conn:
        recorded = set(conn.execute(select(t.blobs.c.sha256)).scalars())
    for batch in _chunks(sorted(stored.keys() | recorded)):
        with store.db.write() as conn:
            _lock(conn, t.blobs)
            referenced = set(conn.execute(
                select(t.tree_entries.c.blob_sha256).where(t.tree_entries.c.blob_sha256.in_(batch)).distinct()
            ).scalars())
            for extension in extensions:  # e.g. the xorbs and shards Xet files are made of
                referenced |= extension.referenced_blobs(conn, batch)
            last_put = {sha: _aware(when) for sha, when in conn.execute(
                select(t.blobs.c.sha256, t.blobs.c.last_put_at).where(t.blobs.c.sha256.in_(batch)))}
            doomed = []
            for sha in batch:
                if sha in referenced or (sha not in last_put and sha not in stored):
                    continue  # in use, or already gone (another gc got there first)
                # The row's clock is authoritative; bytes with no row yet (a writer between storing
                # and recording them) are judged by their file time.
                young = last_put[sha] >= cutoff if sha in last_put else stored[sha].mtime >= cutoff_ts
                if young:
                    report.blobs_kept_in_grace += 1
                    continue
                doomed.append(sha)
            if not doomed:
                continue
            # Rows keyed by the blob's content go with it: its pickle scan, its git blob id, the repos'
            # grants to reference it (a new upload of the same bytes records them again).
            for what, table in _BLOB_RECORDS.items():
                if found := _count(conn, table, doomed):
                    report.collected[what] = report.collected.get(what, 0) + found
            if not dry_run:
                for table in (t.blobs, *_BLOB_RECORDS.values()):
                    conn.execute(delete(table).where(table.c.sha256.in_(doomed)))
            for sha in doomed:
                if sha in stored:
                    if not dry_run:
                        store.blobs.delete(sha)  # inside the transaction: no writer can re-reference it meanwhile
                    report.blobs_deleted += 1
                    report.bytes_freed += stored[sha].size
                    report.deleted.append(sha)

    _collect_stale_records(store, stored.keys(), report)
    # Leftovers of interrupted uploads count in a dry run too: what it says is what the real run frees.
    report.temporary_files_removed, report.temporary_bytes_freed = store.blobs.clean_temporary(
        grace_seconds, dry_run=dry_run)
    return report
