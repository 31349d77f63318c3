"""Deterministic, stratified train/validation/test splits.

The assignment depends only on the rows' order, their labels, the ratios and the seed, so the same
source and recipe give the same rows in every split (and byte-identical Parquet) on any machine.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections import defaultdict
from collections.abc import Sequence

from fmhub.errors import InvalidInputError

__all__ = ["parse_split_spec", "assign_splits", "DEFAULT_SPLIT"]

DEFAULT_SPLIT = "train=0.8,validation=0.1,test=0.1"
_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789_-")


def parse_split_spec(spec: str) -> dict[str, float]:
    """``"train=0.8,validation=0.1,test=0.1"`` → ordered ratios that sum to 1 (checked)."""
    ratios: dict[str, float] = {}
    for part in (p.strip() for p in spec.split(",")):
        name, sep, value = part.partition("=")
        name = name.strip().lower()
        try:
            ratio = float(value) if sep else math.nan
        except ValueError:
            ratio = math.nan
        if not name or not set(name) <= _NAME_CHARS or name in ratios or not 0 < ratio <= 1:
            raise InvalidInputError(f"--split {spec!r}: {part!r} is not name=fraction (a fraction in (0, 1])",
                                    hint=f"e.g. --split {DEFAULT_SPLIT}")
        ratios[name] = ratio
    if abs(sum(ratios.values()) - 1) > 1e-6:
        raise InvalidInputError(f"--split {spec!r}: the fractions add up to {sum(ratios.values()):g}, not 1",
                                hint=f"e.g. --split {DEFAULT_SPLIT}")
    return ratios


def _largest_remainder(count: int, ratios: dict[str, float]) -> dict[str, int]:
    """Integer sizes that add up to ``count`` and are as close as possible to ``count × ratio``."""
    exact = {name: count * ratio for name, ratio in ratios.items()}
    sizes = {name: math.floor(value) for name, value in exact.items()}
    leftover = count - sum(sizes.values())
    # Ties go to the split listed first, so the recipe's order (train first) decides, not hashing.
    order = sorted(ratios, key=lambda n: (-(exact[n] - sizes[n]), list(ratios).index(n)))
    for name in order[:leftover]:
        sizes[name] += 1
    return sizes


def assign_splits(labels: Sequence[str | None], ratios: dict[str, float], seed: int) -> list[str]:
    """The split of each row, stratified by label when the rows have labels.

    Each label's rows are shuffled with a generator seeded by (seed, label) and cut by the ratios
    (largest remainder), so each split holds every label in about the same proportion, and adding rows
    of one label never moves rows of another.
    """
    groups: dict[str | None, list[int]] = defaultdict(list)
    stratify = any(label is not None for label in labels)
    for index, label in enumerate(labels):
        groups[label if stratify else None].append(index)
    assigned: list[str] = [""] * len(labels)
    for label in sorted(groups, key=lambda x: (x is None, str(x))):
        indices = groups[label]
        digest = hashlib.sha256(f"{seed}\0{label}".encode()).digest()
        random.Random(int.from_bytes(digest[:8], "big")).shuffle(indices)
        start = 0
        for name, size in _largest_remainder(len(indices), ratios).items():
            for index in indices[start:start + size]:
                assigned[index] = name
            start += size
    return assigned
