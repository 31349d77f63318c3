"""The real huggingface_hub client reads from a live fmhub server: downloads, info, trees, refs, commits."""

from __future__ import annotations

import hashlib
import json
import os
import struct
from pathlib import Path

import httpx
import pytest
from huggingface_hub import hf_hub_download, snapshot_download
from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError

from fmhub.store import AddFile, Store


def _random_safetensors(size: int) -> bytes:
    """A valid safetensors file of about ``size`` bytes of random F32 data (the hub validates headers)."""
    count = size // 4
    header = json.dumps({"w": {"dtype": "F32", "shape": [count], "data_offsets": [0, 4 * count]}}).encode()
    return struct.pack("<Q", len(header)) + header + os.urandom(4 * count)


WEIGHTS = _random_safetensors(11 * 1024 * 1024)  # over the LFS threshold: described as an LFS file


def _commit(store: Store, repo_id: str, files: dict[str, bytes], title: str, **kwargs):
    ops = []
    for path, data in files.items():
        blob = store.put_bytes(data)
        ops.append(AddFile(path, blob.sha256, blob.size))
    return store.commit(repo_id, ops, title=title, author="alice", **kwargs)


@pytest.fixture
def repo(local_store: Store) -> dict[str, str]:
    local_store.create_repo("acme/tiny")
    first = _commit(local_store, "acme/tiny", {"config.json": b'{"hidden_size": 32}',
                                               "model.safetensors": WEIGHTS, "onnx/model.onnx": b"onnx"}, "Add model")
    local_store.create_tag("acme/tiny", "v1")
    second = _commit(local_store, "acme/tiny", {"config.json": b'{"hidden_size": 64}'}, "Grow")
    return {"first": first.oid, "second": second.oid}


def test_hf_hub_download_follows_revisions(hub_url: str, hf_api, repo, tmp_path: Path) -> None:
    path = hf_hub_download("acme/tiny", "config.json", endpoint=hub_url, cache_dir=tmp_path / "c")
    assert Path(path).read_bytes() == b'{"hidden_size": 64}'
    path = hf_hub_download("acme/tiny", "config.json", revision="v1", endpoint=hub_url, cache_dir=tmp_path / "c")
    assert Path(path).read_bytes() == b'{"hidden_size": 32}'
    path = hf_hub_download("acme/tiny", "model.safetensors", revision=repo["first"], endpoint=hub_url,
                           cache_dir=tmp_path / "c")
    assert hashlib.sha256(Path(path).read_bytes()).hexdigest() == hashlib.sha256(WEIGHTS).hexdigest()


def test_snapshot_download_with_patterns_at_a_commit(hub_url: str, hf_api, repo, tmp_path: Path) -> None:
    folder = Path(snapshot_download("acme/tiny", revision=repo["first"], allow_patterns=["*.json", "onnx/*"],
                                    endpoint=hub_url, cache_dir=tmp_path / "c"))
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    assert files == ["config.json", "onnx/model.onnx"]
    assert (folder / "config.json").read_bytes() == b'{"hidden_size": 32}'
    assert folder.name == repo["first"]


def test_model_info_files_refs_and_commits(hf_api, repo) -> None:
    info = hf_api.model_info("acme/tiny", files_metadata=True)
    assert info.sha == repo["second"] and info.private is False
    sizes = {s.rfilename: s.size for s in info.siblings}
    assert sizes["model.safetensors"] == len(WEIGHTS) and sizes["config.json"] == len(b'{"hidden_size": 64}')
    assert hf_api.model_info("acme/tiny", revision="v1").sha == repo["first"]
    assert sorted(hf_api.list_repo_files("acme/tiny")) == [".gitattributes", "config.json", "model.safetensors",
                                                          "onnx/model.onnx"]
    refs = hf_api.list_repo_refs("acme/tiny")
    assert [(b.name, b.target_commit) for b in refs.branches] == [("main", repo["second"])]
    assert [(t.name, t.target_commit) for t in refs.tags] == [("v1", repo["first"])]
    history = hf_api.list_repo_commits("acme/tiny")
    assert [c.title for c in history] == ["Grow", "Add model", "initial commit"]
    assert history[0].commit_id == repo["second"] and history[0].authors == ["alice"]
    tree = {f.path: f for f in hf_api.list_repo_tree("acme/tiny", recursive=True)}
    assert tree["model.safetensors"].lfs is not None and tree["model.safetensors"].lfs.sha256 == \
        hashlib.sha256(WEIGHTS).hexdigest()
    assert "onnx" in tree and type(tree["onnx"]).__name__ == "RepoFolder"
    assert [m.id for m in hf_api.list_models(search="tin")] == ["acme/tiny"]


