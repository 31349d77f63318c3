"""Report cards through a hub server: fmhub eval --push over HTTP, indexed by the server from its own store."""

from __future__ import annotations

import pytest

from fmhub.accounts import Accounts
from fmhub.client import Hub, UploadFile
from fmhub.errors import EntryNotFoundError, InvalidInputError, RepoNotFoundError
from fmhub.evaluate import EvalConfig, evaluate
from fmhub.server import HubConfig, create_app
from fmhub.store import open_store
from fmhub.train import TrainConfig, train

ADMIN = "fmhub_test-admin-token-evals-0123456789"


def test_a_card_pushed_through_a_server_is_indexed_and_private_like_its_repo(tiny_model: str, tiny_data: str,
                                                                            serve_app) -> None:
    assert train(TrainConfig.from_flat(dict(task="text-classification", model=tiny_model, data=tiny_data, output="acme/clf",
                             epochs=1, batch_size=8, learning_rate=3e-3, max_length=32, threads=1,
                             eval_split=None))) is not None
    with open_store() as store:
        accounts = Accounts(store.db)
        accounts.create_user("alice")
        accounts.create_user("bob")
        accounts.create_org("acme", owner="alice")
        alice = accounts.create_token("alice", name="laptop", role="write")[1]
        bob = accounts.create_token("bob", name="laptop", role="write")[1]
        with serve_app(create_app(store, HubConfig(admin_token=ADMIN))) as url, \
                Hub.open(url, alice) as hub, Hub.open(url) as anonymous, Hub.open(url, bob) as stranger:
            outcome = evaluate(EvalConfig(model="acme/clf", data=tiny_data, skip=("robustness", "efficiency",
                                                                                  "baseline")), hub, push=True)
            [info] = hub.list_evaluations(model="acme/clf")
            assert info.card_commit == outcome.commit and info.report_path == "eval/acme/topics/test/report.json"
            assert info.metrics["accuracy"] == outcome.report["metrics"]["accuracy"]
            assert [i.card_commit for i in anonymous.list_evaluations()] == [outcome.commit]  # a public repo

            # The server indexes only what the commit holds, as a card of that model.
            with pytest.raises(InvalidInputError, match="not a report card path"):
                hub.record_evaluation("acme/clf", outcome.commit, "README.md")
            with pytest.raises(InvalidInputError):
                hub.record_evaluation("acme/clf", outcome.commit, "eval/../README.md/x/report.json")
            with pytest.raises(EntryNotFoundError):
                hub.record_evaluation("acme/clf", outcome.commit, "eval/acme/other/test/report.json")
            fake = hub.commit("acme/clf", [UploadFile("eval/acme/fake/test/report.json", b'{"task": "x"}')],
                              title="not a card")
            with pytest.raises(InvalidInputError, match="not an fmhub report card of that model"):
                hub.record_evaluation("acme/clf", fake.oid, "eval/acme/fake/test/report.json")
            hub.update_repo("acme/clf", private=True)
            with pytest.raises(RepoNotFoundError):  # bob may not see acme's private repo: it answers as missing
                stranger.record_evaluation("acme/clf", outcome.commit, "eval/acme/topics/test/report.json")
            assert anonymous.list_evaluations() == [] and stranger.list_evaluations(model="acme/clf") == []
            assert len(hub.list_evaluations()) == 1
