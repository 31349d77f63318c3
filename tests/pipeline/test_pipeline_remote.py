"""The tiny lifecycle against a live hub server (FMHUB_ENDPOINT): every record lands on the server.

A first client home runs ``fmhub run examples/tiny/pipeline.yaml`` against ``fmhub server`` on a loopback
port; a second, empty client home (another machine, another user) then finds on the server the training
run named in the model card's lineage, its metrics, the report cards, the variant's lineage and the
pipeline cache (its own run of the same pipeline is all cached), while the first client's home holds no
metadata database at all.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from fmhub.accounts import Accounts
from fmhub.cards import parse_card
from fmhub.client import Hub
from fmhub.constants import settings
from fmhub.pipeline import parse, run_pipeline
from fmhub.server import HubConfig, create_app
from fmhub.store import open_store

EXAMPLE = Path(__file__).parents[2] / "examples" / "tiny" / "pipeline.yaml"
ADMIN = "fmhub_test-admin-token-remote-pipeline-0123"


@dataclass
class Server:
    url: str
    writer: str  # alice: admin of the org `tiny` the pipeline writes to
    reader: str  # bob: a read-only member of `tiny`


@pytest.fixture
def server(tmp_path: Path, serve_app) -> Iterator[Server]:
    """``fmhub server``'s app under uvicorn on a loopback port, over its own store (not any client's home)."""
    with open_store(f"sqlite:///{tmp_path / 'server' / 'hub.db'}", (tmp_path / "server" / "blobs").as_uri()) as store:
        accounts = Accounts(store.db)
        for user in ("alice", "bob"):
            accounts.create_user(user)
        accounts.create_org("tiny", owner="alice")
        accounts.set_member("tiny", "bob", "read")
        writer = accounts.create_token("alice", name="ci", role="write")[1]
        reader = accounts.create_token("bob", name="laptop", role="read")[1]
        with serve_app(create_app(store, HubConfig(admin_token=ADMIN))) as url:
            yield Server(url, writer, reader)


def _home(monkeypatch: pytest.MonkeyPatch, home: Path, url: str, token: str) -> None:
    monkeypatch.setenv("FMHUB_HOME", str(home))
    monkeypatch.setenv("FMHUB_ENDPOINT", url)
    monkeypatch.setenv("FMHUB_TOKEN", token)
    settings.cache_clear()


def _card(hub: Hub, repo: str, revision: str) -> dict:
    return parse_card(hub.read_bytes(repo, "README.md", revision).decode()).metadata


def test_the_tiny_pipeline_against_a_server_leaves_every_record_there(
        server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    from fmhub.cli import main

    first_home = tmp_path / "client-1"
    _home(monkeypatch, first_home, server.url, server.writer)
    assert main(["run", str(EXAMPLE)]) == 0, capsys.readouterr().err
    assert "lineage:" in capsys.readouterr().out
    # Nothing went to a local database: no metadata file was even created in the first client's home.
    assert not list(first_home.rglob("*.db")), list(first_home.rglob("*.db"))

    second_home = tmp_path / "client-2"
    _home(monkeypatch, second_home, server.url, server.reader)
    with Hub.open() as hub:
        assert hub.remote
        lineage = _card(hub, "tiny/topics-bert", "main")["fmhub"]["lineage"]
        run = hub.get_run(lineage["run_id"])  # the run the card names is on the server
        assert run.status == "completed" and run.output == "tiny/topics-bert" and run.created_by == "alice"
        trained = run.output_commit  # the weights' commit (the report card was committed on top of it)
        assert trained in {c.oid for c in hub.list_commits("tiny/topics-bert")}
        assert (run.dataset, run.dataset_commit) == (lineage["dataset"], lineage["dataset_commit"])
        assert (run.base_model, run.base_commit) == (lineage["base_model"], lineage["base_model_commit"])
        assert hub.get_run(run.id[:8]).id == run.id  # and by prefix
        points = hub.run_metrics(run.id)
        assert {"loss", "eval_accuracy"} <= {p.key for p in points}
        assert hub.latest_run_metrics(run.id)["eval_accuracy"] == run.summary["eval_accuracy"]
        assert {r.output for r in hub.list_runs()} == {"tiny/bert", "tiny/topics-bert"}

        # The report cards: the classifier's and the int8 variant's, indexed on the server.
        prod = hub.repo_info("tiny/topics-bert-int8", revision="prod").commit.oid
        [variant_card] = [c for c in hub.list_evaluations(model="tiny/topics-bert-int8") if c.card_commit == prod]
        assert variant_card.metrics["accuracy"] >= 0.8
        assert [c.model_commit for c in hub.list_evaluations(model="tiny/topics-bert")] == [trained]
        # The variant's lineage: its parent is the classifier's version, and the run that trained it.
        variant_lineage = _card(hub, "tiny/topics-bert-int8", prod)["fmhub"]["lineage"]
        assert variant_lineage["parent"] == "tiny/topics-bert"
        assert variant_lineage["parent_commit"] == trained
        assert variant_lineage["run_id"] == run.id

        # The pipeline cache is on the server: this home, another user, runs nothing.
        again = run_pipeline(parse(EXAMPLE), hub)
        assert [o.status for o in again] == ["cached"] * 7
        assert {o.name: o.output for o in again}["prod"] == f"tiny/topics-bert-int8@{prod}"
    assert not list(second_home.rglob("*.db"))
