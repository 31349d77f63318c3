"""Training runs and pipeline step records through the Hub: embedded, and over HTTP to a live server.

A record follows its output repo: it is read by those who may read the repo (a run of a private repo
answers exactly like a missing run), written by those who may push to the repo's namespace, never by an
anonymous caller. Metric values cross the network in batches, not one request per step. Bad input is a
4xx with a JSON body, never a 500.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import update

from fmhub.cli import main
from fmhub.client import Hub, LocalHub, RemoteHub
from fmhub.constants import settings
from fmhub.errors import (
    AuthenticationError,
    InvalidInputError,
    PermissionDeniedError,
    RunNotFoundError,
    StorageUnavailableError,
)
from fmhub.runs import Environment, MetricsBuffer, PipelineStepRecord, StepMetrics
from fmhub.runs import _tables
from fmhub.store import Store

BASE, DATA = "a" * 40, "b" * 40
ENV = Environment("9.9.9", {"python": "3.12.0", "torch": "2.13.0"}, {"cores": 64, "gpus": ["H100"]})


class Recorder(httpx.BaseTransport):
    """A real network transport that remembers each request's method and path (to count the traffic)."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.requests: list[tuple[str, str]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append((request.method, request.url.path))
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


def _start(hub: Hub, output: str = "acme/clf", **overrides):
    args = dict(task="text-classification", config={"lr": 5e-5, "optim": {"wd": 0.01}, "path": Path("/x")},
                command="fmhub train acme/bert acme/topics", base_model="acme/bert", base_commit=BASE,
                dataset="acme/topics", dataset_commit=DATA, output=output, env=ENV)
    return hub.start_run(**{**args, **overrides})


@pytest.fixture(params=["local", "remote"])
def alice(request: pytest.FixtureRequest, local_store: Store, tokens) -> Iterator[Hub]:
    """alice's view of the hub: the store in-process, or the same store behind a live server."""
    if request.param == "local":
        with LocalHub(local_store, author="alice") as hub:
            yield hub
    else:
        with RemoteHub(request.getfixturevalue("hub_url"), token=tokens.alice) as hub:
            yield hub


def test_a_run_round_trip(alice: Hub) -> None:
    run = _start(alice)
    assert run.status == "running" and run.created_by == "alice" and run.output == "acme/clf"
    assert run.config == {"lr": 5e-5, "optim": {"wd": 0.01}, "path": "/x"}
    # The environment is the training machine's, which the client sends (not the server's).
    assert (run.code_version, run.libraries, run.hardware) == (ENV.code_version, ENV.libraries, ENV.hardware)
    stored = alice.log_run_metrics(run.id, [StepMetrics(10, {"loss": 0.9, "lr": 1e-5}, 0.5),
                                            StepMetrics(20, {"loss": 0.5, "bad": float("nan")}, 1.0),
                                            StepMetrics(20, {"eval_accuracy": 0.8}, 1.0)])
    assert stored == 4  # NaN is never stored
    with alice.run_metrics_logger(run.id) as logger:
        logger.log(30, {"loss": 0.4}, epoch=1.5)
    done = alice.finish_run(run.id, "completed", summary={"eval_accuracy": 0.8, "nan": float("nan")},
                            output_commit="c" * 40)
    assert done.status == "completed" and done.summary == {"eval_accuracy": 0.8, "nan": None}
    assert done.output_commit == "c" * 40 and done.ended_at >= done.started_at
    assert alice.get_run(run.id[:7]) == done == alice.get_run(run.id.upper())
    assert [(p.step, p.key, p.value) for p in alice.run_metrics(run.id)] == [
        (10, "loss", 0.9), (10, "lr", 1e-5), (20, "loss", 0.5), (20, "eval_accuracy", 0.8), (30, "loss", 0.4)]
    assert [p.value for p in alice.run_metrics(run.id, key="loss")] == [0.9, 0.5, 0.4]
    assert alice.latest_run_metrics(run.id) == {"loss": 0.4, "lr": 1e-5, "eval_accuracy": 0.8}
    other = _start(alice, task="token-classification")
    assert [r.id for r in alice.list_runs()] == [other.id, run.id]
    assert [r.id for r in alice.list_runs(status="completed")] == [run.id]
    assert [r.id for r in alice.list_runs(task="token-classification", limit=5)] == [other.id]
    with pytest.raises(RunNotFoundError, match="not found"):
        alice.get_run("r-ffffffffffff")
    with pytest.raises(InvalidInputError, match="already ended"):
        alice.finish_run(run.id, "failed")


