"""``fmhub optimize …``: smaller and faster variants of a model version, each a new version naming its parent."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table

from fmhub.cli._common import (EndpointOption, TokenOption, WorkProgress, console, opened_hub,
                               quiet_ml_libraries)

optimize_app = typer.Typer(help="Make a model smaller or faster; every variant is a new model version whose card "
                                "names its parent and records how it was made.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(optimize_app, name="optimize")


ModelArgument = Annotated[str, typer.Argument(help="The parent model, REPO or REPO@REVISION.", show_default=False)]
OutputOption = Annotated[str, typer.Option("--output", help="Repo of the variant (created if missing).",
                                           show_default=False)]
DataOption = Annotated[str | None, typer.Option("--data", help="Dataset whose rows check the variant against its "
                                                               "parent \\[default: the parent's training dataset].")]
PrivateOption = Annotated[bool, typer.Option("--private", help="Create the output repo private.")]
EvalOption = Annotated[bool, typer.Option("--eval/--no-eval", help="Push the variant's report card with its deltas "
                                                                  "against the parent's (parent card reused when "
                                                                  "pushed).")]
EvalDataOption = Annotated[str | None, typer.Option("--eval-data", help="Dataset of the report cards \\[default: the "
                                                                        "parent's training dataset].")]
EvalSplitOption = Annotated[str, typer.Option("--eval-split", help="Split of the report cards.")]
EvalSkipOption = Annotated[list[str] | None, typer.Option("--eval-skip", help="Report card sections to leave out: "
                                                          "robustness, slices, efficiency, baseline.")]


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


def _eval_parts(skip: list[str] | None) -> tuple[str, ...]:
    return tuple(p.strip() for value in skip or [] for p in value.split(",") if p.strip())


def _eval_kwargs(run: bool, data: str | None, split: str, skip: list[str] | None, progress: Any) -> dict[str, Any]:
    return {"report": run, "eval_data": data, "eval_split": split, "eval_skip": _eval_parts(skip),
            "progress": progress}


@optimize_app.command("export-onnx", no_args_is_help=True)
def export_onnx_command(
    model: ModelArgument,
    output: OutputOption,
    data: DataOption = None,
    opset: Annotated[int, typer.Option("--opset", help="ONNX opset (17 or more).")] = 17,
    tolerance: Annotated[float, typer.Option("--tolerance", help="Largest allowed absolute logit difference from "
                                                                 "the parent on real rows.")] = 1e-3,
    optimize: Annotated[bool, typer.Option("--optimize/--no-optimize", help="Run ONNX Runtime's graph optimizer "
                                                                           "(attention, layer norm, GELU fusions).")
                        ] = True,
    max_length: Annotated[int, typer.Option("--max-length", help="Tokens per row of the parity check.", min=8)] = 128,
    private: PrivateOption = False,
    run_eval: EvalOption = True,
    eval_data: EvalDataOption = None,
    eval_split: EvalSplitOption = "test",
    eval_skip: EvalSkipOption = None,
    endpoint: EndpointOption = None,
    token: TokenOption = None,
) -> int:
    """Export a transformers model to ONNX (dynamic batch and sequence axes) and commit it to --output.

    The export is checked against the parent on real rows (max abs logit difference and argmax
    agreement, recorded in the card); beyond --tolerance nothing is pushed.

    Example:
        fmhub optimize export-onnx acme/bbc-minilm@v1 --output acme/bbc-minilm-onnx
    """
    from fmhub.optimize import export_onnx

    quiet_ml_libraries()
    with opened_hub(endpoint, token) as hub, WorkProgress() as progress:
        outcome = export_onnx(model, output, data=data, opset=opset, tolerance=tolerance, optimize=optimize,
                              max_length=max_length, private=private, hub=hub,
                              **_eval_kwargs(run_eval, eval_data, eval_split, eval_skip, progress))
    return _committed(outcome, f"ONNX opset {opset}, {outcome.variant['graph_optimization']}")


@optimize_app.command("quantize", no_args_is_help=True)
def quantize_command(
    model: ModelArgument,
    output: OutputOption,
    method: Annotated[str, typer.Option("--method", help="Quantization method: dynamic-int8 (int8 weights, "
                                                         "activations quantized at run time).")] = "dynamic-int8",
    backend: Annotated[str, typer.Option("--backend", help="onnx: ONNX Runtime int8 graph (exports a torch parent "
                                                           "first); torch: PyTorch int8 Linear layers, saved as "
                                                           "safetensors.")] = "onnx",
    data: DataOption = None,
    min_agreement: Annotated[float, typer.Option("--min-agreement", help="Least share of argmax decisions that must "
                                                                         "match the parent's on real rows.")] = 0.9,
    max_length: Annotated[int, typer.Option("--max-length", help="Tokens per row of the check.", min=8)] = 128,
    private: PrivateOption = False,
    run_eval: EvalOption = True,
    eval_data: EvalDataOption = None,
    eval_split: EvalSplitOption = "test",
    eval_skip: EvalSkipOption = None,
    endpoint: EndpointOption = None,
    token: TokenOption = None,
) -> int:
    """Quantize a model to int8 and commit the variant to --output (loaded back with fmhub.load).

    Example:
        fmhub optimize quantize acme/bbc-minilm@v1 --method dynamic-int8 --backend onnx --output acme/bbc-minilm-int8
    """
    from fmhub.optimize import quantize

    quiet_ml_libraries()
    with opened_hub(endpoint, token) as hub, WorkProgress() as progress:
        outcome = quantize(model, output, method=method, backend=backend, data=data, min_agreement=min_agreement,
                           max_length=max_length, private=private, hub=hub,
                           **_eval_kwargs(run_eval, eval_data, eval_split, eval_skip, progress))
    return _committed(outcome, f"{method} ({backend})")


@optimize_app.command("prune", no_args_is_help=True)
def prune_command(
    model: ModelArgument,
    output: OutputOption,
    sparsity: Annotated[float, typer.Option("--sparsity", help="Share to remove, in (0, 1): of the Linear weights "
                                                               "(unstructured), or of each layer's FFN neurons or "
                                                               "attention heads.")] = 0.5,
    structured: Annotated[str | None, typer.Option("--structured", help="neurons: remove whole feed-forward neurons "
                                                                        "(plain transformers loads the result); heads: "
                                                                        "remove whole attention heads (fmhub.load "
                                                                        "loads it); both smaller and faster. Default: "
                                                                        "unstructured magnitude pruning.")] = None,
    data: Annotated[str | None, typer.Option("--data", help="Dataset of the check and of the recovery fine-tune "
                                                            "\\[default: the parent's training dataset].")] = None,
    max_length: Annotated[int, typer.Option("--max-length", help="Tokens per row of the check and the fine-tune.",
                                            min=8)] = 128,
    finetune_steps: Annotated[int, typer.Option("--finetune-steps", help="Recover accuracy with N optimizer steps "
                                                                         "(batch 16) on --data, tracked as a run; "
                                                                         "pruned weights stay zero. 0: none.",
                                                min=0)] = 0,
    finetune_learning_rate: Annotated[float, typer.Option("--finetune-learning-rate", help="Peak learning rate of "
                                                                                           "the recovery fine-tune.")
                                      ] = 5e-5,
    private: PrivateOption = False,
    run_eval: EvalOption = True,
    eval_data: EvalDataOption = None,
    eval_split: EvalSplitOption = "test",
    eval_skip: EvalSkipOption = None,
    endpoint: EndpointOption = None,
    token: TokenOption = None,
) -> int:
    """Prune a model and commit the variant (safetensors) to --output.

    Example:
        fmhub optimize prune acme/bbc-minilm@v1 --sparsity 0.5 --output acme/bbc-minilm-sparse
        fmhub optimize prune acme/bbc-minilm@v1 --sparsity 0.5 --finetune-steps 100 --output acme/bbc-minilm-sparse
        fmhub optimize prune acme/bbc-minilm@v1 --sparsity 0.5 --structured neurons --output acme/bbc-minilm-ffn
        fmhub optimize prune acme/bbc-minilm@v1 --sparsity 0.5 --structured heads --finetune-steps 50 \
            --output acme/bbc-minilm-heads
    """
    from fmhub.optimize import prune

    quiet_ml_libraries()
    with opened_hub(endpoint, token) as hub, WorkProgress("recovery fine-tune") as progress:
        outcome = prune(model, output, sparsity=sparsity, structured=structured, data=data, max_length=max_length,
                        finetune_steps=finetune_steps, finetune_learning_rate=finetune_learning_rate,
                        private=private, hub=hub, on_step=progress.update,
                        **_eval_kwargs(run_eval, eval_data, eval_split, eval_skip, progress))
    return _committed(outcome, f"{outcome.variant['description']}")


@optimize_app.command("distill", no_args_is_help=True)
def distill_command(
    teacher: Annotated[str, typer.Option("--teacher", help="The teacher: a classifier, REPO or REPO@REVISION.",
                                         show_default=False)],
    output: OutputOption,
    data: Annotated[str | None, typer.Option("--data", help="Dataset to distill on \\[default: the teacher's training "
                                                            "dataset].")] = None,
    student_layers: Annotated[int, typer.Option("--student-layers", help="Layers of the student, taken evenly "
                                                                         "spaced from the teacher's (6 → 3: layers "
                                                                         "0, 2, 4).", min=1)] = 3,
    temperature: Annotated[float, typer.Option("--temperature", help="Softens teacher and student distributions in "
                                                                     "the KL term (scaled back by T²).")] = 2.0,
    alpha: Annotated[float, typer.Option("--alpha", help="Weight of the soft-target (KL) term; 1 - alpha goes to "
                                                         "the labels' cross-entropy.")] = 0.5,
    hidden_loss: Annotated[float, typer.Option("--hidden-loss", help="Weight of a hidden-state MSE between student "
                                                                     "and teacher layers (0: off).")] = 0.0,
    epochs: Annotated[float, typer.Option("--epochs", help="Passes over the training split.")] = 3.0,
    max_steps: Annotated[int | None, typer.Option("--max-steps", help="Optimizer steps (overrides --epochs).")
                         ] = None,
    learning_rate: Annotated[float, typer.Option("--learning-rate", "--lr", help="Peak learning rate of AdamW "
                                                                                "(linear decay).")] = 1e-4,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Rows per optimizer step.")] = 16,
    max_length: Annotated[int, typer.Option("--max-length", help="Tokens per text, truncated beyond.", min=8)] = 256,
    train_eval_split: Annotated[str, typer.Option("--eval-split", help="Split validated on after each epoch, or "
                                                                      "'none'.")] = "validation",
    seed: Annotated[int, typer.Option("--seed", help="Seed of the batch order and dropout.")] = 0,
    threads: Annotated[int | None, typer.Option("--threads", help="Torch threads \\[default: the cores available].")
                       ] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue from the newest checkpoint of the same "
                                                          "distillation (after a crash or kill).")] = False,
    private: PrivateOption = False,
    run_eval: EvalOption = True,
    eval_data: EvalDataOption = None,
    eval_split: Annotated[str, typer.Option("--eval-test-split", help="Split of the report cards.")] = "test",
    eval_skip: EvalSkipOption = None,
    endpoint: EndpointOption = None,
    token: TokenOption = None,
) -> int:
    """Distill a classifier into a smaller student made of some of its layers; commit it to --output.

    The student trains with the training engine (tracked as a run: fmhub runs show; resumable with
    --resume) on the loss alpha·T²·KL(teacher‖student) + (1-alpha)·cross-entropy [+ hidden-state MSE].

    Example:
        fmhub optimize distill --teacher acme/bbc-minilm@v1 --student-layers 3 --output acme/bbc-minilm-l3
    """
    from fmhub.cli._train_commands import command_line
    from fmhub.optimize import distill

    quiet_ml_libraries()
    with opened_hub(endpoint, token) as hub, WorkProgress("distill") as progress:
        outcome = distill(teacher, output, data=data, student_layers=student_layers, temperature=temperature,
                          alpha=alpha, hidden_loss=hidden_loss, epochs=epochs, max_steps=max_steps,
                          learning_rate=learning_rate, batch_size=batch_size, max_length=max_length,
                          eval_split=None if train_eval_split.lower() == "none" else train_eval_split, seed=seed,
                          threads=threads, resume=resume, private=private, hub=hub, command=command_line(),
                          on_step=progress.update, on_metrics=progress.metrics, report=run_eval, eval_data=eval_data,
                          eval_test_split=eval_split, eval_skip=_eval_parts(eval_skip), progress=progress)
    run = outcome.variant["run_id"]
    return _committed(outcome, f"{outcome.variant['description']}; run {run} (fmhub runs show {run})")
