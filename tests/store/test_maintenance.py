"""fsck finds every kind of damage; gc frees exactly what nothing references, on every backend."""

from __future__ import annotations

import hashlib
import io
import os
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from fmhub.store import AddFile, DeleteFile, Store
from fmhub.store import _schema as t
from fmhub.store.maintenance import fsck, gc


def _add(store: Store, repo_id: str, path: str, data: bytes, **kwargs):
    blob = store.put_bytes(data)
    return store.commit(repo_id, [AddFile(path, blob.sha256, blob.size)], title=f"add {path}", author="t", **kwargs)


def _stored(store: Store) -> set[str]:
    return {blob.sha256 for blob in store.blobs.iter_blobs()}


def test_fsck_is_clean_on_a_healthy_store(store: Store) -> None:
    store.create_repo("acme/a")
    _add(store, "acme/a", "w.dat", os.urandom(5000))
    store.create_tag("acme/a", "v1")
    report = fsck(store)
    assert report.ok, report.problems
    assert report.blobs_checked == len(_stored(store)) == 2
    assert report.commits_checked == 2 and report.refs_checked == 2


def test_fsck_reports_a_missing_blob_and_a_dangling_ref(store: Store) -> None:
    store.create_repo("acme/a")
    commit = _add(store, "acme/a", "w.dat", b"weights")
    sha = store.get_entry("acme/a", "w.dat")[1].blob_sha256
    store.blobs.delete(sha)
    with store.db.write() as conn:
        conn.execute(update(t.refs).where(t.refs.c.name == "main").values(commit_oid="f" * 40))
    kinds = {(p.kind, p.subject) for p in fsck(store).problems}
    assert ("missing-blob", sha) in kinds
    assert any(kind == "dangling-ref" for kind, _ in kinds)
    assert commit.oid != "f" * 40


def test_fsck_reports_tampered_metadata(store: Store) -> None:
    store.create_repo("acme/a")
    commit = _add(store, "acme/a", "w.dat", b"weights")
    with store.db.write() as conn:
        conn.execute(update(t.commits).where(t.commits.c.oid == commit.oid).values(title="rewritten history"))
        conn.execute(update(t.tree_entries).where(t.tree_entries.c.path == "w.dat").values(size=999))
    problems = fsck(store, verify_blobs=False).problems
    assert {"bad-commit", "bad-tree", "size-mismatch"} <= {p.kind for p in problems}


def test_gc_frees_only_unreferenced_blobs(store: Store) -> None:
    store.create_repo("acme/a")
    store.create_repo("acme/b")
    shared, only_a, replaced = b"shared" * 100, os.urandom(3000), os.urandom(2000)
    _add(store, "acme/a", "shared.dat", shared)
    _add(store, "acme/b", "shared.dat", shared)
    _add(store, "acme/a", "a.dat", only_a)
    _add(store, "acme/b", "old.dat", replaced)
    store.commit("acme/b", [DeleteFile("old.dat")], title="drop", author="t")  # still in history: kept
    orphan = store.put_bytes(os.urandom(1000))  # never committed
    before = _stored(store)

    report = gc(store, grace_seconds=0, dry_run=True)
    assert report.blobs_deleted == 1 and report.bytes_freed == 1000 and _stored(store) == before

    report = gc(store, grace_seconds=0)
    assert report.deleted == [orphan.sha256] and report.bytes_freed == 1000
    assert _stored(store) == before - {orphan.sha256}
    assert fsck(store).ok

    store.delete_repo("acme/a")
    report = gc(store, grace_seconds=0)
    assert report.trees_deleted == 1  # a's first two trees are identical to b's, so b still uses them
    assert report.deleted == [hashlib.sha256(only_a).hexdigest()] and report.bytes_freed == len(only_a)
    assert store.read_bytes("acme/b", "shared.dat") == shared  # shared content survives its other user
    assert store.read_bytes("acme/b", "old.dat", revision=store.list_commits("acme/b")[1].oid) == replaced
    assert fsck(store).ok


