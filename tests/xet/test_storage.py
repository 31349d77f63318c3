"""Xet storage over a real store: what is recorded, read back, deduplicated, checked and collected."""

from __future__ import annotations

import hashlib
import io
import os

import pytest
from _xet_writer import chunks_of, file_upload, make_shard, make_xorb

from fmhub.errors import RangeNotSatisfiableError, XetFileNotFoundError, XetObjectError
from fmhub.store import AddFile, Store
from fmhub.store.maintenance import fsck, gc
from fmhub.xet import XetStorage, file_hash, to_hex

DATA = os.urandom(300_000) + bytes(200_000)  # random chunks and compressible ones


@pytest.fixture
def repo(local_store: Store):
    return local_store.create_repo("alice/model")


def _upload(store: Store, repo, data: bytes = DATA, *, chunk_size: int = 64 * 1024):
    upload = file_upload(data, chunk_size)
    xet = XetStorage(store)
    assert xet.receive_xorb(upload.xorb.hex, io.BytesIO(upload.xorb.data), repo=repo) is True
    assert xet.receive_shard(io.BytesIO(upload.shard), repo=repo, actor="alice", may_read=lambda s: False) == 1
    return upload


def test_an_uploaded_file_reads_back_whole_and_in_ranges(local_store: Store, repo) -> None:
    upload = _upload(local_store, repo)
    assert local_store.blob_size(upload.sha256) == len(DATA)
    assert b"".join(local_store.iter_blob(upload.sha256)) == DATA
    for start, end in ((0, 1), (65_535, 65_537), (100_000, 400_001), (len(DATA) - 3, len(DATA)), (10, 10**9)):
        assert b"".join(local_store.iter_blob(upload.sha256, start, end)) == DATA[start:end]
    # A commit names it by sha256 like any LFS file; the repo received it, so it may.
    assert local_store.has_upload("alice/model", upload.sha256)
    local_store.commit("alice/model", [AddFile("w.dat", upload.sha256, len(DATA))], title="add", author="alice")
    assert local_store.read_bytes("alice/model", "w.dat") == DATA


def test_only_the_xorb_and_the_shard_are_stored(local_store: Store, repo) -> None:
    before = {b.sha256 for b in local_store.blobs.iter_blobs()}
    upload = _upload(local_store, repo)
    added = {b.sha256: b.size for b in local_store.blobs.iter_blobs() if b.sha256 not in before}
    assert sorted(added.values()) == sorted([len(upload.xorb.data), len(upload.shard)])
    assert upload.sha256 not in added  # the file itself is not stored a second time


def test_a_second_upload_of_a_known_xorb_is_checked_but_not_stored_again(local_store: Store, repo) -> None:
    upload = _upload(local_store, repo)
    count = len(list(local_store.blobs.iter_blobs()))
    xet = XetStorage(local_store)
    assert xet.receive_xorb(upload.xorb.hex, io.BytesIO(upload.xorb.data), repo=repo) is False
    with pytest.raises(XetObjectError):
        xet.receive_xorb(upload.xorb.hex, io.BytesIO(upload.xorb.data[:-5]), repo=repo)
    assert len(list(local_store.blobs.iter_blobs())) == count


def test_reconstruction_trims_to_the_range(local_store: Store, repo) -> None:
    upload = _upload(local_store, repo)
    xet = XetStorage(local_store)
    plan = xet.reconstruction(upload.file_hex, None, may_read=lambda s: True)
    assert plan.offset_into_first_range == 0 and [(t.start, t.end) for t in plan.terms] == [(0, 8)]
    assert plan.fetch[0].byte_start == 0 and plan.fetch[0].byte_end == len(upload.xorb.data) - 1
    part = xet.reconstruction(upload.file_hex, (70_000, 140_000), may_read=lambda s: True)
    assert [(t.start, t.end) for t in part.terms] == [(1, 3)]
    assert part.offset_into_first_range == 70_000 - 65_536
    with pytest.raises(RangeNotSatisfiableError):
        xet.reconstruction(upload.file_hex, (len(DATA), len(DATA) + 5), may_read=lambda s: True)
    with pytest.raises(XetFileNotFoundError):  # the caller may not read it: exactly like a missing file
        xet.reconstruction(upload.file_hex, None, may_read=lambda s: False)


