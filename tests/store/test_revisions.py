"""Revisions: how names resolve to commits, and the rules for branches and tags."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

import fmhub.store.store as store_module
from fmhub.errors import (
    AmbiguousRevisionError,
    InvalidInputError,
    InvalidRevisionNameError,
    ProtectedRefError,
    RefExistsError,
    RevisionNotFoundError,
)
from fmhub.store import DEFAULT_BRANCH, AddFile, Store
from fmhub.store.objects import Commit, compute_commit_id, compute_tree_id

REPO = "acme/bert"


def add(store: Store, path: str, data: bytes) -> AddFile:
    blob = store.put_bytes(data)
    return AddFile(path, blob.sha256, blob.size)


@pytest.fixture
def history(store: Store) -> list[Commit]:
    """A repo with three commits on main (oldest first)."""
    store.create_repo(REPO)
    commits = [store.resolve_revision(REPO)]
    for i in range(2):
        commits.append(store.commit(REPO, [add(store, f"f{i}.txt", str(i).encode())], title=f"c{i}", author="a"))
    return commits


# -- resolving ---------------------------------------------------------------------------------------


def test_resolve_branches_and_tags(store: Store, history: list[Commit]) -> None:
    initial, first, head = history
    store.create_branch(REPO, "dev", revision=first.oid)
    store.create_tag(REPO, "v0", revision=initial.oid)

    assert store.resolve_revision(REPO) == head  # the default branch
    assert store.resolve_revision(REPO, DEFAULT_BRANCH) == head
    assert store.resolve_revision(REPO, "refs/heads/main") == head
    assert store.resolve_revision(REPO, "dev") == first
    assert store.resolve_revision(REPO, "refs/heads/dev") == first
    assert store.resolve_revision(REPO, "v0") == initial
    assert store.resolve_revision(REPO, "refs/tags/v0") == initial
    # refs/heads/ and refs/tags/ restrict the lookup to one kind
    for revision in ("refs/heads/v0", "refs/tags/main", "refs/heads/" + initial.oid, "refs/tags/nope", "nope", ""):
        with pytest.raises(RevisionNotFoundError) as error:
            store.resolve_revision(REPO, revision)
        assert error.value.revision == revision and error.value.repo_id == REPO
        assert isinstance(error.value, LookupError)


def test_resolve_commit_ids_and_prefixes(store: Store, history: list[Commit]) -> None:
    for commit in history:
        assert store.get_commit(REPO, commit.oid) == commit
        for length in (7, 8, 12, 39, 40):
            assert store.resolve_revision(REPO, commit.oid[:length]) == commit
            assert store.resolve_revision(REPO, commit.oid[:length].upper()) == commit

    oids = [c.oid for c in history]
    unknown = next(p for p in (f"{i:07x}" for i in range(16**7)) if not any(o.startswith(p) for o in oids))
    # fewer than 7 hex digits is not a prefix; unknown ids and non-hex are nothing
    for revision in [oids[-1][:n] for n in range(1, 7)] + [unknown, unknown + "0" * 33, "g" * 7]:
        with pytest.raises(RevisionNotFoundError) as error:
            store.resolve_revision(REPO, revision)
        assert not isinstance(error.value, AmbiguousRevisionError)

    # a ref name wins over a commit prefix (as in git)
    initial, _, head = history
    store.create_branch(REPO, head.oid[:7], revision=initial.oid)
    assert store.resolve_revision(REPO, head.oid[:7]) == initial
    assert store.resolve_revision(REPO, head.oid[:8]) == head

    # commit ids are per repo
    store.create_repo("acme/other")
    with pytest.raises(RevisionNotFoundError):
        store.resolve_revision("acme/other", head.oid)


def test_ambiguous_prefix_names_every_match(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two sibling commits whose ids share 7 hex digits, found by a birthday search over titles.

    Commit ids are a pure function of (tree, parents, author, time, message), so with the clock fixed
    the ids of candidate commits can be computed before they are made.
    """
    store.create_repo(REPO)
    base = store.resolve_revision(REPO)
    op = add(store, "same.txt", b"same")
    tree = {e.path: (e.blob_sha256, e.size) for e in store.list_files(REPO)} | {op.path: (op.blob_sha256, op.size)}
    tree_id = compute_tree_id(tree)
    now = datetime(2030, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    monkeypatch.setattr(store_module, "_now", lambda: now)

    seen: dict[str, str] = {}
    for i in range(1_000_000):
        title = f"try {i}"
        oid = compute_commit_id(tree_id, [base.oid], "a", title, "", now)
        if oid[:7] in seen:
            pair = (seen[oid[:7]], title)
            break
        seen[oid[:7]] = title
    else:  # pragma: no cover - ~1e-300 likely
        pytest.fail("no 7-hex collision found")

    made = []
    for n, title in enumerate(pair):
        store.create_branch(REPO, f"b{n}", revision=base.oid)
        made.append(store.commit(REPO, [op], revision=f"b{n}", title=title, author="a", parent_commit=base.oid))
    expected = [compute_commit_id(tree_id, [base.oid], "a", title, "", now) for title in pair]
    assert [c.oid for c in made] == expected
    assert made[0].tree_id == made[1].tree_id == tree_id

    prefix = expected[0][:7]
    assert expected[1][:7] == prefix and expected[0] != expected[1]
    with pytest.raises(AmbiguousRevisionError) as error:
        store.resolve_revision(REPO, prefix)
    assert isinstance(error.value, RevisionNotFoundError)
    assert sorted(error.value.matches) == sorted(expected)
    assert prefix in str(error.value)
    # one more distinguishing digit makes each unique again
    k = next(i for i in range(40) if expected[0][i] != expected[1][i])
    for commit in made:
        assert store.resolve_revision(REPO, commit.oid[:k + 1]) == commit


# -- branches ----------------------------------------------------------------------------------------


def test_create_branch_from_any_revision(store: Store, history: list[Commit]) -> None:
    initial, first, head = history
    store.create_tag(REPO, "v1", revision=first.oid)
    cases = {"from-default": (None, head), "from-main": ("main", head), "from-tag": ("v1", first),
             "from-refs-tag": ("refs/tags/v1", first), "from-oid": (initial.oid, initial),
             "from-prefix": (first.oid[:9], first), "from-branch": ("from-tag", first)}
    for name, (revision, target) in cases.items():
        ref = store.create_branch(REPO, name, revision=revision)
        assert (ref.kind, ref.name, ref.commit_oid) == ("branch", name, target.oid)
        assert store.resolve_revision(REPO, name) == target
    with pytest.raises(RevisionNotFoundError):
        store.create_branch(REPO, "dev", revision="nope")
    branches = {b.name: b.commit_oid for b in store.list_refs(REPO).branches}
    assert branches == {"main": head.oid} | {n: t.oid for n, (_, t) in cases.items()}


def test_existing_names_are_refused_unless_identical(store: Store, history: list[Commit]) -> None:
    initial, _, head = history
    first = store.create_branch(REPO, "dev", revision=initial.oid)
    assert store.create_branch(REPO, "dev", revision=initial.oid, exist_ok=True) == first
    with pytest.raises(RefExistsError) as error:
        store.create_branch(REPO, "dev", revision=initial.oid)
    assert (error.value.kind, error.value.name) == ("branch", "dev")
    with pytest.raises(RefExistsError):
        store.create_branch(REPO, "dev", revision=head.oid, exist_ok=True)  # would move it
    assert store.resolve_revision(REPO, "dev") == initial

    # a name may be a branch and a tag at once (as in git and on the Hub): the branch answers the bare name,
    # refs/tags/NAME the tag
    store.create_tag(REPO, "release", revision=initial.oid)
    store.create_branch(REPO, "release", revision=head.oid)
    assert store.resolve_revision(REPO, "release") == head
    assert store.resolve_revision(REPO, "refs/tags/release") == initial
    assert store.resolve_revision(REPO, "refs/heads/release") == head
    with pytest.raises(RefExistsError) as error:
        store.create_tag(REPO, "release", revision=initial.oid)
    assert error.value.kind == "tag"
    refs = store.list_refs(REPO)
    assert ([b.name for b in refs.branches], [t.name for t in refs.tags]) == (["dev", "main", "release"],
                                                                             ["release"])


def test_delete_branch(store: Store, history: list[Commit]) -> None:
    initial, first, head = history
    store.create_branch(REPO, "dev", revision=first.oid)
    store.create_tag(REPO, "v1")
    store.delete_branch(REPO, "dev")
    with pytest.raises(RevisionNotFoundError):
        store.resolve_revision(REPO, "dev")
    assert store.resolve_revision(REPO, first.oid) == first  # its commits stay reachable by id
    with pytest.raises(RevisionNotFoundError):
        store.delete_branch(REPO, "dev")
    with pytest.raises(RevisionNotFoundError):
        store.delete_branch(REPO, "v1")  # a tag is not a branch
    assert [t.name for t in store.list_refs(REPO).tags] == ["v1"]
    with pytest.raises(ProtectedRefError) as error:
        store.delete_branch(REPO, DEFAULT_BRANCH)
    assert DEFAULT_BRANCH in str(error.value)
    assert store.resolve_revision(REPO) == head


def test_ref_names_are_validated(store: Store, history: list[Commit], subtests: pytest.Subtests) -> None:
    for name in ["", "-dev", "a..b", "a b", "refs/heads/x", "x/", "x.lock", "a//b", "~x", "0" * 40]:
        with subtests.test(name=name):
            with pytest.raises(InvalidRevisionNameError) as error:
                store.create_branch(REPO, name)
            assert isinstance(error.value, ValueError)
            with pytest.raises(InvalidRevisionNameError):
                store.create_tag(REPO, name)
            refs = store.list_refs(REPO)
            assert ([b.name for b in refs.branches], refs.tags) == (["main"], [])


# -- tags --------------------------------------------------------------------------------------------


def test_tags_are_immutable(store: Store, history: list[Commit]) -> None:
    initial, first, _ = history
    tag = store.create_tag(REPO, "v1", revision=first.oid, message="first release")
    assert (tag.kind, tag.name, tag.commit_oid, tag.message) == ("tag", "v1", first.oid, "first release")
    assert store.list_refs(REPO).tags == [tag]
    assert store.create_tag(REPO, "v1", revision=first.oid, exist_ok=True) == tag
    for kwargs in ({}, {"exist_ok": True}):
        with pytest.raises(RefExistsError) as error:
            store.create_tag(REPO, "v1", revision=initial.oid, **kwargs)
        assert error.value.kind == "tag" and "immutable" in str(error.value)
    store.commit(REPO, [add(store, "later.txt", b"later")], title="later", author="a")
    assert store.resolve_revision(REPO, "v1") == first  # a tag does not follow the branch


def test_delete_tag(store: Store, history: list[Commit]) -> None:
    initial, first, _ = history
    store.create_tag(REPO, "v1", revision=first.oid)
    store.delete_tag(REPO, "v1")
    with pytest.raises(RevisionNotFoundError):
        store.resolve_revision(REPO, "v1")
    with pytest.raises(RevisionNotFoundError):
        store.delete_tag(REPO, "v1")
    with pytest.raises(RevisionNotFoundError):
        store.delete_tag(REPO, "main")  # a branch is not a tag
    assert store.create_tag(REPO, "v1", revision=initial.oid).commit_oid == initial.oid  # the name is free again
    # commits go to branches, never to tags
    for revision in ("v1", "refs/tags/v1"):
        with pytest.raises(InvalidInputError, match="not a branch"):
            store.commit(REPO, [add(store, "x", b"x")], revision=revision, title="t", author="a")
    assert store.resolve_revision(REPO, "v1") == initial
