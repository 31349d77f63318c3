"""Deterministic, stratified train/validation/test splits.

The assignment depends only on the rows' order, their labels, the ratios and the seed, so the same
source and recipe give the same rows in every split (and byte-identical Parquet) on any machine.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

import numpy as np

from fmhub.errors import InvalidInputError

__all__ = ["parse_split_spec", "assign_splits", "assign_split_codes", "DEFAULT_SPLIT"]

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
    """The split of each row, stratified by label when the rows have labels (see :func:`assign_split_codes`)."""
    names = sorted({label for label in labels if label is not None})
    index = {name: i for i, name in enumerate(names)}
    codes = np.array([-1 if label is None else index[label] for label in labels], dtype=np.int64)
    split_names = list(ratios)
    return [split_names[code] for code in assign_split_codes(codes, names, ratios, seed).tolist()]


def assign_split_codes(codes: np.ndarray, label_names: Sequence[str], ratios: dict[str, float],
                       seed: int) -> np.ndarray:
    """Each row's split as an index into ``list(ratios)``, from each row's label code (-1: no label).

    Each label's rows are shuffled by a generator seeded with (seed, label name) and cut by the ratios
    (largest remainder), so each split holds every label in about the same proportion, and adding rows
    of one label never moves rows of another. Rows without a label form one more group, after the labels
    (all rows, when none has a label).
    """
    codes = np.asarray(codes)
    assigned = np.zeros(len(codes), dtype=np.uint8)
    order = np.argsort(codes, kind="stable")  # each group's rows, in source order
    sorted_codes = codes[order]
    groups = [(i, str(name)) for i, name in enumerate(label_names)] + [(-1, "None")]
    for code, name in groups:
        lo, hi = np.searchsorted(sorted_codes, code, side="left"), np.searchsorted(sorted_codes, code, side="right")
        if lo == hi:
            continue
        indices = order[lo:hi]
        digest = hashlib.sha256(f"{seed}\0{name}".encode()).digest()
        # A permutation from PCG64's raw stream (NumPy keeps bit generators' streams stable across
        # releases, unlike Generator methods and Python's random.shuffle): same recipe, same splits.
        raw = np.random.PCG64(int.from_bytes(digest[:16], "big")).random_raw(len(indices))
        indices = indices[np.argsort(raw, kind="stable")]
        start = 0
        for split_id, size in enumerate(_largest_remainder(len(indices), ratios).values()):
            assigned[indices[start:start + size]] = split_id
            start += size
    return assigned
