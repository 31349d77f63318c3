"""Report cards of a proposed model version against its base: what a pull request's review shows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from fmhub.evaluations._index import EvaluationInfo

__all__ = ["MetricChange", "metric_changes"]


@dataclass(frozen=True)
class MetricChange:
    dataset: str
    split: str
    metric: str
    base: float | None  # None: the base has no card on this dataset split, or not this metric
    proposed: float

    @property
    def delta(self) -> float | None:
        return None if self.base is None else self.proposed - self.base


def metric_changes(cards: Sequence[EvaluationInfo], proposed: Sequence[str],
                   base: Sequence[str]) -> list[MetricChange]:
    """Per dataset split and metric: the newest card of a model version among ``proposed`` (a pull request's
    commits, newest first) against the newest among ``base`` (the base's history, newest first).

    ``cards`` are newest first, as the index lists them; only dataset splits the proposal has a card on appear.
    """
    newest: dict[tuple[str, str, str], dict[str, float]] = {}
    for info in cards:
        newest.setdefault((info.model_commit, info.dataset, info.split), info.metrics)

    def first(commits: Sequence[str], dataset: str, split: str) -> dict[str, float] | None:
        return next((newest[(c, dataset, split)] for c in commits if (c, dataset, split) in newest), None)

    changes = []
    for dataset, split in sorted({(d, s) for _, d, s in newest}):
        after = first(proposed, dataset, split)
        if after is None:
            continue
        before = first(base, dataset, split) or {}
        changes += [MetricChange(dataset, split, name, before.get(name), value) for name, value in sorted(after.items())]
    return changes
