"""Pull requests and discussions through the unmodified huggingface_hub client (issue 28): the review workflow
(propose a version as a pull request, review it, merge it into main), with the repo's access rules."""

from __future__ import annotations

import hashlib

import httpx
import pytest
from huggingface_hub import CommitOperationAdd, CommitOperationDelete
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

from fmhub.store import Store


def test_propose_review_merge(alice_api, bob_api, local_store: Store) -> None:
    alice_api.create_repo("acme/model")
    alice_api.upload_file(path_or_fileobj=b"v1\n", path_in_repo="README.md", repo_id="acme/model")
    main_before = alice_api.model_info("acme/model").sha
    commit = alice_api.create_commit("acme/model", [CommitOperationAdd("README.md", b"v2\n"),
                                                    CommitOperationAdd("new.json", b"{}")],
                                     commit_message="Version 2", commit_description="Better card", create_pr=True)
    assert commit.pr_num == 1 and commit.pr_revision == "refs/pr/1" and commit.pr_url.endswith("/discussions/1")
    assert alice_api.model_info("acme/model").sha == main_before  # main is untouched until the merge
    assert alice_api.model_info("acme/model", revision="refs/pr/1").sha == commit.oid
    refs = alice_api.list_repo_refs("acme/model", include_pull_requests=True)
    assert [(r.ref, r.target_commit) for r in refs.pull_requests] == [("refs/pr/1", commit.oid)]
    assert not alice_api.list_repo_refs("acme/model").pull_requests  # only when asked, as on the Hub
    # more work on the pull request, by the same client
    alice_api.upload_file(path_or_fileobj=b"x", path_in_repo="extra.txt", repo_id="acme/model", revision="refs/pr/1")

    # review: bob (read member of acme) reads, comments; he may not merge
    details = bob_api.get_discussion_details("acme/model", 1)
    assert (details.title, details.status, details.is_pull_request, details.target_branch) == \
        ("Version 2", "open", True, "refs/heads/main")
    assert details.conflicting_files == [] and "-v1\n+v2\n" in details.diff and "b/new.json" in details.diff
    assert [e.type for e in details.events] == ["comment", "commit", "commit"]
    note = bob_api.comment_discussion("acme/model", 1, "Looks good, but check the card")
    with pytest.raises(HfHubHTTPError) as denied:
        bob_api.merge_pull_request("acme/model", 1)
    assert denied.value.response.status_code == 403
    alice_api.edit_discussion_comment("acme/model", 1, details.events[0].id, "Better card (edited)")
    with pytest.raises(HfHubHTTPError):
        alice_api.edit_discussion_comment("acme/model", 1, note.id, "not yours")  # only its author edits it

    alice_api.merge_pull_request("acme/model", 1, comment="Merging v2")
    merged = alice_api.get_discussion_details("acme/model", 1)
    assert merged.status == "merged" and merged.merge_commit_oid == alice_api.model_info("acme/model").sha
    assert set(alice_api.list_repo_files("acme/model")) == {".gitattributes", "README.md", "new.json", "extra.txt"}
    history = alice_api.list_repo_commits("acme/model")
    assert history[0].title == "Merge pull request #1: Version 2"
    actions = [e.action for e in local_store.audit_events(repo_id="acme/model")]
    assert {"pr.create", "pr.merge", "discussion.comment"} <= set(actions)
    with pytest.raises(HfHubHTTPError):  # merged: no more commits to its ref
        alice_api.upload_file(path_or_fileobj=b"y", path_in_repo="late.txt", repo_id="acme/model",
                              revision="refs/pr/1")