def test_a_shard_is_refused_whole_when_one_file_is_wrong(local_store: Store, repo) -> None:
    good = file_upload(DATA)
    xet = XetStorage(local_store)
    xet.receive_xorb(good.xorb.hex, io.BytesIO(good.xorb.data), repo=repo)
    x, n = good.xorb, len(good.xorb.chunks)
    wrong_sha = make_shard([(good.file_hash, [(x, 0, n)], "ab" * 32)], [x])
    wrong_hash = make_shard([(b"\x07" * 32, [(x, 0, n)], good.sha256)], [x])
    wrong_check = make_shard([(good.file_hash, [(x, 0, n)], good.sha256)], [x], verification=False)
    other = make_xorb([b"never uploaded"])
    missing_xorb = make_shard([(file_hash([(h, s) for h, _, s in other.chunks]), [(other, 0, 1)],
                                hashlib.sha256(b"never uploaded").hexdigest())], [])
    partial = make_shard([(good.file_hash, [(x, 0, n)], good.sha256),
                          (b"\x09" * 32, [(x, 0, 1)], hashlib.sha256(DATA[:65536]).hexdigest())], [x])
    blobs = len(list(local_store.blobs.iter_blobs()))
    for shard in (wrong_sha, wrong_hash, wrong_check, missing_xorb, partial):
        with pytest.raises(XetObjectError):
            xet.receive_shard(io.BytesIO(shard), repo=repo, actor="alice", may_read=lambda s: True)
    assert xet.file_by_hash(good.file_hex) is None
    assert len(list(local_store.blobs.iter_blobs())) == blobs  # no shard stored
    assert not local_store.has_upload("alice/model", good.sha256)


def test_chunks_of_another_repos_xorb_need_read_access(local_store: Store, repo) -> None:
    upload = _upload(local_store, repo)  # alice/model received the xorb
    other = local_store.create_repo("carol/mine")
    x, n = upload.xorb, len(upload.xorb.chunks)
    half = make_shard([(file_hash([(h, s) for h, _, s in x.chunks[:2]]), [(x, 0, 2)],
                        hashlib.sha256(DATA[:131072]).hexdigest())], [])
    xet = XetStorage(local_store)
    with pytest.raises(XetObjectError, match="may not use"):
        xet.receive_shard(io.BytesIO(half), repo=other, actor="carol", may_read=lambda s: False)
    # Once the file is in a repo carol may read, its chunks are hers to reference.
    local_store.commit("alice/model", [AddFile("w.dat", upload.sha256, len(DATA))], title="add", author="alice")
    readable = {upload.sha256}
    assert xet.receive_shard(io.BytesIO(half), repo=other, actor="carol", may_read=readable.__contains__) == 1
    assert n == 8


def test_dedup_answers_only_name_chunks_the_caller_may_use(local_store: Store, repo) -> None:
    upload = _upload(local_store, repo)
    other = local_store.create_repo("carol/mine")
    xet = XetStorage(local_store)
    first = to_hex(upload.xorb.chunks[0][0])
    assert xet.dedup_answer(first, repo=other, may_read=lambda s: False) is None
    answer = xet.dedup_answer(first, repo=repo, may_read=lambda s: False)
    assert answer is not None and upload.xorb.hash in answer
    assert upload.xorb.chunks[0][0] not in answer  # chunk hashes are keyed, never sent raw
    assert xet.dedup_answer("0" * 64, repo=repo, may_read=lambda s: True) is None


