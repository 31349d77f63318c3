"""``fmhub runs list|show|compare``: training runs recorded by ``fmhub train``.

Runs are read through the Hub client: from the hub server ``--endpoint`` / FMHUB_ENDPOINT names (the runs
the token may see: those whose output repo it may read), else from the embedded store.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from fmhub.cli._common import (EndpointOption, JsonOption, TokenOption, console, err_console, opened_hub,
                               print_json_lines)
from fmhub.client import Hub
from fmhub.errors import InvalidInputError
from fmhub.runs import RUN_STATUSES, MetricPoint, RunInfo

runs_app = typer.Typer(help="Training runs recorded by fmhub train: inputs (repo + commit), config, environment, "
                            "metrics. Read from the hub server --endpoint / FMHUB_ENDPOINT names, else from the "
                            "embedded store.",
                       no_args_is_help=True)

RunArgument = Annotated[str, typer.Argument(help="Run id (r-1a2b3c4d5e6f) or a unique prefix of ≥ 4 hex digits.",
                                            metavar="RUN", show_default=False)]

_STATUS_STYLE = {"running": "yellow", "completed": "green", "failed": "red", "stopped": "dim"}
_EVAL_PREFIXES = ("eval_", "eval/", "val_", "val/", "validation_", "validation/", "test_", "test/")
_NOT_SCORES = ("runtime", "per_second", "epoch", "step")  # bookkeeping that trainers report beside scores
_LOWER_IS_BETTER = ("loss", "perplexity", "error", "runtime", "wer", "cer", "mse", "mae", "rmse", "time")
_EPOCH_TABLE_COLUMNS = 8


def register(app: typer.Typer) -> None:
    app.add_typer(runs_app, name="runs")


# -- formatting -------------------------------------------------------------------------------------


def _when(value: datetime | None, *, seconds: bool = True) -> str:
    return "—" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ" if seconds else
                                                                     "%Y-%m-%d %H:%MZ")


def _duration(value: timedelta) -> str:
    seconds = max(0, int(value.total_seconds()))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


def _value(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return str(value)


def _status(status: str) -> str:
    style = _STATUS_STYLE.get(status)
    return f"[{style}]{status}[/]" if style else escape(status)


def _at(repo: str | None, commit: str | None) -> str:
    if repo is None:
        return "—"
    return escape(repo if commit is None else f"{repo}@{commit[:12]}")


def _flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested config as dotted keys: ``{"optim": {"lr": 1e-4}}`` → ``{"optim.lr": 1e-4}``."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(_flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _main_metric(metrics: dict[str, Any]) -> tuple[str, Any] | None:
    """The validation score a list should show: an F1, else an accuracy, else another eval score, else a loss."""
    scores = {k: v for k, v in metrics.items()
              if k.lower().startswith(_EVAL_PREFIXES) and not any(n in k.lower() for n in _NOT_SCORES)
              and _is_number(v)}
    for wanted in ("f1", "acc", "", "loss"):
        for key in sorted(scores):
            if wanted in key.lower() and (wanted == "loss" or "loss" not in key.lower()):
                return key, scores[key]
    return None


def _lower_is_better(key: str) -> bool:
    return any(word in key.lower() for word in _LOWER_IS_BETTER)


def _final_metrics(hub: Hub, info: RunInfo) -> dict[str, Any]:
    """The run's summary, or (still running, or no summary given) each metric's latest value."""
    return info.summary if info.summary else hub.latest_run_metrics(info.id)


# -- commands ---------------------------------------------------------------------------------------


@runs_app.command("list")
def runs_list(
    limit: Annotated[int, typer.Option("--limit", help="At most this many runs, newest first.")] = 50,
    status: Annotated[str | None, typer.Option(
        "--status", help=f"Only runs with this status: {' | '.join(RUN_STATUSES)}.", show_default=False)] = None,
    task: Annotated[str | None, typer.Option(
        "--task", help="Only runs of this task, e.g. text-classification.", show_default=False)] = None,
    as_json: JsonOption = False,
    endpoint: EndpointOption = None,
    token: TokenOption = None,
) -> None:
    """List training runs, newest first, with their main validation metric."""
    if limit < 1:
        raise InvalidInputError(f"--limit must be at least 1, got {limit}")
    with opened_hub(endpoint, token) as hub:
        infos = hub.list_runs(limit=limit, status=status, task=task)
        finals = {info.id: _final_metrics(hub, info) for info in infos}
    if as_json:  # the run record as the hub's API gives it, and its final metrics
        print_json_lines({**info.to_json(), "final_metrics": finals[info.id]} for info in infos)
        return
    if not infos:
        err_console.print("no runs" + (" match" if status or task else " yet (fmhub train records them)"))
        return
    table = Table("id", "name", "task", "status", "base model", "dataset", "started", "duration", "val metric")
    table.columns[0].no_wrap = True
    for info in infos:
        main = _main_metric(finals[info.id])
        table.add_row(info.id, escape(info.name), escape(info.task), _status(info.status),
                      escape(info.base_model or "—"), escape(info.dataset or "—"),
                      _when(info.started_at, seconds=False), _duration(info.duration),
                      "—" if main is None else escape(f"{main[0]}={_value(main[1])}"))
    console.print(table)


@runs_app.command("show")
def runs_show(
    run: RunArgument,
    endpoint: EndpointOption = None,
    token: TokenOption = None,
) -> None:
    """Everything recorded about a run: inputs, config, environment, latest metrics, metrics per epoch."""
    with opened_hub(endpoint, token) as hub:
        info = hub.get_run(run)
        points = hub.run_metrics(info.id)

    fields = Table(show_header=False, box=None, padding=(0, 2, 0, 0))
    fields.add_column(style="bold", no_wrap=True)
    fields.add_column()
    libraries = ", ".join(f"{name} {version}" for name, version in info.libraries.items())
    hw = info.hardware
    hardware = ", ".join(part for part in (
        hw.get("cpu"), f"{hw['cores']} cores" if "cores" in hw else None,
        f"{hw['ram_gib']} GiB RAM" if "ram_gib" in hw else None,
        ("GPUs: " + (", ".join(hw["gpus"]) or "none")) if "gpus" in hw else None) if part)
    for name, value in (
        ("id", info.id), ("name", escape(info.name)), ("task", escape(info.task)), ("status", _status(info.status)),
        ("command", escape(info.command)), ("base model", _at(info.base_model, info.base_commit)),
        ("dataset", _at(info.dataset, info.dataset_commit)), ("output", _at(info.output, info.output_commit)),
        ("created by", escape(info.created_by or "—")), ("started", _when(info.started_at)),
        ("ended", _when(info.ended_at)), ("duration", _duration(info.duration)),
        ("fmhub", escape(info.code_version)), ("libraries", escape(libraries or "—")),
        ("hardware", escape(hardware or "—")), ("os", escape(str(hw.get("os", "—")))),
    ):
        fields.add_row(name, value)
    console.print(fields)

    if info.config:
        config = Table("config", "value", title="config")
        for key, value in sorted(_flatten(info.config).items()):
            config.add_row(escape(key), escape(_value(value)))
        console.print(config)
    if info.summary:
        summary = Table("metric", "value", title="final metrics")
        for key, value in sorted(info.summary.items()):
            summary.add_row(escape(key), escape(_value(value)))
        console.print(summary)
    if points:
        console.print(_latest_table(points))
    if any(p.epoch is not None for p in points):
        console.print(_epoch_table(points))


def _latest_table(points: list[MetricPoint]) -> Table:
    latest: dict[str, MetricPoint] = {}
    for point in points:  # ordered by step: later points win
        latest[point.key] = point
    table = Table("metric", "value", "step", "epoch", title="latest metrics")
    for key in sorted(latest):
        point = latest[key]
        table.add_row(escape(key), _value(point.value), str(point.step), _value(point.epoch))
    return table


def _epoch_table(points: list[MetricPoint]) -> Table:
    """One row per epoch (epoch 0.5 counts toward epoch 1), each metric's last value in that epoch."""
    by_epoch: dict[int, dict[str, float]] = {}
    for point in points:
        if point.epoch is not None:
            by_epoch.setdefault(max(1, math.ceil(point.epoch - 1e-9)), {})[point.key] = point.value
    keys = sorted({key for values in by_epoch.values() for key in values},
                  key=lambda k: (not k.lower().startswith(_EVAL_PREFIXES), k))[:_EPOCH_TABLE_COLUMNS]
    table = Table("epoch", *(escape(k) for k in keys), title="per epoch (last value in each epoch)")
    for epoch in sorted(by_epoch):
        table.add_row(str(epoch), *(_value(by_epoch[epoch].get(key)) for key in keys))
    return table


