"""Protocol conformance with the unmodified huggingface_hub and datasets clients (issue 28), one test per break
the client's own suite measured: security status format, upload modes, git blob ids, errors, ``.git/`` paths."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import httpx
import pytest
from huggingface_hub import CommitOperationAdd, CommitOperationDelete, snapshot_download
from huggingface_hub.errors import HfHubHTTPError

from fmhub.server import HubConfig, create_app
from fmhub.store import AddFile, Store


def _safetensors() -> bytes:
    import struct

    header = json.dumps({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}).encode()
    return struct.pack("<Q", len(header)) + header + bytes(16)


def _git_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _preupload(url: str, token: str, repo: str, files: list[tuple[str, bytes]]) -> dict[str, dict]:
    import base64

    body = {"files": [{"path": p, "size": len(d), "sample": base64.b64encode(d[:512]).decode()} for p, d in files]}
    answer = httpx.post(f"{url}/api/models/{repo}/preupload/main", json=body,
                        headers={"Authorization": f"Bearer {token}"})
    answer.raise_for_status()
    return {f["path"]: f for f in answer.json()["files"]}


# -- security status ---------------------------------------------------------------------------------


def test_flagged_file_is_described_in_the_hubs_security_format(local_store: Store, tokens, hf_env, tmp_path,
                                                                serve_app) -> None:
    """list_repo_tree / snapshot_download used to crash with KeyError: 'avScan' on a repo holding a pickle."""
    from huggingface_hub import HfApi

    local_store.create_repo("alice/legacy", author="alice")
    legacy = b"cos\nsystem\n(S'echo hi'\ntR."  # a pickle calling os.system (never unpickled here)
    blob = local_store.put_bytes(legacy)
    local_store.commit("alice/legacy", [AddFile("pytorch_model.bin", blob.sha256, blob.size)], title="legacy",
                       author="alice", allow_pickle=True)
    with serve_app(create_app(local_store, HubConfig())) as url:
        api = HfApi(endpoint=url, token=tokens.alice)
        entry = next(e for e in api.list_repo_tree("alice/legacy", expand=True) if e.path == "pytorch_model.bin")
        assert entry.security.status == "unsafe" and not entry.security.safe
        assert entry.security.av_scan == {"virusFound": False, "virusNames": None}
        assert entry.security.pickle_import_scan["highestSafetyLevel"] == "dangerous"
        [info] = api.get_paths_info("alice/legacy", ["pytorch_model.bin"])
        assert info.security.status == "unsafe"
        folder = snapshot_download("alice/legacy", endpoint=url, token=tokens.alice, cache_dir=tmp_path / "c")
    assert open(os.path.join(folder, "pytorch_model.bin"), "rb").read() == legacy


# -- upload modes --------------------------------------------------------------------------------------


def test_preupload_follows_gitattributes_binary_samples_and_gitignore(hub_url: str, tokens, alice_api) -> None:
    alice_api.create_repo("alice/modes")
    alice_api.upload_file(path_or_fileobj=b"*.log\nscratch/\n", path_in_repo=".gitignore", repo_id="alice/modes")
    answers = _preupload(hub_url, tokens.alice, "alice/modes", [
        ("notes.txt", b"plain text\n"),                   # text, no pattern: inline
        ("tiny.safetensors", b"{}"),                      # matched by the default .gitattributes: LFS
        ("blob.dat", b"PAR1\x00\x01\x02\xff" * 10),         # binary sample: LFS
        ("utf8.md", "héllo wörld ✓".encode()),           # non-ASCII text is not binary
        ("run.log", b"x"), ("scratch/a.txt", b"y"),       # .gitignore
    ])
    assert {p: a["uploadMode"] for p, a in answers.items()} == {
        "notes.txt": "regular", "tiny.safetensors": "lfs", "blob.dat": "lfs", "utf8.md": "regular",
        "run.log": "regular", "scratch/a.txt": "regular"}
    assert {p for p, a in answers.items() if a["shouldIgnore"]} == {"run.log", "scratch/a.txt"}
    # a .gitignore in the same upload applies instead of the stored one, and is never ignored itself
    again = _preupload(hub_url, tokens.alice, "alice/modes", [(".gitignore", b"*.txt\n.gitignore\n"),
                                                               ("run.log", b"x"), ("a.txt", b"y")])
    assert {p for p, a in again.items() if a["shouldIgnore"]} == {"a.txt"}


def test_gitattributes_of_the_revision_decide_lfs(hub_url: str, tokens, alice_api) -> None:
    alice_api.create_repo("alice/attrs")
    alice_api.upload_file(path_or_fileobj=b"*.txt filter=lfs diff=lfs merge=lfs -text\nkeep.txt -filter\n",
                          path_in_repo=".gitattributes", repo_id="alice/attrs")
    answers = _preupload(hub_url, tokens.alice, "alice/attrs", [("a/b.txt", b"t"), ("keep.txt", b"t"),
                                                                  ("x.safetensors", b"{}")])
    # The repo's own .gitattributes replaced the default one: *.safetensors is no longer listed.
    assert {p: a["uploadMode"] for p, a in answers.items()} == {"a/b.txt": "lfs", "keep.txt": "regular",
                                                                "x.safetensors": "regular"}


def test_upload_folder_skips_gitignored_files(alice_api, local_store: Store, tmp_path) -> None:
    alice_api.create_repo("alice/ignore")
    alice_api.upload_file(path_or_fileobj=b"*.tmp\n", path_in_repo=".gitignore", repo_id="alice/ignore")
    (tmp_path / "up").mkdir()
    (tmp_path / "up" / "keep.json").write_text("{}")
    (tmp_path / "up" / "junk.tmp").write_text("scratch")
    alice_api.upload_folder(folder_path=tmp_path / "up", repo_id="alice/ignore")
    assert {e.path for e in local_store.list_files("alice/ignore")} == {".gitattributes", ".gitignore", "keep.json"}


_PUSH = """
import datasets, sys
ds = datasets.Dataset.from_dict({"text": [f"row {i}" for i in range(40)], "label": [i % 2 for i in range(40)]})
ds.push_to_hub(sys.argv[1])
back = datasets.load_dataset(sys.argv[1], split="train")
print(back.num_rows, sorted(set(back["label"])), back[3]["text"])
"""


def test_dataset_push_to_hub_and_load_back(hub_url: str, tokens, local_store: Store, tmp_path) -> None:
    """datasets' own upload: its Parquet shard is small and binary, so it must go through LFS (the client
    deletes the shard once it is uploaded, before the commit)."""
    env = {**os.environ, "HF_ENDPOINT": hub_url, "HF_HOME": str(tmp_path / "hf"),
           "HF_DATASETS_CACHE": str(tmp_path / "ds"), "HF_HUB_DISABLE_TELEMETRY": "1", "HF_TOKEN": tokens.alice}
    done = subprocess.run([sys.executable, "-c", _PUSH, "alice/pushed"], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "40 [0, 1] row 3"
    paths = {e.path for e in local_store.list_files("alice/pushed", repo_type="dataset")}
    assert any(p.startswith("data/train-") and p.endswith(".parquet") for p in paths), paths


# -- git blob ids ----------------------------------------------------------------------------------------


def test_tree_oids_are_git_blob_ids_and_checksums_verify(hub_url: str, alice_api, tmp_path) -> None:
    alice_api.create_repo("alice/oids")
    text, weights = b"hello\n", _safetensors()
    alice_api.upload_file(path_or_fileobj=text, path_in_repo="dir/hello.txt", repo_id="alice/oids")
    alice_api.upload_file(path_or_fileobj=weights, path_in_repo="w.safetensors", repo_id="alice/oids")
    tree = {e.path: e for e in alice_api.list_repo_tree("alice/oids", recursive=True) if hasattr(e, "blob_id")}
    assert tree["dir/hello.txt"].blob_id == _git_sha1(text) == "ce013625030ba8dba906f756967f9e9ca394464a"
    assert tree["dir/hello.txt"].lfs is None
    lfs = tree["w.safetensors"]
    pointer = (f"version https://git-lfs.github.com/spec/v1\noid sha256:{hashlib.sha256(weights).hexdigest()}\n"
               f"size {len(weights)}\n").encode()
    assert lfs.lfs.sha256 == hashlib.sha256(weights).hexdigest() and lfs.lfs.pointer_size == len(pointer)
    assert lfs.blob_id == _git_sha1(pointer)
    siblings = {s.rfilename: s for s in alice_api.model_info("alice/oids", files_metadata=True).siblings}
    assert siblings["dir/hello.txt"].blob_id == _git_sha1(text)
    folder = alice_api.snapshot_download("alice/oids", local_dir=tmp_path / "local")
    verified = alice_api.verify_repo_checksums("alice/oids", local_dir=folder)
    assert verified.checked_count == 3 and not verified.mismatches and not verified.missing_paths
    # unchanged files are recognised by their oid and skipped (no new commit)
    again = alice_api.upload_file(path_or_fileobj=text, path_in_repo="dir/hello.txt", repo_id="alice/oids")
    assert again.oid == alice_api.model_info("alice/oids").sha


# -- errors ----------------------------------------------------------------------------------------------


def test_missing_repos_without_namespace_answer_repo_not_found(hub_url: str, alice_api, hf_api) -> None:
    for api in (alice_api, hf_api):
        assert api.repo_exists("gpt2") is False
        assert api.repo_exists("gpt2", repo_type="dataset") is False
        assert api.file_exists("gpt2", "config.json") is False
        assert api.revision_exists("gpt2", "main") is False
    answer = httpx.get(f"{hub_url}/api/models/gpt2")
    assert answer.status_code == 404 and answer.headers["X-Error-Code"] == "RepoNotFound"
    assert httpx.get(f"{hub_url}/no/such/page/at/all").headers.get("X-Error-Code") is None


def test_stale_parent_commit_answers_412(alice_api, local_store: Store) -> None:
    alice_api.create_repo("alice/race412")
    first = alice_api.upload_file(path_or_fileobj=b"1", path_in_repo="x", repo_id="alice/race412").oid
    alice_api.upload_file(path_or_fileobj=b"2", path_in_repo="x", repo_id="alice/race412")
    with pytest.raises(HfHubHTTPError) as conflict:
        alice_api.create_commit("alice/race412", [CommitOperationAdd("y", b"3")], commit_message="late",
                                parent_commit=first)
    assert conflict.value.response.status_code == 412
    assert conflict.value.request_id  # the client quotes X-Request-Id in its errors


def test_every_answer_has_a_request_id(hub_url: str) -> None:
    ids = {httpx.get(f"{hub_url}/api/models").headers["X-Request-Id"] for _ in range(3)}
    assert len(ids) == 3


def test_whoami_orgs_have_a_fullname(alice_api) -> None:
    [org] = alice_api.whoami()["orgs"]
    assert org["name"] == "acme" and org["fullname"] and org["roleInOrg"] == "admin"


def test_deleting_a_folder_by_name_without_slash(alice_api, local_store: Store) -> None:
    alice_api.create_repo("alice/folders")
    alice_api.create_commit("alice/folders", [CommitOperationAdd("sub/a.txt", b"a"), CommitOperationAdd("sub/b/c", b"c"),
                                              CommitOperationAdd("subway.txt", b"s")], commit_message="add")
    alice_api.delete_file("sub", repo_id="alice/folders")  # a folder, named like a file
    assert {e.path for e in local_store.list_files("alice/folders")} == {".gitattributes", "subway.txt"}
    alice_api.create_commit("alice/folders", [CommitOperationAdd("d/e/f", b"f")], commit_message="add")
    alice_api.create_commit("alice/folders", [CommitOperationDelete("d/e")], commit_message="delete nested")
    assert {e.path for e in local_store.list_files("alice/folders")} == {".gitattributes", "subway.txt"}


# -- .git paths ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [".git/config", "a/.git/hooks/post-checkout", ".GIT/x", ".git"])
def test_paths_under_a_git_folder_are_refused(hub_url: str, tokens, alice_api, local_store: Store,
                                              path: str) -> None:
    """The client refuses these itself; the server must too, for any other client (a checkout of the repo
    must never get a .git folder)."""
    alice_api.create_repo("alice/gitdir", exist_ok=True)
    head = local_store.resolve_revision("alice/gitdir").oid
    lines = [{"key": "header", "value": {"summary": "sneak"}},
             {"key": "file", "value": {"path": path, "content": "eA==", "encoding": "base64"}}]
    answer = httpx.post(f"{hub_url}/api/models/alice/gitdir/commit/main", headers={"Authorization": f"Bearer {tokens.alice}"},
                        content="\n".join(json.dumps(line) for line in lines))
    assert answer.status_code == 400 and ".git" in answer.json()["error"]
    assert local_store.resolve_revision("alice/gitdir").oid == head


def test_names_that_merely_contain_git_are_fine(alice_api, local_store: Store) -> None:
    alice_api.create_repo("alice/gitnames")
    alice_api.create_commit("alice/gitnames", [CommitOperationAdd(p, b"x") for p in
                                               (".gitignore", "a/.gitkeep", "x.git/y", ".git_something/z")],
                            commit_message="names")
    assert {".gitignore", "a/.gitkeep", "x.git/y", ".git_something/z"} <= {
        e.path for e in local_store.list_files("alice/gitnames")}


# -- repo management routes ------------------------------------------------------------------------------


def test_move_repo_keeps_history_and_refuses_taken_names(alice_api, bob_api, local_store: Store) -> None:
    alice_api.create_repo("alice/old-name", repo_type="dataset")
    alice_api.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id="alice/old-name", repo_type="dataset")
    head = local_store.resolve_revision("alice/old-name", repo_type="dataset").oid
    alice_api.move_repo("alice/old-name", "acme/new-name", repo_type="dataset")  # alice is an admin of acme
    assert alice_api.dataset_info("acme/new-name").sha == head
    assert alice_api.dataset_info("alice/old-name").id == "acme/new-name"  # the old name redirects
    assert local_store.audit_events(action="repo.move")[0].detail == {"from": "alice/old-name"}
    alice_api.create_repo("alice/taken")
    alice_api.create_repo("alice/mover")
    with pytest.raises(HfHubHTTPError, match=r"A model repository called alice/taken already exists"):
        alice_api.move_repo("alice/mover", "alice/taken")
    with pytest.raises(HfHubHTTPError) as denied:  # bob may only read acme: no moving into or out of it
        bob_api.move_repo("acme/new-name", "bob/stolen", repo_type="dataset")
    assert denied.value.response.status_code == 403


def test_super_squash_history(alice_api, local_store: Store) -> None:
    alice_api.create_repo("alice/squash")
    for i in range(3):
        alice_api.upload_file(path_or_fileobj=f"v{i}".encode(), path_in_repo="f.txt", repo_id="alice/squash")
    alice_api.create_branch("alice/squash", branch="keep")
    before = local_store.list_files("alice/squash")
    alice_api.super_squash_history("alice/squash", commit_message="one commit")
    [only] = alice_api.list_repo_commits("alice/squash")
    assert only.title == "one commit"
    assert local_store.list_files("alice/squash") == before
    assert len(alice_api.list_repo_commits("alice/squash", revision="keep")) == 4  # other branches keep theirs


def test_auth_check(alice_api, bob_api, carol_api) -> None:
    from huggingface_hub.errors import RepositoryNotFoundError

    alice_api.create_repo("acme/secret", private=True)
    alice_api.auth_check("acme/secret")
    bob_api.auth_check("acme/secret")  # read member of acme
    with pytest.raises(RepositoryNotFoundError):
        carol_api.auth_check("acme/secret")  # private: answers like a missing repo
    with pytest.raises(RepositoryNotFoundError):
        alice_api.auth_check("alice/missing")


def test_expand_gives_last_commits_and_hffilesystem_modified(hub_url: str, tokens, alice_api) -> None:
    from huggingface_hub import HfFileSystem

    alice_api.create_repo("alice/expand")
    first = alice_api.create_commit("alice/expand", [CommitOperationAdd("a/one.txt", b"1"),
                                                     CommitOperationAdd("b.txt", b"b")], commit_message="first")
    second = alice_api.create_commit("alice/expand", [CommitOperationAdd("a/two.txt", b"2")], commit_message="second")
    alice_api.create_commit("alice/expand", [CommitOperationAdd("c.txt", b"c")], commit_message="third")
    tree = {e.path: e for e in alice_api.list_repo_tree("alice/expand", recursive=True, expand=True)}
    assert tree["a/one.txt"].last_commit.oid == first.oid
    assert tree["a"].last_commit.oid == second.oid and tree["a"].last_commit.title == "second"
    assert tree["b.txt"].last_commit.oid == first.oid
    [info] = alice_api.get_paths_info("alice/expand", ["a/two.txt"], expand=True)
    assert info.last_commit.oid == second.oid
    fs = HfFileSystem(endpoint=hub_url, token=tokens.alice)
    assert fs.modified("alice/expand/a/one.txt") == tree["a/one.txt"].last_commit.date


def test_gitignore_uploaded_in_the_same_commit_applies(alice_api, local_store: Store, tmp_path) -> None:
    alice_api.create_repo("alice/same-commit")
    (tmp_path / "up" / "nested").mkdir(parents=True)
    (tmp_path / "up" / ".gitignore").write_text("nested/*\n")
    (tmp_path / "up" / "nested" / "skip.txt").write_text("x")
    (tmp_path / "up" / "keep.txt").write_text("y")
    alice_api.upload_folder(folder_path=tmp_path / "up", repo_id="alice/same-commit")
    assert {e.path for e in local_store.list_files("alice/same-commit")} == {".gitattributes", ".gitignore",
                                                                             "keep.txt"}


def test_empty_files_are_never_lfs_and_pr_refs_squash(alice_api) -> None:
    alice_api.create_repo("alice/empty")
    alice_api.upload_file(path_or_fileobj=b"", path_in_repo="empty.parquet", repo_id="alice/empty")
    [entry] = [e for e in alice_api.list_repo_tree("alice/empty") if e.path == "empty.parquet"]
    assert entry.lfs is None and entry.blob_id == _git_sha1(b"")
    assert [c.title for c in alice_api.list_repo_commits("alice/empty")][-1] == "initial commit"  # the Hub's title
    pr = alice_api.create_commit("alice/empty", [CommitOperationAdd("a.txt", b"a")], commit_message="a",
                                 create_pr=True)
    alice_api.create_commit("alice/empty", [CommitOperationAdd("b.txt", b"b")], commit_message="b",
                            revision=pr.pr_revision)
    alice_api.super_squash_history("alice/empty", branch=pr.pr_revision, commit_message="squashed")
    assert [c.title for c in alice_api.list_repo_commits("alice/empty", revision=pr.pr_revision)] == ["squashed"]


def test_resolve_etag_is_the_git_blob_id_of_regular_files_and_the_sha256_of_lfs_files(
        hub_url: str, tokens, alice_api, tmp_path) -> None:
    """As on the Hub: the client's local-dir check trusts an ETag match, and hashes the local file only for a
    sha256 ETag (an LFS file). A regular file's ETag must be its git blob id (the tree's ``oid``), and a regular
    file sharing its bytes with an LFS file must not be sent through Xet."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub._local_folder import write_download_metadata

    alice_api.create_repo("alice/etags")
    alice_api.upload_file(path_or_fileobj=b"content", path_in_repo="file.txt", repo_id="alice/etags")
    commit = alice_api.upload_file(path_or_fileobj=b"content", path_in_repo="lfs.bin", repo_id="alice/etags")
    info = {i.path: i for i in alice_api.get_paths_info("alice/etags", ["file.txt", "lfs.bin"])}
    regular = httpx.head(f"{hub_url}/alice/etags/resolve/main/file.txt")
    lfs = httpx.head(f"{hub_url}/alice/etags/resolve/main/lfs.bin")
    assert regular.headers["etag"] == f'"{info["file.txt"].blob_id}"' == f'"{_git_sha1(b"content")}"'
    assert "x-linked-etag" not in regular.headers and "x-xet-hash" not in regular.headers
    assert lfs.headers["etag"] == lfs.headers["x-linked-etag"] == f'"{info["lfs.bin"].lfs.sha256}"'
    assert httpx.head(f"{hub_url}/alice/etags/resolve/main/file.txt",
                      headers={"If-None-Match": regular.headers["etag"]}).status_code == 304
    local = tmp_path / "local"
    local.mkdir()
    (local / "file.txt").write_text("edited locally")
    write_download_metadata(local, "file.txt", commit.oid, etag=info["file.txt"].blob_id)
    hf_hub_download("alice/etags", "file.txt", local_dir=local, endpoint=hub_url, token=tokens.alice)
    assert (local / "file.txt").read_text() == "edited locally"  # the ETag matched: nothing downloaded
