"""Output for scripts: whole ids and names when piped, --json on every listing command, --version, completion."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fmhub.cli import main
from fmhub.client import Hub

FMHUB = str(Path(sys.executable).with_name("fmhub"))


@pytest.fixture
def filled(tmp_path: Path) -> dict[str, str]:
    """A model repo with a tag, a dataset repo and a run whose names are long."""
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text("{}")
    with Hub.open() as hub:
        hub.create_repo("acme/a-model-with-a-rather-long-name-for-tables")
        hub.create_repo("acme/reviews", repo_type="dataset")
        commit = hub.upload(tmp_path / "model", "acme/a-model-with-a-rather-long-name-for-tables").oid
        hub.create_tag("acme/a-model-with-a-rather-long-name-for-tables", "v1")
        run = hub.start_run(task="token-classification-with-a-long-name", config={"lr": 1e-3}, command="fmhub train",
                            output="acme/a-model-with-a-rather-long-name-for-tables",
                            base_model="acme/some-base-model-with-a-long-name", dataset="acme/some-long-dataset-name")
        hub.finish_run(run.id, "completed", summary={"eval_f1": 0.5})
    return {"commit": commit, "run": run.id}


def test_piped_tables_keep_ids_and_names_whole(filled: dict[str, str]) -> None:
    done = subprocess.run([FMHUB, "runs", "list"], capture_output=True, text=True, timeout=120)  # stdout is a pipe
    assert done.returncode == 0, done.stderr
    assert filled["run"] in done.stdout and "token-classification-with-a-long-name" in done.stdout
    assert "acme/some-base-model-with-a-long-name" in done.stdout and "…" not in done.stdout


def test_every_listing_command_has_json(filled: dict[str, str], capsys) -> None:
    model = "acme/a-model-with-a-rather-long-name-for-tables"

    def rows(*argv: str) -> list[dict]:
        assert main([*argv, "--json"]) == 0
        return [json.loads(line) for line in capsys.readouterr().out.splitlines()]

    listed = rows("repo", "list")
    assert {(r["repo_type"], r["repo_id"]) for r in listed} == {("model", model), ("dataset", "acme/reviews")}
    assert set(listed[0]) == {"repo_type", "repo_id", "private", "default_branch", "created_at", "updated_at"}
    assert "config.json" in [r["path"] for r in rows("ls", model)]
    log = rows("log", model)
    assert log[0]["oid"] == filled["commit"] and set(log[0]) == {"oid", "parents", "author", "title", "message",
                                                                  "created_at"}
    assert [(r["name"], r["commit"]) for r in rows("tag", "list", model)] == [("v1", filled["commit"])]
    assert [r["name"] for r in rows("branch", "list", model)] == ["main"]
    (run,) = rows("runs", "list")
    assert run["id"] == filled["run"] and run["final_metrics"] == {"eval_f1": 0.5} and run["status"] == "completed"
    assert rows("evals") == []
    assert main(["user", "create", "alice"]) == 0
    capsys.readouterr()
    assert [u["name"] for u in rows("user", "list")] == ["alice"]
    assert rows("token", "list") == []
    assert rows("audit")[0]["action"] in ("commit", "tag.create")


def test_version_and_completion(capsys) -> None:
    from fmhub._version import __version__

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"fmhub {__version__}"
    assert main(["--help"]) == 0
    assert "--install-completion" in capsys.readouterr().out