def test_a_stopped_run_resumes_from_its_checkpoint_step(alice: Hub) -> None:
    run = _start(alice)
    alice.log_run_metrics(run.id, [StepMetrics(s, {"loss": 1.0 / s}) for s in range(1, 8)])
    alice.finish_run(run.id, "stopped", summary={"steps": 7})
    again = alice.resume_run(run.id[:8], 5)  # the checkpoint was at step 5: steps 6 and 7 are trained again
    assert (again.id, again.status, again.ended_at, again.summary) == (run.id, "running", None, None)
    assert [p.step for p in alice.run_metrics(run.id)] == [1, 2, 3, 4, 5]
    with pytest.raises(InvalidInputError, match="only a stopped or failed run can be resumed"):
        alice.resume_run(run.id, 5)  # it is running
    alice.finish_run(run.id, "completed")
    with pytest.raises(InvalidInputError, match="only a stopped or failed run"):
        alice.resume_run(run.id, 5)
    with pytest.raises(RunNotFoundError):
        alice.resume_run("r-ffffffffffff", 1)


def test_metric_values_cross_the_network_in_batches(hub_url: str, tokens) -> None:
    recorder = Recorder()
    with RemoteHub(hub_url, token=tokens.alice, transport=recorder) as hub:
        run = _start(hub)
        with hub.run_metrics_logger(run.id) as logger:
            for step in range(1, 121):
                logger.log(step, {"loss": 1 / step, "learning_rate": 1e-4}, epoch=step / 60)
        posts = [path for method, path in recorder.requests if method == "POST" and path.endswith("/metrics")]
        assert len(posts) == 3  # 50 + 50 steps, and the last 20 when the logger closes
        assert len(hub.run_metrics(run.id)) == 240


def test_a_buffer_keeps_values_while_the_hub_is_unreachable() -> None:
    sent: list[list[StepMetrics]] = []
    down = [True]
    now = [0.0]

    def send(batch: list[StepMetrics]) -> None:  # stands in for a hub whose network is down, then back
        if down[0]:
            raise StorageUnavailableError("cannot reach the hub")
        sent.append(batch)

    buffer = MetricsBuffer(send, max_steps=3, max_seconds=60.0, clock=lambda: now[0])
    for step in range(3):
        buffer.log(step, {"loss": 1.0})
    assert sent == [] and len(buffer.pending) == 3  # kept, training goes on
    now[0] = 30.0
    buffer.log(3, {"loss": 1.0})
    assert len(buffer.pending) == 4  # not retried before the interval
    down[0] = False
    now[0] = 61.0
    buffer.log(4, {"loss": 1.0})
    assert [e.step for e in sent[0]] == [0, 1, 2, 3, 4] and buffer.pending == ()
    now[0] = 200.0  # a batch is also due after max_seconds, however few steps
    buffer.log(5, {"loss": 1.0})
    assert [e.step for e in sent[1]] == [5]
    down[0] = True
    buffer.log(6, {"loss": 1.0})
    with pytest.raises(StorageUnavailableError):
        buffer.close()  # the run's end: what cannot be sent is an error


def _run_id(local_store: Store, made, run_id: str) -> str:
    with local_store.db.write() as conn:
        conn.execute(update(_tables.runs).where(_tables.runs.c.id == made.id).values(id=run_id))
    return run_id


