"""``fmhub train``: fine-tune a hub model on a hub dataset; the result is a new version of the output repo."""

from __future__ import annotations

import inspect
import json
import shlex
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from fmhub.cli._common import (EndpointOption, TokenOption, WorkProgress, console, err_console, opened_hub,
                               quiet_ml_libraries)
from fmhub.errors import InvalidInputError


def register(app: typer.Typer) -> None:
    from fmhub.options import with_signature

    with_signature(train_command, _parameters())
    app.command("train", no_args_is_help=True)(train_command)


def _parameters() -> list[inspect.Parameter]:
    """Every option of :class:`~fmhub.train.TrainConfig` (defined there once), then the run's own options."""
    from fmhub.options import parameters
    from fmhub.train import TrainConfig

    options = parameters(TrainConfig)
    first = [p for name in ("task", "model", "data", "output") for p in options if p.name == name]
    rest = [p for p in options if p not in first]
    run: dict[str, Any] = {
        "config_file": (Path | None, typer.Option("--config", "-c", help="A train.yaml with any of these options "
                                                                          "(flags given here win).")),
        "nproc": (int | None, typer.Option("--nproc", help="Train with N data-parallel processes per node (torch DDP "
                                                           "via torchrun; gloo on CPU, nccl on GPU).")),
        "nnodes": (str | None, typer.Option("--nnodes", help="Multi-node: number of nodes (torchrun syntax, e.g. 2 "
                                                             "or 1:4); run the same command on every node.")),
        "node_rank": (int | None, typer.Option("--node-rank", help="Multi-node: this node's rank (optional with c10d "
                                                                   "rendezvous).")),
        "rdzv_endpoint": (str | None, typer.Option("--rdzv-endpoint", help="Multi-node: host:port of the rendezvous "
                                                                           "(e.g. node0:29400).")),
    }
    made = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Annotated[kind, info])
            for name, (kind, info) in run.items()]
    tail = [inspect.Parameter("resume", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=Annotated[
                bool, typer.Option("--resume", help="Continue from the newest checkpoint of the same configuration "
                                                    "(after Ctrl-C, a crash or a kill), in the same run record.")]),
            inspect.Parameter("endpoint", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=EndpointOption),
            inspect.Parameter("token", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=TokenOption)]
    return [*first, made[0], *rest, *made[1:], *tail]


