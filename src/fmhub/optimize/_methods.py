"""The optimization methods, in one table the CLI, the pipeline validator and the pipeline runner all read.

Each :class:`Method` names its function and its options — a dataclass whose fields are defined once with
:func:`fmhub.options.option` — so ``fmhub optimize <method> --help``, the keys a pipeline's ``optimize`` step
accepts and what the step passes on are all derived from the same declaration.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fmhub import options
from fmhub.client import Hub
from fmhub.errors import InvalidInputError
from fmhub.evaluate import SECTIONS
from fmhub.explain import ExplainOptions
from fmhub.formats.onnx import DEFAULT_OPSET, MIN_OPSET
from fmhub.optimize._distill import distill
from fmhub.optimize._onnx import export_onnx
from fmhub.optimize._prune import STRUCTURES, prune
from fmhub.optimize._quantize import BACKENDS, quantize
from fmhub.optimize._quantize import METHODS as QUANTIZATIONS
from fmhub.optimize._variant import VariantOutcome
from fmhub.options import option
from fmhub.train import ComputeOptions

__all__ = ["Method", "METHODS", "get", "run_method"]


def _sections(value: Any) -> tuple[str, ...]:
    """``--eval-skip robustness,slices`` (repeatable), a YAML list or a comma list → section names."""
    values = value.split(",") if isinstance(value, str) else list(value)
    return tuple(s.strip() for v in values for s in str(v).split(",") if s.strip())


def _split_or_none(value: Any) -> Any:
    return None if isinstance(value, str) and value.lower() == "none" else value


@dataclass(frozen=True)
class Checked:
    """The real rows a variant is checked on against its parent, and where it is committed."""

    data: str | None = option(None, help="Dataset whose rows check the variant against its parent [default: the "
                                         "parent's training dataset].", show_default=False)
    max_length: int = option(128, help="Tokens per row of the check.", check=lambda v: v >= 8, rule="at least 8")
    private: bool = option(False, help="Create the output repo private.")


@dataclass(frozen=True)
class Card:
    """The variant's report card against its parent's."""

    eval: bool = option(True, help="Push the variant's report card with its deltas against the parent's (parent "
                                   "card reused when pushed).", negative="--no-eval")
    eval_data: str | None = option(None, help="Dataset of the report cards [default: the parent's training "
                                              "dataset].", show_default=False)
    eval_split: str = option("test", help="Split of the report cards.")
    eval_skip: tuple[str, ...] = option((), help="Report card sections to leave out (repeat, or comma-separated).",
                                        cli_type=list[str], normalize=_sections,
                                        check=lambda v: set(v) <= set(SECTIONS), rule=f"among {', '.join(SECTIONS)}")
    explain: ExplainOptions = field(default_factory=ExplainOptions)  # --explain-rows, --explain-steps


@dataclass(frozen=True)
class ExportOptions:
    opset: int = option(DEFAULT_OPSET, help=f"ONNX opset ({MIN_OPSET} or more).", check=lambda v: v >= MIN_OPSET,
                        rule=f"{MIN_OPSET} or more")
    tolerance: float = option(1e-3, help="Largest allowed absolute logit difference from the parent on real rows.",
                              check=lambda v: v > 0, rule="positive")
    optimize: bool = option(True, help="Run ONNX Runtime's graph optimizer (attention, layer norm, GELU fusions).",
                            negative="--no-optimize")
    checked: Checked = field(default_factory=Checked)
    card: Card = field(default_factory=Card)


@dataclass(frozen=True)
class QuantizeOptions:
    quantization: str = option("dynamic-int8", flag="--method", help="Quantization method: dynamic-int8 (int8 "
                                                                      "weights, activations quantized at run time; "
                                                                      "transformers), static-int8 (activation ranges "
                                                                      "calibrated on training rows; convolutional "
                                                                      "models, ONNX backend).",
                               choices=QUANTIZATIONS)
    backend: str = option("onnx", help="onnx: ONNX Runtime int8 graph (exports a torch parent first); torch: PyTorch "
                                       "int8 Linear layers, saved as safetensors.", choices=BACKENDS)
    min_agreement: float = option(0.9, help="Least share of argmax decisions that must match the parent's on real "
                                            "rows.", check=lambda v: 0 <= v <= 1, rule="in [0, 1]")
    per_channel: bool = option(True, help="ONNX backend: one int8 scale per output channel of each weight (more "
                                          "accurate) or per weight tensor.", negative="--per-tensor")
    calibration_rows: int = option(128, help="static-int8: rows of the training split of --data the activation "
                                             "ranges are calibrated on.", check=lambda v: v >= 1, rule="positive")
    checked: Checked = field(default_factory=Checked)
    card: Card = field(default_factory=Card)


@dataclass(frozen=True)
class PruneOptions:
    sparsity: float = option(0.5, help="Share to remove, in (0, 1): of the Linear weights (unstructured), or of each "
                                       "layer's FFN neurons or attention heads.", check=lambda v: 0 < v < 1,
                             rule="between 0 and 1 (exclusive)")
    structured: str | None = option(None, help="neurons: remove whole feed-forward neurons (plain transformers loads "
                                               "the result); heads: remove whole attention heads (fmhub.load loads "
                                               "it); both smaller and faster. Default: unstructured magnitude "
                                               "pruning.", choices=STRUCTURES)
    finetune_steps: int = option(0, help="Recover accuracy with N optimizer steps (batch 16) on --data, tracked as a "
                                         "run; pruned weights stay zero. 0: none.", check=lambda v: v >= 0,
                                 rule="0 (none) or more")
    finetune_learning_rate: float = option(5e-5, help="Peak learning rate of the recovery fine-tune.",
                                           check=lambda v: v > 0, rule="positive")
    checked: Checked = field(default_factory=Checked)
    card: Card = field(default_factory=Card)


@dataclass(frozen=True)
class DistillCard:
    """The student's report card against the teacher's (its split is --eval-test-split: --eval-split is the split
    validated on while training)."""

    eval: bool = option(True, help="Push the student's report card with its deltas against the teacher's.",
                        negative="--no-eval")
    eval_data: str | None = option(None, help="Dataset of the report cards [default: the teacher's training "
                                              "dataset].", show_default=False)
    eval_test_split: str = option("test", help="Split of the report cards.")
    eval_skip: tuple[str, ...] = option((), help="Report card sections to leave out (repeat, or comma-separated).",
                                        cli_type=list[str], normalize=_sections,
                                        check=lambda v: set(v) <= set(SECTIONS), rule=f"among {', '.join(SECTIONS)}")
    explain: ExplainOptions = field(default_factory=ExplainOptions)  # --explain-rows, --explain-steps


@dataclass(frozen=True)
class DistillOptions:
    data: str | None = option(None, help="Dataset to distill on [default: the teacher's training dataset].",
                              show_default=False)
    student_layers: int = option(3, help="Layers of the student, taken evenly spaced from the teacher's (6 → 3: "
                                         "layers 0, 2, 4).", check=lambda v: v >= 1, rule="positive")
    temperature: float = option(2.0, help="Softens teacher and student distributions in the KL term (scaled back by "
                                          "T²).", check=lambda v: v > 0 and math.isfinite(v), rule="a positive number")
    alpha: float = option(0.5, help="Weight of the soft-target (KL) term; 1 - alpha goes to the labels' "
                                    "cross-entropy.", check=lambda v: 0 <= v <= 1, rule="in [0, 1]")
    hidden_loss: float = option(0.0, help="Weight of a hidden-state MSE between student and teacher layers (0: off).",
                                check=lambda v: v >= 0, rule="≥ 0")
    epochs: float = option(3.0, help="Passes over the training split.", check=lambda v: v > 0, rule="positive")
    max_steps: int | None = option(None, help="Optimizer steps (overrides --epochs).", check=lambda v: v > 0,
                                   rule="positive")
    learning_rate: float = option(1e-4, help="Peak learning rate of AdamW (linear decay).", aliases=("--lr",),
                                  check=lambda v: v > 0, rule="positive")
    warmup_ratio: float = option(0.0, help="Share of the steps spent warming up.", check=lambda v: 0 <= v < 1,
                                 rule="in [0, 1)")
    batch_size: int = option(16, help="Rows per optimizer step.", check=lambda v: v > 0, rule="positive")
    max_length: int = option(256, help="Tokens per text, truncated beyond.", check=lambda v: v >= 8,
                             rule="at least 8")
    eval_split: str | None = option("validation", help="Split validated on after each epoch, or 'none'.",
                                    normalize=_split_or_none)
    seed: int = option(0, help="Seed of the batch order and dropout.")
    threads: int | None = option(None, help="Torch threads [default: the cores available].", show_default=False,
                                 check=lambda v: v > 0, rule="positive")
    resume: bool = option(False, help="Continue from the newest checkpoint of the same distillation (after a crash "
                                      "or kill).")
    private: bool = option(False, help="Create the output repo private.")
    compute: ComputeOptions = field(default_factory=ComputeOptions)  # --precision, --compile: as fmhub train's
    card: DistillCard = field(default_factory=DistillCard)


Runner = Callable[..., VariantOutcome]


@dataclass(frozen=True)
class Method:
    """One optimization method: its command, its options and the function that makes the variant.

    ``model_flag``: how the parent is named on the command line (None: the ``MODEL`` argument; distill: ``--teacher``).
    ``trains``: the method runs training steps (tracked as a run): the label of their progress bar.
    """

    name: str
    function: Runner
    options: type
    summary: str
    examples: tuple[str, ...]
    describe: Callable[[VariantOutcome], str]
    model_flag: str | None = None
    trains: str | None = None  # the method runs training steps: how its progress bar names them
    renamed: dict[str, str] = field(default_factory=dict)  # option name → the function's keyword

    def keywords(self, config: Any) -> dict[str, Any]:
        """The function's keyword arguments for ``config`` (an instance of ``options``)."""
        flat = options.to_flat(config)
        flat["eval_skip"] = tuple(flat.get("eval_skip") or ())
        flat["explain"] = ExplainOptions(**{k: flat.pop(k) for k in options.flat_names(ExplainOptions)})
        return {self.renamed.get(k, k): v for k, v in flat.items()}


