"""``fmhub optimize …``: smaller and faster variants of a model version, each a new version naming its parent."""

from __future__ import annotations

import inspect
import json
from typing import Annotated, Any

import typer
from rich.table import Table

from fmhub.cli._common import (EndpointOption, TokenOption, WorkProgress, console, opened_hub,
                               quiet_ml_libraries)

optimize_app = typer.Typer(help="Make a model smaller or faster; every variant is a new model version whose card "
                                "names its parent and records how it was made.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """One ``fmhub optimize <method>`` command per method of the table (``fmhub.optimize._methods``)."""
    from fmhub.optimize._methods import METHODS

    for method in METHODS.values():
        optimize_app.command(method.name, no_args_is_help=True)(_command(method))
    optimize_app.command("auto", no_args_is_help=True)(_auto_command())
    app.add_typer(optimize_app, name="optimize")


def _command(method: Any) -> Any:
    """The command of one method: its parent (the MODEL argument, or ``--teacher``), ``--output``, its options."""
    from fmhub.options import parameters, with_signature

    model_help = "The parent model, REPO or REPO@REVISION." if method.model_flag is None else \
        "The teacher: a classifier, REPO or REPO@REVISION."
    model_info = typer.Argument(help=model_help, show_default=False) if method.model_flag is None else \
        typer.Option(method.model_flag, help=model_help, show_default=False)
    params = [
        inspect.Parameter("model", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Annotated[str, model_info]),
        inspect.Parameter("output", inspect.Parameter.KEYWORD_ONLY, annotation=Annotated[str, typer.Option(
            "--output", help="Repo of the variant (created if missing).", show_default=False)]),
        *parameters(method.options),
        inspect.Parameter("endpoint", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=EndpointOption),
        inspect.Parameter("token", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=TokenOption),
    ]

    def command(*, model: str, output: str, endpoint: str | None, token: str | None, **values: Any) -> int:
        from fmhub.cli._train_commands import command_line
        from fmhub.optimize._methods import run_method

        quiet_ml_libraries()
        given = {k: v for k, v in values.items() if v is not None}
        with opened_hub(endpoint, token) as hub, WorkProgress(method.trains or "train") as progress:
            outcome = run_method(method.name, model, output, given, hub=hub, progress=progress, cli=True,
                                 on_step=progress.update, on_metrics=progress.metrics, command=command_line())
        return _committed(outcome, method.describe(outcome))

    examples = "\n".join(f"    {line}" for example in method.examples for line in example.splitlines())
    command.__doc__ = f"{method.summary}\n\nExample:\n{examples}\n"
    command.__name__ = f"{method.name.replace('-', '_')}_command"
    return with_signature(command, params)


def _auto_command() -> Any:
    """``fmhub optimize auto``: its parent, ``--output`` and the options of ``AutoOptions``."""
    from fmhub.optimize._auto import AutoOptions
    from fmhub.options import parameters, with_signature

    params = [
        inspect.Parameter("model", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Annotated[str, typer.Argument(
            help="The parent model (a classifier), REPO or REPO@REVISION.", show_default=False)]),
        inspect.Parameter("output", inspect.Parameter.KEYWORD_ONLY, annotation=Annotated[str, typer.Option(
            "--output", help="Repo of the pick (created if missing); candidates go to <output>-auto-<name>.",
            show_default=False)]),
        *parameters(AutoOptions),
        inspect.Parameter("endpoint", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=EndpointOption),
        inspect.Parameter("token", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=TokenOption),
    ]

    def command(*, model: str, output: str, endpoint: str | None, token: str | None, **values: Any) -> int:
        from fmhub.cli._train_commands import command_line
        from fmhub.optimize._auto import NoPickError, auto_optimize

        quiet_ml_libraries()
        given = {k: v for k, v in values.items() if v is not None}
        with opened_hub(endpoint, token) as hub, WorkProgress("train (candidate)") as progress:
            def tell(row: dict[str, Any]) -> None:
                progress.console.print(_candidate_line(row), highlight=False)

            try:
                outcome = auto_optimize(model, output, hub=hub, progress=progress, on_candidate=tell,
                                        on_step=progress.update, on_metrics=progress.metrics,
                                        command=command_line(), **given)
            except NoPickError as exc:
                _print_search(exc.summary)
                raise
        _print_search(outcome.search)
        pick = outcome.search["pick"]
        console.print(f"committed {outcome.commit} to {outcome.repo}: {pick['name']} "
                      f"(from {pick['ref']}), the search in auto/search.json and auto/search.png")
        if outcome.report is not None:
            _print_comparison(outcome.report)
            console.print(f"report card committed {outcome.card_commit}")
        console.print(json.dumps({"commit": outcome.commit, "card_commit": outcome.card_commit,
                                  "pick": pick["name"], "candidate": pick["ref"],
                                  "parent": (outcome.report or {}).get("parent")}), style="dim", highlight=False)
        return 0

    command.__doc__ = (
        "Find the fastest variant of a classifier within an accuracy budget; commit it with its report card.\n\n"
        "Builds candidates — chains of the optimize methods: ONNX fp32; int8 (ONNX dynamic per channel and per "
        "tensor, static, PyTorch); distilled students, alone and int8; head- and neuron-pruned models, alone and "
        "int8 — measures each on the validation split at every --max-lengths value (accuracy, batch-1 latency, "
        "batch-32 throughput, size), keeps the Pareto front, picks the best by --objective within --max-drop "
        "points, evaluates only the pick on the test split and commits it to --output with the whole search "
        "(auto/search.json, auto/search.png). Steps built before (same parent commit, method and options) are "
        "reused.\n\nExample:\n    fmhub optimize auto acme/bbc-minilm@v1 --max-drop 0.5 --budget-minutes 30 "
        "--output acme/bbc-minilm-fast\n")
    command.__name__ = "auto_command"
    return with_signature(command, params)


def _candidate_line(row: dict[str, Any]) -> str:
    """One line per candidate as the search goes: its figures against the parent, or why it has none."""
    base = row["parent"]
    if "accuracy" not in row:
        return f"  {row['name']}: {row['status']}"
    paired = f"; lost {row['lost']}, won {row['won']} rows" if "lost" in row else ""
    return (f"  {row['name']}: accuracy {row['accuracy']:.2%} ({(row['accuracy'] - base['accuracy']) * 100:+.2f} "
            f"points{paired}), batch-1 {row['latency_ms']:.2f} ms ({base['latency_ms'] / row['latency_ms']:.2f}×), "
            f"batch-32 {row['throughput']:.1f} rows/s, {row['size_mb']:.1f} MB — {row['status']}"
            + (f" in {row['build_seconds']:.0f} s" if row["status"] == "built" else ""))


def _print_search(summary: dict[str, Any]) -> None:
    """The search as a table: the parent, every measured candidate (fastest first), the front and the pick."""
    from fmhub.optimize._auto import resolution_note

    base = summary["parent"]
    table = Table(title=f"optimize auto on {summary['split']} of {summary['data']} (objective: {summary['objective']}"
                        f", at most {summary['max_drop']:g} points lost)")
    for column in ("candidate", "length", "accuracy", "Δ points", "lost/won", "batch-1 ms", "speed-up",
                   "batch-32 rows/s", "MB", "", "status"):
        table.add_column(column, justify="left" if column in ("candidate", "status", "") else "right",
                         overflow="fold")
    key = (lambda r: r["latency_ms"]) if summary["objective"] == "latency" else (lambda r: -r["throughput"])
    for r in [base, *sorted(summary["candidates"], key=key)]:
        table.add_row(r["name"], str(r["max_length"] or ""), f"{r['accuracy']:.2%}",
                      f"{(r['accuracy'] - base['accuracy']) * 100:+.2f}",
                      f"{r['lost']}/{r['won']}" if "lost" in r else "", f"{r['latency_ms']:.2f}",
                      f"{base['latency_ms'] / r['latency_ms']:.2f}×", f"{r['throughput']:.1f}",
                      f"{r['size_mb']:.1f}", "★ pick" if r.get("picked") else ("front" if r.get("front") else ""),
                      r["status"], style="bold green" if r.get("picked") else None)
    for r in summary.get("unmeasured", []):
        table.add_row(r["name"], "", "", "", "", "", "", "", "", "", r["status"], style="dim")
    console.print(table)
    note = resolution_note(summary)
    if note:
        console.print(f"note: {note}", style="yellow", highlight=False)


def _committed(outcome: Any, what: str) -> int:
    parity = outcome.variant.get("parity")  # a distilled student is compared by its report card only
    checked = "" if parity is None else (f"; against the parent on {parity['inputs']}: argmax agreement "
                                         f"{parity['argmax_agreement']:.1%}, max |Δ logit| "
                                         f"{parity['max_abs_logit_diff']:.2e}")
    console.print(f"committed {outcome.commit} to {outcome.repo}: {what}{checked}")
    if outcome.report is not None:
        _print_comparison(outcome.report)
        console.print(f"report card committed {outcome.card_commit}")
    console.print(json.dumps({"commit": outcome.commit, "card_commit": outcome.card_commit,
                              "variant": outcome.variant, "parent": (outcome.report or {}).get("parent")}),
                  style="dim", highlight=False)
    return 0


def _print_comparison(report: dict[str, Any]) -> None:
    parent = report["parent"]
    dataset = report["provenance"]["dataset"]
    table = Table(title=f"variant vs parent {parent['repo']}@{parent['commit'][:12]} on {dataset['repo']} "
                        f"({dataset['split']})")
    for column in ("measure", "parent", "variant", "change"):
        table.add_column(column, justify="left" if column == "measure" else "right")
    for key, value in report["metrics"].items():
        before, delta = parent["metrics"].get(key), parent["delta"].get(key)
        table.add_row(key, "—" if before is None else f"{before:.4f}", "—" if value is None else f"{value:.4f}",
                      "—" if delta is None else f"{delta:+.4f}")
    for key, name in (("size_ratio", "size (weights)"), ("speedup", "batch-1 speed-up (p50)"),
                      ("throughput_ratio", "batch-32 throughput")):
        if parent.get(key) is not None:
            table.add_row(name, "", "", f"{parent[key]:.2f}×")
    console.print(table)


