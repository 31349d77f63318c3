"""The task interface: everything a stage may ask about one task, in one class.

A task is what a model's head does with its inputs (classify a text, tag its words, predict masked or next
tokens, ...). The stages never branch on a task's name: they ask its :class:`Task` object —

- **identity and cards**: ``name``, ``title``, ``pipeline_tag``, the transformers head (``auto_class``,
  ``head_suffixes``), the default dataset columns, the metrics a model card and a report card headline;
- **inputs**: the preprocessor (a tokenizer, an image processor: :meth:`load_preprocessor`), how the input
  column is read (:meth:`read_inputs`) and made into model inputs (:meth:`encode_batch`), the inputs' names and
  dynamic axes for an ONNX export (:meth:`input_axes`);
- **training** (``fmhub train``): label names from the dataset's features, the rows made ready once
  (``tokenize``), batches (``collate``, with training-only augmentation), the loss, validation metrics, which
  options apply (``check_options``, ``option_groups``), pretraining from scratch (``scratch_architectures``,
  :meth:`scratch_preprocessor`, :meth:`scratch_config`);
- **evaluation** (``fmhub eval``): gold labels, predictions and their metrics (:meth:`score`), calibration,
  robustness perturbations (``perturbations``), slices (``size_unit``), the efficiency input, a cheap baseline,
  the prediction columns kept in ``predictions.parquet``;
- **serving** (``fmhub serve``): the endpoints (request schema and batch function), in ``endpoints``, and the
  request a serve-check sends (:meth:`check_request`);
- **explanations** (``fmhub explain``): ``explains`` names the explainer of its inputs;
- **optimization**: ``distillable`` (its logits are soft targets), ``per_token`` (logits per token).

Models are reached only through a *forward* function — a mapping of named input arrays in, float32 logits
out (:data:`Forward`) — so a task never needs to know how a model version is stored (see ``fmhub.formats``).
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from fmhub.errors import InvalidInputError
from fmhub.tasks._batches import IGNORE, TokenizedSplit, batch_order
from fmhub.tasks._perturb import PERTURBATIONS

__all__ = ["Task", "Metric", "Scored", "Endpoint", "Forward", "OnRows"]

#: A model version's forward pass: named input arrays (``input_ids``, ``attention_mask``, ...) → float32 logits.
Forward = Callable[[Mapping[str, np.ndarray]], np.ndarray]
#: Called with the number of rows just predicted (progress bars).
OnRows = Callable[[int], None] | None


@dataclass(frozen=True)
class Metric:
    """A validation metric of training: its key in the run (``eval_accuracy``), its model-index type and name."""

    key: str
    kind: str
    name: str

    @property
    def short(self) -> str:
        """The name ``--metric`` takes (``accuracy``)."""
        return self.key.removeprefix("eval_")


@dataclass
class Scored:
    """One pass of a model over (possibly perturbed) rows: the report card's metric sections and what they came
    from. ``sections`` holds at least ``{"metrics": {...}}`` (a classifier adds ``per_class``, ``confusion_matrix``
    and the like); the other fields are the task's own (probabilities, predictions, gold, ...)."""

    sections: dict[str, Any]
    probabilities: Any = None
    predicted: Any = None
    gold: Any = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def metrics(self) -> dict[str, Any]:
        return self.sections["metrics"]


@dataclass(frozen=True)
class Endpoint:
    """One route of ``fmhub serve`` (``/v1/<name>``).

    ``request`` is the pydantic model of the JSON body (``inputs`` and ``parameters``). A batched endpoint's
    ``run(context, requests)`` answers a batch of inputs from many requests (an item that is an ``Exception``
    fails only its request); an unbatched one (generation) has ``run(context, inputs, parameters, on_text)``
    answering one input, calling ``on_text`` with each new piece when it streams. ``needs`` names a capability
    the loaded model must have (``hidden_states``, ``generate``), else the endpoint is not served.

    ``uploads``: media types (``image/*``) the endpoint also takes as a raw request body or as the file parts
    of a ``multipart/form-data`` body; the server hands their bytes (one input each) and the other form fields
    or query parameters to ``from_uploads(files, fields)``, which returns the JSON body they stand for.
    """

    name: str
    summary: str
    request: type
    run: Callable[..., Any]
    batched: bool = True
    needs: str | None = None
    uploads: tuple[str, ...] = ()
    from_uploads: Callable[[list[bytes], dict[str, str]], dict[str, Any]] | None = None

    def takes_upload(self, media_type: str) -> bool:
        """Whether a body of ``media_type`` (``image/png``; parameters and case ignored) is one of ``uploads``."""
        kind = media_type.split(";", 1)[0].strip().lower()
        return any(kind == u or (u.endswith("/*") and kind.startswith(u[:-1])) for u in self.uploads)


