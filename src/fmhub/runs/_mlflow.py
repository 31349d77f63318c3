"""Export run records to an MLflow tracking server, so teams on MLflow see fmhub's runs where they look.

Speaks MLflow's tracking REST API (``/api/2.0/mlflow/...``: the API ``mlflow server`` and hosted MLflow
serve, and the one ``MlflowClient`` uses over HTTP), so no MLflow package is needed here. One fmhub run
becomes one MLflow run in an experiment (default ``fmhub``):

- run name, start and end time, status (completed → FINISHED, failed → FAILED, stopped → KILLED,
  running → RUNNING), user;
- params: the resolved config (MLflow keeps values as text, at most 6000 characters);
- metrics: every logged value with its step and time (the same curves as ``fmhub runs show`` and
  TensorBoard);
- tags: ``fmhub.run_id`` and the lineage (base model, dataset, output as ``repo@commit``), the command,
  the code and library versions, the hardware, the final summary, and a note naming them.

Exporting again is incremental: the MLflow run tagged with the fmhub run id is found and only the metric
values after the last exported step are sent, then the status is brought up to date; a finished run that
was exported whole is left as it is. Credentials come from MLflow's own variables:
``MLFLOW_TRACKING_TOKEN`` (bearer) or ``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from fmhub.errors import InvalidInputError, StorageUnavailableError
from fmhub.runs._runs import MetricPoint, RunInfo

__all__ = ["MlflowExporter", "ExportedRun", "MLFLOW_STATUS"]

#: fmhub run status → MLflow RunStatus.
MLFLOW_STATUS = {"running": "RUNNING", "completed": "FINISHED", "failed": "FAILED", "stopped": "KILLED"}
_API = "/api/2.0/mlflow"
# MLflow's log-batch limits: 1000 metrics, 100 params, 100 tags, 1000 entities in all per request.
_BATCH_METRICS, _BATCH_PARAMS, _BATCH_TAGS = 1000, 100, 100
_PARAM_VALUE, _TAG_VALUE, _KEY = 6000, 8000, 250
_EXPORTED_STEP = "fmhub.exported_step"


@dataclass(frozen=True)
class ExportedRun:
    run_id: str  # fmhub's
    mlflow_run_id: str
    experiment_id: str
    metrics_sent: int
    created: bool  # a new MLflow run (False: an earlier export brought up to date, or left as it was)


def _ms(moment: Any) -> int:
    return int(moment.timestamp() * 1000)


def _text(value: Any, limit: int) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= limit else text[:limit - 1] + "…"


class MlflowExporter:
    """Send runs to the MLflow tracking server at ``uri`` (``http(s)://host:port[/prefix]``).

    Example:
        >>> with MlflowExporter("http://mlflow:5000") as mlflow:
        ...     mlflow.export(hub.get_run("r-1a2b"), hub.run_metrics("r-1a2b"))

    Raises:
        InvalidInputError: ``uri`` is not an http(s) URL, or the server refuses a request (its message).
        StorageUnavailableError: the server cannot be reached.
    """

    def __init__(self, uri: str, *, experiment: str = "fmhub", timeout: float = 30.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        if not uri.startswith(("http://", "https://")):
            raise InvalidInputError(f"--to mlflow {uri!r}: not the URL of an MLflow tracking server",
                                    hint="give the server's URL, e.g. http://mlflow:5000 (start one with: mlflow "
                                         "server --backend-store-uri sqlite:///mlflow.db)")
        if not experiment.strip():
            raise InvalidInputError("--experiment must not be empty")
        self.uri = uri.rstrip("/")
        self.experiment = experiment
        headers = {}
        auth = None
        if os.environ.get("MLFLOW_TRACKING_TOKEN"):
            headers["Authorization"] = f"Bearer {os.environ['MLFLOW_TRACKING_TOKEN']}"
        elif os.environ.get("MLFLOW_TRACKING_USERNAME"):
            auth = (os.environ["MLFLOW_TRACKING_USERNAME"], os.environ.get("MLFLOW_TRACKING_PASSWORD", ""))
        self._http = httpx.Client(timeout=timeout, headers=headers, auth=auth, transport=transport)
        self._experiment_id: str | None = None

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> MlflowExporter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the API -----------------------------------------------------------------------------------------

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None,
              params: dict[str, Any] | None = None, *, missing_ok: bool = False) -> dict[str, Any] | None:
        url = f"{self.uri}{_API}/{path}"
        try:
            response = self._http.request(method, url, json=body, params=params)
        except httpx.HTTPError as exc:
            raise StorageUnavailableError(f"cannot reach the MLflow tracking server at {self.uri}: {exc}",
                                          hint="check the URL and that `mlflow server` is running there") from None
        if response.status_code < 400:
            return response.json() if response.content else {}
        try:
            detail = response.json()
        except ValueError:
            detail = {"message": response.text[:500]}
        if missing_ok and detail.get("error_code") == "RESOURCE_DOES_NOT_EXIST":
            return None
        if response.status_code in (401, 403):
            raise InvalidInputError(f"the MLflow server at {self.uri} refused the credentials "
                                    f"({response.status_code}): {detail.get('message', '')}",
                                    hint="set MLFLOW_TRACKING_TOKEN, or MLFLOW_TRACKING_USERNAME and "
                                         "MLFLOW_TRACKING_PASSWORD")
        raise InvalidInputError(f"the MLflow server at {self.uri} refused {path}: "
                                f"{detail.get('error_code', response.status_code)} {detail.get('message', '')}")

    def experiment_id(self) -> str:
        """The id of the export's experiment, created if missing."""
        if self._experiment_id is None:
            found = self._call("GET", "experiments/get-by-name", params={"experiment_name": self.experiment},
                               missing_ok=True)
            if found is None:
                created = self._call("POST", "experiments/create", {"name": self.experiment})
                assert created is not None
                self._experiment_id = str(created["experiment_id"])
            else:
                self._experiment_id = str(found["experiment"]["experiment_id"])
        return self._experiment_id

    def find(self, run_id: str) -> dict[str, Any] | None:
        """The MLflow run an earlier export made of fmhub run ``run_id`` (in this experiment), or None."""
        found = self._call("POST", "runs/search", {"experiment_ids": [self.experiment_id()], "max_results": 1,
                                                   "filter": f"tags.`fmhub.run_id` = '{run_id}'"})
        runs = (found or {}).get("runs") or []
        return runs[0] if runs else None

    def _log_batch(self, mlflow_run_id: str, *, metrics: Sequence[dict[str, Any]] = (),
                   params: Sequence[dict[str, Any]] = (), tags: Sequence[dict[str, Any]] = ()) -> None:
        for start in range(0, len(params), _BATCH_PARAMS):
            self._call("POST", "runs/log-batch", {"run_id": mlflow_run_id,
                                                  "params": list(params[start:start + _BATCH_PARAMS])})
        for start in range(0, len(tags), _BATCH_TAGS):
            self._call("POST", "runs/log-batch", {"run_id": mlflow_run_id,
                                                  "tags": list(tags[start:start + _BATCH_TAGS])})
        for start in range(0, len(metrics), _BATCH_METRICS):
            self._call("POST", "runs/log-batch", {"run_id": mlflow_run_id,
                                                  "metrics": list(metrics[start:start + _BATCH_METRICS])})

    # -- one run -----------------------------------------------------------------------------------------

    def export(self, info: RunInfo, points: Sequence[MetricPoint],
               progress: Callable[[int], None] | None = None) -> ExportedRun:
        """Create (or bring up to date) the MLflow run of ``info`` with its metric ``points``."""
        experiment_id = self.experiment_id()
        existing = self.find(info.id)
        status = MLFLOW_STATUS.get(info.status, "RUNNING")
        if existing is None:
            created = self._call("POST", "runs/create", {
                "experiment_id": experiment_id, "run_name": info.name, "start_time": _ms(info.started_at),
                "tags": [{"key": "fmhub.run_id", "value": info.id}]})
            assert created is not None
            mlflow_run_id = created["run"]["info"]["run_id"]
            self._log_batch(mlflow_run_id, params=self._params(info))
            after = -1
        else:
            mlflow_run_id = existing["info"]["run_id"]
            tags = {t["key"]: t["value"] for t in existing.get("data", {}).get("tags", [])}
            after = int(tags.get(_EXPORTED_STEP, "-1"))
            if existing["info"].get("status") == status and status != "RUNNING" and \
                    all(p.step <= after for p in points):
                return ExportedRun(info.id, mlflow_run_id, experiment_id, 0, created=False)
        new = [p for p in points if p.step > after]
        metrics = [{"key": p.key[:_KEY], "value": p.value, "timestamp": _ms(p.at), "step": p.step} for p in new]
        for start in range(0, len(metrics), _BATCH_METRICS):
            self._log_batch(mlflow_run_id, metrics=metrics[start:start + _BATCH_METRICS])
            if progress is not None:
                progress(len(metrics[start:start + _BATCH_METRICS]))
        last = max((p.step for p in points), default=after)
        self._log_batch(mlflow_run_id, tags=[*self._tags(info), {"key": _EXPORTED_STEP, "value": str(last)}])
        update: dict[str, Any] = {"run_id": mlflow_run_id, "status": status, "run_name": info.name}
        if info.ended_at is not None:
            update["end_time"] = _ms(info.ended_at)
        self._call("POST", "runs/update", update)
        return ExportedRun(info.id, mlflow_run_id, experiment_id, len(metrics), created=existing is None)

    @staticmethod
    def _params(info: RunInfo) -> list[dict[str, str]]:
        return [{"key": str(key)[:_KEY], "value": _text(value, _PARAM_VALUE)}
                for key, value in sorted(info.config.items()) if value is not None]

    @staticmethod
    def _tags(info: RunInfo) -> list[dict[str, str]]:
        def ref(repo: str | None, commit: str | None) -> str | None:
            return None if repo is None else f"{repo}@{commit}" if commit else repo

        values = {
            "mlflow.runName": info.name,
            "mlflow.user": info.created_by,
            "mlflow.source.name": info.command,
            "mlflow.source.type": "LOCAL",
            "fmhub.run_id": info.id,
            "fmhub.task": info.task,
            "fmhub.status": info.status,
            "fmhub.base_model": ref(info.base_model, info.base_commit),
            "fmhub.dataset": ref(info.dataset, info.dataset_commit),
            "fmhub.output": ref(info.output, info.output_commit),
            "fmhub.code_version": info.code_version,
            "fmhub.libraries": info.libraries,
            "fmhub.hardware": info.hardware,
            "fmhub.summary": info.summary,
            "mlflow.note.content": (
                f"fmhub run `{info.id}` ({info.task}): `{ref(info.base_model, info.base_commit) or 'from scratch'}` "
                f"on `{ref(info.dataset, info.dataset_commit)}` → `{ref(info.output, info.output_commit)}`. "
                f"Details: `fmhub runs show {info.id}`."),
        }
        return [{"key": key, "value": _text(value, _TAG_VALUE)} for key, value in values.items()
                if value not in (None, {}, "")]
