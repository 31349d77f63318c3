"""``fmhub run PIPELINE.yaml``: the lifecycle as one cached, resumable pipeline."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from fmhub.cli._common import EndpointOption, TokenOption, WorkProgress, console, opened_hub, quiet_ml_libraries

_STYLES = {"ran": "green", "cached": "cyan", "failed": "bold red", "not run": "dim"}


def register(app: typer.Typer) -> None:
    app.command("run", no_args_is_help=True)(run_command)


def run_command(
    pipeline_file: Annotated[Path, typer.Argument(help="The pipeline YAML (steps: name → kind and options).",
                                                  show_default=False, metavar="PIPELINE.yaml")],
    start: Annotated[str | None, typer.Option("--from", help="Run this step and every later one again (earlier "
                                                             "ones come from the cache).")] = None,
    only: Annotated[str | None, typer.Option("--only", help="Run only this step again (what it needs comes from "
                                                            "the cache).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Run every step, cached or not.")] = False,
    endpoint: EndpointOption = None,
    token: TokenOption = None,
) -> int:
    """Run a pipeline: import-data, import-model, train, eval, optimize, publish, serve-check steps.

    Every problem in the file (unknown kinds or options, missing references, cycles) is listed with its
    line before anything runs. A step whose resolved options and input commits already produced a version
    is skipped as cached, so a failed run resumes at the first unfinished step and a second run of an
    unchanged pipeline is almost instant.

    Example:
        fmhub run examples/bbc-news/pipeline.yaml
        fmhub run examples/bbc-news/pipeline.yaml --from train
    """
    from fmhub.pipeline import lineage_lines, parse, run_pipeline

    if start is not None and only is not None:
        from fmhub.errors import InvalidInputError

        raise InvalidInputError("--from and --only both given", hint="pass one of them")
    quiet_ml_libraries()
    pipeline = parse(pipeline_file)
    began = time.perf_counter()

    def shown(outcome: Any) -> None:
        style = _STYLES.get(outcome.status, "")
        output = "" if outcome.output is None else f" → {_short(outcome.output)}"
        progress.console.print(f"[{style}]{outcome.status:>7}[/] {escape(outcome.name)} ({outcome.kind}){output}"
                               f"{f' in {outcome.seconds:.1f} s' if outcome.status == 'ran' else ''}",
                               highlight=False)

    outcomes = None
    try:
        with opened_hub(endpoint, token) as hub, WorkProgress() as progress:
            outcomes = run_pipeline(pipeline, hub, start=start, only=only, force=force, progress=progress,
                                    on_step=shown)
    except Exception as exc:
        outcomes = getattr(exc, "outcomes", None)
        if outcomes is not None:
            _summary(pipeline.name, outcomes, time.perf_counter() - began)
        raise
    _summary(pipeline.name, outcomes, time.perf_counter() - began)
    console.print("\nlineage:")
    for line in lineage_lines(outcomes):
        console.print(f"  {escape(line)}", highlight=False)
    return 0


def _summary(name: str, outcomes: list[Any], seconds: float) -> None:
    table = Table(title=f"pipeline {name}: {seconds:.1f} s")
    metrics = {o.name: [f"{k}={v:.4g}" for k, v in list(o.metrics.items())[:2]] for o in outcomes}
    widest = {"output": max((len(_short(o.output)) for o in outcomes if o.output), default=6),
              "key metric": max((len(m) for ms in metrics.values() for m in ms), default=10)}
    for column in ("step", "status", "s", "output", "key metric"):  # kinds: in the lines above
        table.add_column(column, justify="right" if column == "s" else "left", no_wrap=True,
                         min_width=widest.get(column))
    for o in outcomes:
        output = "" if o.output is None else _short(o.output)
        table.add_row(o.name, f"[{_STYLES.get(o.status, '')}]{o.status}[/]",
                      f"{o.seconds:.1f}" if o.status == "ran" else "", output, "\n".join(metrics[o.name]))
    console.print(table)


def _short(output: str) -> str:
    """``repo@commit`` with the commit cut to 12 digits."""
    repo, _, commit = output.partition("@")
    return f"{repo}@{commit[:12]}"
