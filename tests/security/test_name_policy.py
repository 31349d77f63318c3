"""The path policy through every way in (HF commit API, LFS commit lines, Python API, CLI) and on the way out.

A name git, Windows or a shell reads as something else is refused before anything is stored; a store
written by an older version that holds such a name is never written to a downloader's disk.
"""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys

import httpx
import pytest

import fmhub.store.store as store_module
from fmhub.client import LocalHub, UploadFile
from fmhub.errors import InvalidInputError, InvalidPathError
from fmhub.store import AddFile, DeleteFile, Store
from fmhub.store.paths import validate_stored_path

#: One name per rule of the policy (docs/security.md), each a real attack or a real portability trap.
REFUSED = [
    ".git/config",  # [core] fsmonitor = <command> runs at the next `git status`
    ".git/hooks/post-checkout",
    "sub/.GIT/hooks/pre-commit",
    ".git./config",  # NTFS drops the trailing dot
    "git~1/config",  # NTFS 8.3 short name of .git
    ".g\u200cit/config",  # HFS+ ignores the zero-width non-joiner
    "\uff0egit/config",  # full-width dot
    " ",
    "con",
    "aux.json",
    "config.json.",
    "~",
    "\u2025",  # two-dot leader, looks like '..'
    "a\u2215b",  # division slash, looks like '/'
    ".cache/huggingface/download/x.metadata",
]


def _ndjson(lines: list[dict]) -> bytes:
    return b"\n".join(json.dumps(line).encode() for line in lines)


def _commit(hub_url: str, token: str, lines: list[dict]) -> httpx.Response:
    header = {"key": "header", "value": {"summary": "attack"}}
    return httpx.post(f"{hub_url}/api/models/alice/r/commit/main", content=_ndjson([header, *lines]),
                      headers={"Authorization": f"Bearer {token}", "Content-Type": "application/x-ndjson"})


@pytest.fixture
def repo(local_store: Store, tokens) -> str:
    local_store.create_repo("alice/r")
    blob = local_store.put_bytes(b"{}")
    local_store.commit("alice/r", [AddFile("config.json", blob.sha256, blob.size)], title="init", author="alice")
    return "alice/r"


@pytest.mark.parametrize("name", REFUSED)
def test_hf_commit_api_refuses_the_name_and_stores_nothing(hub_url: str, tokens, repo: str, local_store: Store,
                                                           name: str) -> None:
    before = local_store.resolve_revision(repo).oid
    inline = {"key": "file", "value": {"path": name, "content": base64.b64encode(b"x").decode(), "encoding": "base64"}}
    response = _commit(hub_url, tokens.alice, [inline])
    assert response.status_code == 400, response.text
    assert "invalid path" in response.json()["error"] and response.json()["hint"]
    assert local_store.resolve_revision(repo).oid == before


def test_lfs_commit_line_refuses_a_git_hook(hub_url: str, tokens, repo: str, local_store: Store) -> None:
    data = b"#!/bin/sh\ntouch /tmp/pwned\n"
    blob = local_store.put_bytes(data)
    local_store.record_upload(repo, blob.sha256)
    line = {"key": "lfsFile", "value": {"path": ".git/hooks/post-checkout", "algo": "sha256", "oid": blob.sha256,
                                        "size": blob.size}}
    response = _commit(hub_url, tokens.alice, [line])
    assert response.status_code == 400
    assert ".git" in response.json()["error"]
    assert [e.path for e in local_store.list_files(repo)] == [".gitattributes", "config.json"]


def test_python_api_refuses_the_name(local_store: Store, repo: str) -> None:
    hub = LocalHub(local_store)
    for name in (".git/config", "aux.json", "config.json."):
        with pytest.raises(InvalidPathError):
            hub.commit(repo, [UploadFile(name, b"[core]\n\tfsmonitor = touch /tmp/pwned\n")], title="attack")
    assert [e.path for e in local_store.list_files(repo)] == [".gitattributes", "config.json"]


def test_cli_upload_refuses_the_name_with_exit_2(tmp_path, monkeypatch) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("FMHUB_HOME", str(home))
    payload = tmp_path / "config"
    payload.write_text("[core]\n\tfsmonitor = touch /tmp/pwned\n")
    run = [sys.executable, "-m", "fmhub", "upload", "me/r", str(payload), ".git/config"]
    result = subprocess.run(run, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stdout + result.stderr
    assert ".git" in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


@pytest.fixture
def legacy_repo(local_store: Store, monkeypatch: pytest.MonkeyPatch) -> str:
    """A repo holding '.git/config', as an fmhub without the name policy stored it (its checks, not ours)."""
    local_store.create_repo("alice/old")
    config, weights = local_store.put_bytes(b"[core]\n\tfsmonitor = touch pwned\n"), local_store.put_bytes(b"{}")
    with monkeypatch.context() as old_version:
        old_version.setattr(store_module, "validate_path", validate_stored_path)
        local_store.commit("alice/old", [AddFile(".git/config", config.sha256, config.size),
                                         AddFile("config.json", weights.sha256, weights.size)],
                           title="written before the policy", author="alice")
    return "alice/old"


def test_download_never_writes_a_stored_git_file(local_store: Store, legacy_repo: str, tmp_path) -> None:
    hub = LocalHub(local_store)
    target = tmp_path / "checkout"
    with pytest.raises(InvalidInputError, match=r"\.git/config") as error:
        hub.download(legacy_repo, local_dir=target)
    assert "--exclude" in error.value.hint
    assert not (target / ".git").exists() and not (target / "config.json").exists()
    folder = hub.download(legacy_repo, local_dir=target, exclude=".git/*")
    assert sorted(p.name for p in folder.iterdir()) == [".gitattributes", "config.json"]


def test_remote_download_and_resolve_refuse_a_stored_git_file(hub_url: str, tokens, legacy_repo: str,
                                                              tmp_path) -> None:
    from fmhub.client import RemoteHub

    response = httpx.get(f"{hub_url}/{legacy_repo}/resolve/main/.git/config",
                         headers={"Authorization": f"Bearer {tokens.alice}"})
    assert response.status_code == 400 and "fsmonitor" not in response.text
    hub = RemoteHub(hub_url, token=tokens.alice)
    with pytest.raises(InvalidInputError, match=r"\.git/config"):
        hub.download(legacy_repo, local_dir=tmp_path / "checkout")
    assert not (tmp_path / "checkout" / ".git").exists()


def test_a_stored_unsafe_name_can_still_be_deleted(local_store: Store, legacy_repo: str) -> None:
    local_store.commit(legacy_repo, [DeleteFile(".git/config")], title="remove the hook", author="alice")
    assert [e.path for e in local_store.list_files(legacy_repo)] == [".gitattributes", "config.json"]


def test_the_hash_of_refused_content_is_not_referenced(local_store: Store) -> None:
    # sanity for the corpus: the refused names are refused by the store itself, not only by HTTP
    blob = local_store.put_bytes(b"x")
    local_store.create_repo("me/r")
    for name in REFUSED:
        with pytest.raises(InvalidPathError):
            local_store.commit("me/r", [AddFile(name, blob.sha256, blob.size)], title="t", author="me")
    assert hashlib.sha256(b"x").hexdigest() == blob.sha256
