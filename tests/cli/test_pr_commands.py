"""``fmhub pr`` end to end on the embedded store: open, push to refs/pr/N, show (files, diff, report-card metrics
against the base), merge, close — as a user types it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fmhub.cli import main
from fmhub.client import Hub


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out + err


def _card(hub: Hub, repo: str, revision: str, accuracy: float) -> None:
    """Push a minimal report card for the model version at ``revision`` and index it, as fmhub eval --push does."""
    model_commit = hub.list_commits(repo, revision, limit=1)[0].oid
    card = {"task": "text-classification", "metrics": {"accuracy": accuracy},
            "provenance": {"model": {"repo": repo, "commit": model_commit},
                           "dataset": {"repo": "acme/news", "commit": "1" * 40, "split": "test"}}}
    path = "eval/acme/news/test/report.json"
    commit = hub.commit(repo, [_upload(path, json.dumps(card).encode())], revision=revision, title="report card")
    hub.record_evaluation(repo, commit.oid, path)


def _upload(path: str, data: bytes):
    from fmhub.client import UploadFile

    return UploadFile(path, data)


def test_pull_request_from_the_cli(capsys, tmp_path: Path) -> None:
    (tmp_path / "v1").mkdir()
    (tmp_path / "v1" / "config.json").write_text('{"hidden_size": 32}\n')
    assert run(capsys, "upload", "acme/bert", str(tmp_path / "v1"), "-m", "v1")[0] == 0
    with Hub.open() as hub:
        _card(hub, "acme/bert", "main", 0.80)

    code, out = run(capsys, "pr", "create", "acme/bert", "--title", "Bigger model", "-d", "Trained longer")
    assert code == 0 and "#1" in out and "refs/pr/1" in out
    (tmp_path / "v2").mkdir()
    (tmp_path / "v2" / "config.json").write_text('{"hidden_size": 64}\n')
    code, out = run(capsys, "upload", "acme/bert", str(tmp_path / "v2"), "--revision", "refs/pr/1", "-m", "v2")
    assert code == 0, out
    with Hub.open() as hub:
        _card(hub, "acme/bert", "refs/pr/1", 0.85)

    code, out = run(capsys, "pr", "list", "acme/bert")
    assert code == 0 and "Bigger model" in out and "open" in out
    code, out = run(capsys, "pr", "show", "acme/bert", "1", "--diff")
    assert code == 0, out
    assert "modified" in out and "config.json" in out and "eval/acme/news/test/report.json" in out
    assert '-{"hidden_size": 32}' in out and '+{"hidden_size": 64}' in out
    assert "accuracy" in out and "0.8000" in out and "0.8500 (+0.0500)" in out  # the card against its base
    assert "Trained longer" in out

    code, out = run(capsys, "pr", "merge", "acme/bert", "1", "-c", "ship it")
    assert code == 0 and "merged #1" in out
    code, out = run(capsys, "download", "acme/bert", "--local-dir", str(tmp_path / "got"))
    assert json.loads((tmp_path / "got" / "config.json").read_text()) == {"hidden_size": 64}
    code, out = run(capsys, "pr", "list", "acme/bert", "--status", "merged")
    assert "Bigger model" in out

    run(capsys, "pr", "create", "acme/bert", "--title", "Abandoned")
    assert run(capsys, "pr", "close", "acme/bert", "2", "-c", "not needed")[0] == 0
    code, out = run(capsys, "pr", "merge", "acme/bert", "2")
    assert code == 2 and "closed" in out  # a user error: exit 2 with the reason
    code, out = run(capsys, "pr", "show", "acme/bert", "9")
    assert code == 2 and "not found" in out
