"""Training runs: what went in, where it ran, how it went, what came out; pipeline step records; and
TensorBoard curves.

A run is a record in the hub's metadata database (beside the repos; this package owns its tables), so
``fmhub runs list|show|compare`` answer "which data and base model made this model, with which config,
and how did it score?" without the training machine. Stages reach runs through the Hub client
(``hub.start_run``, ``hub.run_metrics_logger``, ``hub.finish_run``...), so a run trained against a hub
server is recorded on that server, where everyone who may read its output repo finds it. A pipeline step
record (``fmhub run``'s cache: which version a step produced for a key) is a kind of run record, kept here.

Example:
    >>> from fmhub.runs import Runs
    >>> runs = Runs(store.db)
    >>> run = runs.start(task="text-classification", config=config, command="fmhub train ...",
    ...                  base_model="acme/minilm", base_commit=oid, dataset="acme/bbc-news",
    ...                  dataset_commit=data_oid, output="acme/minilm-bbc")
    >>> runs.log(run.id, step=100, metrics={"loss": 0.41}, epoch=0.5)
    >>> runs.finish(run.id, "completed", summary={"eval_accuracy": 0.97})
"""

from typing import TYPE_CHECKING

from fmhub._lazy import lazy_names
from fmhub.runs._buffer import MetricsBuffer
from fmhub.runs._runs import (
    FINAL_STATUSES,
    RUN_ID_PREFIX,
    RUN_STATUSES,
    Environment,
    MetricPoint,
    RunInfo,
    Runs,
    StepMetrics,
    environment,
)
from fmhub.runs._steps import PipelineStepRecord, PipelineSteps, check_step_key
from fmhub.runs._tensorboard import TensorBoardWriter

if TYPE_CHECKING:
    from fmhub.runs._mlflow import MlflowExporter

__all__ = [
    "MlflowExporter",
    "Runs",
    "RunInfo",
    "MetricPoint",
    "StepMetrics",
    "MetricsBuffer",
    "PipelineStepRecord",
    "PipelineSteps",
    "check_step_key",
    "Environment",
    "environment",
    "TensorBoardWriter",
    "RUN_STATUSES",
    "FINAL_STATUSES",
    "RUN_ID_PREFIX",
]

# The exporter's HTTP client (httpx) is imported on first use (PEP 562): every write to the store imports this
# package for its tables, and none of them exports to MLflow.
__getattr__, __dir__ = lazy_names("fmhub.runs", {"MlflowExporter": "fmhub.runs._mlflow"}, globals())
