"""One training run end to end: prepare, record the run, train (metrics to the run record and
TensorBoard), publish, and close the record as completed, failed or stopped."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fmhub.client import Hub
from fmhub.constants import settings
from fmhub.errors import FmhubError, InvalidInputError, RunNotFoundError
from fmhub.runs import TensorBoardWriter
from fmhub.train import _distributed as distributed
from fmhub.train._config import TrainConfig
from fmhub.train._loop import Prepared, TrainResult, checkpoint_dir, prepare, resume_point, run
from fmhub.train._publish import publish

__all__ = ["TrainOutcome", "TrainingInterrupted", "train"]


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped training at a step boundary with a checkpoint; ``--resume`` continues the same run."""

    def __init__(self, step: int, run_id: str, checkpoint: Path | None) -> None:
        super().__init__(f"interrupted at step {step}; run {run_id} continues with --resume")
        self.step, self.run_id, self.checkpoint = step, run_id, checkpoint


@dataclass(frozen=True)
class TrainOutcome:
    result: TrainResult
    commit: str | None  # the output repo's new commit (None: not published, see ``train(publish=False)``)
    run_id: str
    prepared: Prepared  # the trained model, its tokenizer and what it was trained from


def train(config: TrainConfig, hub: Hub | None = None, *, resume: bool = False, command: str = "fmhub.train.train()",
          on_metrics: Callable[[int, float, dict[str, float]], None] | None = None,
          on_step: Callable[[int, int, float, float], None] | None = None,
          stop_after: int | None = None, model: Any = None, publish: bool = True,
          on_interrupt: Callable[[int], None] | None = None) -> TrainOutcome | None:
    """Train ``config``, publish the model and record the run; None when ``stop_after`` cut the run short
    (and on DDP ranks other than 0).

    ``model``: an in-memory model to train instead of loading ``config.model`` (which still supplies the
    tokenizer and lineage); ``publish=False`` leaves committing the trained ``outcome.prepared.model`` to the
    caller (the run record then names no output commit).

    The run record goes to the hub trained against (the embedded store, or a hub server: ``FMHUB_ENDPOINT``),
    metric values in batches; TensorBoard event files go to ``$FMHUB_HOME/runs/<run id>/`` on this machine.
    Checkpoints are removed once the model is published (a failed or stopped run keeps them for ``--resume``).

    The first Ctrl-C (SIGINT) stops at the end of the running step with a checkpoint and raises
    :class:`TrainingInterrupted` (``on_interrupt(step)`` is called when it arrives); a second one stops at once.
    ``resume=True`` continues the newest checkpoint's run record (same id, same TensorBoard curves) from
    its step.
    """
    import torch

    began = time.perf_counter()
    owned = hub is None
    hub = hub or Hub.open()
    try:
        torch.manual_seed(config.loop.seed)  # a new classification head starts from the same weights every run
        prepared = prepare(config, hub, model)
        if not distributed.is_main():  # another DDP rank: train its share; rank 0 records and publishes
            run(prepared, resume=resume, stop_after=stop_after)
            return None
        return _tracked(prepared, hub, resume=resume, command=command, on_metrics=on_metrics, on_step=on_step,
                        stop_after=stop_after, publish_model=publish, on_interrupt=on_interrupt, began=began)
    finally:
        if owned:
            hub.close()


