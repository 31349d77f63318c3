"""Explain a loaded model version's predictions on given inputs: the options, checked once, and the loop."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from fmhub.errors import InvalidInputError
from fmhub.explain._base import DEFAULT_STEPS, MAX_STEPS, METHODS, TOLERANCE, Explanation, default_method, require
from fmhub.explain._faithfulness import faithfulness
from fmhub.explain._registry import for_task

__all__ = ["ExplainArgs", "explain", "label_id", "max_length_of", "dataset_rows", "MAX_POSITIONS"]

MAX_POSITIONS = 512


@dataclass(frozen=True)
class ExplainArgs:
    """How to explain (each field is an ``fmhub explain`` option, and a ``/v1/explain`` parameter)."""

    method: str | None = None  # default: integrated-gradients where the format has gradients, else occlusion
    label: str | None = None  # a label name (or id) to explain; default: the predicted label
    steps: int = DEFAULT_STEPS  # integrated-gradients steps to start from
    max_steps: int = MAX_STEPS  # ... raised up to this until completeness holds
    tolerance: float = TOLERANCE
    max_length: int | None = None  # tokens per text; default: the model's positions (≤ 512)
    faithfulness: bool = False  # also measure comprehensiveness, sufficiency and deletion AUC

    def validate(self) -> None:
        if self.method is not None and self.method not in METHODS:
            raise InvalidInputError(f"--method {self.method!r}: no such method", hint=f"choose from {', '.join(METHODS)}")
        if self.steps < 2:
            raise InvalidInputError(f"--steps {self.steps} must be at least 2")
        if self.max_steps < self.steps:
            raise InvalidInputError(f"--max-steps {self.max_steps} is below --steps {self.steps}",
                                    hint=f"use --max-steps {max(self.steps, MAX_STEPS)}")
        if not 0 < self.tolerance < 1:
            raise InvalidInputError(f"--tolerance {self.tolerance} must be between 0 and 1 (0.05: within 5%)")
        if self.max_length is not None and self.max_length < 4:
            raise InvalidInputError(f"--max-length {self.max_length} must be at least 4")


def label_id(loaded: Any, label: str | int | None) -> int | None:
    """The model's id of a label given by name (or id), or an input error listing the labels."""
    if label is None:
        return None
    labels = loaded.labels
    if isinstance(label, str) and label in labels:
        return labels.index(label)
    text = str(label)
    if text.isdigit() and int(text) < len(labels):
        return int(text)
    raise InvalidInputError(f"label {label!r} is not one of the model's labels",
                            hint=f"choose from {', '.join(labels)}")


def max_length_of(loaded: Any, requested: int | None) -> int:
    """Tokens per input: ``requested`` (at most the model's positions), else the positions up to 512."""
    positions = getattr(loaded.config, "max_position_embeddings", None) or getattr(loaded.config, "n_positions", None)
    if requested is not None:
        if positions is not None and requested > positions:
            raise InvalidInputError(f"--max-length {requested} is beyond the model's {positions} positions",
                                    hint=f"use --max-length {positions} or less")
        return requested
    return min(positions or MAX_POSITIONS, MAX_POSITIONS)


def explain(loaded: Any, values: list[Any], args: ExplainArgs | None = None,
            on_row: Callable[[int], None] | None = None) -> list[tuple[Explanation, dict[str, float] | None]]:
    """Explain each value (a text; an image) with ``args``; each with its faithfulness when asked.

    Example:
        >>> import fmhub
        >>> from fmhub.explain import ExplainArgs, explain
        >>> loaded = fmhub.load("acme/bbc-minilm@v1")
        >>> [(e, _)] = explain(loaded, ["Shares rose on Monday"], ExplainArgs())
        >>> e.label, e.top(3)
        ('business', [('shares', 0.41), ('rose', 0.22), ('monday', 0.03)])
    """
    args = args or ExplainArgs()
    args.validate()
    explainer = for_task(loaded.task, loaded.repo)
    method = args.method or default_method(loaded)
    require(loaded, method)
    target = label_id(loaded, args.label)
    length = max_length_of(loaded, args.max_length)
    out = []
    for value in values:
        prepared = explainer.prepare(loaded, value, max_length=length)
        explanation = explainer.explain(loaded, prepared, method, label=target, steps=args.steps,
                                        max_steps=args.max_steps, tolerance=args.tolerance)
        measured = faithfulness(explainer, loaded, prepared, explanation.label_id, np.asarray(explanation.scores),
                                explanation.probability) if args.faithfulness else None
        out.append((explanation, measured))
        if on_row is not None:
            on_row(1)
    return out


def dataset_rows(hub: Any, data: str, split: str, rows: int, task: Any, column: str | None = None,
                 label_column: str | None = None) -> tuple[list[Any], list[str | None]]:
    """The first ``rows`` inputs of a dataset split (as the task reads them) and their gold label names (None
    where the split has no such column)."""
    from fmhub.data import load as load_dataset
    from fmhub.refs import split_ref

    repo, revision = split_ref(data, "--data")
    if rows < 1:
        raise InvalidInputError(f"--rows {rows} must be at least 1")
    dataset = load_dataset(repo, revision=revision, hub=hub)
    if split not in dataset:
        raise InvalidInputError(f"dataset {repo} has no {split!r} split; its splits are: {', '.join(dataset)}",
                                hint="name one with --split")
    part = dataset[split]
    column = column or task.input_column
    if column not in part.features:
        raise InvalidInputError(f"dataset {repo} has no column {column!r}; its columns are: "
                                f"{', '.join(part.features)}", hint="name it with --column")
    part = part.select(range(min(rows, len(part))))
    values = task.read_inputs(part, column)
    label_column = label_column or task.label_column
    gold: list[str | None] = [None] * len(values)
    if label_column is not None and label_column in part.features:
        names = getattr(part.features[label_column], "names", None)
        gold = [names[v] if names is not None and isinstance(v, int) and v >= 0 else None
                for v in part[label_column]]
    return values, gold
