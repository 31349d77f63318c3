"""The Hub client behaves the same embedded (LocalHub) and over HTTP to a live server (RemoteHub).

Each behaviour test runs twice: on the store in-process, and through a real uvicorn server with alice's
write token. Remote-only tests cover what HTTP adds: visibility, tokens, LFS traffic, ``fmhub --endpoint``.
"""

from __future__ import annotations

import hashlib
import os
import pickle
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from fmhub.cli import main
from fmhub.client import Hub, LocalHub, RemoteHub, UploadFile
from fmhub.errors import (
    AuthenticationError,
    ConflictError,
    EmptyCommitError,
    EntryNotFoundError,
    PermissionDeniedError,
    ProtectedRefError,
    RefExistsError,
    RepoExistsError,
    RepoNotFoundError,
    RevisionNotFoundError,
    UnsafeFileError,
)
from fmhub.store import DeleteFile, Store
from fmhub.store.transfer import snapshot_folder

#: A pickle that imports something, as every torch.save output does (found by content, whatever its name).
PICKLE = pickle.dumps(OrderedDict(w=[1.0]), protocol=4)

BIG = 10 * 1024 * 1024 + 4321  # over the hub's LFS threshold (10 MB)


class Recorder(httpx.BaseTransport):
    """A real network transport that remembers each request's method and path (to assert on the traffic)."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.requests: list[tuple[str, str]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append((request.method, request.url.path))
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "model"
    (root / "onnx").mkdir(parents=True)
    (root / "config.json").write_text('{"hidden_size": 32}')
    (root / "onnx" / "model.onnx").write_bytes(os.urandom(3000))
    return root


def _add_weights(folder: Path) -> None:
    """A file over the LFS threshold (``.dat``: the hub refuses pickle suffixes and validates safetensors)."""
    (folder / "weights.dat").write_bytes(os.urandom(BIG))


@pytest.fixture(params=["local", "remote"])
def client(request: pytest.FixtureRequest, local_store: Store, tokens) -> Iterator[Hub]:
    """alice's view of the hub: the store in-process, or the same store behind a live server."""
    if request.param == "local":
        with LocalHub(local_store, author="alice") as hub:
            yield hub
    else:
        with RemoteHub(request.getfixturevalue("hub_url"), token=tokens.alice) as hub:
            yield hub


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_upload_list_refs_download_delete(client: Hub, folder: Path, tmp_path: Path) -> None:
    _add_weights(folder)
    created: list[str] = []
    first = client.upload(folder, "alice/tiny", title="Add model", notify=created.append)
    assert created == ["created model alice/tiny"]
    assert first.title == "Add model" and first.author == "alice" and len(first.parents) == 1

    files = {e.path: e for e in client.list_files("alice/tiny")}
    assert set(files) == {".gitattributes", "config.json", "onnx/model.onnx", "weights.dat"}
    assert files["weights.dat"].size == BIG
    assert files["weights.dat"].blob_sha256 == hashlib.sha256((folder / "weights.dat").read_bytes()).hexdigest()
    assert [e.path for e in client.list_files("alice/tiny", folder="onnx")] == ["onnx/model.onnx"]

    info = client.repo_info("alice/tiny")
    assert info.repo.repo_id == "alice/tiny" and info.repo.default_branch == "main" and not info.repo.private
    assert info.commit.oid == first.oid and info.commit.tree_id == first.tree_id
    assert info.size == sum(e.size for e in files.values())

    client.create_tag("alice/tiny", "v1", message="first")
    client.create_branch("alice/tiny", "exp", revision="v1")
    assert client.create_branch("alice/tiny", "exp", revision="v1", exist_ok=True).commit_oid == first.oid
    (folder / "config.json").write_text('{"hidden_size": 64}')
    client.upload(folder / "config.json", "alice/tiny", title="Grow", revision="exp")
    refs = client.list_refs("alice/tiny")
    assert [r.name for r in refs.branches] == ["exp", "main"] and [r.name for r in refs.tags] == ["v1"]
    assert refs.tags[0].commit_oid == first.oid
    log = client.list_commits("alice/tiny", "exp")
    assert [c.title for c in log] == ["Grow", "Add model", "initial commit"]
    assert [c.generation for c in log] == [3, 2, 1]
    assert [c.title for c in client.list_commits("alice/tiny", "refs/heads/exp", limit=1)] == ["Grow"]

    out = client.download("alice/tiny", revision="v1", local_dir=tmp_path / "v1", exclude=".git*")
    (folder / "config.json").write_text('{"hidden_size": 32}')
    assert _tree(out) == _tree(folder)
    cached = client.download("alice/tiny", revision="exp", include="*.json", cache_dir=tmp_path / "cache")
    assert cached == snapshot_folder(tmp_path / "cache", "alice/tiny", "model", log[0].oid)
    assert _tree(cached) == {"config.json": b'{"hidden_size": 64}'}
    assert client.read_bytes("alice/tiny", "config.json", "exp") == b'{"hidden_size": 64}'

    removed = client.commit("alice/tiny", [DeleteFile("weights.dat")], title="Drop weights", parent_commit=first.oid)
    assert removed.parents == (first.oid,)
    assert "weights.dat" not in {e.path for e in client.list_files("alice/tiny")}
    client.delete_branch("alice/tiny", "exp")
    client.delete_tag("alice/tiny", "v1")
    assert client.list_refs("alice/tiny").tags == []
    client.delete_repo("alice/tiny")
    with pytest.raises(RepoNotFoundError):
        client.get_repo("alice/tiny")