def test_gc_keeps_recent_uploads_within_the_grace_period(store: Store) -> None:
    pending = store.put_bytes(b"an upload whose commit is on its way")
    report = gc(store, grace_seconds=3600)
    assert report.blobs_deleted == 0 and report.blobs_kept_in_grace == 1
    assert pending.sha256 in _stored(store)
    # An old unreferenced blob goes, unless someone uploads it again: that restarts its clock.
    two_hours_ago = datetime.now(UTC) - timedelta(hours=2)
    with store.db.write() as conn:
        conn.execute(update(t.blobs).values(last_put_at=two_hours_ago))
    store.put_bytes(b"an upload whose commit is on its way")
    assert gc(store, grace_seconds=3600).blobs_deleted == 0
    with store.db.write() as conn:
        conn.execute(update(t.blobs).values(last_put_at=two_hours_ago))
    assert gc(store, grace_seconds=3600).deleted == [pending.sha256]


def test_gc_collects_blobs_with_no_metadata_row(local_store: Store) -> None:
    """A writer killed between storing bytes and recording them leaves a bare blob: gc finds it."""
    info = local_store.blobs.put_stream(io.BytesIO(b"bare"))
    assert gc(local_store, grace_seconds=3600).blobs_deleted == 0  # young: could be in flight
    old = 1_000_000_000
    os.utime(local_store.blobs.local_path(info.sha256), (old, old))
    assert gc(local_store, grace_seconds=3600).deleted == [info.sha256]


def test_gc_rejects_a_negative_grace(store: Store) -> None:
    with pytest.raises(ValueError, match="grace"):
        gc(store, grace_seconds=-1)


def test_gc_drops_rows_of_blobs_whose_bytes_are_gone(store: Store) -> None:
    blob = store.put_bytes(b"x" * 10)
    store.blobs.delete(blob.sha256)  # bytes gone, row left
    report = gc(store, grace_seconds=0)
    assert report.blobs_deleted == 0 and report.bytes_freed == 0
    with store.db.read() as conn:
        assert conn.execute(select(t.blobs.c.sha256)).all() == []
    assert fsck(store).ok


def test_gc_dry_run_counts_the_upload_leftovers_gc_removes(local_store: Store) -> None:
    leftover = local_store.blobs.inner.root / "tmp" / "upload-crashed.part"
    leftover.write_bytes(b"x" * 5000)
    old = (datetime.now(UTC) - timedelta(days=2)).timestamp()
    os.utime(leftover, (old, old))
    dry = gc(local_store, dry_run=True)
    assert (dry.temporary_files_removed, dry.temporary_bytes_freed) == (1, 5000)
    assert leftover.exists()  # a dry run deletes nothing
    done = gc(local_store)
    assert (done.temporary_files_removed, done.temporary_bytes_freed) == (1, 5000)
    assert not leftover.exists()


def test_gc_collects_the_records_of_the_blobs_it_deletes(store: Store) -> None:
    """A deleted blob's pickle scan, git blob id and upload grants go with it; a kept blob's stay."""
    from fmhub.store.gitoids import content_git_sha1

    store.create_repo("acme/a")
    _add(store, "acme/a", "kept.txt", b"kept bytes")
    kept = hashlib.sha256(b"kept bytes").hexdigest()
    orphan = store.put_bytes(b"uploaded, never committed")
    store.record_upload("acme/a", orphan.sha256)
    store.scan_blobs({orphan.sha256: orphan.size, kept: 10})
    content_git_sha1(store, {orphan.sha256: orphan.size, kept: 10})
    gone = "e" * 64  # a scan row an older gc left behind: no blob row, no bytes
    with store.db.write() as conn:
        conn.execute(t.blob_scans.insert().values(sha256=gone, pickle_imports=None, scanner="old",
                                                  scanned_at=datetime.now(UTC)))

    def rows(table) -> set[str]:
        with store.db.read() as conn:
            return set(conn.execute(select(table.c.sha256)).scalars())

    assert {orphan.sha256, kept, gone} <= rows(t.blob_scans)
    dry = gc(store, grace_seconds=0, dry_run=True)
    records = {"pickle scans": 2, "git blob ids": 1, "upload grants": 1}
    assert {what: n for what, n in dry.collected.items() if what in records} == records
    assert {orphan.sha256, gone} <= rows(t.blob_scans)  # a dry run deletes nothing

    report = gc(store, grace_seconds=0)
    assert report.deleted == [orphan.sha256]
    assert {what: n for what, n in report.collected.items() if what in records} == records
    assert rows(t.blob_scans) == {kept}
    assert rows(t.git_blob_ids) == {kept}
    assert orphan.sha256 not in rows(t.lfs_uploads)
    assert not store.has_upload("acme/a", orphan.sha256)
    assert store.pickle_scans([kept]) == {kept: None}
    assert fsck(store).ok