def test_runs_follow_their_output_repo(hub_url: str, tokens, local_store: Store) -> None:
    local_store.create_repo("acme/secret", private=True)
    local_store.create_repo("carol/open")
    with RemoteHub(hub_url, token=tokens.alice) as alice, RemoteHub(hub_url) as anonymous, \
            RemoteHub(hub_url, token=tokens.carol) as carol, RemoteHub(hub_url, token=tokens.bob) as bob, \
            RemoteHub(hub_url, token=tokens.alice_read) as alice_read:
        secret = _run_id(local_store, _start(alice, "acme/secret"), "r-5ec2e7000001")
        unpublished = _start(alice, "acme/not-yet")  # no repo yet: as private to the namespace
        public = _run_id(local_store, _start(carol, "carol/open"), "r-5ec2e7000002")

        # Another user and anonymous: the private repo's run answers exactly as a missing one.
        for outsider in (anonymous, carol):
            for hidden in (secret, unpublished.id):
                with pytest.raises(RunNotFoundError):
                    outsider.get_run(hidden)
                with pytest.raises(RunNotFoundError):
                    outsider.run_metrics(hidden)
                with pytest.raises(RunNotFoundError):
                    outsider.latest_run_metrics(hidden)
            # A hidden run does not make a prefix ambiguous either: the prefix is the public run's.
            assert outsider.get_run("r-5ec2e700000").id == public
            assert [r.id for r in outsider.list_runs()] == [public]
        for url in (f"/api/fmhub/runs/{secret}", f"/api/fmhub/runs/{secret}/metrics"):
            private = httpx.get(hub_url + url, headers={"Authorization": f"Bearer {tokens.carol}"})
            missing = httpx.get(hub_url + url.replace(secret, "r-000000000000"),
                                headers={"Authorization": f"Bearer {tokens.carol}"})
            assert private.status_code == missing.status_code == 404
            assert private.json() == {k: v.replace("r-000000000000", secret) for k, v in missing.json().items()}
            assert private.headers["x-fmhub-error"] == missing.headers["x-fmhub-error"] == "RunNotFoundError"
        with pytest.raises(Exception, match="ambiguous"):
            alice.get_run("r-5ec2e700000")  # alice sees both

        # Members read; writing needs write rights on the namespace, and a token.
        assert bob.get_run(secret).id == alice_read.get_run(secret).id == secret
        assert {r.id for r in bob.list_runs()} == {secret, unpublished.id, public}
        for reader in (bob, alice_read):
            with pytest.raises(PermissionDeniedError):
                reader.log_run_metrics(secret, [StepMetrics(1, {"loss": 1.0})])
            with pytest.raises(PermissionDeniedError):
                reader.finish_run(secret, "stopped")
            with pytest.raises(PermissionDeniedError):
                _start(reader, "acme/new")
        with pytest.raises(PermissionDeniedError):
            _start(carol, "acme/new")  # not a member of acme
        with pytest.raises(RunNotFoundError):
            carol.finish_run(secret, "stopped")  # may not see it: 404 before 403
        for write in (lambda: _start(anonymous, "carol/open"),
                      lambda: anonymous.log_run_metrics(public, [StepMetrics(1, {"loss": 1.0})]),
                      lambda: anonymous.finish_run(public, "stopped")):
            with pytest.raises(AuthenticationError):
                write()
        assert alice.get_run(secret).status == "running" and alice.run_metrics(secret) == []  # nothing written
        alice.log_run_metrics(secret, [StepMetrics(1, {"loss": 1.0})])
        assert alice.finish_run(secret, "completed").status == "completed"

        # Publishing the repo publishes its runs; making it private hides them again.
        alice.update_repo("acme/secret", private=False)
        assert anonymous.get_run(secret).id == secret
        alice.update_repo("acme/secret", private=True)
        with pytest.raises(RunNotFoundError):
            anonymous.get_run(secret)