class Task(abc.ABC):
    """What one task is, for every stage (see the module docstring). Subclass it, set the class attributes,
    implement the abstract methods, and register an instance with :func:`fmhub.tasks.register`."""

    name: ClassVar[str]
    title: ClassVar[str]  # in model cards and the model-index
    pipeline_tag: ClassVar[str]  # the Hub's pipeline tag of the model
    auto_class: ClassVar[str]  # the transformers auto class of the head
    head_suffixes: ClassVar[tuple[str, ...]]  # config.architectures endings of such a head
    input_column: ClassVar[str]
    label_column: ClassVar[str | None]  # None: self-supervised (no labels)
    validation_metrics: ClassVar[tuple[Metric, ...]]  # during training; the first decides "best" by default
    report_metrics: ClassVar[tuple[str, ...]]  # the report card's headline metrics; the first is the primary one
    endpoints: ClassVar[tuple[Endpoint, ...]] = ()
    distillable: ClassVar[bool] = False  # its logits can teach a student (soft targets)
    per_token: ClassVar[bool] = False  # logits per token (batch, length, classes), not per row
    scratch_architectures: ClassVar[tuple[str, ...]] = ()  # --architecture values of pretraining from scratch
    option_groups: ClassVar[frozenset[str]] = frozenset()  # task-specific training option groups it takes (augment)
    multi_label: ClassVar[bool] = False
    #: Robustness perturbations of the report card: name → what it does (``perturb`` applies them).
    perturbations: ClassVar[dict[str, str]] = PERTURBATIONS
    size_unit: ClassVar[str] = "words"  # what ``sizes`` counts (the length slices' unit)
    #: The explainer of its predictions in ``fmhub.explain`` (``tokens``: text attributions; ``pixels``: image
    #: regions); None: fmhub explain does not explain this task.
    explains: ClassVar[str | None] = None

    def __repr__(self) -> str:
        return f"<task {self.name}{' (multi-label)' if self.multi_label else ''}>"

    # -- recognizing a model of this task ------------------------------------------------------------------

    def recognizes(self, model_config: Any) -> bool:
        """True when the model's head (``config.architectures``) is this task's."""
        architectures = getattr(model_config, "architectures", None) or []
        return any(a.endswith(self.head_suffixes) for a in architectures)

    def for_model(self, model_config: Any) -> Task:
        """The task as this model does it (e.g. a multi-label classifier); default: itself."""
        return self

    def with_options(self, *, multi_label: bool) -> Task:
        """The task as a run's options ask for it (``--multi-label``: the multi-label variant, where there is one)."""
        if multi_label:
            raise InvalidInputError(f"--multi-label does not apply to {self.name}",
                                    hint="--multi-label applies to text-classification")
        return self

    def model_class(self) -> Any:
        import transformers

        return getattr(transformers, self.auto_class)

    def model_options(self) -> dict[str, Any]:
        """Extra ``from_pretrained`` options of the head (e.g. the problem type)."""
        return {}

    def load_preprocessor(self, folder: Any) -> Any:
        """What turns raw inputs into model inputs (the tokenizer; an image processor for vision tasks)."""
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(folder)
        if tokenizer.pad_token_id is None and tokenizer.eos_token_id is not None:
            tokenizer.pad_token = tokenizer.eos_token
        return tokenizer

    #: Files of a saved preprocessor: what decides the model inputs (the training cache is keyed on their bytes).
    preprocessor_files: ClassVar[tuple[str, ...]] = (
        "tokenizer.json", "tokenizer_config.json", "vocab.txt", "vocab.json", "merges.txt", "special_tokens_map.json",
        "spiece.model", "sentencepiece.bpe.model")

    def read_inputs(self, rows: Any, column: str) -> list[Any]:
        """The values of the input column of a ``datasets.Dataset`` as the task's other methods take them (texts,
        word lists; an image task reads its images undecoded, with their stored path)."""
        return rows[column]

    def input_axes(self) -> dict[str, dict[int, str]]:
        """The model inputs by name with their dynamic axes, for an ONNX export (the outputs' follow the task)."""
        return {"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"}}

    def describe_input(self, inputs: Mapping[str, np.ndarray]) -> str:
        """What one row of model inputs is, in words, for the efficiency section ("128 tokens")."""
        return f"{next(iter(inputs.values())).shape[-1]} tokens"

    def encode_batch(self, preprocessor: Any, values: list[Any], max_length: int) -> dict[str, np.ndarray]:
        """Raw inputs (values of the input column) as one padded batch of model inputs (int64 arrays by name).

        The default reads texts; tasks with other inputs (word lists, images) override it.
        """
        encoded = preprocessor([v or "" for v in values], truncation=True, max_length=max_length, padding=True,
                               return_tensors="np")
        return {"input_ids": encoded["input_ids"].astype(np.int64),
                "attention_mask": encoded["attention_mask"].astype(np.int64)}

    def unchanged_for_model(self, preprocessor: Any, clean: list[Any], perturbed: list[Any],
                            max_length: int) -> np.ndarray:
        """Per row, whether the model sees the same input before and after a perturbation (the same token ids
        once cut at ``max_length``): a perturbation that changes no row's input has no result to report.

        The default reads texts (or pre-split word lists); tasks with other inputs override it.
        """
        def ids(values: list[Any]) -> list[list[int]]:
            words = bool(values) and isinstance(values[0], list)
            encoded = preprocessor([v or ([] if words else "") for v in values], truncation=True,
                                   max_length=max_length, is_split_into_words=words, return_attention_mask=False,
                                   return_token_type_ids=False)
            return encoded["input_ids"]

        return np.array([a == b for a, b in zip(ids(clean), ids(perturbed), strict=True)], dtype=bool)

    def example_inputs(self, preprocessor: Any) -> dict[str, np.ndarray]:
        """A small batch of made-up inputs of the right kind (what an ONNX export traces)."""
        return self.encode_batch(preprocessor, ["a first sample", "a second, longer sample text"], 32)

    def labels_of(self, model_config: Any) -> list[str]:
        """The model's label names in id order ([] for tasks without labels)."""
        if self.label_column is None:
            return []
        id2label = getattr(model_config, "id2label", None) or {}
        return [id2label[i] for i in sorted(id2label)]

    # -- options -------------------------------------------------------------------------------------------

    def check_options(self, *, metric: str | None, class_weights: bool, label_smoothing: float,
                      teacher: bool) -> None:
        """Raise InvalidInputError for a training option that does not apply to this task."""
        allowed = [m.short for m in self.validation_metrics]
        if metric is not None and metric not in allowed:
            raise InvalidInputError(f"--metric {metric!r} is not a {self.name} metric",
                                    hint=f"choose from {', '.join(allowed)}")
        if class_weights and self.label_column is None:
            raise InvalidInputError("--class-weights applies to classification tasks")
        if teacher and not self.distillable:
            raise InvalidInputError(f"--teacher distills single-label classifiers, not {self.name}"
                                    f"{' (multi-label)' if self.multi_label else ''}",
                                    hint="a teacher is a single-label classifier (a task whose logits are soft "
                                         "targets)")

    @property
    def primary_metric(self) -> str:
        return self.report_metrics[0]

    # -- training ------------------------------------------------------------------------------------------

    @abc.abstractmethod
    def label_names(self, features: Any, label_column: str | None) -> list[str]:
        """The dataset's label names (from its features), or an input error naming the fix."""

    def bind(self, tokenizer: Any, *, num_labels: int, options: Mapping[str, Any]) -> Task:
        """This task bound to a tokenizer and the run's options (tasks that need them return a copy)."""
        return self

    @abc.abstractmethod
    def tokenize(self, dataset: Any, tokenizer: Any, input_column: str, label_column: str | None,
                 max_length: int) -> tuple[list[list[int]], list[Any]]:
        """Token ids per row and labels per row (an int, one int per token, or a list of label ids)."""

    @abc.abstractmethod
    def collate(self, split: TokenizedSplit, rows: np.ndarray, pad_id: int, generator: Any = None, *,
                train: bool = False) -> dict[str, Any]:
        """A padded batch of torch tensors: the model inputs and ``labels``. ``train``: a training batch (the only
        kind a task augments; random draws from torch's global generator, which checkpoints save)."""

    # -- pretraining from scratch --------------------------------------------------------------------------

    def scratch_preprocessor(self, options: Mapping[str, Any], rows: Any, input_column: str, cache: Path,
                             key: Mapping[str, Any]) -> Path:
        """Make (or reuse, from ``cache``) the preprocessor of a model pretrained from scratch and return the folder
        it is saved in. ``options``: the run's flat options; ``rows``: the training split; ``key``: what identifies
        the data (dataset commit, split, column)."""
        raise InvalidInputError(f"{self.name} cannot be pretrained from scratch", hint="fine-tune a --model instead")

    def scratch_config(self, options: Mapping[str, Any], preprocessor: Any) -> Any:
        """The transformers config of a model pretrained from scratch (``--architecture`` or ``--from-config``)."""
        raise InvalidInputError(f"{self.name} cannot be pretrained from scratch", hint="fine-tune a --model instead")

    def class_weights(self, split: TokenizedSplit, num_labels: int) -> Any:
        raise InvalidInputError("--class-weights applies to classification tasks")

    def loss_function(self, weights: Any = None, label_smoothing: float = 0.0, reduction: str = "mean") -> Any:
        """The loss for labels of this task (``weights``: per-class weights or None)."""
        import torch

        return torch.nn.CrossEntropyLoss(weight=weights, label_smoothing=label_smoothing, ignore_index=IGNORE,
                                         reduction=reduction)

    def loss(self, logits: Any, labels: Any, loss_fn: Any) -> Any:
        return loss_fn(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1))

    def counted(self, labels: Any) -> int:
        """How many targets a batch's summed loss covers (for the mean loss of a validation pass)."""
        return int((labels != IGNORE).sum())

    def predict_batches(self, model: Any, split: TokenizedSplit, batch_size: int, pad_id: int,
                        generator: Any = None) -> Iterator[tuple[np.ndarray, dict[str, Any], Any, float]]:
        """``(rows, batch, logits, summed loss)`` over ``split``, longest rows first, under ``inference_mode``."""
        import torch

        summed = self.loss_function(reduction="sum")
        model.eval()
        try:
            with torch.inference_mode():
                for rows in batch_order(split.lengths, batch_size * 2, 0, 0, shuffle=False):
                    batch = self.collate(split, rows, pad_id, generator)
                    logits = model(**self.model_inputs(batch)).logits
                    yield rows, batch, logits, self.loss(logits, batch["labels"], summed).item()
        finally:
            model.train()

    def model_inputs(self, batch: Mapping[str, Any]) -> dict[str, Any]:
        """The entries of a collated batch the model takes (everything but the labels)."""
        return {k: v for k, v in batch.items() if k != "labels"}

    @abc.abstractmethod
    def validate(self, model: Any, split: TokenizedSplit, batch_size: int, pad_id: int,
                 label_names: list[str]) -> dict[str, float]:
        """Validation metrics of a torch model during training (``loss`` included), under ``inference_mode``."""

    # -- evaluation (the report card) ----------------------------------------------------------------------

    report_card: ClassVar[str | None] = None  # why fmhub eval cannot score this task yet (None: it can)

    def gold(self, rows: Any, label_column: str | None, model_labels: list[str]) -> Any:
        """The evaluated rows' labels in the model's label ids (None for tasks without labels)."""
        return None

    @abc.abstractmethod
    def score(self, forward: Forward, preprocessor: Any, values: list[Any], gold: Any, *, labels: list[str],
              max_length: int, batch_size: int, seed: int, on_rows: OnRows = None) -> Scored:
        """Run the model over ``values`` (the input column) and score it against ``gold``."""

    def calibration_inputs(self, scored: Scored) -> tuple[np.ndarray, np.ndarray, str] | None:
        """(confidence, correct, basis) of the top label, for the calibration section; None: not a classifier."""
        return None

    @abc.abstractmethod
    def perturb(self, name: str, values: list[Any], gold: Any, seed: int) -> tuple[list[Any], Any]:
        """The rows under one robustness perturbation (``fmhub.tasks.PERTURBATIONS``), and the gold they keep."""

    @abc.abstractmethod
    def sizes(self, values: list[Any]) -> np.ndarray:
        """A size per row (in ``size_unit``: words, pixels) for the size slices."""

    @abc.abstractmethod
    def group_metrics(self, scored: Scored, rows: np.ndarray, labels: list[str]) -> dict[str, Any]:
        """The headline metrics of a subset of the scored rows (a slice)."""

    @abc.abstractmethod
    def efficiency_input(self, preprocessor: Any, values: list[Any], max_length: int) -> dict[str, np.ndarray]:
        """A batch of one typical row (the median size), as model inputs, for latency and throughput."""

    @abc.abstractmethod
    def baseline(self, train: Any, input_column: str, label_column: str | None, values: list[Any], gold: Any,
                 scored: Scored, *, labels: list[str], preprocessor: Any, max_length: int, seed: int
                 ) -> tuple[str, dict[str, Any]]:
        """(name, metrics) of a cheap model trained on the ``train`` rows and scored on the evaluated ones."""

    @abc.abstractmethod
    def prediction_columns(self, scored: Scored, labels: list[str]) -> dict[str, Any]:
        """The Arrow columns ``predictions.parquet`` keeps per row (besides ``row``)."""

    def headline(self, metrics: Mapping[str, Any]) -> dict[str, Any]:
        return {k: metrics.get(k) for k in self.report_metrics}

    # -- serve-check ---------------------------------------------------------------------------------------

    def check_request(self, values: list[Any]) -> tuple[str, dict[str, Any]] | None:
        """``(endpoint, JSON body)`` asking the served model for the top label of each value (what a pipeline's
        serve-check compares with offline predictions); None: the task has no such endpoint."""
        return None