def _tracked(prepared: Prepared, hub: Hub, *, resume: bool, command: str,
             on_metrics: Callable[[int, float, dict[str, float]], None] | None,
             on_step: Callable[[int, int, float, float], None] | None, stop_after: int | None,
             publish_model: bool, began: float, on_interrupt: Callable[[int], None] | None = None
             ) -> TrainOutcome | None:
    """Rank 0: train with a run record (on the hub) and TensorBoard curves, publish, close the record."""
    config = prepared.config
    point = resume_point(config) if resume else None
    record = None
    if point is not None and point.run_id is not None:
        try:  # the interrupted run continues: same id, its metrics after the checkpoint's step dropped
            record = hub.resume_run(point.run_id, point.step)
        except (RunNotFoundError, InvalidInputError):  # trained against another hub, or the record ended otherwise
            record = None
    if record is None:
        resumed = {"resumed_from": {"run": point.run_id, "step": point.step}} if point is not None else {}
        record = hub.start_run(task=config.task, config={**config.to_dict(), "resume": resume, **resumed,
                                                         "processes": distributed.world_size(),
                                                         "precision_used": prepared.precision}, command=command,
                               base_model=prepared.model_repo, base_commit=prepared.model_commit,
                               dataset=prepared.data_repo, dataset_commit=prepared.data_commit, output=config.output)
    continued = point is not None and record.id == point.run_id
    metrics_log = hub.run_metrics_logger(record.id)  # batched: no round trip per step to a hub server

    def end(status: str, summary: dict[str, Any] | None = None, output_commit: str | None = None) -> None:
        try:
            metrics_log.flush()
        finally:  # the run is closed even when its last metric values could not be sent
            hub.finish_run(record.id, status, summary=summary, output_commit=output_commit)

    with TensorBoardWriter(settings().home / "runs" / record.id / "tensorboard",
                           purge_step=point.step + 1 if continued and point is not None else None) as board:

        def track(step: int, epoch: float, metrics: dict[str, float]) -> None:
            metrics_log.log(step, metrics, epoch=epoch)
            board.scalars(step, metrics)
            if on_metrics:
                on_metrics(step, epoch, metrics)

        try:
            result = run(prepared, resume=resume, on_metrics=track, on_step=on_step, stop_after=stop_after,
                         run_id=record.id, on_interrupt=on_interrupt)
            if result.interrupted:
                end("stopped", {"steps": result.steps})
                if result.checkpoint is not None:  # Ctrl-C: stopped gracefully with a checkpoint
                    raise TrainingInterrupted(result.steps, record.id, result.checkpoint)
                return None
            published = time.perf_counter()
            commit = publish(hub, prepared, result, record.id) if publish_model else None
            result.timings["publish_seconds"] = time.perf_counter() - published
        except TrainingInterrupted:
            raise
        except KeyboardInterrupt:
            _end_quietly(end, "stopped")
            raise
        except BaseException as exc:
            _end_quietly(end, "failed", {"error": str(exc)[:2000]})
            raise
    costs(result, prepared, time.perf_counter() - began)
    summary = {**result.metrics, "steps": result.steps, "epochs": result.epochs,
               "samples_per_second": result.samples_per_second, "best_step": result.best_step,
               "stopped_early": result.stopped_early, "ranks_in_sync": result.ranks_in_sync,
               "precision": prepared.precision, "compiled": config.compute.compile,
               **({"attention": result.attention} if result.attention else {}),
               **{k: round(v, 3) for k, v in result.timings.items()}}
    end("completed", summary, commit)
    shutil.rmtree(checkpoint_dir(config), ignore_errors=True)  # the model is in the hub now
    return TrainOutcome(result, commit, record.id, prepared)


def costs(result: TrainResult, prepared: Prepared, total: float) -> None:
    """Complete ``result.timings`` with the run's fixed and per-step costs (seconds).

    ``total_seconds`` is the whole of :func:`train`; ``fixed_seconds`` is what is left of it once the steps are
    paid at ``seconds_per_step`` each (a one-step run cannot tell its warm-up from its step): loading and tokenizing (``prepare_seconds``), the first step's warm-up,
    evaluating, checkpointing and publishing — what a run costs whatever its length.
    """
    timings = result.timings
    timings["prepare_seconds"] = prepared.seconds
    timings["total_seconds"] = total
    stepping = timings.get("train_seconds", 0.0) - timings.get("first_step_extra_seconds", 0.0)
    timings["fixed_seconds"] = max(0.0, total - stepping)


def _end_quietly(end: Callable[..., None], *args: Any) -> None:
    """Close the run record after a failure; the failure, not a problem closing the record, is what is raised."""
    try:
        end(*args)
    except FmhubError:
        pass
