"""The unmodified huggingface_hub client writing to a live hub: repos, commits, LFS, refs, privacy, safety."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import struct
from collections import OrderedDict

import httpx
import pytest
from huggingface_hub import CommitOperationAdd, hf_hub_download, snapshot_download
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

from fmhub.server import HubConfig, create_app
from fmhub.store import Store

#: A pickle that imports something, as every torch.save output does (found by content, whatever its name).
PICKLE = pickle.dumps(OrderedDict(w=[1.0]), protocol=4)

BIG = 10 * 1024 * 1024 + 123  # just over the LFS threshold


def _safetensors(names: dict[str, int]) -> bytes:
    """A real safetensors file of F32 vectors (name -> length), written by hand to stay dependency-light."""
    header, offset = {}, 0
    for name, length in names.items():
        header[name] = {"dtype": "F32", "shape": [length], "data_offsets": [offset, offset + 4 * length]}
        offset += 4 * length
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + bytes(offset)


@pytest.fixture
def no_xet(monkeypatch: pytest.MonkeyPatch) -> None:
    """HF_HUB_DISABLE_XET=1 as users set it (huggingface_hub reads it once at import, so patch the constant)."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)


def test_create_upload_download_roundtrip(alice_api, hub_url: str, local_store: Store, tmp_path) -> None:
    url = alice_api.create_repo("alice/tiny")
    assert url.endswith("/alice/tiny")
    assert alice_api.create_repo("alice/tiny", exist_ok=True).endswith("/alice/tiny")
    with pytest.raises(HfHubHTTPError) as exists:
        alice_api.create_repo("alice/tiny")
    assert exists.value.response.status_code == 409

    info = alice_api.upload_file(path_or_fileobj=b'{"hidden_size": 32}', path_in_repo="config.json",
                                 repo_id="alice/tiny", commit_message="Add config")
    assert info.oid == local_store.resolve_revision("alice/tiny").oid
    path = hf_hub_download("alice/tiny", "config.json", endpoint=hub_url, cache_dir=tmp_path / "c", token=False)
    assert open(path, "rb").read() == b'{"hidden_size": 32}'
    head = local_store.resolve_revision("alice/tiny")
    assert head.author == "alice" and head.title == "Add config"
    events = local_store.audit_events(repo_id="alice/tiny")
    assert [e.action for e in events] == ["commit", "repo.create"]
    assert events[0].actor == "alice" and events[0].commit_oid == head.oid and events[0].ref == "main"


