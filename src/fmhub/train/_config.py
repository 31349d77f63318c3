"""The training configuration: typed option groups, each option defined once (:mod:`fmhub.options`).

The groups nest (``config.optimizer.learning_rate``, ``config.loop.epochs``), as litgpt's configs do; the
command line, ``train.yaml`` and pipeline steps name every option flat (``--learning-rate``,
``learning_rate: 1e-4``), and the resolved configuration is saved flat with the output as
``training_args.json`` — all derived from the declarations below.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fmhub import options, tasks
from fmhub.errors import InvalidInputError
from fmhub.options import option
from fmhub.refs import split_ref

__all__ = ["TrainConfig", "DataOptions", "OptimizerOptions", "LoopOptions", "ModelOptions", "ScratchOptions",
           "AugmentOptions", "DistillOptions", "ComputeOptions", "architectures", "SCHEDULES", "PRECISIONS",
           "TASK_GROUPS"]

SCHEDULES = ("linear", "cosine", "constant")
PRECISIONS = ("fp32", "bf16", "fp16", "auto")
#: Option groups that only some tasks take (a task lists the ones it takes in ``Task.option_groups``).
TASK_GROUPS = ("augment",)


def architectures() -> tuple[str, ...]:
    """Every ``--architecture`` some registered task pretrains from scratch."""
    return tuple(a for t in tasks.all_tasks() for a in t.scratch_architectures)


def _positive(value: Any) -> bool:
    return value > 0 and math.isfinite(value)


def _attention_dropout(value: Any) -> Any:
    """``--attention-dropout``: a probability, or ``model`` (kept as is, read as "the model's own value")."""
    if isinstance(value, str) and value.strip().lower() == "model":
        return "model"
    try:
        return float(value)
    except (TypeError, ValueError):
        raise InvalidInputError(f"--attention-dropout {value!r} is not a number",
                                hint="a probability in [0, 1), or 'model' for the model's own value") from None


def _freeze(value: Any) -> bool:
    if value != "embeddings":
        raise InvalidInputError(f"--freeze {value!r}: only embeddings can be frozen by name",
                                hint="--freeze embeddings, or --freeze-layers N for the first N layers")
    return True


@dataclass(frozen=True)
class DataOptions:
    """Which rows and columns of the dataset, and how much of each text."""

    text_column: str | None = option(None, help="Dataset column of the inputs [default: the task's: text; token "
                                                "classification: tokens; image classification: image].",
                                     show_default=False)
    label_column: str | None = option(None, help="Dataset column of the class label [default: label; token "
                                                 "classification: tags].", show_default=False)
    multi_label: bool = option(False, help="Text classification with any number of labels per row (a column of "
                                           "label lists; sigmoid per label).")
    train_split: str = option("train", help="Split to train on.")
    eval_split: str | None = option("validation", help="Split to evaluate on, or 'none'.")
    max_length: int = option(256, help="Tokens per text, truncated beyond.", check=lambda v: v >= 8,
                             rule="at least 8")


@dataclass(frozen=True)
class AugmentOptions:
    """Training-only augmentation of image inputs (validation and report cards see the images as they are)."""

    random_crop: float = option(0.0, help="Images: random resized crop keeping at least this share of the area "
                                          "(e.g. 0.8; 0: off).", check=lambda v: 0 <= v < 1, rule="in [0, 1)")
    random_flip: bool = option(False, help="Images: flip left-right at random (not for digits or text in images).")
    random_rotation: float = option(0.0, help="Images: rotate by a random angle within ± this many degrees (0: off).",
                                    check=lambda v: 0 <= v <= 180, rule="in [0, 180]")


@dataclass(frozen=True)
class OptimizerOptions:
    """AdamW, its schedule and the loss."""

    learning_rate: float = option(5e-5, help="Peak learning rate of AdamW.", aliases=("--lr",), check=_positive,
                                  rule="a positive number")
    schedule: str = option("linear", help="Learning-rate schedule after warmup.", choices=SCHEDULES)
    warmup_ratio: float = option(0.0, help="Share of the steps spent warming up.", check=lambda v: 0 <= v < 1,
                                 rule="in [0, 1)")
    weight_decay: float = option(0.01, help="AdamW weight decay (not on biases and norms).", check=lambda v: v >= 0,
                                 rule="≥ 0")
    max_grad_norm: float = option(1.0, help="Gradient clipping norm, 0 for none.", check=lambda v: v >= 0,
                                  rule="≥ 0 (0 turns clipping off)")
    label_smoothing: float = option(0.0, help="Cross-entropy label smoothing.", check=lambda v: 0 <= v < 1,
                                    rule="in [0, 1)")
    class_weights: bool = option(False, help="Weight the loss by inverse label frequency (imbalanced data).",
                                 negative="--no-class-weights")


@dataclass(frozen=True)
class LoopOptions:
    """How long to train, in which batches, and when to evaluate, checkpoint and stop."""

    epochs: float = option(3.0, help="Passes over the training split.", check=lambda v: v > 0, rule="positive")
    max_steps: int | None = option(None, help="Optimizer steps to run (overrides --epochs).", check=lambda v: v > 0,
                                   rule="positive")
    batch_size: int = option(16, help="Rows per forward pass.", check=lambda v: v > 0, rule="positive")
    gradient_accumulation: int = option(1, help="Forward passes per optimizer step.", check=lambda v: v > 0,
                                        rule="positive")
    eval_steps: int | None = option(None, help="Evaluate every N steps (always at each epoch end).",
                                    check=lambda v: v > 0, rule="positive")
    save_steps: int | None = option(None, help="Checkpoint every N steps (always at each epoch end).",
                                    check=lambda v: v > 0, rule="positive")
    early_stopping_patience: int | None = option(None, help="Stop after N evaluations without a better --metric.",
                                                 check=lambda v: v > 0, rule="positive")
    metric: str | None = option(None, help="Validation metric for early stopping and 'best' [default: the task's "
                                           "first: accuracy for text classification, f1 for token classification, "
                                           "perplexity for language models].", show_default=False)
    load_best_at_end: bool = option(False, help="Publish the weights of the best evaluation by --metric instead of "
                                                "the last (a checkpoint at every evaluation).")
    seed: int = option(0, help="Seed of the head init, data order and dropout.")
    threads: int | None = option(None, help="Torch CPU threads [default: the cores available].", check=lambda v: v > 0,
                                 rule="positive", show_default=False)


@dataclass(frozen=True)
class ModelOptions:
    """What of the model is trained, and how."""

    # 0 by default: PyTorch's fused CPU attention kernel has no dropout, so any other value falls back to the
    # unfused path (1.7x slower steps for all-MiniLM-L6-v2 at 256 tokens); hidden-state dropout is kept either way.
    attention_dropout: float | str | None = option(
        0.0, help="Dropout on attention probabilities while training, or 'model' to keep the model's value "
                  "[default: 0: PyTorch's fused CPU attention has no dropout, so other values train ~1.7x slower].",
        cli_type=str, parse=_attention_dropout, show_default=False,
        check=lambda v: v == "model" or 0 <= v < 1, rule="in [0, 1), or 'model' for the model's own value")
    freeze_embeddings: bool = option(False, help="Keep a part of the model fixed: embeddings (YAML: "
                                                 "freeze_embeddings: true).", flag="--freeze", cli_type=str,
                                     parse=_freeze, show_default=False)
    freeze_layers: int = option(0, help="Keep the first N encoder layers fixed.", check=lambda v: v >= 0, rule="≥ 0")
    ignore_mismatched_sizes: bool = option(False, help="Replace a base classifier head whose labels differ from the "
                                                       "dataset's.")
    keep_zeros: bool = option(False, help="Weight matrices' exact zeros stay zero (fine-tuning a pruned model).")


@dataclass(frozen=True)
class ScratchOptions:
    """Pretraining from scratch: a new model from a config, and its preprocessor (a tokenizer trained on the texts;
    an image processor)."""

    architecture: str | None = option(None, help="Pretrain from scratch: bert (masked-lm) or gpt2 (causal-lm), with "
                                                 "a tokenizer trained on the data; resnet, convnext or vit "
                                                 "(image-classification).", choices=architectures)
    from_config: str | None = option(None, help="Pretrain from scratch from this transformers config.json.")
    hidden_size: int = option(128, help="From scratch: hidden size (ResNet/ConvNeXt: channels of the first stage, "
                                        "doubling per stage).", check=lambda v: v >= 8, rule="at least 8")
    layers: int = option(2, help="From scratch: layers (ResNet/ConvNeXt: stages).", check=lambda v: v >= 1,
                         rule="positive")
    heads: int = option(2, help="From scratch: attention heads.", check=lambda v: v >= 1, rule="positive")
    vocab_size: int = option(8000, help="From scratch: size of the tokenizer trained on the data.",
                             check=lambda v: 100 <= v <= 1_000_000, rule="between 100 and 1,000,000")
    mlm_probability: float = option(0.15, help="Masked LM: share of tokens masked.", check=lambda v: 0 < v < 1,
                                    rule="in (0, 1)")
    image_size: int = option(224, help="From scratch, images: side of the square model input (the image processor "
                                       "resizes to it).", check=lambda v: 8 <= v <= 4096, rule="between 8 and 4096")


@dataclass(frozen=True)
class DistillOptions:
    """Distillation: a teacher's soft targets join the labels in the loss."""

    teacher: str | None = option(None, help="Distill: a classifier (REPO or REPO@REV) whose soft targets join the "
                                            "labels in the loss (same labels and vocabulary).")
    temperature: float = option(2.0, help="Distill: softening temperature of the KL term.", check=_positive,
                                rule="a positive number")
    alpha: float = option(0.5, help="Distill: weight of the KL term; 1 - alpha on the labels.",
                          check=lambda v: 0 <= v <= 1, rule="in [0, 1]")
    hidden_loss: float = option(0.0, help="Distill: weight of the hidden-state MSE to the teacher (0: off).",
                                check=lambda v: v >= 0 and math.isfinite(v), rule="≥ 0")
    student_layers: int | None = option(None, help="Train a model made of N of --model's layers, evenly spaced.",
                                        check=lambda v: v >= 1, rule="positive")


