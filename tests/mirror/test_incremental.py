"""--since: a bundle of a fine-tune of an already mirrored base carries only its new files; chains of incremental
bundles work; an incremental bundle alone is refused (it needs its base)."""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

import pytest
from _mirror_helpers import sqlite_store

from fmhub.errors import InvalidInputError
from fmhub.mirror import Target, import_bundle, plan_export, read_manifest_file, write_bundle
from fmhub.store import AddFile, Store
from fmhub.store.maintenance import fsck


def _put(store: Store, repo: str, files: dict[str, bytes], title: str) -> str:
    ops = []
    for path, data in files.items():
        blob = store.put_bytes(data)
        ops.append(AddFile(path, blob.sha256, blob.size))
    return store.commit(repo, ops, title=title, author="alice", allow_pickle=True).oid


def _blob_members(path: Path) -> set[str]:
    with tarfile.open(path) as tar:
        return {m.name.removeprefix("blobs/") for m in tar.getmembers() if m.name.startswith("blobs/")}


@pytest.fixture
def hubs(tmp_path: Path):
    source, target = sqlite_store(tmp_path / "a"), sqlite_store(tmp_path / "b")
    yield source, target
    source.close()
    target.close()


def test_fine_tune_of_a_mirrored_base_carries_only_its_new_files(hubs, tmp_path: Path) -> None:
    source, target = hubs
    shared = {"tokenizer.json": b"weights\0" + os.urandom(300_000), "config.json": b'{"hidden_size": 32}'}
    source.create_repo("acme/base")
    _put(source, "acme/base", {**shared, "model.bin": b"weights\0" + os.urandom(1_000_000)}, "base")
    first = tmp_path / "base.fmbundle"
    write_bundle(source, plan_export(source, [Target("acme/base")]), first)
    with open(first, "rb") as f:
        import_bundle(target, f)

    source.create_repo("acme/tuned")
    new_weights, card = b"weights\0" + os.urandom(1_000_000), b"---\nbase_model: acme/base\n---\n# tuned\n"
    _put(source, "acme/tuned", {**shared, "model.bin": new_weights, "README.md": card}, "fine-tune")
    second = tmp_path / "tuned.fmbundle"
    plan = plan_export(source, [Target("acme/base"), Target("acme/tuned")], since=read_manifest_file(first))
    size = write_bundle(source, plan, second)

    import hashlib
    changed = {hashlib.sha256(new_weights).hexdigest(), hashlib.sha256(card).hexdigest()}
    assert _blob_members(second) == changed  # the tokenizer, config and base weights stay behind
    changed_bytes = len(new_weights) + len(card)
    assert size <= changed_bytes * 1.01 + 64 * 1024  # records and tar headers: a few KiB
    with open(second, "rb") as f:
        summary = import_bundle(target, f)
    assert summary.blobs_written == 2 and summary.objects_not_sent > 0
    assert [e.blob_sha256 for e in target.list_files("acme/tuned")] == \
        [e.blob_sha256 for e in source.list_files("acme/tuned")]
    assert fsck(target).ok

    # A chain: a third bundle made --since the second skips what the first carried too.
    _put(source, "acme/tuned", {"notes.txt": b"v2"}, "notes")
    third = tmp_path / "tuned-2.fmbundle"
    write_bundle(source, plan_export(source, [Target("acme/tuned")], since=read_manifest_file(second)), third)
    assert _blob_members(third) == {hashlib.sha256(b"v2").hexdigest()}
    with open(third, "rb") as f:
        import_bundle(target, f)
    assert target.read_bytes("acme/tuned", "notes.txt") == b"v2"


def test_incremental_bundle_alone_is_refused(hubs, tmp_path: Path) -> None:
    source, _ = hubs
    source.create_repo("acme/base")
    _put(source, "acme/base", {"model.bin": b"weights\0" + os.urandom(10_000)}, "base")
    first = tmp_path / "base.fmbundle"
    write_bundle(source, plan_export(source, [Target("acme/base")]), first)
    _put(source, "acme/base", {"more.bin": b"weights\0" + os.urandom(10_000)}, "more")
    second = tmp_path / "more.fmbundle"
    write_bundle(source, plan_export(source, [Target("acme/base")], since=read_manifest_file(first)), second)
    empty = sqlite_store(tmp_path / "c")
    with open(second, "rb") as f, pytest.raises(InvalidInputError, match="import the bundle it was made --since"):
        import_bundle(empty, f)
    assert empty.list_repos() == []
    empty.close()
