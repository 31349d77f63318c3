"""Splits are deterministic, stratified and exact in size."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fmhub.data._splits import assign_splits, parse_split_spec
from fmhub.errors import InvalidInputError

RATIOS = {"train": 0.8, "validation": 0.1, "test": 0.1}


def test_parse_split_spec() -> None:
    assert parse_split_spec("train=0.8, validation=0.1,test=0.1") == RATIOS
    for bad in ("train=0.8,test=0.1", "train=1.2", "train", "train=x", "train=0.5,train=0.5", "tr@in=1", "=1"):
        with pytest.raises(InvalidInputError):
            parse_split_spec(bad)


def test_same_seed_same_rows_other_seed_other_rows() -> None:
    labels = [f"c{i % 5}" for i in range(1000)]
    first = assign_splits(labels, RATIOS, seed=0)
    assert first == assign_splits(labels, RATIOS, seed=0)
    assert first != assign_splits(labels, RATIOS, seed=1)


def test_stratified_by_label() -> None:
    labels = ["rare"] * 20 + ["common"] * 980
    splits = assign_splits(labels, RATIOS, seed=0)
    per_split = Counter(zip(splits, labels))
    assert per_split[("train", "rare")] == 16 and per_split[("validation", "rare")] == 2
    assert per_split[("test", "rare")] == 2 and per_split[("train", "common")] == 784


def test_unlabelled_rows_split_by_ratio() -> None:
    splits = assign_splits([None] * 101, RATIOS, seed=3)
    assert Counter(splits) == {"train": 81, "validation": 10, "test": 10}


@given(st.lists(st.sampled_from(["a", "b", "c", None]), max_size=300), st.integers(0, 10))
def test_every_row_gets_a_split_and_sizes_match(labels, seed) -> None:
    splits = assign_splits(labels, RATIOS, seed)
    assert len(splits) == len(labels) and set(splits) <= set(RATIOS)
    counts = Counter(splits)
    for name, ratio in RATIOS.items():  # per group rounding: off by at most one per label group
        assert abs(counts[name] - ratio * len(labels)) <= 4
