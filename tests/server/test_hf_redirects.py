"""Moved repos: their old names redirect to the new ones, as on the Hub (issue 28), with the real client."""

from __future__ import annotations

import httpx
import pytest
from huggingface_hub import hf_hub_download
from huggingface_hub.errors import RepositoryNotFoundError

from fmhub.store import Store
from fmhub.store.rewrite import redirected_repo


def test_old_name_redirects_reads_downloads_and_api_calls(hub_url: str, tokens, alice_api, tmp_path) -> None:
    alice_api.create_repo("alice/old")
    alice_api.upload_file(path_or_fileobj=b"weights", path_in_repo="w.txt", repo_id="alice/old")
    alice_api.move_repo("alice/old", "acme/new")
    raw = httpx.get(f"{hub_url}/api/models/alice/old/revision/main?blobs=true")
    assert raw.status_code == 307
    assert raw.headers["location"] == "/api/models/acme/new/revision/main?blobs=true"
    assert alice_api.model_info("alice/old").id == "acme/new"
    assert alice_api.repo_exists("ALICE/Old")  # ids are case-insensitive, old ones too
    path = hf_hub_download("alice/old", "w.txt", endpoint=hub_url, token=tokens.alice, cache_dir=tmp_path / "c")
    assert open(path, "rb").read() == b"weights"
    assert [f.path for f in alice_api.list_repo_tree("alice/old")] == [".gitattributes", "w.txt"]
    # Moving again: the first name follows the repo, no chain to maintain.
    alice_api.move_repo("acme/new", "acme/newer")
    assert alice_api.model_info("alice/old").id == "acme/newer"
    assert alice_api.model_info("acme/new").id == "acme/newer"


def test_a_new_repo_takes_its_name_back_and_deleting_drops_redirects(alice_api, local_store: Store) -> None:
    alice_api.create_repo("alice/first")
    alice_api.move_repo("alice/first", "alice/second")
    alice_api.create_repo("alice/first")  # the old name is free: the new repo wins over the redirect
    assert alice_api.model_info("alice/first").id == "alice/first"
    assert redirected_repo(local_store, "alice/first") is None
    alice_api.move_repo("alice/second", "alice/third")
    alice_api.delete_repo("alice/third")
    assert redirected_repo(local_store, "alice/second") is None
    with pytest.raises(RepositoryNotFoundError):
        alice_api.model_info("alice/second")


def test_private_moved_repo_answers_like_a_missing_one_to_outsiders(hub_url: str, alice_api, tokens) -> None:
    alice_api.create_repo("acme/secret-old", private=True)
    alice_api.move_repo("acme/secret-old", "acme/secret-new")
    outsider = httpx.get(f"{hub_url}/api/models/acme/secret-old",
                         headers={"Authorization": f"Bearer {tokens.carol}"})
    missing = httpx.get(f"{hub_url}/api/models/acme/never-was", headers={"Authorization": f"Bearer {tokens.carol}"})
    assert outsider.status_code == missing.status_code == 404
    assert outsider.headers["x-error-code"] == "RepoNotFound" and "secret-new" not in outsider.text
    member = httpx.get(f"{hub_url}/api/models/acme/secret-old", headers={"Authorization": f"Bearer {tokens.bob}"})
    assert member.status_code == 307 and member.headers["location"] == "/api/models/acme/secret-new"


def test_web_pages_of_the_old_name_redirect(hub_url: str, alice_api) -> None:
    alice_api.create_repo("alice/page-old")
    alice_api.move_repo("alice/page-old", "alice/page-new")
    page = httpx.get(f"{hub_url}/alice/page-old/tree/main?x=1")
    assert page.status_code == 307 and page.headers["location"] == "/alice/page-new/tree/main?x=1"
    assert httpx.get(f"{hub_url}/alice/page-old", follow_redirects=True).status_code == 200
    missing = httpx.get(f"{hub_url}/alice/never-was")
    assert missing.status_code == 404 and "text/html" in missing.headers["content-type"]
