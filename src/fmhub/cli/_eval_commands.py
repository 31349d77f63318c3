"""``fmhub eval``, ``fmhub compare`` and ``fmhub evals``: report cards of model versions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from fmhub.cli._common import (EndpointOption, JsonOption, TokenOption, WorkProgress, console, err_console,
                               opened_hub, print_json_lines, quiet_ml_libraries)
from fmhub.errors import InvalidInputError


def register(app: typer.Typer) -> None:
    app.command("eval", no_args_is_help=True)(_with_explain_options(eval_command))
    app.command("compare", no_args_is_help=True)(compare_command)
    app.command("evals")(evals_command)


DataOption = Annotated[str, typer.Option("--data", help="Dataset repo, REPO or REPO@REVISION (from fmhub data "
                                                        "import).", show_default=False)]
SplitOption = Annotated[str, typer.Option("--split", help="Split to evaluate on.")]
SkipOption = Annotated[list[str] | None, typer.Option("--skip", help="Leave a section out: robustness, slices, "
                                                                     "efficiency, baseline or explanations "
                                                                     "(repeatable).")]


def _with_explain_options(command: Any) -> Any:
    """``command``'s own options, then the explanations section's (defined once: ``fmhub.explain.ExplainOptions``)."""
    import inspect

    from fmhub.explain import ExplainOptions
    from fmhub.options import parameters, with_signature

    explain = parameters(ExplainOptions)
    names = {p.name for p in explain}  # already there when the commands are registered again (a new root group)
    own = [p for p in inspect.signature(command, eval_str=True).parameters.values()
           if p.kind != p.VAR_KEYWORD and p.name not in names]
    return with_signature(command, [*own, *explain])


def _explain_options(given: dict[str, Any]) -> Any:
    from fmhub.explain import ExplainOptions
    from fmhub.options import from_flat

    return from_flat(ExplainOptions, {k: v for k, v in given.items() if v is not None}, cli=True)


def _skip(values: list[str] | None) -> tuple[str, ...]:
    return tuple(part.strip() for value in values or [] for part in value.split(",") if part.strip())


def _number(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 1000 else f"{value:,.0f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def eval_command(
    model: Annotated[str, typer.Argument(help="Model repo to evaluate, REPO or REPO@REVISION.", show_default=False)],
    data: DataOption,
    split: SplitOption = "test",
    slice_by: Annotated[str | None, typer.Option("--slice-by", help="Also report metrics per value of this dataset "
                                                                    "column (length buckets are always reported).")
                        ] = None,
    push: Annotated[bool, typer.Option("--push", help="Commit the card (eval/<dataset>/<split>/) and the model card's "
                                                     "evaluation section to the model repo, and index it.")] = False,
    output_dir: Annotated[Path | None, typer.Option("--output-dir", help="Where to write eval/<dataset>/<split>/ "
                                                    "\\[default: $FMHUB_HOME/evals/<model>--<commit>].")] = None,
    skip: SkipOption = None,
    text_column: Annotated[str | None, typer.Option("--text-column", help="Column of the inputs \\[default: the task's: "
                                                                          "text; token classification: tokens; image "
                                                                          "classification: image].")] = None,
    label_column: Annotated[str | None, typer.Option("--label-column", help="Column of the labels \\[default: label; "
                                                                            "token classification: tags].")] = None,
    train_split: Annotated[str, typer.Option("--train-split", help="Split the baseline is trained on.")] = "train",
    max_length: Annotated[int | None, typer.Option("--max-length", help="Tokens per text \\[default: the model's "
                                                   "training max length, else its positions up to 512].")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Rows per forward pass.")] = 32,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the perturbations and masked-LM positions.")] = 0,
    latency_runs: Annotated[int, typer.Option("--latency-runs", help="Timed batch-1 runs for latency p50/p95.")
                            ] = 20,
    threads: Annotated[int | None, typer.Option("--threads", help="Torch CPU threads \\[default: the cores "
                                                                  "available].")] = None,
    endpoint: EndpointOption = None,
    token: TokenOption = None,
    **explain: Any,
) -> int:
    """Build the standard report card of a model version on a dataset split.

    Metrics (with per-class scores and confusion matrix), calibration (ECE, 15 bins), robustness under
    seeded perturbations (texts: typos, case, whitespace, truncation; images: noise, blur, brightness,
    rotation, JPEG), slices, efficiency and a cheap baseline (TF-IDF or logistic regression on pixels);
    every prediction is kept in predictions.parquet so any metric can be recomputed.

    Example:
        fmhub eval acme/bbc-minilm@v1 --data acme/bbc-news@v1 --split test --push
    """
    from fmhub.evaluate import EvalConfig, evaluate

    quiet_ml_libraries()
    config = EvalConfig(model=model, data=data, split=split, train_split=train_split, text_column=text_column,
                        label_column=label_column, slice_by=slice_by, max_length=max_length, batch_size=batch_size,
                        seed=seed, latency_runs=latency_runs, skip=_skip(skip), threads=threads,
                        explain=_explain_options(explain))
    config.validate()
    with opened_hub(endpoint, token) as hub, WorkProgress() as progress:
        outcome = evaluate(config, hub, output_dir=output_dir, push=push, progress=progress)
    _print_report(outcome.report)
    folder = outcome.folder / outcome.files[0].rsplit("/", 1)[0]
    console.print(f"report card: {folder}")
    if outcome.commit:
        console.print(f"committed {outcome.commit} to {outcome.report['provenance']['model']['repo']}")
    return 0


def _print_report(report: dict[str, Any]) -> None:
    prov = report["provenance"]
    table = Table(title=f"{prov['model']['repo']}@{prov['model']['commit'][:12]} on {prov['dataset']['repo']} "
                        f"({prov['dataset']['split']}, {prov['dataset']['rows']} rows)")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("baseline", justify="right")
    baseline = report["baseline"].get("metrics", {})
    for key, value in report["metrics"].items():
        table.add_row(key, _number(value), _number(baseline.get(key)))
    if report["calibration"].get("ece") is not None:
        table.add_row("ece (15 bins)", _number(report["calibration"]["ece"]), "")
    for perturbation in report["robustness"].get("perturbations", []):
        if not perturbation.get("applicable", True):
            table.add_row(f"Δ · {perturbation['name']}", "n/a", escape(perturbation.get("note", "")))
            continue
        for key, delta in perturbation["delta"].items():
            table.add_row(f"Δ {key} · {perturbation['name']}", "—" if delta is None else f"{delta:+.4f}", "")
    efficiency = report["efficiency"]
    if "latency_ms" in efficiency:
        table.add_row("latency p50 / p95 (ms, batch 1)",
                      f"{efficiency['latency_ms']['p50']:.1f} / {efficiency['latency_ms']['p95']:.1f}", "")
        table.add_row(f"throughput (samples/s, batch {efficiency['throughput']['batch_size']})",
                      f"{efficiency['throughput']['samples_per_second']:.1f}", "")
    for grouping in report["slices"] if isinstance(report["slices"], list) else []:
        gap = grouping["largest_gap"]
        if gap:
            table.add_row(f"largest {gap['metric']} gap by {grouping['by'].removeprefix('column:')}",
                          f"{gap['gap']:.4f}", escape(f"{gap['best']} vs {gap['worst']}"))
    explained = report.get("explanations") or {}
    for method, measured in (explained.get("faithfulness") or {}).items():
        table.add_row(f"comprehensiveness · {method}", _number(measured["comprehensiveness"]), "")
    if (explained.get("completeness") or {}).get("rows"):
        check = explained["completeness"]
        table.add_row("IG completeness held (rows)", f"{check['holds']} / {check['rows']}", "")
    if (explained.get("parent") or {}).get("summary"):
        table.add_row("explanations vs parent", escape(explained["parent"]["summary"]), "")
    console.print(table)


def compare_command(
    models: Annotated[list[str], typer.Argument(help="Two or more model versions, REPO@REVISION (or REPO).",
                                                show_default=False)],
    data: DataOption,
    split: SplitOption = "test",
    skip: SkipOption = None,
    endpoint: EndpointOption = None,
    token: TokenOption = None,
) -> int:
    """Compare model versions on one dataset split: a table of metrics, deltas to the first, best highlighted.

    A version's pushed report card is reused when the index has one for that model (the commit given, or
    the weights commit whose card ``eval --push`` committed) on exactly that dataset commit and split; other
    versions are evaluated now (not pushed), and compare says so, with the sections --skip leaves out.

    Example:
        fmhub compare acme/bbc-minilm@v1 acme/bbc-minilm@v2 --data acme/bbc-news@v1
    """
    from fmhub.evaluate import LOWER_IS_BETTER, EvalConfig, evaluate, flat_metrics, stored_report
    from fmhub.refs import split_ref

    if len(models) < 2:
        raise InvalidInputError("compare needs at least two model versions", hint="e.g. acme/m@v1 acme/m@v2")
    quiet_ml_libraries()
    reports: list[dict[str, Any]] = []
    with opened_hub(endpoint, token) as hub, WorkProgress() as progress:
        data_repo, data_rev = split_ref(data, "--data")
        data_commit = hub.repo_info(data_repo, repo_type="dataset", revision=data_rev).commit.oid
        for ref in models:
            repo, revision = split_ref(ref, "MODEL")
            commit = hub.repo_info(repo, revision=revision).commit.oid
            stored = stored_report(hub, repo, commit, data_commit, split)
            if stored is None:
                progress.console.print(_evaluating_now(hub, repo, commit, data_repo, data_commit, split, _skip(skip)),
                                       highlight=False)
                stored = evaluate(EvalConfig(model=f"{repo}@{commit}", data=f"{data_repo}@{data_commit}", split=split,
                                             skip=_skip(skip)), hub, progress=progress).report
            reports.append(stored)
    done = {r["task"] for r in reports}
    if len(done) > 1:
        raise InvalidInputError(f"these models do different tasks ({', '.join(sorted(done))})",
                                hint="compare versions of models with the same head")
    flats = [flat_metrics(r) for r in reports]
    keys = [k for k in dict.fromkeys(k for f in flats for k in f)]
    table = Table(title=f"{data_repo}@{data_commit[:12]} · {split}")
    table.add_column("metric")
    for i, ref in enumerate(models):
        table.add_column(escape(ref) + ("" if i == 0 else " (Δ)"), justify="right")
    for key in keys:
        values = [f.get(key) for f in flats]
        present = [v for v in values if v is not None]
        best = (min(present) if key in LOWER_IS_BETTER or key.startswith(("latency", "ece")) else max(present)) \
            if len(present) > 1 and len(set(present)) > 1 else None
        cells = []
        for i, value in enumerate(values):
            text = _number(value)
            if i and value is not None and values[0] is not None:
                text += f" ({value - values[0]:+.4g})"
            cells.append(f"[bold green]{text}[/]" if best is not None and value == best else text)
        table.add_row(key, *cells)
    console.print(table)
    console.print(json.dumps({"models": models, "dataset": f"{data_repo}@{data_commit}", "split": split,
                              "metrics": flats}), style="dim", highlight=False)
    return 0


def _evaluating_now(hub: Any, repo: str, commit: str, data_repo: str, data_commit: str, split: str,
                    skip: tuple[str, ...]) -> str:
    """Why compare evaluates a version itself, and what that card will lack."""
    from fmhub.evaluations import same_weights

    infos = hub.list_evaluations(model=repo, limit=10_000)
    weights = same_weights(infos, commit)
    other = sorted({f"{i.dataset}@{i.dataset_commit[:12]} · {i.split}" for i in infos if i.model_commit in weights})
    why = f"{repo}@{commit[:12]}: no pushed report card on {data_repo}@{data_commit[:12]} · {split}"
    if other:
        why += f" (its cards are on {', '.join(other)})"
    lacks = f"; it will lack {', '.join(skip)} (--skip)" if skip else ""
    return f"{why}; evaluating it now, not pushed{lacks}"


def evals_command(
    model: Annotated[str | None, typer.Argument(help="Only this model repo.", show_default=False)] = None,
    data: Annotated[str | None, typer.Option("--data", help="Only this dataset repo.")] = None,
    split: Annotated[str | None, typer.Option("--split", help="Only this split.")] = None,
    metric: Annotated[str | None, typer.Option("--metric", help="Sort by this metric, best first (e.g. accuracy, "
                                                                "f1, perplexity, ece, latency_p50_ms).")] = None,
    limit: Annotated[int, typer.Option("--limit", help="At most this many rows.", min=1)] = 50,
    as_json: JsonOption = False,
    endpoint: EndpointOption = None,
    token: TokenOption = None,
) -> int:
    """List pushed report cards (the hub's index): model versions by metric, best first."""
    from fmhub import tasks
    from fmhub.evaluate import LOWER_IS_BETTER

    with opened_hub(endpoint, token) as hub:
        rows = hub.list_evaluations(model=model, dataset=data, split=split, limit=10_000)
    if metric is not None:
        known = {k for r in rows for k in r.metrics}
        if rows and metric not in known:
            raise InvalidInputError(f"--metric {metric!r} is in none of these cards",
                                    hint=f"choose from {', '.join(sorted(known))}")
        lower = metric in LOWER_IS_BETTER or metric.startswith(("latency", "ece"))
        rows.sort(key=lambda r: (metric not in r.metrics, (r.metrics.get(metric, 0.0) * (1 if lower else -1))))
    rows = rows[:limit]
    if as_json:
        print_json_lines(row.to_json() for row in rows)
        return 0
    if not rows:
        err_console.print("no pushed report cards" + (" match" if model or data or split else
                                                     " yet: fmhub eval MODEL --data DATA --push"))
        return 0
    table = Table(title="Report cards")
    table.add_column("model", overflow="fold")
    table.add_column("commit", no_wrap=True, min_width=12)
    for column in ("dataset", "split", "metrics", "created"):
        table.add_column(column, overflow="fold")
    for row in rows:
        shown = [metric] if metric else list(tasks.get(row.task).report_metrics if row.task in tasks.names() else ())
        table.add_row(escape(row.model), row.model_commit[:12], escape(f"{row.dataset}@{row.dataset_commit[:7]}"),
                      escape(row.split), ", ".join(f"{k} {_number(row.metrics.get(k))}" for k in shown),
                      row.created_at.strftime("%Y-%m-%d %H:%MZ"))
    console.print(table)
    return 0