def test_reupload_is_no_change_and_new_branches_leave_main(client: Hub, folder: Path) -> None:
    client.upload(folder, "alice/again")
    with pytest.raises(EmptyCommitError):
        client.upload(folder, "alice/again")
    notes: list[str] = []
    client.upload(folder / "config.json", "alice/again", "cfg/base.json", revision="dev", notify=notes.append)
    assert notes == ["created branch dev"]
    assert "cfg/base.json" in {e.path for e in client.list_files("alice/again", "dev")}
    assert "cfg/base.json" not in {e.path for e in client.list_files("alice/again")}
    assert [e.path for e in client.list_files("alice/again", "dev", folder="cfg")] == ["cfg/base.json"]


def test_datasets_unusual_names_and_empty_files(client: Hub, tmp_path: Path) -> None:
    names = {"train split/part #1.csv": b"a,b\n1,2\n", "ünï/çødé%20.txt": "naïve".encode(), "empty.txt": b""}
    client.create_repo("acme/data", repo_type="dataset")
    client.commit("acme/data", [UploadFile(path, data) for path, data in names.items()], repo_type="dataset",
                  title="Add")
    client.create_branch("acme/data", "feature/x", repo_type="dataset")
    assert client.read_bytes("acme/data", "ünï/çødé%20.txt", "refs/heads/feature/x", repo_type="dataset") == \
        "naïve".encode()
    folder = client.download("acme/data", repo_type="dataset", revision="feature/x", local_dir=tmp_path / "d",
                             exclude=".git*")
    assert _tree(folder) == names
    with pytest.raises(RepoNotFoundError):
        client.list_files("acme/data")  # a model repo of that name does not exist
    assert [r.repo_id for r in client.list_repos(repo_type="dataset")] == ["acme/data"]


def test_commit_operations_and_conflicts(client: Hub) -> None:
    client.create_repo("acme/ops", private=True)
    first = client.commit("acme/ops", [UploadFile("a.txt", b"one"), UploadFile("b/c.txt", b"two")], title="Add")
    second = client.commit("acme/ops", [UploadFile("a.txt", b"three")], title="Change", parent_commit=first.oid)
    with pytest.raises(ConflictError):
        client.commit("acme/ops", [UploadFile("x.txt", b"late")], title="Late", parent_commit=first.oid)
    assert client.read_bytes("acme/ops", "a.txt") == b"three"
    assert client.read_bytes("acme/ops", "a.txt", first.oid[:8]) == b"one"
    assert client.list_commits("acme/ops")[0].oid == second.oid
    assert client.update_repo("acme/ops", private=False).private is False


ERRORS = [
    (lambda h: h.get_repo("alice/missing"), RepoNotFoundError, "alice/missing"),
    (lambda h: h.list_files("alice/errs", "nope"), RevisionNotFoundError, "nope"),
    (lambda h: h.read_bytes("alice/errs", "missing.txt"), EntryNotFoundError, "missing.txt"),
    (lambda h: h.list_files("alice/errs", folder="nowhere"), EntryNotFoundError, "nowhere"),
    (lambda h: h.download("alice/errs", ["nothing.json"]), EntryNotFoundError, "nothing.json"),
    (lambda h: h.create_repo("alice/errs"), RepoExistsError, "already exists"),
    (lambda h: h.create_tag("alice/errs", "v1"), RefExistsError, "v1"),
    (lambda h: h.delete_branch("alice/errs", "main"), ProtectedRefError, "default branch"),
    (lambda h: h.commit("alice/errs", [UploadFile("pytorch_model.bin", PICKLE)], title="pickle"),
     UnsafeFileError, "pickle"),
]


def test_errors_are_the_stores_classes(client: Hub, subtests: pytest.Subtests) -> None:
    client.create_repo("alice/errs")
    client.create_tag("alice/errs", "v1")
    for number, (call, error, needle) in enumerate(ERRORS):
        with subtests.test(case=number, error=error.__name__), pytest.raises(error) as raised:
            call(client)
        if raised.value is not None:
            assert needle in raised.value.message


# -- remote only -----------------------------------------------------------------------------------


