"""The training configuration: one dataclass, filled from CLI options or a YAML file, checked up front.

Every field is a ``fmhub train`` option of the same name (``learning_rate`` → ``--learning-rate``) and
a key of ``train.yaml``; the resolved configuration is saved with the output as ``training_args.json``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from fmhub import tasks
from fmhub.errors import InvalidInputError
from fmhub.refs import split_ref

__all__ = ["TrainConfig", "ARCHITECTURES", "SCHEDULES"]

ARCHITECTURES = ("bert", "gpt2")
SCHEDULES = ("linear", "cosine", "constant")


@dataclass(frozen=True)
class TrainConfig:
    """What to train, on what, and how (see ``fmhub train --help`` for each field)."""

    task: str
    data: str  # REPO[@REV] of the dataset
    output: str  # model repo the result is committed to
    model: str | None = None  # REPO[@REV] of the base model; None: pretrain from scratch (language modeling)
    text_column: str | None = None  # default: text (token classification: tokens)
    label_column: str | None = None  # default: label (token classification: tags)
    multi_label: bool = False  # text classification with any number of labels per row (sigmoid, BCE)
    train_split: str = "train"
    eval_split: str | None = "validation"  # None: no evaluation during training
    learning_rate: float = 5e-5
    schedule: str = "linear"
    warmup_ratio: float = 0.0
    epochs: float = 3.0
    max_steps: int | None = None  # optimizer steps; overrides epochs
    batch_size: int = 16
    gradient_accumulation: int = 1
    max_length: int = 256
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    label_smoothing: float = 0.0
    # Dropout on the attention probabilities while training; None keeps the model's own value. 0 by default:
    # PyTorch's fused CPU attention kernel has no dropout, so any other value falls back to the unfused path
    # (1.7x slower steps for all-MiniLM-L6-v2 at 256 tokens); hidden-state dropout is kept either way.
    attention_dropout: float | None = 0.0
    class_weights: bool = False  # weight the loss by inverse label frequency ("balanced")
    freeze_embeddings: bool = False
    freeze_layers: int = 0
    eval_steps: int | None = None  # evaluate every N optimizer steps (and at each epoch end)
    save_steps: int | None = None  # checkpoint every N optimizer steps (and at each epoch end)
    early_stopping_patience: int | None = None  # evaluations without improvement before stopping
    metric: str | None = None  # validation metric for early stopping and "best" (default: accuracy; entity f1)
    load_best_at_end: bool = False  # publish the weights of the best evaluation by --metric, not the last
    ignore_mismatched_sizes: bool = False
    seed: int = 0
    threads: int | None = None  # torch threads (default: the cores this process may use)
    license: str | None = None
    private: bool = False
    # Language modeling (masked-lm, causal-lm).
    mlm_probability: float = 0.15
    from_config: str | None = None  # a config.json to pretrain from scratch
    architecture: str | None = None  # bert (masked-lm) or gpt2 (causal-lm), to pretrain from scratch
    hidden_size: int = 128
    layers: int = 2
    heads: int = 2
    vocab_size: int = 8000  # of the tokenizer trained on the corpus when the model has none
    # Distillation (classification): a teacher's soft targets join the labels in the loss.
    teacher: str | None = None  # REPO[@REV] of a classifier with the dataset's labels and the model's vocabulary
    temperature: float = 2.0  # softens both distributions in the KL term (scaled back by T²)
    alpha: float = 0.5  # weight of the soft-target term; 1 - alpha on the labels
    hidden_loss: float = 0.0  # weight of the MSE between student and teacher hidden states (0: off)
    student_layers: int | None = None  # train a student made of this many of the model's layers (evenly spaced)
    # Sparse fine-tuning (after pruning): weight matrices' exact zeros stay zero.
    keep_zeros: bool = False

    @classmethod
    def from_yaml(cls, path: Path | str, **overrides: Any) -> TrainConfig:
        """Read ``train.yaml`` (keys are field names, ``-`` or ``_``); ``overrides`` (non-None) win."""
        import yaml

        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except FileNotFoundError:
            raise InvalidInputError(f"{path}: no such config file") from None
        except yaml.YAMLError as exc:
            raise InvalidInputError(f"{path}: not valid YAML ({exc})") from None
        if not isinstance(data, dict):
            raise InvalidInputError(f"{path}: the config must be a mapping of option: value")
        data = {str(k).replace("-", "_"): v for k, v in data.items()}
        data.update({k: v for k, v in overrides.items() if v is not None})
        return cls.from_dict(data, source=str(path))

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> TrainConfig:
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise InvalidInputError(f"{source}: unknown option(s) {', '.join(unknown)}",
                                    hint="see fmhub train --help for the options")
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
            data = {**data, "eval_split": None}
        if str(data.get("attention_dropout", "")).lower() == "model":
            data = {**data, "attention_dropout": None}
        config = cls(**data)
        config.validate()
        return config

    @property
    def task_spec(self) -> tasks.Task:
        """The registered task this run trains (its multi-label variant with ``multi_label``)."""
        return tasks.get(self.task).with_options(multi_label=self.multi_label)

    def validate(self) -> None:
        """Raise InvalidInputError naming the first bad option and its fix (before any work starts)."""
        task = tasks.get(self.task)
        if self.schedule not in SCHEDULES:
            raise InvalidInputError(f"unknown schedule {self.schedule!r}", hint=f"choose from {', '.join(SCHEDULES)}")
        if self.model is not None:
            split_ref(self.model, "--model")
        split_ref(self.data, "--data")
        scratch = self.from_config is not None or self.architecture is not None
        if scratch and task.scratch_architecture is None:
            pretrainable = [t.name for t in tasks.all_tasks() if t.scratch_architecture]
            raise InvalidInputError(f"pretraining from scratch is for {' and '.join(pretrainable)}, not {self.task}",
                                    hint="fine-tune a pretrained --model instead")
        if scratch and self.model is not None:
            raise InvalidInputError("--model and --from-config/--architecture both given",
                                    hint="--model continues pretraining a hub model; the others start from scratch")
        if self.from_config is not None and self.architecture is not None:
            raise InvalidInputError("--from-config and --architecture both given", hint="pass one of them")
        if self.architecture is not None and self.architecture not in ARCHITECTURES:
            raise InvalidInputError(f"unknown architecture {self.architecture!r}",
                                    hint=f"choose from {', '.join(ARCHITECTURES)}")
        if self.architecture is not None and self.architecture != task.scratch_architecture:
            fits = ", ".join(f"{t.scratch_architecture} for {t.name}" for t in tasks.all_tasks()
                             if t.scratch_architecture)
            raise InvalidInputError(f"--architecture {self.architecture} does not fit {self.task}", hint=fits)
        if self.hidden_size % self.heads:
            raise InvalidInputError(f"--hidden-size {self.hidden_size} is not a multiple of --heads {self.heads}")
        checks = [
            ("learning_rate", self.learning_rate > 0 and math.isfinite(self.learning_rate), "a positive number"),
            ("warmup_ratio", 0 <= self.warmup_ratio < 1, "in [0, 1)"),
            ("epochs", self.epochs > 0, "positive"),
            ("max_steps", self.max_steps is None or self.max_steps > 0, "positive"),
            ("batch_size", self.batch_size > 0, "positive"),
            ("gradient_accumulation", self.gradient_accumulation > 0, "positive"),
            ("max_length", self.max_length >= 8, "at least 8"),
            ("weight_decay", self.weight_decay >= 0, "≥ 0"),
            ("max_grad_norm", self.max_grad_norm >= 0, "≥ 0 (0 turns clipping off)"),
            ("label_smoothing", 0 <= self.label_smoothing < 1, "in [0, 1)"),
            ("attention_dropout", self.attention_dropout is None or (isinstance(self.attention_dropout, (int, float))
                                                                     and 0 <= self.attention_dropout < 1),
             "in [0, 1), or 'model' for the model's own value"),
            ("freeze_layers", self.freeze_layers >= 0, "≥ 0"),
            ("eval_steps", self.eval_steps is None or self.eval_steps > 0, "positive"),
            ("save_steps", self.save_steps is None or self.save_steps > 0, "positive"),
            ("early_stopping_patience", self.early_stopping_patience is None or self.early_stopping_patience > 0,
             "positive"),
            ("threads", self.threads is None or self.threads > 0, "positive"),
            ("mlm_probability", 0 < self.mlm_probability < 1, "in (0, 1)"),
            ("hidden_size", self.hidden_size >= 8, "at least 8"),
            ("layers", self.layers >= 1, "positive"),
            ("heads", self.heads >= 1, "positive"),
            ("vocab_size", 100 <= self.vocab_size <= 1_000_000, "between 100 and 1,000,000"),
            ("temperature", self.temperature > 0 and math.isfinite(self.temperature), "a positive number"),
            ("alpha", 0 <= self.alpha <= 1, "in [0, 1]"),
            ("hidden_loss", self.hidden_loss >= 0 and math.isfinite(self.hidden_loss), "≥ 0"),
            ("student_layers", self.student_layers is None or self.student_layers >= 1, "positive"),
        ]
        for name, ok, rule in checks:
            if not ok:
                raise InvalidInputError(f"--{name.replace('_', '-')} {getattr(self, name)!r} must be {rule}")
        if self.teacher is not None:
            split_ref(self.teacher, "--teacher")
        task.with_options(multi_label=self.multi_label).check_options(
            metric=self.metric, class_weights=self.class_weights, label_smoothing=self.label_smoothing,
            teacher=self.teacher is not None)
        if self.student_layers is not None and self.model is None:
            raise InvalidInputError("--student-layers keeps layers of a --model", hint="name the model to cut down")
        if self.hidden_loss and self.teacher is None:
            raise InvalidInputError("--hidden-loss needs a --teacher to compare hidden states with")
        if self.load_best_at_end and not self.eval_split:
            raise InvalidInputError("--load-best-at-end needs an evaluation split to pick the best weights by",
                                    hint="pass --eval-split validation (or drop --load-best-at-end)")
        if self.early_stopping_patience and not self.eval_split:
            raise InvalidInputError("early stopping needs an evaluation split",
                                    hint="pass --eval-split validation (or drop --early-stopping-patience)")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (``training_args.json``)."""
        return dataclasses.asdict(self)
