"""Tasks as plugins: the only place that knows what a task is.

Each task is one module with one :class:`Task` subclass (columns, head, tokenization and batches, loss,
validation and report-card metrics, predictions, pipeline tag, serve endpoints, distillability); the
stages — train, evaluate, optimize, serve, pipeline — look a task up here and ask it, and never branch on
its name. Adding a task is one module, its registration (:func:`register`) and its tests.

Example:
    >>> from fmhub import tasks
    >>> task = tasks.get("text-classification")
    >>> task.pipeline_tag, [e.name for e in task.endpoints]
    ('text-classification', ['classify', 'embed'])
    >>> tasks.for_model(AutoConfig.from_pretrained("./my-ner-model"), "acme/ner").name
    'token-classification'
"""

from __future__ import annotations

from typing import Any

from fmhub.errors import InvalidInputError
from fmhub.tasks._base import Endpoint, Forward, Metric, OnRows, Scored, Task
from fmhub.tasks._batches import IGNORE, TokenizedSplit, batch_order, pad_rows
from fmhub.tasks._images import (IMAGE_SUFFIXES, MAX_IMAGE_PIXELS, ImageTooLargeError, decode_base64, dhash,
                                 inspect_image)
from fmhub.tasks._perturb import PERTURBATIONS
from fmhub.tasks._serving import Item, ServingContext
from fmhub.tasks.image_classification import ImageClassification
from fmhub.tasks.language_modeling import CausalLanguageModeling, MaskedLanguageModeling
from fmhub.tasks.text_classification import TextClassification
from fmhub.tasks.token_classification import TokenClassification

__all__ = ["Task", "Metric", "Scored", "Endpoint", "Forward", "OnRows", "Item", "ServingContext", "TokenizedSplit",
           "batch_order", "pad_rows", "IGNORE", "PERTURBATIONS", "register", "get", "names", "all_tasks",
           "for_model", "endpoints", "LOWER_IS_BETTER", "IMAGE_SUFFIXES", "MAX_IMAGE_PIXELS", "ImageTooLargeError",
           "inspect_image", "dhash", "decode_base64"]

_REGISTRY: dict[str, Task] = {}

#: Metrics of report cards (and runs) where a lower value is better.
LOWER_IS_BETTER = frozenset({"loss", "perplexity", "bits_per_token", "ece", "latency_p50_ms", "latency_p95_ms",
                             "weights_bytes", "peak_rss_bytes", "parameters"})


def register(task: Task, *, replace: bool = False) -> Task:
    """Make ``task`` known to every stage under ``task.name`` (a second task of the same name is an error)."""
    if task.name in _REGISTRY and not replace:
        raise ValueError(f"a task named {task.name!r} is already registered")
    _REGISTRY[task.name] = task
    return task


for _task in (TextClassification(), TokenClassification(), MaskedLanguageModeling(), CausalLanguageModeling(),
              ImageClassification()):
    register(_task)


def names() -> tuple[str, ...]:
    """The registered task names, in registration order."""
    return tuple(_REGISTRY)


def all_tasks() -> tuple[Task, ...]:
    return tuple(_REGISTRY.values())


def get(name: str) -> Task:
    """The task registered as ``name``, or an input error listing the known ones."""
    task = _REGISTRY.get(name) if isinstance(name, str) else None
    if task is None:
        raise InvalidInputError(f"unknown task {name!r}", hint=f"choose from {', '.join(_REGISTRY)}")
    return task


def for_model(model_config: Any, repo: str) -> Task:
    """The task a model's head does (from ``config.architectures``), as this model does it; a headless model is
    an input error."""
    for task in _REGISTRY.values():
        if task.recognizes(model_config):
            return task.for_model(model_config)
    shown = ", ".join(getattr(model_config, "architectures", None) or []) or "none recorded"
    raise InvalidInputError(f"{repo} has no task head (architectures: {shown})",
                            hint="fine-tune it first (fmhub train --task text-classification ...), or use a model "
                                 "with a classification, token-classification, language-model or image-classification "
                                 "head")


def endpoints() -> dict[str, Endpoint]:
    """Every endpoint some registered task serves, by name (a name shared by several tasks is one endpoint)."""
    out: dict[str, Endpoint] = {}
    for task in _REGISTRY.values():
        for endpoint in task.endpoints:
            out.setdefault(endpoint.name, endpoint)
    return out
