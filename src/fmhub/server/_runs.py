"""fmhub's native API for training runs and pipeline step records, so every stage's records land on the hub.

``fmhub train`` (and ``fmhub run``) against a hub server start a run here, send its metric values in
batches, finish it, and record what each pipeline step produced; ``fmhub runs list|show|compare`` read them
back from any machine. A record follows its output repo (:func:`~fmhub.server._auth.can_read_output`):
a run of a private repo answers exactly like a missing run to those who may not see the repo, and writing
one needs write rights on the repo's namespace.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from fmhub.errors import PipelineStepNotFoundError
from fmhub.lineage import record_serving
from fmhub.runs import Environment, PipelineStepRecord, PipelineSteps, RunInfo, Runs, StepMetrics, check_step_key
from fmhub.server._signing import attestor
from fmhub.server._auth import ReaderDep, StoreDep, WriterDep, can_read_output, check_output_write
from fmhub.store import Store

__all__ = ["router"]

router = APIRouter(prefix="/api/fmhub", tags=["fmhub"])

_REPO = Field(default=None, min_length=3, max_length=200)
_COMMIT = Field(default=None, pattern=r"^[0-9a-f]{40}$")
#: Runs scanned per page while filtering a list by what the caller may see.
_PAGE = 500


class _Environment(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code_version: str = Field(min_length=1, max_length=64)
    libraries: dict[str, str] = Field(default_factory=dict)
    hardware: dict[str, Any] = Field(default_factory=dict)


class _NewRun(BaseModel):
    model_config = ConfigDict(extra="forbid")
    task: str = Field(min_length=1, max_length=64)
    config: dict[str, Any]
    command: str = Field(max_length=100_000)
    output: str = Field(min_length=3, max_length=200)
    base_model: str | None = _REPO
    base_commit: str | None = _COMMIT
    dataset: str | None = _REPO
    dataset_commit: str | None = _COMMIT
    name: str | None = Field(default=None, max_length=255)
    environment: _Environment


class _Step(BaseModel):
    model_config = ConfigDict(extra="forbid")
    step: int = Field(ge=0, le=2**31 - 1)
    epoch: float | None = None
    metrics: dict[str, float]


class _Metrics(BaseModel):
    model_config = ConfigDict(extra="forbid")
    entries: list[_Step] = Field(max_length=10_000)


class _Finish(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: str
    summary: dict[str, Any] | None = None
    output_commit: str | None = _COMMIT


class _Resume(BaseModel):
    model_config = ConfigDict(extra="forbid")
    from_step: int = Field(ge=0, le=2**31 - 1)


class _StepRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pipeline: str = Field(min_length=1, max_length=200)
    step: str = Field(min_length=1, max_length=200)
    kind: str = Field(min_length=1, max_length=32)
    output: str = Field(min_length=1, max_length=300)
    metrics: dict[str, float] = Field(default_factory=dict)
    detail: str = Field(default="", max_length=100_000)


def _visible(store: Store, caller: Any):
    """The caller's view of runs: those whose output repo they may read (memoized per repo for one request)."""
    seen: dict[str | None, bool] = {}

    def visible(info: RunInfo) -> bool:
        if info.output not in seen:
            seen[info.output] = can_read_output(store, caller, info.output)
        return seen[info.output]

    return visible


def _writable_run(store: Store, caller: Any, run_id: str) -> str:
    """The full id of a run the caller may write to: 404 if they may not see it, 403 if they may only read it."""
    info = Runs(store.db).get(run_id, _visible(store, caller))
    check_output_write(caller, info.output or "")
    return info.id


# -- runs --------------------------------------------------------------------------------------------


@router.post("/runs", status_code=201, summary="Start a training run that publishes to `output`")
def start_run(store: StoreDep, caller: WriterDep, body: _NewRun) -> dict[str, Any]:
    check_output_write(caller, body.output)
    env = Environment(body.environment.code_version, body.environment.libraries, body.environment.hardware)
    info = Runs(store.db).start(task=body.task, config=body.config, command=body.command, base_model=body.base_model,
                                base_commit=body.base_commit, dataset=body.dataset,
                                dataset_commit=body.dataset_commit, output=body.output, name=body.name,
                                created_by=caller.user, env=env)
    return info.to_json()