@runs_app.command("compare")
def runs_compare(
    run_ids: Annotated[list[str], typer.Argument(
        help="Two or more run ids (or unique prefixes of ≥ 4 hex digits).", metavar="RUN", show_default=False)],
    endpoint: EndpointOption = None,
    token: TokenOption = None,
) -> None:
    """Compare runs side by side: the config values that differ and the final metrics, best in bold green."""
    if len(run_ids) < 2:
        raise InvalidInputError("compare needs at least two runs", hint="e.g. fmhub runs compare r-1a2b r-3c4d")
    with opened_hub(endpoint, token) as hub:
        infos = [hub.get_run(run_id) for run_id in run_ids]
        finals = [_final_metrics(hub, info) for info in infos]

    table = Table("", *(f"{info.id}\n{escape(info.name)}" for info in infos))
    table.columns[0].style = "bold"
    for label, values in (
        ("status", [_status(i.status) for i in infos]),
        ("base model", [_at(i.base_model, i.base_commit) for i in infos]),
        ("dataset", [_at(i.dataset, i.dataset_commit) for i in infos]),
        ("duration", [_duration(i.duration) for i in infos]),
    ):
        table.add_row(label, *values)

    table.add_section()
    configs = [_flatten(info.config) for info in infos]
    missing = object()
    differing = sorted(key for key in {k for c in configs for k in c}
                       if len({json.dumps(c.get(key, missing), sort_keys=True, default=str) for c in configs}) > 1)
    for key in differing:
        table.add_row(escape(key), *(escape(_value(c.get(key))) for c in configs))
    if not differing:
        table.add_row("config", *("identical" for _ in infos))

    table.add_section()
    for key in sorted({k for f in finals for k in f}):
        values = [f.get(key) for f in finals]
        numbers = [v for v in values if _is_number(v)]
        best = (min(numbers) if _lower_is_better(key) else max(numbers)) if len(numbers) > 1 else None
        table.add_row(escape(key), *(f"[bold green]{_value(v)}[/]" if best is not None and _is_number(v) and v == best
                                     else escape(_value(v)) for v in values))
    console.print(table)


