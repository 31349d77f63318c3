"""``fmhub runs export --to mlflow URL`` against a real MLflow tracking server (``mlflow server``).

The server comes from an MLflow installation: ``$FMHUB_TEST_MLFLOW`` (path of its ``mlflow`` command, e.g. in a
separate venv: MLflow's dependencies need not fit fmhub's environment) or ``mlflow`` on PATH; the tests skip
with the reason when there is none. Runs are read back through MLflow's REST API, as its UI reads them.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from fmhub.cli import main
from fmhub.client import Hub
from fmhub.runs import StepMetrics

_API = "/api/2.0/mlflow"


@pytest.fixture(scope="module")
def mlflow_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    command = os.environ.get("FMHUB_TEST_MLFLOW") or shutil.which("mlflow")
    if not command:
        pytest.skip("no MLflow to test against: set FMHUB_TEST_MLFLOW to an `mlflow` command (pip install "
                    "mlflow==3.17.2 in a separate venv)")
    folder = tmp_path_factory.mktemp("mlflow")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen([command, "server", "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}",
                               "--default-artifact-root", str(folder / "artifacts"), "--host", "127.0.0.1",
                               "--port", str(port), "--workers", "1"], stdout=subprocess.DEVNULL,
                              stderr=open(folder / "server.log", "wb"), start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            assert server.poll() is None, (folder / "server.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "mlflow server did not start"
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        yield url
    finally:
        os.killpg(server.pid, 15)  # the server and its workers
        server.wait(timeout=30)


def _mlflow(url: str, method: str, path: str, **kwargs) -> dict:
    response = httpx.request(method, f"{url}{_API}/{path}", timeout=30, **kwargs)
    response.raise_for_status()
    return response.json()


def _exported(url: str, experiment: str) -> list[dict]:
    experiment_id = _mlflow(url, "GET", "experiments/get-by-name",
                            params={"experiment_name": experiment})["experiment"]["experiment_id"]
    return _mlflow(url, "POST", "runs/search", json={"experiment_ids": [experiment_id]}).get("runs", [])


def _history(url: str, run_id: str, key: str) -> list[tuple[int, float]]:
    found = _mlflow(url, "GET", "metrics/get-history", params={"run_id": run_id, "metric_key": key})
    return sorted((int(m["step"]), m["value"]) for m in found.get("metrics", []))


def test_runs_appear_in_mlflow_with_config_curves_and_lineage(mlflow_url: str, capsys) -> None:
    with Hub.open() as hub:
        done = hub.start_run(task="text-classification", config={"learning_rate": 3e-3, "epochs": 2},
                             command="fmhub train --task text-classification ...", output="acme/clf",
                             base_model="acme/bert", base_commit="a" * 40, dataset="acme/topics",
                             dataset_commit="b" * 40)
        hub.log_run_metrics(done.id, [StepMetrics(s, {"loss": 1.0 / s}, s / 10) for s in range(1, 21)] +
                            [StepMetrics(20, {"eval_accuracy": 0.9})])
        hub.finish_run(done.id, "completed", summary={"eval_accuracy": 0.9}, output_commit="c" * 40)
        live = hub.start_run(task="masked-lm", config={"learning_rate": 1e-4}, command="fmhub train", output="acme/lm")
        hub.log_run_metrics(live.id, [StepMetrics(s, {"loss": 5.0 - s / 10}) for s in range(1, 6)])

    assert main(["runs", "export", "--to", "mlflow", mlflow_url, "--experiment", "team"]) == 0
    assert "created, 21 metric values" in capsys.readouterr().out
    runs = {{t["key"]: t["value"] for t in r["data"]["tags"]}["fmhub.run_id"]: r for r in _exported(mlflow_url, "team")}
    assert set(runs) == {done.id, live.id}
    mine = runs[done.id]
    tags = {t["key"]: t["value"] for t in mine["data"]["tags"]}
    params = {p["key"]: p["value"] for p in mine["data"]["params"]}
    assert mine["info"]["status"] == "FINISHED" and runs[live.id]["info"]["status"] == "RUNNING"
    assert mine["info"]["run_name"] == done.name and params == {"learning_rate": "0.003", "epochs": "2"}
    assert tags["fmhub.base_model"] == f"acme/bert@{'a' * 40}" and tags["fmhub.output"] == f"acme/clf@{'c' * 40}"
    assert tags["fmhub.dataset"] == f"acme/topics@{'b' * 40}" and f"fmhub runs show {done.id}" in \
        tags["mlflow.note.content"]
    assert _history(mlflow_url, mine["info"]["run_id"], "loss") == [(s, 1.0 / s) for s in range(1, 21)]
    assert _history(mlflow_url, mine["info"]["run_id"], "eval_accuracy") == [(20, 0.9)]

    # Again: nothing doubles; the run that was still running gets its new values and its end.
    with Hub.open() as hub:
        hub.log_run_metrics(live.id, [StepMetrics(s, {"loss": 5.0 - s / 10}) for s in range(6, 9)])
        hub.finish_run(live.id, "stopped")
    assert main(["runs", "export", "--to", "mlflow", mlflow_url, "--experiment", "team", "--json"]) == 0
    import json

    lines = {row["run_id"]: row for row in map(json.loads, capsys.readouterr().out.splitlines())}
    assert lines[done.id]["metrics_sent"] == 0 and lines[live.id]["metrics_sent"] == 3
    assert not lines[done.id]["created"] and not lines[live.id]["created"]
    again = {{t["key"]: t["value"] for t in r["data"]["tags"]}["fmhub.run_id"]: r
             for r in _exported(mlflow_url, "team")}
    assert len(again) == 2 and again[live.id]["info"]["status"] == "KILLED"
    assert _history(mlflow_url, again[live.id]["info"]["run_id"], "loss") == [(s, 5.0 - s / 10) for s in range(1, 9)]
    assert len(_history(mlflow_url, mine["info"]["run_id"], "loss")) == 20


def test_bad_targets_exit_2_with_the_fix(capsys, tmp_path: Path) -> None:
    assert main(["runs", "export", "--to", "wandb", "http://x"]) == 2
    assert "fmhub exports runs to mlflow" in capsys.readouterr().err
    assert main(["runs", "export", "--to", "mlflow", "ftp://x"]) == 2
    assert "not the URL of an MLflow tracking server" in capsys.readouterr().err
    with Hub.open() as hub:
        hub.start_run(task="text-classification", config={}, command="fmhub train", output="acme/x")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    assert main(["runs", "export", "--to", "mlflow", f"http://127.0.0.1:{closed}"]) == 2
    err = capsys.readouterr().err
    assert "cannot reach the MLflow tracking server" in err and "mlflow server" in err
