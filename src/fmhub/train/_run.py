"""One training run end to end: prepare, record the run, train (metrics to the run record and
TensorBoard), publish, and close the record as completed, failed or stopped."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fmhub.client import Hub
from fmhub.constants import settings
from fmhub.train import _distributed as distributed
from fmhub.train._config import TrainConfig
from fmhub.train._loop import Prepared, TrainResult, checkpoint_dir, prepare, run
from fmhub.train._publish import publish

__all__ = ["TrainOutcome", "train"]


@dataclass(frozen=True)
class TrainOutcome:
    result: TrainResult
    commit: str | None  # the output repo's new commit (None: not published, see ``train(publish=False)``)
    run_id: str
    prepared: Prepared  # the trained model, its tokenizer and what it was trained from


def train(config: TrainConfig, hub: Hub | None = None, *, resume: bool = False, command: str = "fmhub.train.train()",
          on_metrics: Callable[[int, float, dict[str, float]], None] | None = None,
          on_step: Callable[[int, int, float, float], None] | None = None,
          stop_after: int | None = None, model: Any = None, publish: bool = True) -> TrainOutcome | None:
    """Train ``config``, publish the model and record the run; None when ``stop_after`` cut the run short
    (and on DDP ranks other than 0).

    ``model``: an in-memory model to train instead of loading ``config.model`` (which still supplies the
    tokenizer and lineage); ``publish=False`` leaves committing the trained ``outcome.prepared.model`` to the
    caller (the run record then names no output commit).

    The run record lives in the metadata database of the hub trained against when it is the embedded
    store, else in the local embedded store; TensorBoard event files go to ``$FMHUB_HOME/runs/<run id>/``.
    Checkpoints are removed once the model is published (a failed or stopped run keeps them for ``--resume``).
    """
    import torch

    owned = hub is None
    hub = hub or Hub.open()
    try:
        torch.manual_seed(config.loop.seed)  # a new classification head starts from the same weights every run
        prepared = prepare(config, hub, model)
        if not distributed.is_main():  # another DDP rank: train its share; rank 0 records and publishes
            run(prepared, resume=resume, stop_after=stop_after)
            return None
        return _tracked(prepared, hub, resume=resume, command=command, on_metrics=on_metrics, on_step=on_step,
                        stop_after=stop_after, publish_model=publish)
    finally:
        if owned:
            hub.close()


def _tracked(prepared: Prepared, hub: Hub, *, resume: bool, command: str,
             on_metrics: Callable[[int, float, dict[str, float]], None] | None,
             on_step: Callable[[int, int, float, float], None] | None, stop_after: int | None,
             publish_model: bool) -> TrainOutcome | None:
    """Rank 0: train with a run record and TensorBoard curves, publish, close the record."""
    from fmhub.runs import Runs, TensorBoardWriter
    from fmhub.store import open_store

    config = prepared.config
    local_store = getattr(hub, "store", None)
    tracking_store = local_store or open_store()
    try:
        runs = Runs(tracking_store.db)
        record = runs.start(task=config.task, config={**config.to_dict(), "resume": resume,
                                                      "processes": distributed.world_size()}, command=command,
                            base_model=prepared.model_repo, base_commit=prepared.model_commit,
                            dataset=prepared.data_repo, dataset_commit=prepared.data_commit, output=config.output)
        with TensorBoardWriter(settings().home / "runs" / record.id / "tensorboard") as board:

            def track(step: int, epoch: float, metrics: dict[str, float]) -> None:
                runs.log(record.id, step, metrics, epoch=epoch)
                board.scalars(step, metrics)
                if on_metrics:
                    on_metrics(step, epoch, metrics)

            try:
                result = run(prepared, resume=resume, on_metrics=track, on_step=on_step, stop_after=stop_after)
                if result.interrupted:
                    runs.finish(record.id, "stopped", summary={"steps": result.steps})
                    return None
                commit = publish(hub, prepared, result, record.id) if publish_model else None
            except KeyboardInterrupt:
                runs.finish(record.id, "stopped")
                raise
            except BaseException as exc:
                runs.finish(record.id, "failed", summary={"error": str(exc)[:2000]})
                raise
        summary = {**result.metrics, "steps": result.steps, "epochs": result.epochs,
                   "samples_per_second": result.samples_per_second, "best_step": result.best_step,
                   "stopped_early": result.stopped_early, "ranks_in_sync": result.ranks_in_sync}
        runs.finish(record.id, "completed", summary=summary, output_commit=commit)
        shutil.rmtree(checkpoint_dir(config), ignore_errors=True)  # the model is in the hub now
        return TrainOutcome(result, commit, record.id, prepared)
    finally:
        if local_store is None:
            tracking_store.close()
