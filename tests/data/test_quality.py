"""The dataset quality report: counts, lengths, duplicates, leakage, conflicts, JSON, card and console."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

from fmhub.data._quality import (
    LENGTH_BUCKET_EDGES,
    QualityAccumulator,
    QualityReport,
    normalize_text,
    quality_markdown,
    render_quality,
)
from fmhub.errors import InvalidInputError


def build(rows: list[tuple[str, str | None, str | None]]) -> QualityReport:
    acc = QualityAccumulator()
    for split, text, label in rows:
        acc.add(split, text, label)
    return acc.report()


@pytest.fixture
def leaky() -> QualityReport:
    """A small dataset with one of every finding."""
    return build([
        ("train", "the cat sat", "animal"),          # 0
        ("train", "Hello, World!", "greeting"),      # 1
        ("train", "stocks fell", "business"),        # 2
        ("train", "the cat sat", "animal"),          # 3 duplicate of 0
        ("train", "   ", "animal"),                  # 4 empty
        ("train", "Rain today", "weather"),          # 5
        ("test", "stocks fell", "business"),         # 0 exact leak of train[2]
        ("test", "hello world", "greeting"),         # 1 near-duplicate of train[1]
        ("test", "rain today.", "sport"),            # 2 near-duplicate of train[5] with another label
        ("test", None, None),                        # 3 empty
    ])


def test_counts_labels_and_empties(leaky: QualityReport) -> None:
    train, test = leaky.split("train"), leaky.split("test")
    assert (leaky.rows, train.rows, test.rows) == (10, 6, 4)
    assert train.labels == {"animal": 3, "business": 1, "greeting": 1, "weather": 1}
    assert train.label_fractions["animal"] == pytest.approx(0.5)
    assert test.labeled_rows == 3  # the None label is not counted
    assert (train.empty, train.empty_examples) == (1, (4,))
    assert (test.empty, test.empty_examples) == (1, (3,))
    with pytest.raises(KeyError):
        leaky.split("validation")


def test_empty_examples_keep_the_first_ten() -> None:
    report = build([("train", "" if i % 2 else "x", None) for i in range(50)])
    assert report.split("train").empty == 25
    assert report.split("train").empty_examples == tuple(range(1, 20, 2))


def test_length_histogram_buckets_and_stats() -> None:
    lengths = [0, 1, 15, 16, 31, 32, 100, 16383, 16384, 50_000]
    report = build([("train", "a" * n if n else "", None) for n in lengths])
    chars = report.split("train").chars
    assert chars.edges == LENGTH_BUCKET_EDGES
    expected = dict.fromkeys(LENGTH_BUCKET_EDGES, 0) | {0: 3, 16: 2, 32: 1, 64: 1, 8192: 1, 16384: 2}
    assert chars.counts == tuple(expected.values())
    assert sum(chars.counts) == len(lengths)
    assert (chars.min, chars.max) == (0, 50_000)
    assert chars.median == (31 + 32) / 2
    assert chars.p95 == 50_000  # nearest rank: ceil(0.95 * 10) = 10th value
    assert chars.mean == pytest.approx(sum(lengths) / len(lengths))


def test_token_lengths_count_whitespace_tokens() -> None:
    report = build([("train", "one two  three", None), ("train", "one", None), ("train", "a b", None)])
    tokens = report.split("train").tokens
    assert (tokens.min, tokens.median, tokens.max) == (1, 2.0, 3)
    assert tokens.counts[0] == 3


def test_duplicates_within_a_split(leaky: QualityReport) -> None:
    train = leaky.split("train")
    assert train.duplicates == 1
    assert [(g.rows, g.size) for g in train.duplicate_examples] == [((0, 3), 2)]
    assert leaky.split("test").duplicates == 0


def test_duplicate_groups_cap_examples_but_count_all() -> None:
    report = build([("train", f"text {i % 12}", None) for i in range(12 * 20)])
    train = report.split("train")
    assert train.duplicates == 12 * 19
    assert len(train.duplicate_examples) == 10
    first = train.duplicate_examples[0]
    assert first.size == 20 and first.rows == tuple(range(0, 120, 12))


def test_exact_leakage_across_splits(leaky: QualityReport) -> None:
    (pair,) = leaky.leakage
    assert (pair.first, pair.second, pair.count, pair.examples) == ("train", "test", 1, ((2, 0),))


def test_leakage_counts_each_pair_of_splits() -> None:
    report = build([("train", "a b", None), ("train", "c d", None), ("validation", "a b", None),
                    ("test", "a b", None), ("test", "c d", None), ("test", "c d", None)])
    found = {(p.first, p.second): (p.count, p.examples) for p in report.leakage}
    assert found == {
        ("train", "validation"): (1, ((0, 0),)),
        ("train", "test"): (3, ((0, 0), (1, 1), (1, 2))),
        ("validation", "test"): (1, ((0, 0),)),
    }
    assert report.split("test").duplicates == 1


def test_near_duplicates_are_not_exact(leaky: QualityReport) -> None:
    assert normalize_text("Hello, World!") == normalize_text("hello   world") == "helloworld"
    (pair,) = leaky.near_duplicates
    assert (pair.first, pair.second, pair.count) == ("train", "test", 2)
    assert pair.examples == ((1, 1), (5, 2))
    exact_only = build([("train", "Same text", None), ("test", "Same text", None)])
    assert exact_only.near_duplicates == () and exact_only.leakage[0].count == 1


def test_label_conflicts(leaky: QualityReport) -> None:
    assert leaky.label_conflicts == 1
    (conflict,) = leaky.label_conflict_examples
    assert conflict.rows == (("weather", "train", 5), ("sport", "test", 2))


def test_label_conflicts_within_one_split_and_unlabeled_rows() -> None:
    report = build([("train", "good film", "pos"), ("train", "Good film!", "neg"), ("train", "good film", "pos"),
                    ("train", "good film", None), ("train", "other", None), ("train", "other", None)])
    assert report.label_conflicts == 1
    assert report.label_conflict_examples[0].rows == (("pos", "train", 0), ("neg", "train", 1))


def test_strict_problems(leaky: QualityReport) -> None:
    problems = leaky.problems()
    assert len(problems) == 2
    assert "leakage: 1 test row(s) also in train" in problems[0]
    assert "label conflicts: 1" in problems[1]
    assert leaky.has_blocking_problems
    assert len(leaky.problems(strict_kinds=("leakage", "label_conflicts", "near_duplicates", "duplicates",
                                            "empty"))) == 6  # near pair, train dups, 2 empties
    with pytest.raises(InvalidInputError, match="--strict"):
        leaky.problems(strict_kinds=("leak",))


def test_clean_dataset_has_no_blocking_problems() -> None:
    report = build([("train", "a", "x"), ("train", "b", "y"), ("test", "c", "x")])
    assert report.problems() == [] and not report.has_blocking_problems
    assert report.findings() == []


def test_json_round_trip(leaky: QualityReport) -> None:
    data = json.loads(json.dumps(leaky.to_dict()))
    assert data["schema_version"] == 1 and data["rows"] == 10
    assert data["splits"][0]["label_fractions"]["animal"] == 0.5
    assert QualityReport.from_dict(data) == leaky


def test_from_dict_rejects_other_versions_and_malformed(leaky: QualityReport) -> None:
    data = leaky.to_dict()
    with pytest.raises(InvalidInputError, match="schema_version"):
        QualityReport.from_dict(data | {"schema_version": 99})
    del data["splits"]
    with pytest.raises(InvalidInputError, match="malformed"):
        QualityReport.from_dict(data)


def test_markdown_contains_the_numbers(leaky: QualityReport) -> None:
    text = quality_markdown(leaky)
    assert text.startswith("## Data quality\n")
    assert "| train | 6 | 1 | 1 |" in text
    assert "| test | 4 | 1 | 0 |" in text
    assert "| animal | 3 (50.0%) | 0 (0.0%) |" in text
    assert "**leakage: 1 test row(s) also in train" in text
    assert "no leakage found" not in text
    clean = quality_markdown(build([("train", "a|b", "x|y"), ("test", "c", "x|y")]))
    assert "- no leakage found between splits" in clean
    assert "| x\\|y | 1 (100.0%) | 1 (100.0%) |" in clean
    assert quality_markdown(leaky, heading=None).startswith("| Split | Rows |")


def test_render_does_not_crash(leaky: QualityReport) -> None:
    console = Console(record=True, width=140)
    render_quality(leaky, console)
    text = console.export_text()
    assert "Dataset quality" in text and "animal" in text
    assert "leaked rows: train[2] = test[0]" in text
    assert "conflicting labels: 'weather' at train[5], 'sport' at test[2]" in text
    clean = Console(record=True, width=140)
    render_quality(build([("[bold]", "x", "[red]label")]), clean)  # names are text, not rich markup
    clean_text = clean.export_text()
    assert "no leakage found" in clean_text and "[red]label" in clean_text and "[bold]" in clean_text


def test_too_many_splits_is_an_input_error() -> None:
    acc = QualityAccumulator()
    for i in range(255):
        acc.add(f"s{i}", "x", None)
    with pytest.raises(InvalidInputError, match="255 splits"):
        acc.add("one-too-many", "x", None)


rows_strategy = st.lists(
    st.tuples(st.sampled_from(["train", "validation", "test"]),
              st.one_of(st.none(), st.text(max_size=20)),
              st.one_of(st.none(), st.sampled_from(["a", "b", "c"]))),
    max_size=60)


@settings(max_examples=60, deadline=None)
@given(rows_strategy)
def test_rows_counted_equal_rows_added(rows: list[tuple[str, str | None, str | None]]) -> None:
    report = build(rows)
    assert report.rows == len(rows)
    for split in report.splits:
        assert split.rows == sum(1 for s, _, _ in rows if s == split.name)
        assert sum(split.chars.counts) == sum(split.tokens.counts) == split.rows
        assert split.labeled_rows == sum(1 for s, _, label in rows if s == split.name and label is not None)
    assert QualityReport.from_dict(json.loads(json.dumps(report.to_dict()))) == report


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=20), max_size=60, unique_by=normalize_text))
def test_no_leakage_when_splits_are_disjoint(texts: list[str]) -> None:
    # Distinct normalized texts, dealt round-robin to the splits: disjoint by construction.
    acc = QualityAccumulator()
    for i, text in enumerate(texts):
        acc.add(("train", "validation", "test")[i % 3], text, "ab"[i % 2])
    report = acc.report()
    assert report.leakage == () and report.near_duplicates == () and report.label_conflicts == 0
    assert not report.has_blocking_problems


def test_punctuation_only_texts_are_not_near_duplicates_of_each_other() -> None:
    report = build([("train", "!!!", "a"), ("test", "...", "b"), ("test", "!!!", "a")])
    assert report.near_duplicates == () and report.label_conflicts == 0
    assert report.leakage[0].examples == ((0, 1),)
