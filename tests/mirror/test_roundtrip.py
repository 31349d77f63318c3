"""A bundle carries every commit, ref, card, report card, run, lineage edge and attestation, identically, across
metadata and blob backends; re-importing changes nothing; moved branches are conflicts unless --force."""

from __future__ import annotations

from pathlib import Path

import pytest

from fmhub.errors import SignatureError
from fmhub.mirror import Target, import_bundle, plan_export, write_bundle
from fmhub.signing import TrustedKey
from fmhub.store import AddFile, Store, open_store
from fmhub.store.maintenance import fsck

from _mirror_helpers import REPOS, Source, dump

ALL = [Target(spec.split("/", 1)[1], spec.split("/", 1)[0]) for spec in REPOS + ["model/acme/signed"]]


def _export(store: Store, path: Path, targets=ALL, **kwargs) -> Path:
    write_bundle(store, plan_export(store, targets, **kwargs), path)
    return path


def _import(store: Store, path: Path, **kwargs):
    with open(path, "rb") as f:
        return import_bundle(store, f, **kwargs)


def test_round_trip_sqlite_files(source: Source, target: Store, tmp_path: Path) -> None:
    bundle = _export(source.store, tmp_path / "all.fmbundle")
    summary = _import(target, bundle)
    assert summary.conflicts == []
    assert summary.records_added["runs"] == 1 and summary.records_added["evaluations"] >= 1
    assert summary.records_added["attestations"] == 1 and summary.records_added["lineage"] > 10
    before, after = dump(source.store), dump(target)
    for section in before:
        assert after[section] == before[section], section
    assert before["runs"] and before["run_metrics"] and before["lineage"] and before["attestations"]
    assert fsck(target).ok
    # The private repo stays private; tags keep their message.
    assert target.get_repo("alice/clf-onnx").private
    assert [r.message for r in target.list_refs("acme/clf").tags] == ["first release"]


def test_reimport_changes_nothing(source: Source, target: Store, tmp_path: Path) -> None:
    bundle = _export(source.store, tmp_path / "all.fmbundle")
    _import(target, bundle)
    first = dump(target)
    again = _import(target, bundle)
    assert again.blobs_written == 0 and again.blobs_present > 0 and again.commits_added == 0
    assert {r.outcome for r in again.refs} == {"unchanged"}
    assert dump(target) == first


@pytest.mark.slow
def test_round_trip_postgresql_s3_and_back(source: Source, tmp_path: Path, pg_url: str, s3_blob_url: str,
                                           s3_endpoint: str) -> None:
    """SQLite + files → PostgreSQL + S3 (the moto stand-in server) → SQLite + files: all three identical."""
    from fmhub.store import Database

    Database(pg_url).upgrade()
    with _pg_s3(pg_url, s3_blob_url, s3_endpoint) as middle:
        _import(middle, _export(source.store, tmp_path / "a.fmbundle"))
        assert dump(middle) == dump(source.store)
        assert fsck(middle).ok
        back = _export(middle, tmp_path / "b.fmbundle")
    with open_store(f"sqlite:///{tmp_path / 'c.db'}", (tmp_path / "c-blobs").as_uri()) as third:
        _import(third, back)
        assert dump(third) == dump(source.store)


def _pg_s3(pg_url: str, blob_url: str, endpoint: str) -> Store:
    from fmhub.store import Database, EncryptedBlobStore
    from fmhub.store.blobs import open_blob_store

    db = Database(pg_url)
    return Store(db, EncryptedBlobStore(open_blob_store(blob_url, s3_endpoint_url=endpoint), db, None))


def test_one_revision_brings_its_history_and_only_its_ref(source: Source, target: Store, tmp_path: Path) -> None:
    bundle = _export(source.store, tmp_path / "v1.fmbundle", [Target("acme/clf", "model", ("v1",)),
                                                             Target("acme/clf", "model", ("main",))])
    _import(target, bundle)
    refs = target.list_refs("acme/clf")
    assert [r.name for r in refs.tags] == ["v1"] and [r.name for r in refs.branches] == ["main"]
    assert [c.oid for c in target.list_commits("acme/clf")] == [c.oid for c in source.store.list_commits("acme/clf")]


def test_branch_moves_forward_and_conflicts_are_left_alone(source: Source, target: Store, tmp_path: Path) -> None:
    store = source.store
    _import(target, _export(store, tmp_path / "1.fmbundle", [Target("acme/base")]))
    blob = store.put_bytes(b"new weights")
    ahead = store.commit("acme/base", [AddFile("w.bin", blob.sha256, blob.size)], title="more", author="alice",
                         allow_pickle=True)
    second = _export(store, tmp_path / "2.fmbundle", [Target("acme/base")])
    summary = _import(target, second)
    assert [(r.name, r.outcome) for r in summary.refs] == [("main", "fast-forward")]
    assert target.resolve_revision("acme/base").oid == ahead.oid
    # The target's own commit on top: the source's next head is not a descendant of it.
    mine = target.put_bytes(b"local change")
    local = target.commit("acme/base", [AddFile("local.txt", mine.sha256, mine.size)], title="local", author="bob")
    other = store.put_bytes(b"source change")
    store.commit("acme/base", [AddFile("src.txt", other.sha256, other.size)], title="src", author="alice")
    third = _export(store, tmp_path / "3.fmbundle", [Target("acme/base")])
    summary = _import(target, third)
    assert [(r.name, r.outcome) for r in summary.conflicts] == [("main", "conflict")]
    assert target.resolve_revision("acme/base").oid == local.oid  # left alone
    forced = _import(target, third, force=True)
    assert [(r.name, r.outcome) for r in forced.refs] == [("main", "forced")]
    assert target.resolve_revision("acme/base").oid == store.resolve_revision("acme/base").oid
    assert fsck(target).ok


def test_verify_signatures(source: Source, target: Store, tmp_path: Path) -> None:
    trusted = [TrustedKey.from_pem(source.release_pub.read_bytes())]
    signed = _export(source.store, tmp_path / "signed.fmbundle", [Target("acme/signed")])
    summary = _import(target, signed, trust=trusted)
    assert summary.signatures_verified == 1
    unsigned = _export(source.store, tmp_path / "unsigned.fmbundle", [Target("acme/base")])
    with pytest.raises(SignatureError, match="acme/base@main .* carries no model.sig"):
        _import(target, unsigned, trust=trusted)
    assert [r.repo_id for r in target.list_repos()] == ["acme/signed"]  # nothing of the refused bundle


def test_pickles_are_refused_unless_allowed(source: Source, target: Store, tmp_path: Path) -> None:
    import pickle
    from collections import OrderedDict

    from fmhub.errors import UnsafeFileError

    store = source.store
    data = pickle.dumps(OrderedDict(w=[1.0]), protocol=4)  # sample bytes of the format (with an import), never loaded
    blob = store.put_bytes(data)
    store.commit("acme/base", [AddFile("weights.bin", blob.sha256, blob.size)], title="pickle", author="alice",
                 allow_pickle=True)
    bundle = _export(store, tmp_path / "pickle.fmbundle", [Target("acme/base")])
    with pytest.raises(UnsafeFileError, match="weights.bin"):
        _import(target, bundle)
    assert target.list_repos() == []
    _import(target, bundle, allow_pickle=True)
    assert target.read_bytes("acme/base", "weights.bin") == data