def test_upload_folder_small_and_large_through_lfs(alice_api, hub_url: str, local_store: Store, tmp_path,
                                                   no_xet) -> None:
    folder = tmp_path / "model"
    (folder / "sub").mkdir(parents=True)
    (folder / "config.json").write_text('{"a": 1}')
    (folder / "sub" / "notes.txt").write_text("hello")
    (folder / "model.safetensors").write_bytes(_safetensors({"w": (BIG - 200) // 4}))
    big_sha = hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()
    alice_api.create_repo("alice/folder")
    alice_api.upload_folder(folder_path=folder, repo_id="alice/folder", commit_message="Upload")

    files = {e.path: e for e in local_store.list_files("alice/folder")}
    assert set(files) == {".gitattributes", "config.json", "sub/notes.txt", "model.safetensors"}
    assert files["model.safetensors"].blob_sha256 == big_sha
    assert local_store.has_upload("alice/folder", big_sha)  # it came through the LFS batch API
    siblings = {s.rfilename: s for s in alice_api.model_info("alice/folder", files_metadata=True).siblings}
    assert siblings["model.safetensors"].lfs.sha256 == big_sha

    snapshot = snapshot_download("alice/folder", endpoint=hub_url, cache_dir=tmp_path / "cache", token=False)
    for name in ("config.json", "sub/notes.txt", "model.safetensors"):
        assert open(os.path.join(snapshot, name), "rb").read() == (folder / name).read_bytes()

    # Uploading the same folder again changes nothing: unchanged files are skipped by their oid.
    before = local_store.resolve_revision("alice/folder").oid
    alice_api.upload_folder(folder_path=folder, repo_id="alice/folder", commit_message="Again")
    assert local_store.resolve_revision("alice/folder").oid == before


def _write(path, size: int):
    path.write_bytes(_safetensors({"w": (size - 200) // 4}))
    return path


def test_delete_file_branch_tag(alice_api, local_store: Store) -> None:
    alice_api.create_repo("alice/refs")
    alice_api.upload_file(path_or_fileobj=b"one", path_in_repo="a.txt", repo_id="alice/refs")
    alice_api.create_branch("alice/refs", branch="dev")
    alice_api.create_tag("alice/refs", tag="v1", tag_message="first")
    alice_api.upload_file(path_or_fileobj=b"two", path_in_repo="b.txt", repo_id="alice/refs", revision="dev")
    alice_api.delete_file("a.txt", repo_id="alice/refs", commit_message="Remove a")

    assert [e.path for e in local_store.list_files("alice/refs")] == [".gitattributes"]
    assert {e.path for e in local_store.list_files("alice/refs", "dev")} == {".gitattributes", "a.txt", "b.txt"}
    refs = alice_api.list_repo_refs("alice/refs")
    assert {b.name for b in refs.branches} == {"main", "dev"} and [t.name for t in refs.tags] == ["v1"]
    assert local_store.read_bytes("alice/refs", "a.txt", "v1") == b"one"

    with pytest.raises(HfHubHTTPError) as exists:
        alice_api.create_tag("alice/refs", tag="v1")
    assert exists.value.response.status_code == 409
    alice_api.delete_tag("alice/refs", tag="v1")
    alice_api.delete_branch("alice/refs", branch="dev")
    refs = alice_api.list_repo_refs("alice/refs")
    assert [b.name for b in refs.branches] == ["main"] and refs.tags == []
    actions = [e.action for e in local_store.audit_events(repo_id="alice/refs")]
    assert actions[:3] == ["branch.delete", "tag.delete", "commit"]


def test_stale_parent_commit_is_refused(alice_api, local_store: Store) -> None:
    alice_api.create_repo("alice/race")
    first = alice_api.upload_file(path_or_fileobj=b"1", path_in_repo="x", repo_id="alice/race").oid
    alice_api.upload_file(path_or_fileobj=b"2", path_in_repo="x", repo_id="alice/race")
    head = local_store.resolve_revision("alice/race").oid
    with pytest.raises(HfHubHTTPError) as conflict:
        alice_api.create_commit("alice/race", [CommitOperationAdd("y", b"3")], commit_message="late",
                                parent_commit=first)
    assert conflict.value.response.status_code == 412  # as the Hub answers a stale parentCommit
    assert local_store.resolve_revision("alice/race").oid == head


def test_private_repos_answer_like_missing_ones(hub_url: str, tokens, alice_api, hf_env) -> None:
    from huggingface_hub import HfApi

    alice_api.create_repo("acme/secret", private=True)
    alice_api.upload_file(path_or_fileobj=b"s3cr3t", path_in_repo="weights.txt", repo_id="acme/secret")
    assert alice_api.model_info("acme/secret").private is True

    bob = HfApi(endpoint=hub_url, token=tokens.bob)  # acme member with the read role
    assert bob.model_info("acme/secret").private is True
    with pytest.raises(HfHubHTTPError) as forbidden:
        bob.upload_file(path_or_fileobj=b"x", path_in_repo="x", repo_id="acme/secret")
    assert forbidden.value.response.status_code == 403

    for token in (None, tokens.carol):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        for path in ("/api/models/acme/{}", "/acme/{}/resolve/main/weights.txt", "/api/models/acme/{}/refs",
                     "/api/models/acme/{}/tree/main", "/api/models/acme/{}/commits/main"):
            private = httpx.get(hub_url + path.format("secret"), headers=headers)
            missing = httpx.get(hub_url + path.format("nothing"), headers=headers)
            assert (private.status_code, private.content, private.headers.get("x-error-code")) == \
                (missing.status_code, missing.content.replace(b"nothing", b"secret"),
                 missing.headers.get("x-error-code"))
            assert private.status_code == 404
        with pytest.raises(RepositoryNotFoundError):
            HfApi(endpoint=hub_url, token=token or False).model_info("acme/secret")
    listed = [m.id for m in HfApi(endpoint=hub_url, token=False).list_models()]
    assert "acme/secret" not in listed
    assert "acme/secret" in [m.id for m in bob.list_models()]

    alice_api.update_repo_settings("acme/secret", private=False)
    assert HfApi(endpoint=hub_url, token=False).model_info("acme/secret").private is False


def test_read_token_and_other_namespaces_cannot_write(hub_url: str, tokens, alice_api, hf_env) -> None:
    from huggingface_hub import HfApi

    alice_api.create_repo("alice/mine")
    reader = HfApi(endpoint=hub_url, token=tokens.alice_read)
    with pytest.raises(HfHubHTTPError) as read_only:
        reader.upload_file(path_or_fileobj=b"x", path_in_repo="x", repo_id="alice/mine")
    assert read_only.value.response.status_code == 403
    carol = HfApi(endpoint=hub_url, token=tokens.carol)
    for call in (lambda: carol.create_repo("alice/theirs"), lambda: carol.delete_repo("alice/mine"),
                 lambda: carol.upload_file(path_or_fileobj=b"x", path_in_repo="x", repo_id="alice/mine")):
        with pytest.raises(HfHubHTTPError) as denied:
            call()
        assert denied.value.response.status_code == 403
    anonymous = HfApi(endpoint=hub_url, token=False)
    with pytest.raises(HfHubHTTPError) as unauthenticated:
        anonymous.create_repo("alice/anon")
    assert unauthenticated.value.response.status_code == 401
    assert alice_api.whoami()["name"] == "alice"
    assert {o["name"] for o in alice_api.whoami()["orgs"]} == {"acme"}
    assert alice_api.whoami()["auth"]["accessToken"]["role"] == "write"


def test_pickle_and_bad_safetensors_are_refused(alice_api, local_store: Store) -> None:
    alice_api.create_repo("alice/safe")
    before = local_store.resolve_revision("alice/safe").oid
    with pytest.raises(HfHubHTTPError) as pickle_refused:
        alice_api.upload_file(path_or_fileobj=PICKLE, path_in_repo="pytorch_model.bin",
                              repo_id="alice/safe")
    assert pickle_refused.value.response.status_code == 400
    assert "safetensors" in pickle_refused.value.response.json()["hint"]
    bad = _safetensors({"w": 4})[:-3]  # header promises 16 bytes of data, 13 follow
    with pytest.raises(HfHubHTTPError) as invalid:
        alice_api.upload_file(path_or_fileobj=bad, path_in_repo="model.safetensors", repo_id="alice/safe")
    assert invalid.value.response.status_code == 400 and "safetensors" in invalid.value.response.json()["error"]
    assert local_store.resolve_revision("alice/safe").oid == before  # nothing committed


def test_allow_pickle_stores_it_marked_unsafe(local_store: Store, tokens, hf_env, serve_app) -> None:
    from huggingface_hub import HfApi

    with serve_app(create_app(local_store, HubConfig(allow_pickle=True))) as url:
        api = HfApi(endpoint=url, token=tokens.alice)
        api.create_repo("alice/legacy")
        api.upload_file(path_or_fileobj=PICKLE, path_in_repo="pytorch_model.bin", repo_id="alice/legacy")
        tree = httpx.get(f"{url}/api/models/alice/legacy/tree/main").json()
    entry = next(item for item in tree if item["path"] == "pytorch_model.bin")
    assert entry["securityFileStatus"]["status"] == "unsafe"
    scan = entry["securityFileStatus"]["pickleImportScan"]  # the Hub's format, with the imports found
    assert scan["imports"] == [{"module": "collections", "name": "OrderedDict", "safety": "innocuous"}]


def test_lfs_objects_cannot_be_borrowed_by_sha256(hub_url: str, tokens, alice_api, local_store: Store,
                                                  no_xet, tmp_path) -> None:
    alice_api.create_repo("alice/vault", private=True)
    alice_api.upload_file(path_or_fileobj=str(_write(tmp_path / "w.safetensors", BIG)),
                          path_in_repo="w.safetensors", repo_id="alice/vault")
    entry = local_store.get_entry("alice/vault", "w.safetensors")[1]
    sha, size = entry.blob_sha256, entry.size

    headers = {"Authorization": f"Bearer {tokens.carol}"}
    httpx.post(f"{hub_url}/api/repos/create", json={"name": "heist"}, headers=headers).raise_for_status()
    lines = [{"key": "header", "value": {"summary": "borrow"}},
             {"key": "lfsFile", "value": {"path": "w.safetensors", "algo": "sha256", "oid": sha, "size": size}}]
    response = httpx.post(f"{hub_url}/api/models/carol/heist/commit/main", headers=headers,
                          content="\n".join(json.dumps(line) for line in lines))
    assert response.status_code == 404
    # The batch API asks carol for the bytes instead of saying the object is already there.
    batch = httpx.post(f"{hub_url}/carol/heist.git/info/lfs/objects/batch", headers=headers,
                       json={"operation": "upload", "objects": [{"oid": sha, "size": size}]}).json()
    assert "upload" in batch["objects"][0]["actions"]
    # A tampered upload URL is refused.
    href = batch["objects"][0]["actions"]["upload"]["href"]
    token = href.split("token=")[1].split("&")[0]
    assert httpx.put(href.replace(f"token={token}", f"token={int(token) - 1}"), content=b"x").status_code == 401


def test_wrong_bytes_for_an_lfs_object_store_nothing(hub_url: str, tokens, alice_api,
                                                     local_store: Store) -> None:
    alice_api.create_repo("alice/lfs")
    headers = {"Authorization": f"Bearer {tokens.alice}"}
    data = b"x" * 1000
    claimed = hashlib.sha256(b"something else").hexdigest()
    batch = httpx.post(f"{hub_url}/alice/lfs.git/info/lfs/objects/batch", headers=headers,
                       json={"operation": "upload", "objects": [{"oid": claimed, "size": len(data)}]}).json()
    put = httpx.put(batch["objects"][0]["actions"]["upload"]["href"], content=data)
    assert put.status_code == 422
    assert not local_store.blobs.exists(claimed) and not local_store.has_upload("alice/lfs", claimed)
    verify = httpx.post(f"{hub_url}/alice/lfs.git/info/lfs/objects/verify", headers=headers,
                        json={"oid": claimed, "size": len(data)})
    assert verify.status_code == 404


def test_commit_body_over_the_limit_is_413(local_store: Store, tokens, serve_app) -> None:
    local_store.create_repo("alice/limited")
    with serve_app(create_app(local_store, HubConfig(max_commit_bytes=10_000))) as url:
        headers = {"Authorization": f"Bearer {tokens.alice}"}
        lines = [{"key": "header", "value": {"summary": "big"}},
                 {"key": "file", "value": {"path": "a", "content": "QUFB" * 5000, "encoding": "base64"}}]
        response = httpx.post(f"{url}/api/models/alice/limited/commit/main", headers=headers,
                              content="\n".join(json.dumps(line) for line in lines))
    assert response.status_code == 413 and "limit" in response.json()["error"]
    assert [e.path for e in local_store.list_files("alice/limited")] == [".gitattributes"]


def test_card_data_and_validate_yaml(alice_api, hub_url: str) -> None:
    alice_api.create_repo("alice/carded")
    card = "---\nlicense: apache-2.0\ntags:\n- text-classification\nlibrary_name: transformers\n---\n# Carded\n"
    alice_api.upload_file(path_or_fileobj=card.encode(), path_in_repo="README.md", repo_id="alice/carded")
    info = alice_api.model_info("alice/carded")
    assert info.card_data["license"] == "apache-2.0"
    assert "text-classification" in info.tags and "license:apache-2.0" in info.tags
    with pytest.raises(ValueError, match="Invalid metadata"):
        alice_api.upload_file(path_or_fileobj=b"---\ntags: [a\n---\n", path_in_repo="README.md",
                              repo_id="alice/carded")


def test_branch_with_a_slash_through_every_read_route(alice_api, hub_url: str, tmp_path) -> None:
    alice_api.create_repo("alice/slashed")
    alice_api.create_branch("alice/slashed", branch="feature/x")
    alice_api.upload_file(path_or_fileobj=b"f", path_in_repo="sub/f.txt", repo_id="alice/slashed",
                          revision="feature/x")
    tree = alice_api.list_repo_tree("alice/slashed", revision="feature/x", recursive=True)
    assert {item.path for item in tree} == {".gitattributes", "sub", "sub/f.txt"}
    assert [i.path for i in alice_api.list_repo_tree("alice/slashed", path_in_repo="sub", revision="feature/x")] \
        == ["sub/f.txt"]
    commits = alice_api.list_repo_commits("alice/slashed", revision="feature/x")
    assert commits[0].title == "Upload sub/f.txt with huggingface_hub"
    path = hf_hub_download("alice/slashed", "sub/f.txt", revision="feature/x", endpoint=hub_url,
                           cache_dir=tmp_path / "c", token=False)
    assert open(path, "rb").read() == b"f"


def test_paths_info_and_file_exists(alice_api) -> None:
    from huggingface_hub.hf_api import RepoFile, RepoFolder

    alice_api.create_repo("alice/paths")
    alice_api.upload_file(path_or_fileobj=b"abc", path_in_repo="sub/a.txt", repo_id="alice/paths")
    found = alice_api.get_paths_info("alice/paths", ["sub/a.txt", "sub", "missing.txt"])
    kinds = {item.path: type(item) for item in found}
    assert kinds == {"sub/a.txt": RepoFile, "sub": RepoFolder}
    assert next(item for item in found if item.path == "sub/a.txt").size == 3
    assert alice_api.file_exists("alice/paths", "sub/a.txt") and not alice_api.file_exists("alice/paths", "b.txt")
