"""``fmhub explain``: why a model version predicted what it did — attributions per token or image region."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from fmhub.cli._common import EndpointOption, TokenOption, WorkProgress, console, opened_hub, quiet_ml_libraries
from fmhub.errors import InvalidInputError


def register(app: typer.Typer) -> None:
    app.command("explain", no_args_is_help=True)(explain_command)


def explain_command(
    model: Annotated[str, typer.Argument(help="Model version to explain, REPO or REPO@REVISION (any format: torch, "
                                              "ONNX, int8).", show_default=False)],
    text: Annotated[list[str] | None, typer.Option("--text", help="A text to explain (repeatable).")] = None,
    image: Annotated[list[Path] | None, typer.Option("--image", help="An image file to explain (repeatable; image "
                                                                     "classifiers).", exists=True, dir_okay=False)
                     ] = None,
    data: Annotated[str | None, typer.Option("--data", help="Explain rows of this dataset repo, REPO or "
                                                            "REPO@REVISION, instead of --text / --image.")] = None,
    split: Annotated[str, typer.Option("--split", help="Split of --data.")] = "test",
    rows: Annotated[int, typer.Option("--rows", help="How many rows of --data (the first ones).")] = 5,
    column: Annotated[str | None, typer.Option("--column", help="Input column of --data \\[default: the task's: text; "
                                                                "image].")] = None,
    method: Annotated[str | None, typer.Option("--method", help="integrated-gradients (on the embeddings / pixels; "
                                                                "torch weights), occlusion (gradient-free: any "
                                                                "format) or attention-rollout (label-agnostic "
                                                                "baseline) \\[default: integrated-gradients where "
                                                                "the format has gradients, else occlusion].")
                  ] = None,
    label: Annotated[str | None, typer.Option("--label", help="Label to explain \\[default: the predicted one].")
                     ] = None,
    steps: Annotated[int, typer.Option("--steps", help="Integrated-gradients points on the path to start from "
                                                       "(the worst intervals halved until completeness holds).")
                     ] = 4,  # fmhub.explain.DEFAULT_STEPS (not imported: the CLI starts without numpy)
    max_steps: Annotated[int, typer.Option("--max-steps", help="Most integrated-gradients points.")] = 512,
    tolerance: Annotated[float, typer.Option("--tolerance", help="Completeness: attributions must sum to "
                                                                 "f(x) − f(baseline) within this share.")] = 0.05,
    max_length: Annotated[int | None, typer.Option("--max-length", help="Tokens per text \\[default: the model's "
                                                                        "positions, up to 512].")] = None,
    faithfulness: Annotated[bool, typer.Option("--faithfulness", help="Also measure comprehensiveness, sufficiency "
                                                                      "and deletion AUC of each explanation.")
                            ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the explanations as JSON instead.")] = False,
    html: Annotated[Path | None, typer.Option("--html", help="Also write a self-contained HTML page of the "
                                                             "explanations here, for sharing.", dir_okay=False)
                    ] = None,
    threads: Annotated[int | None, typer.Option("--threads", help="CPU threads \\[default: the cores available].")
                       ] = None,
    endpoint: EndpointOption = None,
    token: TokenOption = None,
) -> int:
    """Explain a model version's predictions: attributions of the label to each token (texts) or image region.

    The terminal shows each text with its tokens coloured by attribution (green supports the label, red speaks
    against it) and the top tokens; images as a grid of regions. Integrated gradients report their
    completeness (attributions sum to f(x) − f(baseline)); --faithfulness adds the ERASER measures.

    Example:
        fmhub explain acme/bbc-minilm@v1 --text "Shares rose on Monday" --html why.html
        fmhub explain acme/bbc-minilm-int8 --data acme/bbc-news --split test --rows 3 --method occlusion
    """
    import torch

    import fmhub
    from fmhub.explain import ExplainArgs, dataset_rows, explain, to_html

    given = sum(x is not None and x != [] for x in (text, image, data))
    if given != 1:
        raise InvalidInputError("explain needs exactly one of --text, --image or --data",
                                hint='e.g. --text "Shares rose on Monday", or --data acme/bbc-news --rows 3')
    args = ExplainArgs(method=method, label=label, steps=steps, max_steps=max_steps, tolerance=tolerance,
                       max_length=max_length, faithfulness=faithfulness)
    args.validate()
    quiet_ml_libraries()
    if threads is not None:
        torch.set_num_threads(threads)
    gold: list[str | None] = []
    with opened_hub(endpoint, token) as hub:
        loaded = fmhub.load(model, hub=hub, threads=threads)
        if data is not None:
            values, gold = dataset_rows(hub, data, split, rows, loaded.task, column)
        elif image:
            values = [p.read_bytes() for p in image]
        else:
            values = list(text or [])
    with WorkProgress() as progress:
        results = explain(loaded, values, args, on_row=progress("explaining", len(values)))
    if as_json:
        console.print_json(json.dumps({"model": {"repo": loaded.repo, "commit": loaded.commit,
                                                 "format": loaded.format},
                                       "explanations": [{**e.to_dict(), "faithfulness": m,
                                                         **({"gold": gold[i]} if gold else {})}
                                                        for i, (e, m) in enumerate(results)]}))
    else:
        for i, (explanation, measured) in enumerate(results):
            _print(explanation, measured, gold[i] if gold else None)
    if html is not None:
        html.write_text(to_html(results, f"{loaded.repo}@{loaded.commit[:12]} ({loaded.format})"), encoding="utf-8")
        if not as_json:
            console.print(f"HTML: {html}")
    return 0


def _print(explanation: Any, measured: dict[str, float] | None, gold: str | None) -> None:
    from fmhub.explain import colour, scale_of

    shown = f" · gold {gold}" if gold is not None else ""
    console.rule(f"{explanation.label} (p = {explanation.probability:.3f}) · predicted {explanation.predicted}"
                 f"{shown} · {explanation.method}", style="dim")
    scale = scale_of(explanation.scores)

    def style(score: float) -> str:
        r, g, b = colour(score, scale)
        return f"black on rgb({r},{g},{b})"

    if explanation.grid is not None:  # images: one cell per region
        rows, columns = explanation.grid
        grid = Text()
        for r in range(rows):
            for c in range(columns):
                grid.append("  ", style=style(explanation.scores[r * columns + c]))
            grid.append("\n")
        console.print(grid, end="")
    elif explanation.spans is not None:
        body = Text(explanation.source)
        at = 0
        for (start, end), score in zip(explanation.spans, explanation.scores, strict=True):
            if start >= at and end > start:
                body.stylize(style(score), start, end)
                at = end
        console.print(body)
    else:
        body = Text()
        for unit, score in zip(explanation.units, explanation.scores, strict=True):
            body.append(unit, style=style(score))
            body.append(" ")
        console.print(body)
    table = Table(show_header=True, box=None, pad_edge=False)
    table.add_column(f"top {explanation.kind}")
    table.add_column("attribution", justify="right")
    for unit, score in explanation.top(5):
        table.add_row(unit, f"{score:+.4f}")
    console.print(table)
    check = explanation.completeness
    if check is not None:
        verdict = "[green]holds[/]" if check.holds else "[red]does not hold[/]"
        console.print(f"completeness {verdict}: sum {check.attributions_sum:+.4f} vs f(x) − f(baseline) "
                      f"{check.expected:+.4f} (error {check.error:.4f}, {check.steps} steps)")
    if measured:
        console.print("faithfulness: " + ", ".join(f"{k.replace('_', ' ')} {v:.4f}" for k, v in measured.items()))