def _train(*, config_file: Path | None, nproc: int | None, nnodes: str | None, node_rank: int | None,
           rdzv_endpoint: str | None, resume: bool, endpoint: str | None, token: str | None,
           **flags: Any) -> int:
    """Fine-tune a model from the hub on a dataset from the hub and commit the result to --output.

    Example:
        fmhub train --task text-classification --model acme/minilm@v1 --data acme/bbc-news@v1 \\
            --output acme/bbc-minilm --epochs 3 --lr 5e-5 --eval-steps 50
        fmhub train -c train.yaml --resume
    """
    from fmhub import options
    from fmhub.train import TrainConfig, TrainingInterrupted, resume_point, train

    quiet_ml_libraries()
    known = {f.name: f for f in options.fields_of(TrainConfig)}
    given = {k: (known[k].spec.parse(v) if known[k].spec.parse else v) for k, v in flags.items() if v is not None}
    if config_file is not None:
        config = TrainConfig.from_yaml(config_file, **given)
    else:
        config = TrainConfig.from_flat(given, source="options")
    if nproc is not None or nnodes is not None:
        from fmhub.train._distributed import launch

        if endpoint or token:
            raise InvalidInputError("--nproc trains against the store FMHUB_DB_URL/FMHUB_BLOB_URL name",
                                    hint="set FMHUB_ENDPOINT/FMHUB_TOKEN in the environment instead of flags")
        return launch(config.to_dict(), nproc=nproc or 1, resume=resume, command=command_line(), nnodes=nnodes,
                      node_rank=node_rank, rdzv_endpoint=rdzv_endpoint)
    if resume:
        point = resume_point(config)
        if point is None:
            err_console.print("--resume: no checkpoint of this configuration yet; starting from step 0")
        else:
            err_console.print(f"resuming{' run ' + point.run_id if point.run_id else ''} from step {point.step} "
                              f"(checkpoint {point.checkpoint})", highlight=False)
    try:
        with opened_hub(endpoint, token) as hub, WorkProgress() as progress:
            def interrupted(step: int) -> None:
                progress.console.print(f"Ctrl-C ({step} steps done): finishing the current step, saving a checkpoint, "
                                       "then stopping (press Ctrl-C again to stop at once)", highlight=False)

            outcome = train(config, hub, resume=resume, command=command_line(), on_step=progress.update,
                            on_metrics=progress.metrics, on_interrupt=interrupted)
    except TrainingInterrupted as stop:
        err_console.print(f"stopped at step {stop.step} with a checkpoint ({stop.checkpoint}); run {stop.run_id} is "
                          "stopped", highlight=False)
        err_console.print(f"resume with: {resume_command(config_file, flags)}", highlight=False, soft_wrap=True)
        return 130
    result = outcome.result
    shown = ", ".join(f"{k.removeprefix('eval_')} {v:.4f}" for k, v in result.metrics.items())
    if result.stopped_early:
        err_console.print(f"stopped early at step {result.steps} (best {config.loop.metric} at step "
                          f"{result.best_step})")
    eval_split = config.inputs.eval_split
    console.print(f"trained {result.steps} steps ({result.epochs:.2f} epochs, {result.samples_per_second:.1f} "
                  f"samples/s){'; ' + eval_split + ': ' + shown if shown and eval_split else ''}")
    console.print(_costs(result.timings, outcome.prepared.precision, config.compute.compile, result.attention))
    console.print(f"committed {outcome.commit} to {config.output}; run {outcome.run_id} "
                  f"(fmhub runs show {outcome.run_id})")
    console.print(json.dumps({"commit": outcome.commit, "run": outcome.run_id, **result.metrics}), style="dim",
                  highlight=False)
    return 0


def _costs(timings: dict[str, float], precision: str, compiled: bool, attention: str | None = None) -> str:
    """One line: the fixed cost of the run and the cost of a step (the run summary has the details)."""
    fixed = timings.get("fixed_seconds", 0.0)
    parts = [f"loading {timings.get('prepare_seconds', 0.0):.1f}"]
    if timings.get("first_step_extra_seconds", 0.0) > 0:
        parts.append(f"first-step warm-up {timings['first_step_extra_seconds']:.1f}")
    for key, name in (("evaluate_seconds", "evaluating"), ("checkpoint_seconds", "checkpoints"),
                      ("publish_seconds", "publishing")):
        if timings.get(key):
            parts.append(f"{name} {timings[key]:.1f}")
    per_step = timings.get("seconds_per_step")
    step = f"{per_step:.2f} s per step" if per_step is not None else "too few steps to time one apart"
    return (f"time: {fixed:.1f} s fixed ({', '.join(parts)}), {step}; precision {precision}"
            f"{', compiled' if compiled else ''}{f', attention {attention}' if attention else ''}")


def train_command(**options: Any) -> int:
    return _train(**options)


train_command.__doc__ = _train.__doc__


def resume_command(config_file: Path | None, flags: dict[str, Any]) -> str:
    """The command that continues this run: as typed, with ``--resume`` (rebuilt from the options in Python)."""
    typed = command_line()
    if typed != "fmhub train":
        return typed if "--resume" in shlex.split(typed) else f"{typed} --resume"
    from fmhub import options
    from fmhub.train import TrainConfig

    known = {f.name: f for f in options.fields_of(TrainConfig)}
    words = ["fmhub", "train"] + (["-c", str(config_file)] if config_file is not None else [])
    for name, value in flags.items():
        if value is None or name not in known:
            continue
        field = known[name]
        if isinstance(value, bool):
            flag = field.flag if value else field.spec.negative
            words += [flag] if flag else []
        else:
            words += [field.flag, str(value)]
    return shlex.join([*words, "--resume"])


def command_line() -> str:
    """The command as typed, for the run record (``fmhub train`` when called from Python)."""
    if Path(sys.argv[0]).name == "fmhub":
        return shlex.join(["fmhub", *sys.argv[1:]])
    return "fmhub train"
