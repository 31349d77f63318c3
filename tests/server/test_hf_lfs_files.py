"""list_lfs_files and permanently_delete_lfs_files with the real client (issue 28): a leaked file leaves every
commit of the repo, refs and pull requests follow, and the bytes go at the next gc."""

from __future__ import annotations

import httpx
import pytest
from huggingface_hub import CommitOperationAdd
from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError

from fmhub.store import Store
from fmhub.store.maintenance import gc


def test_list_and_permanently_delete_lfs_files(alice_api, bob_api, local_store: Store) -> None:
    repo = "alice/leaky"
    alice_api.create_repo(repo)
    alice_api.upload_file(path_or_fileobj=b"secret weights", path_in_repo="leak.bin", repo_id=repo)
    alice_api.upload_file(path_or_fileobj=b"fine", path_in_repo="notes.txt", repo_id=repo)
    alice_api.create_branch(repo, branch="dev")
    alice_api.upload_file(path_or_fileobj=b"dev weights", path_in_repo="dev.bin", repo_id=repo, revision="dev")
    pr = alice_api.create_commit(repo, [CommitOperationAdd("pr.bin", b"pr weights")], commit_message="pr",
                                 create_pr=True)
    files = {f.filename: f for f in alice_api.list_lfs_files(repo)}
    assert set(files) == {"leak.bin", "dev.bin", "pr.bin"}  # text and .gitattributes are not LFS files
    assert files["leak.bin"].ref == "main" and files["dev.bin"].ref == "dev" and files["pr.bin"].ref == "refs/pr/1"
    assert files["leak.bin"].size == len(b"secret weights") and files["leak.bin"].file_oid == files["leak.bin"].oid
    with pytest.raises(HfHubHTTPError) as denied:  # bob may not even list alice's storage
        list(bob_api.list_lfs_files(repo))
    assert denied.value.response.status_code == 403

    before = alice_api.model_info(repo).sha
    alice_api.permanently_delete_lfs_files(repo, [files["leak.bin"]])
    assert {f.filename for f in alice_api.list_lfs_files(repo)} == {"dev.bin", "pr.bin"}
    # Gone from every commit and ref: main, the branch made after it, the pull request's base.
    assert set(alice_api.list_repo_files(repo)) == {".gitattributes", "notes.txt"}
    assert set(alice_api.list_repo_files(repo, revision="dev")) == {".gitattributes", "notes.txt", "dev.bin"}
    assert "leak.bin" not in alice_api.list_repo_files(repo, revision=pr.pr_revision)
    for commit in alice_api.list_repo_commits(repo, revision="dev"):
        assert "leak.bin" not in alice_api.list_repo_files(repo, revision=commit.commit_id)
    assert alice_api.model_info(repo).sha != before
    with pytest.raises(Exception):  # the old head is no more
        alice_api.list_repo_files(repo, revision=before)
    with pytest.raises(EntryNotFoundError):
        alice_api.hf_hub_download(repo, "leak.bin")
    assert alice_api.get_discussion_details(repo, pr.pr_num).merge_commit_oid is None  # still open: it merges
    alice_api.merge_pull_request(repo, pr.pr_num)
    # The repo forgot it received the bytes: naming them in a commit without uploading them is refused.
    assert not local_store.has_upload(repo, files["leak.bin"].file_oid)
    assert local_store.audit_events(action="lfs.purge")[0].detail["commits_rewritten"] >= 3
    # The bytes themselves go at the next gc.
    assert gc(local_store, grace_seconds=0).blobs_deleted >= 1
    assert not local_store.blobs.exists(files["leak.bin"].file_oid)


def test_only_lfs_files_of_the_repo_may_be_named(hub_url: str, tokens, alice_api) -> None:
    alice_api.create_repo("alice/strict")
    alice_api.upload_file(path_or_fileobj=b"text", path_in_repo="a.txt", repo_id="alice/strict")
    url = f"{hub_url}/api/models/alice/strict/lfs-files/batch"
    auth = {"Authorization": f"Bearer {tokens.alice}"}
    answer = httpx.post(url, json={"deletions": {"sha": ["0" * 64], "rewriteHistory": True}}, headers=auth)
    assert answer.status_code == 400 and "list_lfs_files" in answer.json()["hint"]
    answer = httpx.post(url, json={"deletions": {"sha": ["not-a-sha"]}}, headers=auth)
    assert answer.status_code == 400
    answer = httpx.post(url, json={"deletions": {"sha": [], "rewriteHistory": False}}, headers=auth)
    assert answer.status_code == 400 and "rewriteHistory" in answer.json()["hint"]


def test_copy_files_across_repos_grants_the_target_the_lfs_bytes(alice_api, carol_api, tmp_path) -> None:
    alice_api.create_repo("alice/src")
    alice_api.create_repo("alice/dst", repo_type="dataset")
    alice_api.upload_file(path_or_fileobj=b"text data", path_in_repo="data/a.txt", repo_id="alice/src")
    alice_api.upload_file(path_or_fileobj=b"binary data", path_in_repo="data/sub/lfs.bin", repo_id="alice/src")
    alice_api.copy_files("hf://alice/src/data/", "hf://datasets/alice/dst/copied/")
    assert {"copied/a.txt", "copied/sub/lfs.bin"} <= set(alice_api.list_repo_files("alice/dst", repo_type="dataset"))
    path = alice_api.hf_hub_download("alice/dst", "copied/sub/lfs.bin", repo_type="dataset", cache_dir=tmp_path)
    assert open(path, "rb").read() == b"binary data"
    # Only bytes the source repo holds, and only into a repo the caller may write.
    sha = alice_api.get_paths_info("alice/src", ["data/sub/lfs.bin"])[0].lfs.sha256
    body = {"target": {"type": "dataset", "name": "alice/dst"}, "files": [{"sha256": "0" * 64}]}
    answer = httpx.post(f"{alice_api.endpoint}/api/models/alice/src/lfs-files/duplicate", json=body,
                        headers={"Authorization": f"Bearer {alice_api.token}"})
    assert answer.json()["failed"][0]["sha256"] == "0" * 64
    carol_api.create_repo("carol/mine")
    body = {"target": {"type": "dataset", "name": "alice/dst"}, "files": [{"sha256": sha}]}
    denied = httpx.post(f"{alice_api.endpoint}/api/models/alice/src/lfs-files/duplicate", json=body,
                        headers={"Authorization": f"Bearer {carol_api.token}"})
    assert denied.status_code == 403