def test_discussions_follow_the_repos_access_rules(alice_api, bob_api, carol_api, hub_url: str) -> None:
    alice_api.create_repo("acme/private-model", private=True)
    bob_api.create_discussion("acme/private-model", title="A question")  # a reader may open discussions
    with pytest.raises(HfHubHTTPError) as denied:  # but not merge a pull request (his own neither)
        bob_api.merge_pull_request("acme/private-model", bob_api.create_pull_request("acme/private-model",
                                                                                     title="A proposal").num)
    assert denied.value.response.status_code == 403
    with pytest.raises(RepositoryNotFoundError):  # private: answers like a missing repo
        list(carol_api.get_repo_discussions("acme/private-model"))
    with pytest.raises(RepositoryNotFoundError):
        carol_api.get_discussion_details("acme/private-model", 1)
    anonymous = httpx.get(f"{hub_url}/api/models/acme/private-model/discussions")
    assert anonymous.status_code in (401, 404)
    with pytest.raises(HfHubHTTPError) as closing:  # neither its author nor a writer
        carol_api.change_discussion_status("acme/private-model", 1, "closed")
    assert closing.value.response.status_code == 404
    bob_api.change_discussion_status("acme/private-model", 1, "closed", comment="answered")  # its author may
    assert [d.status for d in alice_api.get_repo_discussions("acme/private-model")] == ["draft", "closed"]
    alice_api.hide_discussion_comment("acme/private-model", 1,
                                      alice_api.get_discussion_details("acme/private-model", 1).events[-1].id)


def test_merge_conflict_is_refused_with_the_files(alice_api, local_store: Store) -> None:
    alice_api.create_repo("alice/conflict")
    alice_api.upload_file(path_or_fileobj=b"base", path_in_repo="a.txt", repo_id="alice/conflict")
    pr = alice_api.create_commit("alice/conflict", [CommitOperationAdd("a.txt", b"pr")], commit_message="pr",
                                 create_pr=True)
    alice_api.upload_file(path_or_fileobj=b"main", path_in_repo="a.txt", repo_id="alice/conflict")
    head = alice_api.model_info("alice/conflict").sha
    assert alice_api.get_discussion_details("alice/conflict", pr.pr_num).conflicting_files == ["a.txt"]
    with pytest.raises(HfHubHTTPError) as conflict:
        alice_api.merge_pull_request("alice/conflict", pr.pr_num)
    assert conflict.value.response.status_code == 409 and "a.txt" in str(conflict.value)
    assert alice_api.model_info("alice/conflict").sha == head


def test_failed_pr_commit_leaves_a_closed_pull_request(alice_api) -> None:
    alice_api.create_repo("alice/failing")
    with pytest.raises(HfHubHTTPError):
        alice_api.create_commit("alice/failing", [CommitOperationDelete("missing.txt")], commit_message="oops",
                                create_pr=True)
    [pr] = alice_api.get_repo_discussions("alice/failing")
    assert pr.status == "closed"


def test_hffilesystem_and_commit_listing_on_a_pull_request(hub_url: str, tokens, alice_api) -> None:
    from huggingface_hub import HfFileSystem

    alice_api.create_repo("alice/fs")
    pr = alice_api.create_commit("alice/fs", [CommitOperationAdd("data/x.txt", b"x")], commit_message="pr",
                                 create_pr=True)
    fs = HfFileSystem(endpoint=hub_url, token=tokens.alice)
    assert fs.cat("alice/fs@refs%2Fpr%2F1/data/x.txt") == b"x"
    assert [c.title for c in alice_api.list_repo_commits("alice/fs", revision=pr.pr_revision)][0] == "pr"