def test_pipeline_step_records_follow_their_output_repo(hub_url: str, tokens, local_store: Store) -> None:
    local_store.create_repo("acme/secret", private=True)
    oid = local_store.resolve_revision("acme/secret", None).oid
    key = "1" * 64
    record = PipelineStepRecord(key, "tiny", "classifier", "train", f"acme/secret@{oid}", {"accuracy": 0.9},
                                "run r-1")
    with RemoteHub(hub_url, token=tokens.alice) as alice, RemoteHub(hub_url) as anonymous, \
            RemoteHub(hub_url, token=tokens.carol) as carol, RemoteHub(hub_url, token=tokens.bob) as bob:
        assert alice.find_pipeline_step(key) is None
        saved = alice.save_pipeline_step(record)
        assert saved.created_at is not None and alice.find_pipeline_step(key) == saved
        assert bob.find_pipeline_step(key) == saved
        assert anonymous.find_pipeline_step(key) is None and carol.find_pipeline_step(key) is None
        with pytest.raises(PermissionDeniedError):
            bob.save_pipeline_step(record)  # a read-only member
        with pytest.raises(PermissionDeniedError):
            carol.save_pipeline_step(record)
        with pytest.raises(AuthenticationError):
            anonymous.save_pipeline_step(record)
        with pytest.raises(InvalidInputError):
            alice.find_pipeline_step("not-a-key")
        with pytest.raises(InvalidInputError, match="invalid pipeline step output"):
            alice.save_pipeline_step(PipelineStepRecord("2" * 64, "tiny", "x", "train", "acme/secret@main"))