def test_errors_map_to_the_client_exceptions(hf_api, hub_url: str, repo, tmp_path: Path) -> None:
    with pytest.raises(RepositoryNotFoundError):
        hf_api.model_info("acme/missing")
    with pytest.raises(RevisionNotFoundError):
        hf_api.model_info("acme/tiny", revision="no-such-branch")
    with pytest.raises(EntryNotFoundError):
        hf_hub_download("acme/tiny", "missing.bin", endpoint=hub_url, cache_dir=tmp_path / "c")


def test_private_repo_answers_exactly_like_a_missing_one(local_store: Store, hub_url: str, repo) -> None:
    local_store.create_repo("acme/secret", private=True)
    for suffix in ("/api/models/{}", "/api/models/{}/refs", "/api/models/{}/tree/main", "/{}/resolve/main/.gitattributes",
                   "/api/models/{}/commits/main", "/api/models/{}/revision/main"):
        secret = httpx.get(hub_url + suffix.format("acme/secret"))
        missing = httpx.get(hub_url + suffix.format("acme/nothing"))
        assert secret.status_code == missing.status_code == 404, suffix
        assert secret.json()["error"].replace("secret", "X") == missing.json()["error"].replace("nothing", "X")
        assert secret.headers.get("X-Error-Code") == missing.headers.get("X-Error-Code") == "RepoNotFound"
    assert "acme/secret" not in [m["id"] for m in httpx.get(hub_url + "/api/models").json()]


def test_ranges_and_head(hub_url: str, repo) -> None:
    url = f"{hub_url}/acme/tiny/resolve/main/model.safetensors"
    head = httpx.head(url)
    assert head.status_code == 200 and head.headers["X-Repo-Commit"] == repo["second"]
    assert head.headers["ETag"] == f'"{hashlib.sha256(WEIGHTS).hexdigest()}"'
    assert int(head.headers["Content-Length"]) == len(WEIGHTS) and head.headers["Accept-Ranges"] == "bytes"
    part = httpx.get(url, headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == WEIGHTS[100:200]
    assert part.headers["Content-Range"] == f"bytes 100-199/{len(WEIGHTS)}"
    tail = httpx.get(url, headers={"Range": "bytes=-10"})
    assert tail.status_code == 206 and tail.content == WEIGHTS[-10:]
    assert httpx.get(url, headers={"Range": f"bytes={len(WEIGHTS)}-"}).status_code == 416


@pytest.mark.parametrize("path", ["../../etc/passwd", "%2e%2e/%2e%2e/etc/passwd", "onnx/..%2f..%2fconfig.json",
                                  "%252e%252e/config.json", "onnx\\..\\config.json", "/etc/passwd"])
def test_path_traversal_is_refused(hub_url: str, repo, path: str) -> None:
    response = httpx.get(f"{hub_url}/acme/tiny/resolve/main/{path}")
    assert response.status_code in (400, 404)
    assert "error" in response.json()
    assert b"root:" not in response.content


def test_health_and_openapi(hub_url: str) -> None:
    assert httpx.get(hub_url + "/healthz").json() == {"status": "ok"}
    assert httpx.get(hub_url + "/readyz").json() == {"status": "ready"}
    assert "/api/{plural}/{namespace}/{name}" in httpx.get(hub_url + "/openapi.json").json()["paths"]


def test_a_repo_named_like_a_route_keyword_still_resolves(local_store: Store, hub_url: str) -> None:
    local_store.create_repo("acme/resolve")
    _commit(local_store, "acme/resolve", {"resolve/x.txt": b"ok"}, "Add")
    assert httpx.get(f"{hub_url}/acme/resolve/resolve/main/resolve/x.txt").content == b"ok"