@runs_app.command("export")
def runs_export(
    run_ids: Annotated[list[str] | None, typer.Argument(
        help="Runs to export (ids or unique prefixes) [default: the newest --limit runs].", metavar="[RUN]...",
        show_default=False)] = None,
    to: Annotated[tuple[str, str], typer.Option(
        "--to", help="Where to: `mlflow URL` of an MLflow tracking server (mlflow server), e.g. --to mlflow "
                     "http://mlflow:5000. Credentials: MLFLOW_TRACKING_TOKEN, or MLFLOW_TRACKING_USERNAME and "
                     "MLFLOW_TRACKING_PASSWORD.", metavar="KIND URI", show_default=False)] = ("", ""),
    experiment: Annotated[str, typer.Option("--experiment", help="MLflow experiment the runs go to (created if "
                                                                 "missing).")] = "fmhub",
    limit: Annotated[int, typer.Option("--limit", min=1, help="Without RUN: this many runs, newest first.")] = 50,
    as_json: JsonOption = False,
    endpoint: EndpointOption = None,
    token: TokenOption = None,
) -> None:
    """Export runs (config, metric curves, lineage, environment) to an MLflow tracking server.

    Each fmhub run becomes one MLflow run tagged fmhub.run_id; exporting again sends only what is new.

    Example:
        fmhub runs export --to mlflow http://mlflow:5000
        fmhub runs export r-1a2b r-3c4d --to mlflow http://mlflow:5000 --experiment bbc-news
    """
    from fmhub.runs import MlflowExporter

    kind, uri = to
    if kind != "mlflow":
        raise InvalidInputError(f"--to {kind or '(missing)'}: fmhub exports runs to mlflow",
                                hint="e.g. --to mlflow http://mlflow:5000")
    with opened_hub(endpoint, token) as hub, MlflowExporter(uri, experiment=experiment) as mlflow:
        infos = [hub.get_run(run_id) for run_id in run_ids] if run_ids else hub.list_runs(limit=limit)
        done = []
        for info in infos:
            exported = mlflow.export(info, hub.run_metrics(info.id))
            done.append(exported)
            if not as_json:
                what = "created" if exported.created else ("updated" if exported.metrics_sent or
                                                           info.status == "running" else "already exported")
                console.print(f"{info.id} → MLflow run {exported.mlflow_run_id} ({what}, {exported.metrics_sent} "
                              f"metric values)", highlight=False)
    if as_json:
        print_json_lines({"run_id": e.run_id, "mlflow_run_id": e.mlflow_run_id, "experiment_id": e.experiment_id,
                          "metrics_sent": e.metrics_sent, "created": e.created} for e in done)
    elif done:
        console.print(f"{len(done)} run(s) in experiment {experiment!r}: {uri.rstrip('/')}/#/experiments/"
                      f"{done[0].experiment_id}", highlight=False)
    else:
        err_console.print("no runs to export")