def _json_error(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, (response.status_code, response.text)
    assert isinstance(response.json().get("error"), str) and response.json()["error"]


def test_bad_input_is_a_4xx_with_a_json_body(hub_url: str, tokens) -> None:
    auth = {"Authorization": f"Bearer {tokens.alice}"}
    with RemoteHub(hub_url, token=tokens.alice) as alice:
        run = _start(alice)
    new = {"task": "text-classification", "config": {}, "command": "c", "output": "acme/clf",
           "environment": {"code_version": "1"}}
    for body in ({**new, "config": [1]}, {**new, "output": "x"}, {**new, "output": "acme/../x"},
                 {**new, "base_commit": "main"}, {**new, "task": ""}, {**new, "task": "t" * 65},
                 {k: v for k, v in new.items() if k != "output"}, {**new, "environment": {}},
                 {**new, "name": " "}, {**new, "extra": 1}):
        _json_error(httpx.post(f"{hub_url}/api/fmhub/runs", json=body, headers=auth), 400)
    metrics = f"{hub_url}/api/fmhub/runs/{run.id}/metrics"
    for entry in ({"step": -1, "metrics": {"loss": 1}}, {"step": 2**40, "metrics": {"loss": 1}},
                  {"step": 1, "metrics": {"loss": "high"}}, {"step": 1, "metrics": {"": 1.0}},
                  {"step": 1, "metrics": {"k" * 256: 1.0}}, {"step": 1, "metrics": {"loss": None}},
                  {"step": 1.5, "metrics": {"loss": 1}}, {"step": 1, "metrics": [1]}):
        _json_error(httpx.post(metrics, json={"entries": [entry]}, headers=auth), 400)
    _json_error(httpx.post(metrics, json={"entries": [{"step": 1, "metrics": {}}] * 10_001}, headers=auth), 400)
    _json_error(httpx.post(metrics, content=b"{not json", headers={**auth, "Content-Type": "application/json"}),
                400)
    finish = f"{hub_url}/api/fmhub/runs/{run.id}/finish"
    for body in ({"status": "running"}, {"status": "done"}, {"status": "completed", "output_commit": "HEAD"}):
        _json_error(httpx.post(finish, json=body, headers=auth), 400)
    _json_error(httpx.get(f"{hub_url}/api/fmhub/runs/r-12", headers=auth), 400)  # a prefix too short
    for unknown in ("zzzz", "r-ffffffffffff", "r-1234567890123456", "%25"):
        _json_error(httpx.get(f"{hub_url}/api/fmhub/runs/{unknown}", headers=auth), 404)
    _json_error(httpx.get(f"{hub_url}/api/fmhub/runs?status=done", headers=auth), 400)
    _json_error(httpx.get(f"{hub_url}/api/fmhub/runs?limit=0", headers=auth), 400)
    steps = f"{hub_url}/api/fmhub/pipeline-steps"
    _json_error(httpx.get(f"{steps}/abc", headers=auth), 400)
    _json_error(httpx.get(f"{steps}/{'f' * 64}", headers=auth), 404)
    record = {"pipeline": "p", "step": "s", "kind": "train", "output": f"acme/clf@{'0' * 40}"}
    for body in ({**record, "output": "acme/clf@" + "z" * 40}, {**record, "output": f"nope@{'0' * 40}"},
                 {**record, "metrics": {"accuracy": "high"}}, {**record, "kind": "k" * 33}):
        _json_error(httpx.put(f"{steps}/{'0' * 64}", json=body, headers=auth), 400)
    # And nothing was stored by any of it.
    with RemoteHub(hub_url, token=tokens.alice) as alice:
        assert [r.id for r in alice.list_runs()] == [run.id] and alice.run_metrics(run.id) == []
        assert alice.get_run(run.id).status == "running" and alice.find_pipeline_step("0" * 64) is None


def test_fmhub_runs_reads_a_server(capsys, hub_url: str, tokens, local_store: Store, monkeypatch) -> None:
    from fmhub.cli._common import console

    monkeypatch.setattr(console, "width", 220)
    local_store.create_repo("acme/private-clf", private=True)
    with RemoteHub(hub_url, token=tokens.alice) as alice:
        first = _start(alice, "acme/private-clf", name="baseline")
        alice.log_run_metrics(first.id, [StepMetrics(10, {"eval_f1": 0.88, "eval_loss": 0.3}, 1.0)])
        alice.finish_run(first.id, "completed", summary={"eval_f1": 0.88, "eval_loss": 0.3})
        second = _start(alice, "acme/private-clf", name="higher-lr", config={"lr": 1e-4})
        alice.log_run_metrics(second.id, [StepMetrics(10, {"eval_f1": 0.91}, 1.0)])

    assert main(["runs", "list", "--endpoint", hub_url, "--token", tokens.alice]) == 0
    out = capsys.readouterr().out
    assert out.index(second.id) < out.index(first.id) and "eval_f1=0.88" in out and "eval_f1=0.91" in out
    monkeypatch.setenv("FMHUB_ENDPOINT", hub_url)  # the same through the environment
    monkeypatch.setenv("FMHUB_TOKEN", tokens.bob)
    settings.cache_clear()
    assert main(["runs", "show", first.id[:8]]) == 0
    out = capsys.readouterr().out
    assert first.id in out and "baseline" in out and "acme/private-clf" in out and "H100" in out
    assert main(["runs", "compare", first.id, second.id]) == 0
    out = capsys.readouterr().out
    assert "lr" in out and "0.91" in out and "0.88" in out

    monkeypatch.setenv("FMHUB_TOKEN", tokens.carol)  # may not see acme's private repo: as missing
    settings.cache_clear()
    assert main(["runs", "show", first.id]) == 2
    err = capsys.readouterr().err
    assert "not found" in err and "fmhub runs list" in err and "Traceback" not in err
    assert main(["runs", "list"]) == 0 and first.id not in capsys.readouterr().out
    monkeypatch.delenv("FMHUB_TOKEN")
    settings.cache_clear()
    assert main(["runs", "show", "r-ffffffffffff"]) == 2
    assert "not found" in capsys.readouterr().err