def test_readers_propose_pull_requests_only_writers_merge(alice_api, carol_api, bob_api, hub_url: str,
                                                          tokens) -> None:
    """The Hub's community pull requests: carol (no rights on alice's namespace) proposes a change to a public
    repo, with a regular and an LFS file (uploaded through Xet or LFS under her own token); she may add commits
    to her own pull request only, never to a branch or another's pull request, and never merge."""
    alice_api.create_repo("alice/public")
    alice_api.upload_file(path_or_fileobj=b"v1", path_in_repo="README.md", repo_id="alice/public")
    main = alice_api.model_info("alice/public").sha
    pr = carol_api.create_commit("alice/public", [CommitOperationAdd("regular.txt", b"File content"),
                                                  CommitOperationAdd("weights.bin", b"\x00binary\x01")],
                                 commit_message="PR on a foreign repo", create_pr=True)
    details = alice_api.get_discussion_details("alice/public", pr.pr_num)
    assert (details.author, details.status, details.is_pull_request) == ("carol", "open", True)
    assert {f.path for f in alice_api.list_repo_tree("alice/public", revision=pr.pr_revision)} == \
        {".gitattributes", "README.md", "regular.txt", "weights.bin"}
    carol_api.upload_file(path_or_fileobj=b"more", path_in_repo="more.txt", repo_id="alice/public",
                          revision=pr.pr_revision)  # her own pull request takes more commits
    for revision in ("main", None):
        with pytest.raises(HfHubHTTPError) as denied:
            carol_api.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id="alice/public",
                                  revision=revision)
        assert denied.value.response.status_code == 403 and "create_pr" in str(denied.value)
    other = alice_api.create_pull_request("alice/public", title="alice's own")
    with pytest.raises(HfHubHTTPError) as denied:
        carol_api.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id="alice/public",
                              revision=other.git_reference)
    assert denied.value.response.status_code == 403
    with pytest.raises(HfHubHTTPError) as denied:
        carol_api.merge_pull_request("alice/public", pr.pr_num)
    assert denied.value.response.status_code == 403
    assert alice_api.model_info("alice/public").sha == main
    alice_api.merge_pull_request("alice/public", pr.pr_num)
    assert {"regular.txt", "weights.bin", "more.txt"} <= set(alice_api.list_repo_files("alice/public"))
    with pytest.raises(HfHubHTTPError):  # merged: closed to more commits, hers included
        carol_api.upload_file(path_or_fileobj=b"late", path_in_repo="late.txt", repo_id="alice/public",
                              revision=pr.pr_revision)
    # A private repo: outsiders learn nothing (404), readers of its org propose like anyone on a public one.
    alice_api.create_repo("acme/closed", private=True)
    with pytest.raises(RepositoryNotFoundError):
        carol_api.create_commit("acme/closed", [CommitOperationAdd("a.txt", b"a")], commit_message="x",
                                create_pr=True)
    assert bob_api.create_commit("acme/closed", [CommitOperationAdd("a.txt", b"a")], commit_message="x",
                                 create_pr=True).pr_num == 1
    # A read-only token proposes nothing.
    readonly = httpx.post(f"{hub_url}/api/models/alice/public/discussions", json={"title": "ro", "pullRequest": True},
                          headers={"Authorization": f"Bearer {tokens.alice_read}"})
    assert readonly.status_code == 403


def test_empty_pull_requests_are_drafts_until_their_first_commit(alice_api) -> None:
    alice_api.create_repo("alice/drafts")
    draft = alice_api.create_pull_request("alice/drafts", title="Work in progress")
    assert alice_api.get_discussion_details("alice/drafts", draft.num).status == "draft"
    assert [d.status for d in alice_api.get_repo_discussions("alice/drafts")] == ["draft"]
    # A draft is not closed: the "open" filter lists it, as on the Hub.
    assert [d.num for d in alice_api.get_repo_discussions("alice/drafts", discussion_status="open")] == [draft.num]
    assert list(alice_api.get_repo_discussions("alice/drafts", discussion_status="closed")) == []
    alice_api.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id="alice/drafts",
                          revision=draft.git_reference)
    assert alice_api.get_discussion_details("alice/drafts", draft.num).status == "open"
    published = alice_api.create_pull_request("alice/drafts", title="Publish by hand")
    alice_api.change_discussion_status("alice/drafts", published.num, "open")
    assert alice_api.get_discussion_details("alice/drafts", published.num).status == "open"
    alice_api.merge_pull_request("alice/drafts", draft.num)


def test_a_readers_pull_request_through_git_lfs(carol_api, alice_api, local_store: Store,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Without Xet (HF_HUB_DISABLE_XET=1) the client uploads through the Git LFS batch API: a reader's upload
    URL, PUT and verify work for their pull request, and the bytes reach the repo only through it."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
    alice_api.create_repo("alice/lfs-pr")
    weights = b"\x00lfs weights\x01" * 100
    pr = carol_api.create_commit("alice/lfs-pr", [CommitOperationAdd("w.bin", weights)],
                                 commit_message="weights", create_pr=True)
    [entry] = [f for f in alice_api.list_repo_tree("alice/lfs-pr", revision=pr.pr_revision) if f.path == "w.bin"]
    assert entry.lfs.sha256 == hashlib.sha256(weights).hexdigest() and entry.xet_hash is None
    assert "w.bin" not in alice_api.list_repo_files("alice/lfs-pr")
    assert [(e.actor, e.ref) for e in local_store.audit_events(repo_id="alice/lfs-pr", action="commit")
            if e.actor == "carol"] == [("carol", "refs/pr/1")]