@router.get("/runs", summary="Runs the caller may see, newest first")
def list_runs(store: StoreDep, caller: ReaderDep, status: str | None = None, task: str | None = None,
              limit: Annotated[int, Query(ge=1, le=10_000)] = 50) -> list[dict[str, Any]]:
    runs, visible = Runs(store.db), _visible(store, caller)
    out: list[dict[str, Any]] = []
    offset = 0
    while len(out) < limit:
        page = runs.list(limit=_PAGE, status=status, task=task, offset=offset)
        out += [info.to_json() for info in page if visible(info)]
        if len(page) < _PAGE:
            break
        offset += _PAGE
    return out[:limit]


@router.get("/runs/{run_id}", summary="A run by id or unique id prefix")
def get_run(store: StoreDep, caller: ReaderDep, run_id: str) -> dict[str, Any]:
    return Runs(store.db).get(run_id, _visible(store, caller)).to_json()


@router.get("/runs/{run_id}/metrics", summary="A run's metric values, ordered by step")
def run_metrics(store: StoreDep, caller: ReaderDep, run_id: str, key: str | None = None) -> list[dict[str, Any]]:
    runs = Runs(store.db)
    full = runs.resolve(run_id, _visible(store, caller))
    return [point.to_json() for point in runs.metrics(full, key=key)]


@router.get("/runs/{run_id}/metrics/latest", summary="Each metric's value at the last step it was logged")
def latest_run_metrics(store: StoreDep, caller: ReaderDep, run_id: str) -> dict[str, float]:
    runs = Runs(store.db)
    return runs.latest_metrics(runs.resolve(run_id, _visible(store, caller)))


@router.post("/runs/{run_id}/metrics", summary="Log metric values of several steps (one batch)")
def log_run_metrics(store: StoreDep, caller: WriterDep, run_id: str, body: _Metrics) -> dict[str, int]:
    full = _writable_run(store, caller, run_id)
    stored = Runs(store.db).log_many(full, [StepMetrics(e.step, e.metrics, e.epoch) for e in body.entries])
    return {"stored": stored}


@router.post("/runs/{run_id}/finish", summary="End a running run: completed, failed or stopped")
def finish_run(store: StoreDep, caller: WriterDep, run_id: str, body: _Finish) -> dict[str, Any]:
    full = _writable_run(store, caller, run_id)
    run = Runs(store.db).finish(full, body.status, summary=body.summary, output_commit=body.output_commit)
    if run.status == "completed" and run.output_commit:
        attestor(store).attest_run(run)  # the hub vouches for what the run it recorded produced
    return run.to_json()


@router.post("/runs/{run_id}/resume", summary="Continue a stopped or failed run from its checkpoint at `from_step`")
def resume_run(store: StoreDep, caller: WriterDep, run_id: str, body: _Resume) -> dict[str, Any]:
    full = _writable_run(store, caller, run_id)
    return Runs(store.db).resume(full, body.from_step).to_json()


# -- pipeline step records ---------------------------------------------------------------------------


@router.get("/pipeline-steps/{key}", summary="What a pipeline step produced for its key (fmhub run's cache)")
def find_pipeline_step(store: StoreDep, caller: ReaderDep, key: str) -> dict[str, Any]:
    record = PipelineSteps(store.db).find(check_step_key(key))
    if record is None or not can_read_output(store, caller, record.output_repo):
        raise PipelineStepNotFoundError(key)
    return record.to_json()


@router.put("/pipeline-steps/{key}", summary="Record what a pipeline step produced for its key")
def save_pipeline_step(store: StoreDep, caller: WriterDep, key: str, body: _StepRecord) -> dict[str, Any]:
    record = PipelineStepRecord(check_step_key(key), body.pipeline, body.step, body.kind, body.output, body.metrics,
                                body.detail)
    check_output_write(caller, record.output_repo)
    saved = PipelineSteps(store.db).save(record)
    record_serving(store.db, saved)  # a serve check is a node under the version it served
    return saved.to_json()