_CARD = {"eval": "report"}

METHODS: dict[str, Method] = {m.name: m for m in (
    Method("export-onnx", export_onnx, ExportOptions,
           "Export a transformers model to ONNX (dynamic batch and sequence axes) and commit it to --output.\n\n"
           "The export is checked against the parent on real rows (max abs logit difference and argmax agreement, "
           "recorded in the card); beyond --tolerance nothing is pushed.",
           ("fmhub optimize export-onnx acme/bbc-minilm@v1 --output acme/bbc-minilm-onnx",),
           lambda o: f"ONNX opset {o.variant['opset']}, {o.variant['graph_optimization']}", renamed=_CARD),
    Method("quantize", quantize, QuantizeOptions,
           "Quantize a model to int8 and commit the variant to --output (loaded back with fmhub.load).",
           ("fmhub optimize quantize acme/bbc-minilm@v1 --method dynamic-int8 --backend onnx "
            "--output acme/bbc-minilm-int8",
            "fmhub optimize quantize acme/digits-resnet@v1 --method static-int8 --output acme/digits-resnet-int8"),
           lambda o: f"{o.variant['quantized']} ({o.variant['backend']})",
           renamed={**_CARD, "quantization": "method"}),
    Method("prune", prune, PruneOptions, "Prune a model and commit the variant (safetensors) to --output.",
           ("fmhub optimize prune acme/bbc-minilm@v1 --sparsity 0.5 --output acme/bbc-minilm-sparse",
            "fmhub optimize prune acme/bbc-minilm@v1 --sparsity 0.5 --finetune-steps 100 --output acme/bbc-minilm-sparse",
            "fmhub optimize prune acme/bbc-minilm@v1 --sparsity 0.5 --structured neurons --output acme/bbc-minilm-ffn",
            "fmhub optimize prune acme/bbc-minilm@v1 --sparsity 0.5 --structured heads --finetune-steps 50 \\\n"
            "    --output acme/bbc-minilm-heads"),
           lambda o: o.variant["description"], trains="recovery fine-tune", renamed=_CARD),
    Method("distill", distill, DistillOptions,
           "Distill a classifier into a smaller student made of some of its layers; commit it to --output.\n\n"
           "The student trains with the training engine (tracked as a run: fmhub runs show; resumable with --resume) "
           "on the loss alpha·T²·KL(teacher‖student) + (1-alpha)·cross-entropy [+ hidden-state MSE].",
           ("fmhub optimize distill --teacher acme/bbc-minilm@v1 --student-layers 3 --output acme/bbc-minilm-l3",),
           lambda o: f"{o.variant['description']}; run {o.variant['run_id']} (fmhub runs show {o.variant['run_id']})",
           model_flag="--teacher", trains="distill", renamed=_CARD),
)}


def get(name: Any) -> Method:
    """The method ``name``, or an input error naming the known ones."""
    method = METHODS.get(name) if isinstance(name, str) else None
    if method is None:
        raise InvalidInputError(f"method {name!r} is not one of {', '.join(METHODS)}",
                                hint=f"choose from {', '.join(METHODS)}")
    return method


def run_method(name: str, model: str, output: str, values: dict[str, Any], *, hub: Hub | None = None,
               progress: Any = None, source: str = "options", cli: bool = False, **hooks: Any) -> VariantOutcome:
    """Make the variant ``name`` of ``model`` into ``output`` from flat option values (checked first)."""
    method = get(name)
    config = options.from_flat(method.options, values, source=source, cli=cli)
    options.check(config)
    kwargs = method.keywords(config)
    accepted = inspect.signature(method.function).parameters
    kwargs.update({k: v for k, v in hooks.items() if v is not None and k in accepted})  # on_step, command...
    return method.function(model, output, hub=hub, progress=progress, **kwargs)

