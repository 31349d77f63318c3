"""pull and push between live hub servers on loopback ports (real uvicorn, real HTTP clients): fmhub bundles with
history and records, the Hugging Face protocol with huggingface_hub's client, private repos answering like missing
ones, write tokens for push, and only missing objects sent on a second run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from _mirror_helpers import Source, dump, sqlite_store

from fmhub.accounts import Accounts
from fmhub.errors import PermissionDeniedError, RepoNotFoundError
from fmhub.mirror import Target
from fmhub.mirror._remote import pull, push
from fmhub.server import HubConfig, create_app
from fmhub.store import Store
from fmhub.store.maintenance import fsck

ADMIN = "fmhub_test-admin-token-0123456789"
PUBLIC = [Target("acme/base"), Target("acme/clf"), Target("acme/clf-int8"), Target("acme/news", "dataset")]

pytestmark = pytest.mark.slow  # child processes / live servers: seconds each


def _accounts(store: Store) -> dict[str, str]:
    accounts = Accounts(store.db)
    accounts.create_user("admin", admin=True)
    accounts.create_token("admin", name="bootstrap", role="write", value=ADMIN)
    for user in ("alice", "carol"):
        accounts.create_user(user)
    accounts.create_org("acme", owner="alice")
    return {"alice": accounts.create_token("alice", name="laptop", role="write")[1],
            "alice_read": accounts.create_token("alice", name="reader", role="read")[1],
            "carol": accounts.create_token("carol", name="laptop", role="write")[1]}


@pytest.fixture
def served(source: Source, serve_app) -> Iterator[tuple[str, dict[str, str]]]:
    tokens = _accounts(source.store)
    with serve_app(create_app(source.store, HubConfig(admin_token=ADMIN))) as url:
        yield url, tokens


def _section(data: dict, repos: set[str]) -> dict:
    return {key: [row for row in data[key] if row[0] in repos] for key in ("repos", "commits", "refs", "cards")}


def test_pull_from_fmhub_brings_history_and_records(source: Source, target: Store, served) -> None:
    url, _ = served
    summary = pull(target, url, PUBLIC)
    assert summary.protocol == "fmhub" and summary.imported is not None
    assert summary.imported.conflicts == []
    names = {"model/acme/base", "model/acme/clf", "model/acme/clf-int8", "dataset/acme/news"}
    before, after = dump(source.store), dump(target)
    assert _section(after, names) == _section(before, names)
    for section in ("runs", "run_metrics", "evaluations", "attestations"):
        assert after[section] == before[section] and after[section], section
    assert after["lineage"] and set(after["lineage"]) <= set(before["lineage"])
    assert fsck(target).ok

    # Again: the hub holds everything, so the bundle asked for carries no file (resumable the same way).
    again = pull(target, url, PUBLIC)
    assert again.imported.blobs_written == 0 and again.imported.blobs_present == 0
    assert again.imported.objects_not_sent > 0 and again.imported.commits_added == 0


def test_private_repo_answers_like_a_missing_one(target: Store, served) -> None:
    url, tokens = served
    with pytest.raises(RepoNotFoundError) as hidden:
        pull(target, url, [Target("alice/clf-onnx")])
    with pytest.raises(RepoNotFoundError) as missing:
        pull(target, url, [Target("alice/nothing-here")])
    assert str(hidden.value).replace("clf-onnx", "X") == str(missing.value).replace("nothing-here", "X")
    assert target.list_repos() == []
    pull(target, url, [Target("alice/clf-onnx")], token=tokens["alice"])
    assert target.get_repo("alice/clf-onnx").private


def test_pull_over_the_hugging_face_protocol(source: Source, target: Store, served, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    url, _ = served
    summary = pull(target, url, [Target("acme/clf", "model", ("v1",))], protocol="hf")
    assert summary.protocol == "hf" and summary.files_fetched >= 2
    want = {(e.path, e.blob_sha256) for e in source.store.list_files("acme/clf", "v1")}
    assert {(e.path, e.blob_sha256) for e in target.list_files("acme/clf")} == want
    head = target.resolve_revision("acme/clf")
    assert source.store.resolve_revision("acme/clf", "v1").oid in head.message
    again = pull(target, url, [Target("acme/clf", "model", ("v1",))], protocol="hf")
    # LFS files (the .gitattributes patterns) are known by sha256 and skipped; small files are re-read, not stored.
    assert again.commits == [head.oid]
    assert fsck(target).ok


@pytest.fixture
def destination(tmp_path: Path, serve_app) -> Iterator[tuple[str, Store, dict[str, str]]]:
    store = sqlite_store(tmp_path / "destination")
    tokens = _accounts(store)
    with serve_app(create_app(store, HubConfig(admin_token=ADMIN))) as url:
        yield url, store, tokens
    store.close()


def test_push_needs_a_write_token_with_rights(source: Source, destination) -> None:
    url, store, tokens = destination
    with pytest.raises(PermissionDeniedError):
        push(source.store, url, [Target("acme/base")], token=tokens["alice_read"])
    with pytest.raises(PermissionDeniedError):
        push(source.store, url, [Target("acme/base")], token=tokens["carol"])  # not in acme
    assert store.list_repos() == []
    first = push(source.store, url, [Target("acme/base"), Target("acme/clf")], token=tokens["alice"])
    assert first.objects_sent > 0 and first.answer["commits_added"] > 0
    names = {"model/acme/base", "model/acme/clf"}
    assert _section(dump(store), names) == _section(dump(source.store), names)
    assert dump(store)["runs"] == dump(source.store)["runs"]
    second = push(source.store, url, [Target("acme/base"), Target("acme/clf")], token=tokens["alice"])
    assert second.answer["blobs_written"] == 0 and second.objects_skipped > 0
    assert fsck(store).ok


def test_cli_pull_and_push(source: Source, served, destination, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                           capsys) -> None:
    """``fmhub mirror pull`` into the embedded hub from one server, then ``push`` from it to another."""
    import json

    from fmhub.cli import main
    from fmhub.constants import settings

    url, _ = served
    dest_url, dest_store, dest_tokens = destination
    monkeypatch.setenv("FMHUB_HOME", str(tmp_path / "cli-home"))
    settings.cache_clear()
    assert main(["mirror", "pull", "--from", url, "acme/clf", "dataset/acme/news", "--json"]) == 0
    pulled = json.loads(capsys.readouterr().out)
    assert pulled["commits_added"] > 0 and pulled["records_added"]["runs"] == 1
    assert main(["mirror", "pull", "--from", url, "acme/clf"]) == 0
    assert "0 file(s) stored" in capsys.readouterr().out  # nothing new: nothing fetched
    assert main(["mirror", "push", "--to", dest_url, "acme/clf", "--token", dest_tokens["alice_read"]]) == 2
    assert "write token" in capsys.readouterr().err
    assert main(["mirror", "push", "--to", dest_url, "acme/clf", "--token", dest_tokens["alice"], "--json"]) == 0
    pushed = json.loads(capsys.readouterr().out)
    assert pushed["objects_sent"] > 0 and pushed["imported"]["commits_added"] > 0
    assert [c.oid for c in dest_store.list_commits("acme/clf")] == [c.oid for c in source.store.list_commits("acme/clf")]