def test_remote_upload_sends_each_file_once_through_lfs(hub_url: str, tokens, folder: Path,
                                                        local_store: Store) -> None:
    _add_weights(folder)
    recorder = Recorder()
    with RemoteHub(hub_url, token=tokens.alice, transport=recorder) as hub:
        hub.upload(folder, "alice/lfs")
        puts = [path for method, path in recorder.requests if method == "PUT"]
        assert len(puts) == 3 and all(path.startswith("/api/lfs/upload/") for path in puts)
        assert all(local_store.has_upload("alice/lfs", e.blob_sha256) for e in hub.list_files("alice/lfs")
                   if e.path != ".gitattributes")
        recorder.requests.clear()
        (folder / "config.json").write_text('{"hidden_size": 65}')
        hub.upload(folder, "alice/lfs", title="Only the config changed")
        changed = hashlib.sha256((folder / "config.json").read_bytes()).hexdigest()
        assert [path for method, path in recorder.requests if method == "PUT"] == \
            [f"/api/lfs/upload/model/alice/lfs/{changed}"]
        recorder.requests.clear()
        with pytest.raises(EmptyCommitError):
            hub.upload(folder, "alice/lfs")
        assert {method for method, _ in recorder.requests} == {"GET"}  # nothing written, nothing sent


def test_private_repos_and_tokens(hub_url: str, tokens) -> None:
    with RemoteHub(hub_url, token=tokens.alice) as alice:
        alice.create_repo("acme/secret", private=True)
        alice.commit("acme/secret", [UploadFile("w.txt", b"s3cr3t")], title="Add")
    with RemoteHub(hub_url) as anonymous:
        with pytest.raises(RepoNotFoundError):
            anonymous.list_files("acme/secret")
        assert "acme/secret" not in [r.repo_id for r in anonymous.list_repos()]
        with pytest.raises(AuthenticationError) as unauthenticated:
            anonymous.create_repo("alice/anon")
        assert "FMHUB_TOKEN" in unauthenticated.value.hint
    with RemoteHub(hub_url, token=tokens.bob) as bob:  # acme member with the read role
        assert bob.read_bytes("acme/secret", "w.txt") == b"s3cr3t"
        with pytest.raises(PermissionDeniedError):
            bob.commit("acme/secret", [UploadFile("x.txt", b"x")], title="Nope")
    with RemoteHub(hub_url, token="fmhub_not-a-real-token") as impostor, pytest.raises(AuthenticationError):
        impostor.list_repos()


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_with_endpoint(capsys, hub_url: str, tokens, folder: Path, tmp_path: Path, local_store: Store) -> None:
    remote = ("--endpoint", hub_url, "--token", tokens.alice)
    code, out, err = _run(capsys, "upload", "alice/cli", str(folder), "-m", "Add model", *remote)
    assert code == 0, err
    assert "created model alice/cli" in err and "committed" in out and "2 files" in out
    assert local_store.resolve_revision("alice/cli").title == "Add model"  # it reached the server's store

    code, out, _ = _run(capsys, "ls", "alice/cli", *remote)
    assert code == 0 and "config.json" in out and "onnx/model.onnx" in out
    code, out, _ = _run(capsys, "repo", "info", "alice/cli", *remote)
    assert code == 0 and "alice/cli" in out and "Add model — alice" in out and "files        3" in out
    assert _run(capsys, "tag", "create", "alice/cli", "v1", *remote)[0] == 0
    code, out, _ = _run(capsys, "log", "alice/cli", "-n", "1", *remote)
    assert code == 0 and "Add model" in out and "initial commit" not in out

    code, out, err = _run(capsys, "download", "alice/cli", "--revision", "v1", "--local-dir", str(tmp_path / "dl"),
                          *remote)
    assert code == 0 and out.strip() == str(tmp_path / "dl") and "3 file(s)" in err
    assert _tree(tmp_path / "dl") == {".gitattributes": local_store.read_bytes("alice/cli", ".gitattributes"),
                                      **_tree(folder)}
    code, out, _ = _run(capsys, "upload", "alice/cli", str(folder), *remote)
    assert code == 0 and "no changes" in out


def test_cli_errors_over_http_exit_2_in_one_line(capsys, hub_url: str, folder: Path,
                                                 subtests: pytest.Subtests) -> None:
    for argv, needle in [
        (["upload", "alice/cli", str(folder), "--token", "fmhub_wrong"], "token"),
        (["upload", "alice/cli", str(folder), "--token", ""], "token"),
        (["ls", "alice/none"], "not found"),
        (["download", "alice/none"], "not found"),
        (["repo", "info", "alice/none", "--revision", "v9"], "not found"),
    ]:
        with subtests.test(argv=argv):
            code, out, err = _run(capsys, *argv, "--endpoint", hub_url)
            assert code == 2 and out == ""
            lines = err.strip().splitlines()
            assert lines[0].startswith("error:") and needle in lines[0] and len(lines) <= 2, err
            assert "Traceback" not in err