def test_fsck_counts_xet_files_and_finds_a_corrupt_xorb(local_store: Store, repo) -> None:
    upload = _upload(local_store, repo)
    local_store.commit("alice/model", [AddFile("w.dat", upload.sha256, len(DATA))], title="add", author="alice")
    report = fsck(local_store)
    assert report.ok, report.problems
    assert report.blobs_checked == 3  # .gitattributes, the xorb, the shard
    path = local_store.blobs.local_path(XetStorage(local_store).xorb_blob(upload.xorb.hex)[0])
    path.chmod(0o644)
    raw = bytearray(path.read_bytes())
    raw[-3] ^= 0xFF
    path.write_bytes(bytes(raw))
    kinds = {p.kind for p in fsck(local_store).problems}
    assert "corrupt-blob" in kinds


def test_gc_keeps_what_commits_need_and_reclaims_the_rest(local_store: Store, repo) -> None:
    kept = _upload(local_store, repo)
    dropped = _upload(local_store, repo, os.urandom(100_000))
    local_store.commit("alice/model", [AddFile("w.dat", kept.sha256, len(DATA))], title="add", author="alice")
    assert gc(local_store, grace_seconds=3600).blobs_deleted == 0  # within the grace period: all kept
    report = gc(local_store, grace_seconds=0)
    assert report.collected == {"xet files": 1, "xet xorbs": 1, "xet shards": 1, "upload grants": 1}
    assert report.blobs_deleted == 2  # the dropped file's xorb and shard
    assert b"".join(local_store.iter_blob(kept.sha256)) == DATA
    assert local_store.blob_size(dropped.sha256) is None
    assert fsck(local_store).ok
    local_store.delete_repo("alice/model")
    gc(local_store, grace_seconds=0)
    assert list(local_store.blobs.iter_blobs()) == [] and XetStorage(local_store).held_files() == {}


def test_chunks_shared_by_two_versions_are_stored_once(local_store: Store, repo) -> None:
    base = bytearray(os.urandom(64 * 1024 * 16))
    _upload(local_store, repo, bytes(base))
    changed = bytearray(base)
    changed[5 * 65536 + 10] ^= 1  # one chunk differs
    pieces = chunks_of(bytes(changed))
    new = make_xorb([pieces[5]])
    first = make_xorb(chunks_of(bytes(base)))
    terms = [(first, 0, 5), (new, 0, 1), (first, 6, 16)]
    leaves = [(h, s) for h, _, s in first.chunks[:5]] + [(h, s) for h, _, s in new.chunks] + \
             [(h, s) for h, _, s in first.chunks[6:]]
    xet = XetStorage(local_store)
    xet.receive_xorb(new.hex, io.BytesIO(new.data), repo=repo)
    shard = make_shard([(file_hash(leaves), terms, hashlib.sha256(changed).hexdigest())], [new])
    assert xet.receive_shard(io.BytesIO(shard), repo=repo, actor="alice", may_read=lambda s: False) == 1
    assert b"".join(local_store.iter_blob(hashlib.sha256(changed).hexdigest())) == bytes(changed)


def test_every_backend_holds_and_collects_xet_files(store: Store) -> None:
    """SQLite and PostgreSQL metadata, file and S3 blobs: xorbs and shards are ordinary blobs."""
    repo = store.create_repo("alice/model")
    upload = _upload(store, repo)
    store.commit("alice/model", [AddFile("w.dat", upload.sha256, len(DATA))], title="add", author="alice")
    assert b"".join(store.iter_blob(upload.sha256, 70_000, 200_000)) == DATA[70_000:200_000]
    assert fsck(store).ok
    store.delete_repo("alice/model")
    report = gc(store, grace_seconds=0)
    assert report.collected["xet xorbs"] == 1 and store.blob_size(upload.sha256) is None


def test_fmhub_download_of_a_xet_file_from_the_embedded_store(local_store: Store, repo, tmp_path) -> None:
    from fmhub.client import LocalHub

    upload = _upload(local_store, repo)
    local_store.commit("alice/model", [AddFile("w.dat", upload.sha256, len(DATA))], title="add", author="alice")
    for verify in (False, True):
        out = LocalHub(local_store).download("alice/model", local_dir=tmp_path / f"out-{verify}", verify=verify)
        assert (out / "w.dat").read_bytes() == DATA
