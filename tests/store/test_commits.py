"""Repos and commits over every metadata × blob backend: what lands, what is refused, and that a refusal
changes nothing."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from sqlalchemy.engine import make_url

from fmhub.errors import (
    BlobNotFoundError,
    ConflictError,
    EmptyCommitError,
    EntryNotFoundError,
    FmhubError,
    IntegrityError,
    InvalidInputError,
    InvalidPathError,
    InvalidRepoIdError,
    RepoExistsError,
    RepoNotFoundError,
    RevisionNotFoundError,
)
from fmhub.store import (
    DEFAULT_BRANCH,
    AddFile,
    CopyFile,
    Database,
    DeleteFile,
    DeleteFolder,
    Store,
    open_store,
)
from fmhub.store.objects import Commit, TreeEntry, compute_commit_id, compute_tree_id
from fmhub.store.store import GITATTRIBUTES

HEX40 = re.compile(r"[0-9a-f]{40}")
REPO = "acme/bert"


def add(store: Store, path: str, data: bytes) -> AddFile:
    blob = store.put_bytes(data)
    return AddFile(path, blob.sha256, blob.size)


def contents(store: Store, repo_id: str = REPO, revision: str | None = None, **kw) -> dict[str, bytes]:
    return {e.path: store.read_bytes(repo_id, e.path, revision, **kw)
            for e in store.list_files(repo_id, revision, **kw)}


def state(store: Store, repo_id: str = REPO, branch: str = DEFAULT_BRANCH) -> tuple:
    """Everything a failed commit must leave untouched: head, history and files of the branch."""
    head = store.resolve_revision(repo_id, branch)
    return head, [c.oid for c in store.list_commits(repo_id, branch)], store.list_files(repo_id, branch)


def recomputed_oid(commit: Commit) -> str:
    return compute_commit_id(commit.tree_id, commit.parents, commit.author, commit.title, commit.message,
                             commit.created_at)


# -- create / get / list / update / delete repos -----------------------------------------------------


def test_create_repo_starts_with_gitattributes_on_main(store: Store) -> None:
    before = datetime.now(UTC)
    repo = store.create_repo(REPO, author="alice")
    assert (repo.repo_type, repo.repo_id, repo.namespace, repo.name) == ("model", REPO, "acme", "bert")
    assert repo.default_branch == DEFAULT_BRANCH == "main"
    assert repo.private is False
    assert before <= repo.created_at <= datetime.now(UTC)
    assert store.get_repo(REPO) == repo

    refs = store.list_refs(REPO)
    assert [b.name for b in refs.branches] == [DEFAULT_BRANCH] and refs.tags == []
    (initial,) = store.list_commits(REPO)
    assert refs.branches[0].commit_oid == initial.oid
    assert HEX40.fullmatch(initial.oid)
    assert initial.parents == () and initial.generation == 1 and initial.author == "alice"
    assert initial.title == "initial commit"

    (entry,) = store.list_files(REPO)
    assert entry.path == ".gitattributes"
    assert entry.blob_sha256 == hashlib.sha256(GITATTRIBUTES).hexdigest() and entry.size == len(GITATTRIBUTES)
    assert store.read_bytes(REPO, ".gitattributes") == GITATTRIBUTES
    assert b"*.safetensors filter=lfs" in GITATTRIBUTES
    assert initial.tree_id == compute_tree_id({entry.path: (entry.blob_sha256, entry.size)})
    assert recomputed_oid(initial) == initial.oid


def test_repo_ids_are_unique_case_insensitively(store: Store) -> None:
    repo = store.create_repo("Acme/BERT")
    head = store.resolve_revision("Acme/BERT")
    for spelling in ("Acme/BERT", "acme/bert"):
        with pytest.raises(RepoExistsError) as error:
            store.create_repo(spelling)
        assert (error.value.repo_type, error.value.repo_id) == ("model", "Acme/BERT")  # the existing spelling
        assert store.create_repo(spelling, exist_ok=True) == repo
    assert store.get_repo("acme/bert").repo_id == "Acme/BERT"
    assert [r.repo_id for r in store.list_repos()] == ["Acme/BERT"]
    assert store.list_commits("ACME/bert") == [head]  # exist_ok adds no commit


def test_models_and_datasets_have_separate_namespaces(store: Store) -> None:
    model = store.create_repo(REPO)
    dataset = store.create_repo(REPO, repo_type="dataset")
    assert (model.repo_type, dataset.repo_type) == ("model", "dataset")
    store.commit(REPO, [add(store, "train.csv", b"x,y\n")], repo_type="dataset", title="data", author="a")
    assert "train.csv" in contents(store, repo_type="dataset")
    assert "train.csv" not in contents(store)
    store.delete_repo(REPO)
    with pytest.raises(RepoNotFoundError):
        store.get_repo(REPO)
    assert store.get_repo(REPO, repo_type="dataset") == store.list_repos(repo_type="dataset")[0]


_BAD_IDS = ["acme--x/y", "acme/../y", "acme", "a/b/c", "-a/b", "a/b.git", "a/" + "b" * 97]
_BAD_CREATE = [((repo_id,), {}, InvalidRepoIdError) for repo_id in _BAD_IDS] + [
    ((REPO,), {"repo_type": "space"}, InvalidInputError),
    ((REPO,), {"author": ""}, InvalidInputError),
    ((REPO,), {"author": "bad\nauthor"}, InvalidInputError),
    ((REPO,), {"author": "x" * 256}, InvalidInputError),
]


def test_create_repo_rejects_bad_arguments(store: Store, subtests: pytest.Subtests) -> None:
    for args, kwargs, error in _BAD_CREATE:
        with subtests.test(args=args, kwargs=kwargs):
            with pytest.raises(error) as raised:
                store.create_repo(*args, **kwargs)
            assert isinstance(raised.value, ValueError) and str(raised.value)
            assert store.list_repos() == []


def test_missing_repo_is_not_found(store: Store) -> None:
    for call in (lambda: store.get_repo(REPO), lambda: store.list_files(REPO), lambda: store.resolve_revision(REPO),
                 lambda: store.update_repo(REPO, private=True), lambda: store.delete_repo(REPO),
                 lambda: store.commit(REPO, [DeleteFile("x")], title="t", author="a")):
        with pytest.raises(RepoNotFoundError) as error:
            call()
        assert isinstance(error.value, LookupError)
        assert (error.value.repo_type, error.value.repo_id) == ("model", REPO)


def test_list_repos_filters_and_orders(store: Store) -> None:
    specs = [("model", "acme/beta"), ("model", "Other/alpha_1"), ("model", "acme/alpha"), ("dataset", "acme/data"),
             ("model", "other/a1")]
    for repo_type, repo_id in specs:
        store.create_repo(repo_id, repo_type=repo_type)

    def expected(pred: Callable[[str, str], bool]) -> list[tuple[str, str]]:
        return sorted(((rt, rid) for rt, rid in specs if pred(rt, rid)), key=lambda s: f"{s[0]}/{s[1].lower()}")

    def got(**kw) -> list[tuple[str, str]]:
        return [(r.repo_type, r.repo_id) for r in store.list_repos(**kw)]

    assert got() == expected(lambda rt, rid: True)
    assert got(repo_type="dataset") == expected(lambda rt, rid: rt == "dataset")
    assert got(author="OTHER") == expected(lambda rt, rid: rid.split("/")[0].lower() == "other")
    assert got(search="ALPHA") == expected(lambda rt, rid: "alpha" in rid.lower())
    # LIKE wildcards in the search are literal characters
    assert got(search="_") == expected(lambda rt, rid: "_" in rid)
    assert got(search="%") == []
    assert got(author="acme", repo_type="model") == expected(lambda rt, rid: rt == "model" and rid.startswith("acme/"))
    assert got(limit=2) == expected(lambda rt, rid: True)[:2]
    with pytest.raises(InvalidInputError):
        store.list_repos(limit=0)
    with pytest.raises(InvalidInputError):
        store.list_repos(repo_type="space")


def test_list_repos_search_matches_the_repo_id_only(store: Store) -> None:
    store.create_repo(REPO)
    for term in ("model", "l/a", "model/acme"):
        assert term not in REPO
        assert store.list_repos(search=term) == [], term


def test_update_repo_private(store: Store) -> None:
    repo = store.create_repo(REPO, private=True)
    assert repo.private is True
    updated = store.update_repo(REPO, private=False)
    assert updated.private is False and store.get_repo(REPO).private is False
    assert updated.updated_at >= repo.updated_at and updated.created_at == repo.created_at
    assert store.update_repo(REPO).private is False  # nothing to change
    assert store.update_repo(REPO, private=True).private is True


def test_delete_repo_keeps_blobs_and_frees_the_name(store: Store) -> None:
    store.create_repo(REPO)
    op = add(store, "w.dat", b"weights")
    store.commit(REPO, [op], title="w", author="a")
    store.delete_repo(REPO)
    assert store.list_repos() == []
    for call in (lambda: store.get_repo(REPO), lambda: store.list_commits(REPO), lambda: store.delete_repo(REPO)):
        with pytest.raises(RepoNotFoundError):
            call()
    assert store.blobs.exists(op.blob_sha256)  # gc's job, not delete_repo's
    store.create_repo(REPO)  # the name is free again, with a fresh history
    assert len(store.list_commits(REPO)) == 1
    assert list(contents(store)) == [".gitattributes"]


# -- commits -----------------------------------------------------------------------------------------


def test_add_replace_delete_files(store: Store) -> None:
    store.create_repo(REPO)
    initial = store.resolve_revision(REPO)

    c1 = store.commit(REPO, [add(store, "config.json", b"{}"), add(store, "sub/w.dat", b"\x00" * 10)],
                      title="  Add files  ", message="body", author="alice")
    assert HEX40.fullmatch(c1.oid) and c1.oid != initial.oid
    assert (c1.parents, c1.generation) == ((initial.oid,), initial.generation + 1)
    assert (c1.title, c1.message, c1.author) == ("Add files", "body", "alice")
    assert store.resolve_revision(REPO).oid == c1.oid
    assert contents(store) == {".gitattributes": GITATTRIBUTES, "config.json": b"{}", "sub/w.dat": b"\x00" * 10}

    c2 = store.commit(REPO, [add(store, "config.json", b'{"a": 1}')], title="Replace", author="bob",
                      parent_commit=c1.oid.upper())  # ids compare case-insensitively
    assert c2.parents == (c1.oid,)
    assert store.read_bytes(REPO, "config.json") == b'{"a": 1}'
    assert store.read_bytes(REPO, "config.json", c1.oid) == b"{}"  # history is immutable

    c3 = store.commit(REPO, [DeleteFile("sub/w.dat")], title="Delete", author="bob")
    assert c3.parents == (c2.oid,)
    assert sorted(contents(store)) == [".gitattributes", "config.json"]
    assert [c.oid for c in store.list_commits(REPO)] == [c3.oid, c2.oid, c1.oid, initial.oid]
    for commit in (c1, c2, c3):
        assert commit == store.get_commit(REPO, commit.oid)
        assert recomputed_oid(commit) == commit.oid
        files = store.list_files(REPO, commit.oid)
        assert commit.tree_id == compute_tree_id({e.path: (e.blob_sha256, e.size) for e in files})


def test_operations_apply_in_order_and_delete_folders(store: Store) -> None:
    store.create_repo(REPO)
    c = store.commit(REPO, [add(store, "a", b"1"), CopyFile("a", "b"), add(store, "a", b"2"), DeleteFile("b"),
                            add(store, "b", b"3"), CopyFile("b", "c")], title="t", author="a")
    assert contents(store, revision=c.oid) == {".gitattributes": GITATTRIBUTES, "a": b"2", "b": b"3", "c": b"3"}
    with pytest.raises(EmptyCommitError):  # add then delete: the tree does not change
        store.commit(REPO, [add(store, "tmp", b"x"), DeleteFile("tmp")], title="t", author="a")
    store.commit(REPO, [add(store, p, p.encode()) for p in ("d/a", "d/e/b", "dx/c", "top")], title="t", author="a")
    store.commit(REPO, [DeleteFolder("d/")], title="rm d", author="a")
    assert sorted(contents(store)) == [".gitattributes", "a", "b", "c", "dx/c", "top"]  # "dx/" is not under "d/"
    store.commit(REPO, [DeleteFolder("dx"), DeleteFile("top")], title="rm dx", author="a")
    assert sorted(contents(store)) == [".gitattributes", "a", "b", "c"]


def test_copy_file_shares_the_blob_and_reads_other_revisions(store: Store) -> None:
    store.create_repo(REPO)
    v1 = store.commit(REPO, [add(store, "a.txt", b"version 1")], title="v1", author="a")
    store.create_tag(REPO, "v1", revision=v1.oid)
    store.commit(REPO, [add(store, "a.txt", b"version 2")], title="v2", author="a")
    store.commit(REPO, [CopyFile("a.txt", "copy/a.txt"),
                        CopyFile("a.txt", "old/a.txt", src_revision="v1"),
                        CopyFile("a.txt", "old/a-by-oid.txt", src_revision=v1.oid[:10])], title="copy", author="a")
    files = contents(store)
    assert files["a.txt"] == files["copy/a.txt"] == b"version 2"
    assert files["old/a.txt"] == files["old/a-by-oid.txt"] == b"version 1"
    entries = {e.path: e for e in store.list_files(REPO)}
    assert entries["copy/a.txt"].blob_sha256 == entries["a.txt"].blob_sha256  # no bytes moved
    assert entries["old/a.txt"] == TreeEntry("old/a.txt", hashlib.sha256(b"version 1").hexdigest(), len(b"version 1"))


def test_identical_trees_are_stored_once(store: Store) -> None:
    store.create_repo("acme/one")
    store.create_repo("acme/two")
    initial = store.resolve_revision("acme/one")
    assert store.resolve_revision("acme/two").tree_id == initial.tree_id  # same .gitattributes tree

    marker = store.commit("acme/one", [], title="marker", author="a", allow_empty=True)
    assert marker.parents == (initial.oid,) and marker.tree_id == initial.tree_id
    store.commit("acme/one", [add(store, "a", b"a")], title="add", author="a")
    reverted = store.commit("acme/one", [DeleteFile("a")], title="revert", author="a")
    assert reverted.tree_id == initial.tree_id and reverted.oid != initial.oid

    ops = [add(store, "config.json", b"{}"), add(store, "w.dat", b"123")]
    one = store.commit("acme/one", ops, title="same", author="a")
    two = store.commit("acme/two", list(reversed(ops)), title="same", author="b")
    assert one.tree_id == two.tree_id and one.oid != two.oid
    assert store.list_files("acme/one") == store.list_files("acme/two")


def test_path_and_folder_cannot_share_a_name(store: Store) -> None:
    store.create_repo(REPO)
    store.commit(REPO, [add(store, "a", b"file"), add(store, "d/x", b"x")], title="t", author="a")
    before = state(store)
    for ops in ([add(store, "a/b", b"1")], [add(store, "d", b"1")], [add(store, "p", b"1"), add(store, "p/q/r", b"2")],
                [CopyFile("a", "d/x/y")]):
        with pytest.raises(InvalidInputError, match="inside"):
            store.commit(REPO, ops, title="clash", author="a")
        assert state(store) == before
    # once the file is gone, the folder may take its name
    store.commit(REPO, [DeleteFile("a"), add(store, "a/b", b"1")], title="file to folder", author="a")
    assert contents(store)["a/b"] == b"1"


def test_commit_of_a_blob_never_stored_is_refused(store: Store) -> None:
    store.create_repo(REPO)
    store.commit(REPO, [add(store, "keep", b"keep")], title="t", author="a")
    before = state(store)
    ghost = b"bytes that were never uploaded"
    sha = hashlib.sha256(ghost).hexdigest()
    with pytest.raises(BlobNotFoundError) as error:
        store.commit(REPO, [add(store, "ok", b"ok"), AddFile("ghost.dat", sha, len(ghost))], title="t", author="a")
    assert error.value.sha256 == sha
    assert state(store) == before
    assert not store.blobs.exists(sha)


# Each case: (kwargs for commit besides repo id and operations, operations builder, expected error).
_FAILING = {
    "delete missing file": ({}, lambda s: [DeleteFile("missing")], EntryNotFoundError),
    "delete missing folder": ({}, lambda s: [DeleteFolder("nope")], EntryNotFoundError),
    "delete folder that is a file": ({}, lambda s: [DeleteFolder("keep.txt")], EntryNotFoundError),
    "copy missing source": ({}, lambda s: [CopyFile("missing", "b")], EntryNotFoundError),
    "copy from missing revision": ({}, lambda s: [CopyFile("keep.txt", "b", src_revision="nope")],
                                   RevisionNotFoundError),
    "later op fails": ({}, lambda s: [add(s, "new.txt", b"new"), DeleteFile("missing")], EntryNotFoundError),
    "path traversal": ({}, lambda s: [add(s, "../escape", b"x")], InvalidPathError),
    "absolute path": ({}, lambda s: [add(s, "/etc/passwd", b"x")], InvalidPathError),
    "backslash": ({}, lambda s: [DeleteFile("a\\b")], InvalidPathError),
    "NUL in path": ({}, lambda s: [add(s, "a\x00b", b"x")], InvalidPathError),
    "bad sha256": ({}, lambda s: [AddFile("a", "XYZ", 1)], InvalidInputError),
    "negative size": ({}, lambda s: [AddFile("a", "0" * 64, -1)], InvalidInputError),
    "not an operation": ({}, lambda s: ["a"], InvalidInputError),
    "empty title": ({"title": "   "}, lambda s: [add(s, "a", b"x")], InvalidInputError),
    "bad author": ({"author": "a\tb"}, lambda s: [add(s, "a", b"x")], InvalidInputError),
    "missing branch": ({"revision": "nope"}, lambda s: [add(s, "a", b"x")], RevisionNotFoundError),
    "tag is not a branch": ({"revision": "v0"}, lambda s: [add(s, "a", b"x")], InvalidInputError),
    "commit id is not a branch": ({"revision": "HEAD_OID"}, lambda s: [add(s, "a", b"x")], InvalidInputError),
    "stale parent": ({"parent_commit": "PARENT_OID"}, lambda s: [add(s, "a", b"x")], ConflictError),
    "no change": ({}, lambda s: [add(s, "keep.txt", b"keep")], EmptyCommitError),
    "no operations": ({}, lambda s: [], InvalidInputError),
    "declared size differs": ({}, lambda s: [AddFile("a", add(s, "a", b"12345").blob_sha256, 6)], IntegrityError),
    "wrong repo type": ({"repo_type": "dataset"}, lambda s: [add(s, "a", b"x")], RepoNotFoundError),
}


def test_a_failing_commit_changes_nothing(store: Store, subtests: pytest.Subtests) -> None:
    store.create_repo(REPO)
    first = store.commit(REPO, [add(store, "keep.txt", b"keep")], title="t", author="a")
    head = store.commit(REPO, [add(store, "more.txt", b"more")], title="t", author="a")
    store.create_tag(REPO, "v0")
    placeholders = {"PARENT_OID": first.oid, "HEAD_OID": head.oid}
    for case, (kwargs, build, error) in sorted(_FAILING.items()):
        with subtests.test(case=case):
            kwargs = {"title": "change", "author": "a", **kwargs}
            kwargs = {k: placeholders.get(v, v) for k, v in kwargs.items()}
            before, refs = state(store), store.list_refs(REPO)
            with pytest.raises(error) as raised:
                store.commit(REPO, build(store), **kwargs)
            assert isinstance(raised.value, FmhubError) and str(raised.value)
            assert state(store) == before
            assert store.list_refs(REPO) == refs


def test_commits_go_to_the_named_branch(store: Store) -> None:
    store.create_repo(REPO)
    main = store.resolve_revision(REPO)
    store.create_branch(REPO, "dev")
    on_dev = store.commit(REPO, [add(store, "dev.txt", b"d")], revision="refs/heads/dev", title="t", author="a")
    assert store.resolve_revision(REPO, "dev") == on_dev
    assert store.resolve_revision(REPO) == main
    assert "dev.txt" not in contents(store)


# -- reading -----------------------------------------------------------------------------------------


def test_list_files_in_a_folder(store: Store) -> None:
    store.create_repo(REPO)
    paths = ["data/train/0.csv", "data/train/1.csv", "data/test.csv", "data2/x", "README.md"]
    store.commit(REPO, [add(store, p, p.encode()) for p in paths], title="t", author="a")
    everything = store.list_files(REPO)
    assert [e.path for e in everything] == sorted(paths + [".gitattributes"])
    assert store.list_files(REPO, folder="/") == everything
    for folder in ("data", "data/", "data/train"):
        prefix = folder.rstrip("/") + "/"
        assert [e.path for e in store.list_files(REPO, folder=folder)] == sorted(p for p in paths
                                                                                  if p.startswith(prefix))
    for entry in store.list_files(REPO, folder="data"):
        assert (entry.size, entry.blob_sha256) == (len(entry.path), hashlib.sha256(entry.path.encode()).hexdigest())
    with pytest.raises(EntryNotFoundError):
        store.list_files(REPO, folder="nope")
    with pytest.raises(EntryNotFoundError):
        store.list_files(REPO, folder="README.md")  # a file is not a folder
    with pytest.raises(InvalidPathError):
        store.list_files(REPO, folder="../data")


def test_get_entry_and_read_bytes(store: Store) -> None:
    store.create_repo(REPO)
    c1 = store.commit(REPO, [add(store, "a/b.txt", b"one")], title="t", author="a")
    c2 = store.commit(REPO, [add(store, "a/b.txt", b"two!")], title="t", author="a")
    commit, entry = store.get_entry(REPO, "a/b.txt")
    assert commit == c2 and (entry.path, entry.size) == ("a/b.txt", 4)
    assert entry.blob_sha256 == hashlib.sha256(b"two!").hexdigest()
    assert b"".join(store.iter_file(entry, 1, 3)) == b"wo"
    old_commit, old_entry = store.get_entry(REPO, "a/b.txt", c1.oid)
    assert old_commit == c1 and old_entry.size == 3
    assert store.read_bytes(REPO, "a/b.txt", c1.oid[:7]) == b"one"
    for path in ("a", "a/b", "missing.txt"):
        with pytest.raises(EntryNotFoundError) as error:
            store.get_entry(REPO, path)
        assert isinstance(error.value, LookupError) and error.value.path == path
    with pytest.raises(InvalidPathError):
        store.read_bytes(REPO, "../a/b.txt")

    nfd = unicodedata.normalize("NFD", "résumé/café.txt")
    nfc = unicodedata.normalize("NFC", nfd)
    assert nfd != nfc
    store.commit(REPO, [add(store, nfd, b"x")], title="t", author="a")
    assert nfc in contents(store)  # stored in NFC, found from either form
    assert store.get_entry(REPO, nfd)[1].path == nfc
    assert [e.path for e in store.list_files(REPO, folder=unicodedata.normalize("NFD", "résumé"))] == [nfc]


def test_list_commits_is_newest_first_along_first_parents(store: Store) -> None:
    store.create_repo(REPO)
    landed = [store.resolve_revision(REPO)]
    for i in range(5):
        landed.append(store.commit(REPO, [add(store, f"f{i}", str(i).encode())], title=f"c{i}", author="a"))
    history = store.list_commits(REPO)
    assert history == list(reversed(landed))
    for newer, older in zip(history, history[1:], strict=False):
        assert newer.parents == (older.oid,)
        assert newer.generation == older.generation + 1
        assert newer.created_at >= older.created_at
    assert store.list_commits(REPO, limit=2) == history[:2]
    assert store.list_commits(REPO, landed[2].oid) == history[3:]
    with pytest.raises(RevisionNotFoundError):
        store.list_commits(REPO, "nope")


def test_commit_ids_recompute_when_the_postgresql_session_is_not_utc(pg_url: str, tmp_path) -> None:
    url = make_url(pg_url)
    options = url.query["options"] + " -ctimezone=Asia/Kolkata"
    url = url.update_query_dict({"options": options}).render_as_string(hide_password=False)
    Database(url).upgrade()
    with open_store(url, (tmp_path / "blobs").as_uri()) as store:
        store.create_repo(REPO)
        commit = store.commit(REPO, [add(store, "a", b"a")], title="t", author="a")
        for stored in store.list_commits(REPO):
            assert recomputed_oid(stored) == stored.oid
        assert store.get_commit(REPO, commit.oid).created_at == commit.created_at
        assert commit.created_at.utcoffset().total_seconds() == 0
