"""The explainers by name (what ``Task.explains`` names): a registry lookup, never a branch on a task."""

from __future__ import annotations

from typing import Any

from fmhub.errors import InvalidInputError
from fmhub.explain._base import Explainer
from fmhub.explain._image import RegionAttributions
from fmhub.explain._text import TokenAttributions

__all__ = ["register", "get", "names", "for_task"]

_REGISTRY: dict[str, Explainer] = {}


def register(explainer: Explainer, *, replace: bool = False) -> Explainer:
    """Make ``explainer`` available to tasks whose ``explains`` is ``explainer.name``."""
    if explainer.name in _REGISTRY and not replace:
        raise ValueError(f"an explainer named {explainer.name!r} is already registered")
    _REGISTRY[explainer.name] = explainer
    return explainer


for _explainer in (TokenAttributions(), RegionAttributions()):
    register(_explainer)


def names() -> tuple[str, ...]:
    return tuple(_REGISTRY)


def get(name: str) -> Explainer:
    explainer = _REGISTRY.get(name)
    if explainer is None:
        raise InvalidInputError(f"no explainer named {name!r}", hint=f"known: {', '.join(_REGISTRY)}")
    return explainer


def for_task(task: Any, repo: str = "") -> Explainer:
    """The explainer of a task's inputs, or an input error naming the tasks that can be explained."""
    name = getattr(task, "explains", None)
    if name is None:
        from fmhub import tasks

        can = [t.name for t in tasks.all_tasks() if t.explains is not None]
        raise InvalidInputError(f"{repo or 'this model'} is a {task.name} model{' (multi-label)' if task.multi_label else ''}"
                                f"; fmhub explain explains {', '.join(can)} models",
                                hint="explain a single-label text or image classifier")
    return get(name)
