"""Discussions and pull requests in the store: refs/pr/N, commits to it, merges, conflicts, the timeline."""

from __future__ import annotations

import pytest

from fmhub.errors import DiscussionNotFoundError, InvalidInputError, MergeConflictError, RevisionNotFoundError
from fmhub.store import AddFile, DeleteFile, Store
from fmhub.store import discussions as d


def _add(store: Store, path: str, data: bytes) -> AddFile:
    blob = store.put_bytes(data)
    return AddFile(path, blob.sha256, blob.size)


def _files(store: Store, revision: str | None = None) -> dict[str, bytes]:
    return {e.path: store.read_bytes("acme/m", e.path, revision) for e in store.list_files("acme/m", revision)
            if e.path != ".gitattributes"}


@pytest.fixture
def repo(store: Store) -> Store:
    store.create_repo("acme/m", author="alice")
    store.commit("acme/m", [_add(store, "config.json", b"{}"), _add(store, "README.md", b"v1\n")], title="v1",
                 author="alice")
    return store


def test_pull_request_lifecycle(repo: Store) -> None:
    base = repo.resolve_revision("acme/m").oid
    pr = d.create_discussion(repo, "acme/m", title=" New weights ", author="bob", pull_request=True,
                             description="please review")
    assert (pr.num, pr.title, pr.git_reference, pr.target_branch, pr.base_commit) == \
        (1, "New weights", "refs/pr/1", "main", base)
    assert repo.resolve_revision("acme/m", "refs/pr/1").oid == base
    change = repo.commit("acme/m", [_add(repo, "README.md", b"v2\n"), DeleteFile("config.json")],
                         revision="refs/pr/1", title="v2 card", author="bob")
    assert repo.resolve_revision("acme/m").oid == base  # main untouched until the merge
    details = d.get_discussion(repo, "acme/m", 1)
    assert [e.kind for e in details.events] == ["comment", "commit"] and details.events[1].content == change.oid
    changes, conflicts = d.pull_request_changes(repo, details)
    assert [(c.path, c.change) for c in changes] == [("README.md", "modified"), ("config.json", "deleted")]
    assert conflicts == []
    assert "-v1\n+v2\n" in d.unified_diff(repo, changes)
    refs = repo.list_refs("acme/m")
    assert [r.name for r in refs.pull_requests] == ["refs/pr/1"] and [r.name for r in refs.branches] == ["main"]

    merged = d.merge_pull_request(repo, "acme/m", 1, actor="alice", text="thanks")
    assert merged.parents == (base, change.oid)
    assert _files(repo) == {"README.md": b"v2\n"}
    after = d.get_discussion(repo, "acme/m", 1)
    assert after.status == "merged" and after.merge_commit == merged.oid
    assert [e.kind for e in after.events][-2:] == ["comment", "status-change"]
    assert repo.audit_events(action="pr.merge")[0].commit_oid == merged.oid
    with pytest.raises(InvalidInputError, match="merged"):  # a merged pull request takes no more commits
        repo.commit("acme/m", [_add(repo, "x", b"x")], revision="refs/pr/1", title="late", author="bob")
    with pytest.raises(InvalidInputError, match="merged"):
        d.change_status(repo, "acme/m", 1, "open", actor="bob")


