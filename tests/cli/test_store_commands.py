"""The store commands end to end, as a user types them (in-process, on the embedded store)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from fmhub.cli import main
from fmhub.store import open_store
from fmhub.store import SCHEMA_HEAD


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "model"
    (root / "onnx").mkdir(parents=True)
    (root / "config.json").write_text('{"hidden_size": 32}')
    (root / "onnx" / "model.onnx").write_bytes(os.urandom(3000))
    (root / ".git").mkdir()
    (root / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    return root


def test_upload_folder_then_download_revision(capsys, folder: Path, tmp_path: Path) -> None:
    code, out, _ = run(capsys, "upload", "acme/tiny", str(folder), "-m", "Add model")
    assert code == 0, out
    code, out, _ = run(capsys, "ls", "acme/tiny")
    assert "config.json" in out and "onnx/model.onnx" in out and ".git/HEAD" not in out

    code, _, _ = run(capsys, "tag", "create", "acme/tiny", "v1")
    assert code == 0
    (folder / "config.json").write_text('{"hidden_size": 64}')
    assert run(capsys, "upload", "acme/tiny", str(folder / "config.json"), "-m", "Grow")[0] == 0

    code, out, _ = run(capsys, "download", "acme/tiny", "--revision", "v1", "--local-dir", str(tmp_path / "v1"))
    assert code == 0 and out.strip() == str(tmp_path / "v1")
    assert (tmp_path / "v1" / "config.json").read_text() == '{"hidden_size": 32}'
    assert (tmp_path / "v1" / "onnx" / "model.onnx").read_bytes() == (folder / "onnx" / "model.onnx").read_bytes()

    code, out, _ = run(capsys, "download", "acme/tiny", "--include", "*.json")
    snapshot = Path(out.strip())
    assert code == 0 and sorted(p.name for p in snapshot.rglob("*") if p.is_file()) == ["config.json"]
    assert (snapshot / "config.json").read_text() == '{"hidden_size": 64}'

    code, out, _ = run(capsys, "log", "acme/tiny")
    assert [line.strip() for line in out.splitlines() if line.startswith("    ")] == \
        ["Grow", "Add model", "initial commit"]


def test_reupload_without_change_is_not_an_error(capsys, folder: Path) -> None:
    assert run(capsys, "upload", "acme/tiny", str(folder))[0] == 0
    code, out, _ = run(capsys, "upload", "acme/tiny", str(folder))
    assert code == 0 and "no changes" in out
    with open_store() as store:
        assert len(store.list_commits("acme/tiny")) == 2


def test_upload_to_new_branch_creates_it_and_leaves_main(capsys, folder: Path) -> None:
    assert run(capsys, "repo", "create", "acme/tiny")[0] == 0
    assert run(capsys, "upload", "acme/tiny", str(folder / "config.json"), "--revision", "exp")[0] == 0
    with open_store() as store:
        assert [e.path for e in store.list_files("acme/tiny", "exp")] == [".gitattributes", "config.json"]
        assert [e.path for e in store.list_files("acme/tiny")] == [".gitattributes"]


def test_dataset_repos_are_separate_from_models(capsys, folder: Path) -> None:
    assert run(capsys, "upload", "acme/data", str(folder / "config.json"), "--repo-type", "dataset")[0] == 0
    code, _, err = run(capsys, "ls", "acme/data")
    assert code == 2 and "acme/data is a dataset repository, not a model repository" in err
    assert "--repo-type dataset" in err
    code, out, _ = run(capsys, "repo", "list", "--repo-type", "dataset")
    assert code == 0 and "acme/data" in out


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["repo", "create", "no-slash"], "namespace/name"),
        (["repo", "create", "a/b--c"], "--"),
        (["ls", "acme/missing"], "not found"),
        (["ls", "acme/tiny", "--revision", "nope"], "nope"),
        (["branch", "delete", "acme/tiny", "main"], "default branch"),
        (["upload", "acme/tiny", "/definitely/not/here"], "does not exist"),
        (["gc", "--grace", "soon"], "--grace"),
        (["download", "acme/tiny", "nothing.bin"], "nothing.bin"),
        (["repo", "delete", "acme/tiny"], "--yes"),
        # Usage errors (typer raises its own click's exceptions): the usage line, not a traceback.
        (["repo", "create"], "Missing argument"),
        (["repo", "list", "--bogus"], "No such option: --bogus"),
        (["data", "import", "x.csv", "acme/d", "--minhash-threshold", "2"], "--minhash-threshold"),
    ],
)
def test_bad_input_exits_2_with_one_line_fix(capsys, argv: list[str], needle: str) -> None:
    assert run(capsys, "repo", "create", "acme/tiny")[0] == 0
    code, _, err = run(capsys, *argv)
    assert code == 2
    assert needle in err
    assert "Traceback" not in err


def test_bad_upload_path_in_repo_is_rejected_and_stores_nothing(capsys, folder: Path) -> None:
    assert run(capsys, "repo", "create", "acme/tiny")[0] == 0
    code, _, err = run(capsys, "upload", "acme/tiny", str(folder / "config.json"), "../escape.json")
    assert code == 2 and ".." in err
    with open_store() as store:
        assert len(store.list_commits("acme/tiny")) == 1


def test_tags_do_not_move(capsys) -> None:
    assert run(capsys, "repo", "create", "acme/tiny")[0] == 0
    assert run(capsys, "tag", "create", "acme/tiny", "v1")[0] == 0
    code, _, err = run(capsys, "tag", "create", "acme/tiny", "v1")
    assert code == 2 and "v1" in err


def test_fsck_and_gc_report(capsys, folder: Path) -> None:
    assert run(capsys, "upload", "acme/tiny", str(folder))[0] == 0
    code, out, _ = run(capsys, "fsck")
    assert code == 0 and "ok" in out
    assert run(capsys, "repo", "delete", "acme/tiny", "--yes")[0] == 0
    code, out, _ = run(capsys, "gc", "--grace", "0", "--dry-run")
    expected = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and ".git" not in p.parts)
    assert code == 0 and "would free" in out
    code, out, _ = run(capsys, "gc", "--grace", "0")
    assert code == 0 and "3 blob(s)" in out  # config.json, model.onnx and .gitattributes
    with open_store() as store:
        assert list(store.blobs.iter_blobs()) == []
    assert expected > 0


def test_fsck_finds_a_corrupted_blob(capsys, folder: Path) -> None:
    assert run(capsys, "upload", "acme/tiny", str(folder))[0] == 0
    with open_store() as store:
        entry = store.get_entry("acme/tiny", "config.json")[1]
        path = store.blobs.local_path(entry.blob_sha256)
    os.chmod(path, 0o644)
    path.write_text('{"hidden_size": 33}')
    code, out, _ = run(capsys, "fsck")
    assert code == 1 and "corrupt-blob" in out and entry.blob_sha256 in out
    assert hashlib.sha256(path.read_bytes()).hexdigest() != entry.blob_sha256


def test_db_commands(capsys) -> None:
    code, out, _ = run(capsys, "db", "upgrade")
    assert code == 0 and SCHEMA_HEAD in out
    code, out, _ = run(capsys, "db", "current")
    assert code == 0 and "up to date" in out


@pytest.mark.parametrize(("argv", "flag"), [(["upload", "--help"], "--commit-message"),
                                            (["download", "--help"], "--include"),
                                            (["gc", "--help"], "--grace"),
                                            (["repo", "create", "--help"], "--repo-type")])
def test_every_command_explains_its_options(capsys, argv: list[str], flag: str) -> None:
    code, out, _ = run(capsys, *argv)
    assert code == 0 and flag in out


def test_a_hub_server_on_a_taken_port_is_an_input_error(capsys) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, out, err = run(capsys, "server", "--host", "127.0.0.1", "--port", str(port))
    assert code == 2 and f"cannot listen on 127.0.0.1:{port}" in err and "--port" in err
    assert "fmhub hub on" not in err + out  # nothing announced