@dataclass(frozen=True)
class ComputeOptions:
    """How the arithmetic runs: the precision of the forward pass, and compilation (the weights stay float32)."""

    precision: str = option(
        "auto", help="Arithmetic of the forward and backward passes: auto (what this hardware runs fastest: bf16 "
                     "where it is native, else fp32 on a CPU and fp16 on a GPU); fp32 (the same numbers on every "
                     "machine); bf16 (autocast to bfloat16: fast on CPUs with AVX512-BF16 or AMX and on GPUs); fp16 "
                     "(float16 autocast with a gradient scaler: for GPUs). The weights and the published model stay "
                     "float32; evaluation runs in float32.", choices=PRECISIONS)
    compile: bool = option(False, help="torch.compile the model (inductor) before training: costs a compilation "
                                       "at the start (about 2 minutes on a 2-core CPU) and measured slower per "
                                       "step than eager on CPU (MiniLM, bf16), so off by default; for GPUs; see "
                                       "docs/training-speed.md.")


@dataclass(frozen=True)
class TrainConfig:
    """What to train, on what, and how (see ``fmhub train --help`` for each option).

    Example:
        >>> TrainConfig.from_flat({"task": "text-classification", "model": "acme/minilm@v1",
        ...                        "data": "acme/bbc-news@v1", "output": "acme/bbc-minilm", "epochs": 3})
        >>> TrainConfig(task="text-classification", model="acme/minilm@v1", data="acme/bbc-news@v1",
        ...             output="acme/bbc-minilm", loop=LoopOptions(epochs=3))
    """

    task: str = option(help="What to train.", choices=tasks.names)
    data: str = option(help="Dataset repo, REPO or REPO@REVISION (from fmhub data import).")
    output: str = option(help="Model repo the result is committed to (created if missing).")
    model: str | None = option(None, help="Base model repo, REPO or REPO@REVISION (omit with "
                                          "--architecture/--from-config).")
    license: str | None = option(None, help="License id for the model card.")
    private: bool = option(False, help="Create the output repo private.")
    inputs: DataOptions = field(default_factory=DataOptions)
    augment: AugmentOptions = field(default_factory=AugmentOptions)
    optimizer: OptimizerOptions = field(default_factory=OptimizerOptions)
    loop: LoopOptions = field(default_factory=LoopOptions)
    tuning: ModelOptions = field(default_factory=ModelOptions)
    scratch: ScratchOptions = field(default_factory=ScratchOptions)
    distill: DistillOptions = field(default_factory=DistillOptions)
    compute: ComputeOptions = field(default_factory=ComputeOptions)

    # -- reading -------------------------------------------------------------------------------------------

    @classmethod
    def from_yaml(cls, path: Path | str, **overrides: Any) -> TrainConfig:
        """Read ``train.yaml`` (option names, ``-`` or ``_``; or group sections like ``optimizer:``); ``overrides``
        (non-None) win."""
        import yaml

        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except FileNotFoundError:
            raise InvalidInputError(f"{path}: no such config file") from None
        except yaml.YAMLError as exc:
            raise InvalidInputError(f"{path}: not valid YAML ({exc})") from None
        if not isinstance(data, dict):
            raise InvalidInputError(f"{path}: the config must be a mapping of option: value")
        flat: dict[str, Any] = {}
        groups = {f for f in cls.__dataclass_fields__ if f not in options.flat_names(cls)}
        for key, value in data.items():
            key = str(key).replace("-", "_")
            if key in groups and isinstance(value, dict):
                flat.update({str(k).replace("-", "_"): v for k, v in value.items()})
            else:
                flat[key] = value
        flat.update({k: v for k, v in overrides.items() if v is not None})
        return cls.from_flat(flat, source=str(path))

    @classmethod
    def from_flat(cls, data: dict[str, Any], source: str = "config", *, cli: bool = False) -> TrainConfig:
        """Build and check a config from flat option names (the CLI's, a YAML file's, a pipeline step's)."""
        data = {str(k).replace("-", "_"): v for k, v in data.items()}
        required = ("task", "data", "output") if data.get("from_config") or data.get("architecture") else \
            ("task", "model", "data", "output")
        missing = [name for name in required if data.get(name) in (None, "")]
        if missing:
            scratch = " (or, for masked-lm/causal-lm, --architecture bert|gpt2 to pretrain from scratch)" \
                if "model" in missing else ""
            raise InvalidInputError(f"{source}: missing {', '.join(missing)}",
                                    hint="e.g. --task text-classification --model acme/bert --data acme/news "
                                         f"--output acme/news-bert{scratch}")
        if str(data.get("eval_split", "")).lower() == "none":
            data["eval_split"] = None
        config = options.from_flat(cls, data, source=source, cli=cli)
        config.validate()
        return config

    from_dict = from_flat

    def to_dict(self) -> dict[str, Any]:
        """The options flat and JSON-ready (``training_args.json``, the run record)."""
        return options.to_flat(self)

    def applied(self) -> dict[str, Any]:
        """The options that took effect in this run (what a model card lists), flat: unset options, the
        from-scratch model's shape when a base model was fine-tuned, distillation without a teacher, evaluation
        options without an evaluation split and options of other tasks are left out (``to_dict`` has all)."""
        flat = self.to_dict()
        dropped = {"private"}
        scratch = self.model is None
        if not scratch:
            dropped |= {"architecture", "from_config", "hidden_size", "layers", "heads", "vocab_size", "image_size"}
        else:
            dropped |= {"ignore_mismatched_sizes", "keep_zeros", "student_layers"}
            if self.scratch.from_config:
                dropped |= {"hidden_size", "layers", "heads"} | ({"vocab_size"} if self.task != "image-classification"
                                                                 else set())
            if self.scratch.architecture in ("resnet", "convnext"):
                dropped.add("heads")
        if self.task == "image-classification":
            dropped.add("vocab_size")
        else:
            dropped |= {"image_size", *options.flat_names(AugmentOptions)}
        if self.task != "masked-lm":
            dropped.add("mlm_probability")
        if self.task != "text-classification":
            dropped.add("multi_label")
        if self.distill.teacher is None:
            dropped |= {"temperature", "alpha", "hidden_loss"}
        if self.inputs.eval_split is None:
            dropped |= {"eval_steps", "early_stopping_patience", "metric", "load_best_at_end"}
        return {k: v for k, v in flat.items() if k not in dropped and v is not None}

    # -- what the options mean -----------------------------------------------------------------------------

    @property
    def task_spec(self) -> tasks.Task:
        """The registered task this run trains (its multi-label variant with ``--multi-label``)."""
        return tasks.get(self.task).with_options(multi_label=self.inputs.multi_label)

    @property
    def attention_dropout(self) -> float | None:
        """The attention dropout to train with; None keeps the model's own value."""
        value = self.tuning.attention_dropout
        return None if value is None or value == "model" else float(value)

    @property
    def from_scratch(self) -> bool:
        return self.scratch.from_config is not None or self.scratch.architecture is not None

    def _check_task_groups(self, task: tasks.Task) -> None:
        """An option of a task-specific group (``--random-flip``) set for a task that does not take it is an error."""
        for group in TASK_GROUPS:
            if group in task.option_groups:
                continue
            values, defaults = getattr(self, group), type(getattr(self, group))()
            for f in options.fields_of(type(values)):
                if getattr(values, f.name) != getattr(defaults, f.name):
                    takers = [t.name for t in tasks.all_tasks() if group in t.option_groups]
                    raise InvalidInputError(f"{f.flag} does not apply to {task.name}",
                                            hint=f"it applies to {', '.join(takers)}")

    def validate(self) -> None:
        """Raise InvalidInputError naming the first bad option and its fix (before any work starts)."""
        options.check(self)
        task = tasks.get(self.task)
        if self.model is not None:
            split_ref(self.model, "--model")
        split_ref(self.data, "--data")
        scratch = self.scratch
        if self.from_scratch and not task.scratch_architectures:
            pretrainable = [t.name for t in tasks.all_tasks() if t.scratch_architectures]
            raise InvalidInputError(f"pretraining from scratch is for {', '.join(pretrainable)}, not {self.task}",
                                    hint="fine-tune a pretrained --model instead")
        if self.from_scratch and self.model is not None:
            raise InvalidInputError("--model and --from-config/--architecture both given",
                                    hint="--model continues pretraining a hub model; the others start from scratch")
        if scratch.from_config is not None and scratch.architecture is not None:
            raise InvalidInputError("--from-config and --architecture both given", hint="pass one of them")
        if scratch.architecture is not None and scratch.architecture not in task.scratch_architectures:
            fits = "; ".join(f"{', '.join(t.scratch_architectures)} for {t.name}" for t in tasks.all_tasks()
                             if t.scratch_architectures)
            raise InvalidInputError(f"--architecture {scratch.architecture} does not fit {self.task}", hint=fits)
        self._check_task_groups(task)
        if scratch.hidden_size % scratch.heads:
            raise InvalidInputError(f"--hidden-size {scratch.hidden_size} is not a multiple of --heads {scratch.heads}")
        distill = self.distill
        if distill.teacher is not None:
            split_ref(distill.teacher, "--teacher")
        task.with_options(multi_label=self.inputs.multi_label).check_options(
            metric=self.loop.metric, class_weights=self.optimizer.class_weights,
            label_smoothing=self.optimizer.label_smoothing, teacher=distill.teacher is not None)
        if distill.student_layers is not None and self.model is None:
            raise InvalidInputError("--student-layers keeps layers of a --model", hint="name the model to cut down")
        if distill.hidden_loss and distill.teacher is None:
            raise InvalidInputError("--hidden-loss needs a --teacher to compare hidden states with")
        if self.loop.load_best_at_end and not self.inputs.eval_split:
            raise InvalidInputError("--load-best-at-end needs an evaluation split to pick the best weights by",
                                    hint="pass --eval-split validation (or drop --load-best-at-end)")
        if self.loop.early_stopping_patience and not self.inputs.eval_split:
            raise InvalidInputError("early stopping needs an evaluation split",
                                    hint="pass --eval-split validation (or drop --early-stopping-patience)")