def test_merge_applies_onto_a_moved_target_and_refuses_conflicts(repo: Store) -> None:
    d.create_discussion(repo, "acme/m", title="a", author="bob", pull_request=True)
    d.create_discussion(repo, "acme/m", title="b", author="bob", pull_request=True)
    repo.commit("acme/m", [_add(repo, "a.txt", b"a")], revision="refs/pr/1", title="a", author="bob")
    repo.commit("acme/m", [_add(repo, "README.md", b"pr2\n")], revision="refs/pr/2", title="b", author="bob")
    repo.commit("acme/m", [_add(repo, "README.md", b"main\n")], title="main moves", author="alice")
    d.merge_pull_request(repo, "acme/m", 1, actor="alice")  # no overlap: merges onto the moved main
    assert _files(repo) == {"config.json": b"{}", "README.md": b"main\n", "a.txt": b"a"}
    head = repo.resolve_revision("acme/m").oid
    _, conflicts = d.pull_request_changes(repo, d.get_discussion(repo, "acme/m", 2))
    assert conflicts == ["README.md"]
    with pytest.raises(MergeConflictError) as raised:
        d.merge_pull_request(repo, "acme/m", 2, actor="alice")
    assert raised.value.paths == ["README.md"]
    assert repo.resolve_revision("acme/m").oid == head and d.get_discussion(repo, "acme/m", 2).status == "open"
    # resolved on the pull request by taking main's version: then it merges (and changes nothing else)
    repo.commit("acme/m", [_add(repo, "README.md", b"main\n"), _add(repo, "b.txt", b"b")], revision="refs/pr/2",
                title="resolve", author="bob")
    d.merge_pull_request(repo, "acme/m", 2, actor="alice")
    assert _files(repo)["b.txt"] == b"b"


def test_discussions_comments_titles_and_listing(repo: Store) -> None:
    one = d.create_discussion(repo, "acme/m", title="Question", author="carol")
    two = d.create_discussion(repo, "acme/m", title="PR", author="bob", pull_request=True)
    assert (one.num, two.num, one.git_reference) == (1, 2, None)
    with pytest.raises(RevisionNotFoundError):
        repo.resolve_revision("acme/m", "refs/pr/1")  # a discussion has no ref
    first = d.comment(repo, "acme/m", 1, "how big is it?", author="bob")
    d.edit_comment(repo, "acme/m", 1, first.id, "how large is it?", editor="bob")
    with pytest.raises(Exception, match="author"):
        d.edit_comment(repo, "acme/m", 1, first.id, "hijacked", editor="carol")
    d.hide_comment(repo, "acme/m", 1, first.id, actor="alice")
    renamed = d.rename(repo, "acme/m", 1, "Size?", actor="carol")
    assert (renamed.detail, renamed.content) == ("Question", "Size?")
    d.change_status(repo, "acme/m", 1, "closed", actor="carol", text="answered")
    got = d.get_discussion(repo, "acme/m", 1)
    assert got.title == "Size?" and got.status == "closed"
    assert [(e.kind, e.content, e.edits, e.hidden) for e in got.events] == [
        ("comment", "how large is it?", 1, True), ("title-change", "Size?", 0, False),
        ("status-change", "closed", 0, False), ("comment", "answered", 0, False)]
    assert [x.num for x in d.list_discussions(repo, "acme/m")] == [2, 1]
    assert [x.num for x in d.list_discussions(repo, "acme/m", pull_requests=True)] == [2]
    assert [x.num for x in d.list_discussions(repo, "acme/m", status="closed")] == [1]
    assert [x.num for x in d.list_discussions(repo, "acme/m", author="BOB")] == [2]
    with pytest.raises(DiscussionNotFoundError):
        d.get_discussion(repo, "acme/m", 9)
    with pytest.raises(InvalidInputError):
        d.change_status(repo, "acme/m", 2, "merged", actor="bob")  # merging is merge_pull_request's
    with pytest.raises(InvalidInputError, match="discussion, not a pull request"):
        d.merge_pull_request(repo, "acme/m", 1, actor="alice")
    with pytest.raises(InvalidInputError, match="changes nothing"):
        d.merge_pull_request(repo, "acme/m", 2, actor="alice")


def test_deleting_the_repo_deletes_its_discussions(repo: Store) -> None:
    d.create_discussion(repo, "acme/m", title="PR", author="bob", pull_request=True)
    repo.delete_repo("acme/m")
    repo.create_repo("acme/m")
    assert d.list_discussions(repo, "acme/m") == []
    assert d.create_discussion(repo, "acme/m", title="again", author="bob", pull_request=True).num == 1
