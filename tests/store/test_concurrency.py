"""Concurrent writers: optimistic concurrency in one process, and 8 OS processes racing on one branch.

Every attempt must either land or raise ConflictError — never a lost update, a lock error or a
forked history — on SQLite (one writer at a time, ``BEGIN IMMEDIATE``) and PostgreSQL (row locks +
compare-and-swap on the ref).
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import threading
import traceback
from collections.abc import Iterator
from pathlib import Path

import pytest

import fmhub.errors as errors
from fmhub.constants import Settings
from fmhub.errors import ConflictError
from fmhub.store import AddFile, Database, Store, open_store

REPO = "acme/race"
WRITERS = 8
COMMITS_PER_WRITER = 3
_barrier = None  # set in each pool worker by _init_worker


# -- (a) two writers, one process ----------------------------------------------------------------------


def test_second_writer_on_a_stale_head_gets_a_conflict(store: Store, backend_urls: Settings) -> None:
    store.create_repo(REPO)
    with open_store(config=backend_urls) as other:
        head = store.resolve_revision(REPO).oid
        assert other.resolve_revision(REPO).oid == head
        a = store.put_bytes(b"from writer A")
        b = other.put_bytes(b"from writer B")

        landed = store.commit(REPO, [AddFile("a.txt", a.sha256, a.size)], title="A", author="a", parent_commit=head)
        assert landed.parents == (head,)
        with pytest.raises(ConflictError) as error:
            other.commit(REPO, [AddFile("b.txt", b.sha256, b.size)], title="B", author="b", parent_commit=head)
        assert (error.value.expected, error.value.actual) == (head, landed.oid)

        for reader in (store, other):
            assert reader.resolve_revision(REPO) == landed
            assert [c.oid for c in reader.list_commits(REPO)] == [landed.oid, head]
            assert "b.txt" not in {e.path for e in reader.list_files(REPO)}
        # B retries on the new head and lands on top of A
        again = other.commit(REPO, [AddFile("b.txt", b.sha256, b.size)], title="B", author="b",
                             parent_commit=landed.oid)
        assert again.parents == (landed.oid,)
        assert {"a.txt", "b.txt"} <= {e.path for e in store.list_files(REPO)}


def test_threads_without_parent_commit_never_lose_an_update(local_store: Store) -> None:
    """Without parent_commit a commit applies to whatever head it finds: all of them land."""
    local_store.create_repo(REPO)
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            for i in range(2):
                blob = local_store.put_bytes(f"{n}-{i}".encode())
                local_store.commit(REPO, [AddFile(f"t{n}/{i}", blob.sha256, blob.size)], title="t", author="a")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    paths = {e.path for e in local_store.list_files(REPO)}
    assert {f"t{n}/{i}" for n in range(4) for i in range(2)} <= paths
    assert len(local_store.list_commits(REPO)) == 1 + 4 * 2


# -- (b) 8 processes -----------------------------------------------------------------------------------


def _init_worker(barrier) -> None:
    global _barrier
    _barrier = barrier


def _write(config: Settings, writer: int, retry: bool) -> tuple[int, list[tuple[str, str]], int]:
    """One child: commit COMMITS_PER_WRITER files, each on the head it just read.

    Returns (pid, [(path, landed oid)], conflicts). Any error other than ConflictError fails the test:
    it is re-raised as a RuntimeError carrying the child's traceback, because most fmhub errors do not
    survive pickling yet (see test_errors_survive_pickling) and would hang Pool's result thread.
    """
    try:
        return _commit_files(config, writer, retry)
    except BaseException as exc:  # noqa: BLE001 - shipped to the parent as text
        raise RuntimeError(f"writer {writer}: {exc!r}\n{traceback.format_exc()}") from None


def _commit_files(config: Settings, writer: int, retry: bool) -> tuple[int, list[tuple[str, str]], int]:
    _barrier.wait(timeout=60)  # all children start committing together
    landed: list[tuple[str, str]] = []
    conflicts = 0
    with open_store(config=config) as store:
        for i in range(COMMITS_PER_WRITER):
            path = f"w{writer}/f{i}.txt"
            blob = store.put_bytes(f"writer {writer} file {i}".encode())
            while True:
                head = store.resolve_revision(REPO).oid
                try:
                    commit = store.commit(REPO, [AddFile(path, blob.sha256, blob.size)], title=path,
                                          author=f"writer-{writer}", parent_commit=head)
                except ConflictError:
                    conflicts += 1
                    if retry:
                        continue
                    break
                assert commit.parents == (head,)
                landed.append((path, commit.oid))
                break
    return os.getpid(), landed, conflicts


@pytest.fixture(scope="module")
def pool() -> Iterator:
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(WRITERS)
    with context.Pool(WRITERS, initializer=_init_worker, initargs=(barrier,)) as workers:
        yield workers


@pytest.fixture(params=["sqlite", "postgresql"])
def race_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    db_url = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")
    db = Database(db_url)
    db.upgrade()
    db.dispose()
    config = Settings(home=tmp_path / "home", db_url=db_url, blob_url=(tmp_path / "blobs").as_uri())
    with open_store(config=config) as store:
        store.create_repo(REPO)
    return config


def _race(pool, config: Settings, retry: bool) -> list[tuple[int, list[tuple[str, str]], int]]:
    jobs = pool.starmap_async(_write, [(config, n, retry) for n in range(WRITERS)], chunksize=1)
    results = jobs.get(timeout=120)
    assert len({pid for pid, _, _ in results}) == WRITERS  # 8 distinct OS processes
    return results


def _check_linear_history(store: Store, landed: dict[str, str]) -> None:
    """The branch history is the initial commit plus exactly the landed commits, in one line."""
    history = store.list_commits(REPO)
    assert len(history) == 1 + len(landed)
    assert {c.oid for c in history[:-1]} == set(landed.values())
    assert history[-1].parents == () and history[-1].title == "initial commit"
    for newer, older in zip(history, history[1:], strict=False):
        assert newer.parents == (older.oid,)
        assert newer.generation == older.generation + 1
        # each landed commit read its parent as the head, so its clock reading came after the parent's
        assert newer.created_at >= older.created_at
    by_oid = {c.oid: c for c in history}
    for path, oid in landed.items():
        assert by_oid[oid].title == path
    files = {e.path for e in store.list_files(REPO)}
    assert files == {".gitattributes", *landed}  # the lost attempts left nothing behind
    for path in landed:
        writer, i = path.removeprefix("w").removesuffix(".txt").split("/f")
        assert store.read_bytes(REPO, path) == f"writer {writer} file {i}".encode()


def test_racing_processes_either_land_or_conflict(pool, race_settings: Settings) -> None:
    results = _race(pool, race_settings, retry=False)
    landed = {path: oid for _, commits, _ in results for path, oid in commits}
    for _, commits, conflicts in results:
        assert len(commits) + conflicts == COMMITS_PER_WRITER  # every attempt is accounted for
    assert len(landed) >= 1
    with open_store(config=race_settings) as store:
        _check_linear_history(store, landed)


def test_racing_processes_that_retry_all_land(pool, race_settings: Settings) -> None:
    results = _race(pool, race_settings, retry=True)
    landed = {path: oid for _, commits, _ in results for path, oid in commits}
    assert set(landed) == {f"w{n}/f{i}.txt" for n in range(WRITERS) for i in range(COMMITS_PER_WRITER)}
    with open_store(config=race_settings) as store:
        _check_linear_history(store, landed)


# -- errors crossing process boundaries ----------------------------------------------------------------


def _sample_errors() -> list[errors.FmhubError]:
    return [
        errors.FmhubError("m", hint="h"), errors.InvalidInputError("m"), errors.InvalidPathError("../x", "r"),
        errors.InvalidRepoIdError("x", "r"), errors.InvalidRevisionNameError("x", "r"),
        errors.RepoNotFoundError("model", "a/b"), errors.RepoExistsError("model", "a/b"),
        errors.RevisionNotFoundError("a/b", "v"), errors.AmbiguousRevisionError("a/b", "abcdef1", ["x", "y"]),
        errors.EntryNotFoundError("a/b", "main", "p"), errors.ConflictError("m", expected="1", actual="2"),
        errors.DiscussionNotFoundError("a/b", 3), errors.MergeConflictError("m", paths=["x"]),
        errors.RefExistsError("tag", "v1"), errors.ProtectedRefError("m"), errors.EmptyCommitError("a/b", "main"),
        errors.BlobNotFoundError("0" * 64), errors.IntegrityError("m", expected="a"), errors.ConfigError("m"),
        errors.StorageUnavailableError("m"), errors.SchemaOutOfDateError(None, "0001"),
        errors.UnsafeFileError("w.bin"), errors.InvalidWeightsError("w.safetensors", "short"),
        errors.AuthenticationError("m"), errors.PermissionDeniedError("m"), errors.AccountNotFoundError("user", "x"),
        errors.AccountExistsError("x"), errors.PayloadTooLargeError("m"), errors.RunNotFoundError("r-abcd"),
        errors.ParityError("export", 0.5, 0.9, 1e-3), errors.InputTooLongError(600, 512),
        errors.OverloadedError(256, 256), errors.RequestTimeoutError("m"), errors.EndpointNotServedError("m"),
        errors.AmbiguousRunError("r-ab12", ["r-ab1200000000", "r-ab1211111111"]),
        errors.PipelineStepNotFoundError("5" * 64), errors.RangeNotSatisfiableError(10),
        errors.XetObjectError("m"), errors.XetFileNotFoundError("0" * 64),
        errors.TamperedBlobError("6" * 64, 3), errors.EncryptionKeyError("no key", hint="set it"),
        errors.RevokedKeyError("revoked on 2026-12-06", hint="restore the key file from a backup"),
        errors.SignatureError("m", reason="changed", item="model.safetensors"),
        errors.SigningKeyNotFoundError("acme", "ab" * 32),
    ]


def test_every_error_class_is_sampled() -> None:
    """A new error class must join the sample, so its pickling is checked too."""
    sampled = {type(e) for e in _sample_errors()}
    declared = {obj for obj in map(errors.__dict__.get, errors.__all__)
                if isinstance(obj, type) and issubclass(obj, errors.FmhubError)}
    assert sampled == declared


def test_errors_survive_pickling() -> None:
    broken = []
    for error in _sample_errors():
        try:
            copy = pickle.loads(pickle.dumps(error))
        except TypeError:
            broken.append(type(error).__name__)
            continue
        assert type(copy) is type(error) and str(copy) == str(error) and copy.__dict__ == error.__dict__
    assert broken == []
