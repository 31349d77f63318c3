"""The dataset quality report of ``fmhub data import``: counts, empties, lengths, duplicates, leakage.

A :class:`QualityAccumulator` is fed a batch of rows at a time and never keeps texts: each row is
measured (characters, whitespace tokens, empty or not) and each non-empty row is reduced to two 64-bit
hashes, of its exact text and of its normalized form (:func:`normalize_texts`: NFKC, lowercase,
punctuation and whitespace removed), plus its split, row and label: 25 bytes per row, and 8 more for
the two lengths that exact medians and 95th percentiles need. :meth:`QualityAccumulator.report` sorts
those arrays (:mod:`fmhub.data._matches`) to find

- exact duplicates within a split (the same text twice in ``train``),
- **leakage**: the exact same text in two splits (a ``test`` row that is also in ``train``),
- near-duplicates across splits: the same normalized text, different exact text
  (``"Hello, World!"`` in train, ``"hello world"`` in test),
- **label conflicts**: the same normalized text with different labels, anywhere.

Multi-label rows (labels given as lists) count each of their labels in the label distribution
(``labeled_rows`` counts rows with at least one label), and conflicts compare label *sets*: each
distinct set gets one id, so the same text with ``[sport]`` and ``[politics, sport]`` is a conflict
(the examples name a set as its JSON list, ``'["politics", "sport"]'``; ``[]`` is a set too).

The hashes are Python's own string hash (SipHash, keyed per process, so crafted texts cannot aim at
a collision); two different texts of a million-row import share one with probability ~3e-8. The
report never depends on hash values, only on which rows match.

The result, :class:`QualityReport`, is a frozen dataclass stored as ``quality.json``
(:meth:`QualityReport.to_dict`), shown with :func:`render_quality` and summarized in the dataset card by
:func:`quality_markdown`.

Example::

    acc = QualityAccumulator(splits=["train", "test"])   # the order tables list splits in
    acc.add_batch("train", train_texts, train_labels)     # Arrow string arrays or lists
    acc.add_batch("test", test_texts, test_labels)
    report = acc.report()
    if strict and report.has_blocking_problems:
        raise SystemExit("\\n".join(report.problems()))
"""

from __future__ import annotations

import json
import math
from array import array
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa

from fmhub.data._matches import find_matches
from fmhub.data._minhash import PERMUTATIONS, near_pairs, signatures
from fmhub.data._texts import as_string_array, measure, normalize_text, normalize_texts
from fmhub.errors import InvalidInputError

__all__ = [
    "QualityAccumulator",
    "QualityReport",
    "SplitQuality",
    "LengthStats",
    "DuplicateGroup",
    "SplitPairFinding",
    "LabelConflict",
    "normalize_text",
    "normalize_texts",
    "render_quality",
    "quality_markdown",
    "QUALITY_SCHEMA_VERSION",
    "LENGTH_BUCKET_EDGES",
    "FINDING_KINDS",
    "STRICT_KINDS",
    "MAX_EXAMPLES",
]

QUALITY_SCHEMA_VERSION = 1
#: Lower edges of the length histogram buckets: ``[0, 16), [16, 32), ..., [8192, 16384), [16384, +inf)``.
#: Fixed, so histograms of two dataset versions compare bucket by bucket.
LENGTH_BUCKET_EDGES: tuple[int, ...] = (0, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384)
#: Every kind of finding, in the order reports list them.
FINDING_KINDS = ("leakage", "label_conflicts", "near_duplicates", "similar", "duplicates", "empty")
#: The kinds that fail ``fmhub data import --strict`` by default.
STRICT_KINDS = ("leakage", "label_conflicts")
#: How many examples (row indices, groups, pairs) a finding keeps.
MAX_EXAMPLES = 10

_MAX_U32 = 0xFFFF_FFFF
_MAX_SPLITS = 255


# -- report ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LengthStats:
    """Distribution of per-row lengths in one unit (``"chars"`` or ``"tokens"``, whitespace-separated).

    ``counts[i]`` counts lengths in ``[edges[i], edges[i + 1])``; the last bucket is open-ended.
    ``median`` is exact; ``p95`` is the nearest-rank 95th percentile.
    """

    unit: str
    edges: tuple[int, ...]
    counts: tuple[int, ...]
    min: int = 0
    mean: float = 0.0
    median: float = 0.0
    p95: int = 0
    max: int = 0

    @classmethod
    def from_lengths(cls, unit: str, lengths: array, edges: tuple[int, ...] = LENGTH_BUCKET_EDGES) -> LengthStats:
        """Stats of ``lengths`` (an ``array('I')``); all zeros for no rows."""
        if not lengths:
            return cls(unit, tuple(edges), (0,) * len(edges))
        ordered = np.sort(np.frombuffer(lengths, dtype=np.uint32))
        n = len(ordered)
        counts = np.diff(np.searchsorted(ordered, np.array(edges), side="left"), append=n)
        middle = n // 2
        median = float(ordered[middle]) if n % 2 else (int(ordered[middle - 1]) + int(ordered[middle])) / 2
        return cls(unit, tuple(edges), tuple(int(c) for c in counts), min=int(ordered[0]),
                   mean=float(ordered.mean(dtype=np.float64)), median=median,
                   p95=int(ordered[max(0, math.ceil(0.95 * n) - 1)]), max=int(ordered[-1]))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LengthStats:
        return cls(unit=data["unit"], edges=tuple(data["edges"]), counts=tuple(data["counts"]), min=data["min"],
                   mean=float(data["mean"]), median=float(data["median"]), p95=data["p95"], max=data["max"])


@dataclass(frozen=True)
class DuplicateGroup:
    """Rows of one split with the same exact text: the first ``MAX_EXAMPLES`` indices and the group size."""

    rows: tuple[int, ...]
    size: int

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DuplicateGroup:
        return cls(rows=tuple(data["rows"]), size=data["size"])


@dataclass(frozen=True)
class SplitPairFinding:
    """Rows of ``second`` whose text also appears in ``first`` (splits in the order they were fed).

    ``examples`` are ``(row in first, row in second)`` index pairs.
    """

    first: str
    second: str
    count: int
    examples: tuple[tuple[int, int], ...]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SplitPairFinding:
        return cls(first=data["first"], second=data["second"], count=data["count"],
                   examples=tuple((a, b) for a, b in data["examples"]))


@dataclass(frozen=True)
class LabelConflict:
    """One normalized text seen with several labels: the first ``(label, split, row)`` for each label."""

    rows: tuple[tuple[str, str, int], ...]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LabelConflict:
        return cls(rows=tuple((label, split, index) for label, split, index in data["rows"]))


@dataclass(frozen=True)
class SplitQuality:
    """Everything the report says about one split."""

    name: str
    rows: int
    labels: dict[str, int]  # label -> rows, most frequent first; unlabeled rows are not counted
    empty: int  # None, empty or whitespace-only texts
    empty_examples: tuple[int, ...]
    chars: LengthStats
    tokens: LengthStats
    duplicates: int  # rows that repeat an earlier row of this split exactly
    duplicate_examples: tuple[DuplicateGroup, ...]
    #: Rows with at least one label (multi-label rows count once in it, and once per label in ``labels``);
    #: None in reports written before it existed: then the sum of ``labels``.
    labeled: int | None = None

    @property
    def labeled_rows(self) -> int:
        return sum(self.labels.values()) if self.labeled is None else self.labeled

    @property
    def label_fractions(self) -> dict[str, float]:
        """Each label's share of the labeled rows."""
        total = self.labeled_rows
        return {label: count / total for label, count in self.labels.items()} if total else {}

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "rows": self.rows,
            "labels": dict(self.labels),
            "label_fractions": {label: round(f, 6) for label, f in self.label_fractions.items()},
            "empty": self.empty,
            "empty_examples": list(self.empty_examples),
            "chars": _plain(self.chars),
            "tokens": _plain(self.tokens),
            "duplicates": self.duplicates,
            "duplicate_examples": [_plain(group) for group in self.duplicate_examples],
            "labeled_rows": self.labeled_rows,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SplitQuality:
        return cls(name=data["name"], rows=data["rows"], labels=dict(data["labels"]), empty=data["empty"],
                   empty_examples=tuple(data["empty_examples"]), chars=LengthStats.from_dict(data["chars"]),
                   tokens=LengthStats.from_dict(data["tokens"]), duplicates=data["duplicates"],
                   duplicate_examples=tuple(DuplicateGroup.from_dict(g) for g in data["duplicate_examples"]),
                   labeled=data.get("labeled_rows"))


class _SplitReport:
    """What the report of every modality shares: splits by name, the row total and the ``--strict`` checks.

    A report dataclass derives from it, lists its kinds of finding in ``finding_kinds`` and has ``splits`` and
    ``findings()``.
    """

    finding_kinds: ClassVar[tuple[str, ...]] = FINDING_KINDS
    splits: tuple[Any, ...]

    def findings(self) -> list[tuple[str, str]]:
        raise NotImplementedError

    @property
    def rows(self) -> int:
        return sum(split.rows for split in self.splits)

    def split(self, name: str) -> Any:
        """The report of split ``name``; ``KeyError`` if no row of it was added."""
        for split in self.splits:
            if split.name == name:
                return split
        raise KeyError(name)

    def problems(self, strict_kinds: tuple[str, ...] = STRICT_KINDS) -> list[str]:
        """Messages for the findings of ``strict_kinds``: what ``--strict`` refuses.

        Raises:
            InvalidInputError: a kind is not one of :attr:`finding_kinds`.
        """
        unknown = sorted(set(strict_kinds) - set(self.finding_kinds))
        if unknown:
            raise InvalidInputError(f"unknown quality check(s) for --strict: {', '.join(unknown)}",
                                    hint=f"choose from {', '.join(self.finding_kinds)}")
        return [message for kind, message in self.findings() if kind in strict_kinds]

    @property
    def has_blocking_problems(self) -> bool:
        """True if ``--strict`` (the default :data:`STRICT_KINDS`) should refuse this dataset."""
        return bool(self.problems())


@dataclass(frozen=True)
class QualityReport(_SplitReport):
    """The quality report of one dataset version (``quality.json``).

    Build it with :class:`QualityAccumulator`; store it with :meth:`to_dict` and read it back with
    :meth:`from_dict`.
    """

    splits: tuple[SplitQuality, ...]
    leakage: tuple[SplitPairFinding, ...] = ()
    near_duplicates: tuple[SplitPairFinding, ...] = ()
    label_conflicts: int = 0  # normalized texts seen with more than one label
    label_conflict_examples: tuple[LabelConflict, ...] = ()
    #: With MinHash on: rows of the later split with a similar row in the earlier one (estimated Jaccard
    #: similarity of word 3-grams ≥ ``similar_threshold``); a superset of leakage and near-duplicates.
    similar: tuple[SplitPairFinding, ...] = ()
    similar_threshold: float | None = None
    #: Rows carried label lists: ``labels`` count each label, conflicts compare label sets.
    multi_label: bool = False
    schema_version: int = field(default=QUALITY_SCHEMA_VERSION)

    def findings(self) -> list[tuple[str, str]]:
        """Every finding as ``(kind, human message)``, most serious kinds first (see :data:`FINDING_KINDS`)."""
        found: list[tuple[str, str]] = []
        for pair in self.leakage:
            found.append(("leakage", f"leakage: {pair.count} {pair.second} row(s) also in {pair.first} "
                          f"(e.g. {pair.first}[{pair.examples[0][0]}] = {pair.second}[{pair.examples[0][1]}])"))
        if self.label_conflicts:
            example = ", ".join(f"{label!r} at {split}[{index}]" for label, split, index in
                                self.label_conflict_examples[0].rows)
            found.append(("label_conflicts", f"label conflicts: {self.label_conflicts} text(s) carry different "
                          f"labels (e.g. {example})"))
        for pair in self.near_duplicates:
            found.append(("near_duplicates", f"near-duplicates: {pair.count} {pair.second} row(s) match a "
                          f"{pair.first} row after normalization (e.g. {pair.first}[{pair.examples[0][0]}] ~ "
                          f"{pair.second}[{pair.examples[0][1]}])"))
        for pair in self.similar:
            found.append(("similar", f"similar texts: {pair.count} {pair.second} row(s) share most word 3-grams "
                          f"with a {pair.first} row (MinHash ≥ {self.similar_threshold:g}; e.g. "
                          f"{pair.first}[{pair.examples[0][0]}] ≈ {pair.second}[{pair.examples[0][1]}])"))
        for split in self.splits:
            if split.duplicates:
                found.append(("duplicates", f"duplicates: {split.duplicates} {split.name} row(s) repeat an "
                              f"earlier {split.name} row (e.g. rows {_ints(split.duplicate_examples[0].rows)})"))
        for split in self.splits:
            if split.empty:
                found.append(("empty", f"empty texts: {split.empty} {split.name} row(s) are empty or whitespace "
                              f"(e.g. rows {_ints(split.empty_examples)})"))
        return found

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (lists, str keys) with ``schema_version``; :meth:`from_dict` reads it back."""
        return {
            "schema_version": self.schema_version,
            "rows": self.rows,
            "splits": [split.to_dict() for split in self.splits],
            "leakage": [_plain(pair) for pair in self.leakage],
            "near_duplicates": [_plain(pair) for pair in self.near_duplicates],
            "label_conflicts": self.label_conflicts,
            "label_conflict_examples": [_plain(conflict) for conflict in self.label_conflict_examples],
            "similar": [_plain(pair) for pair in self.similar],
            "similar_threshold": self.similar_threshold,
            "multi_label": self.multi_label,
            "length_bucket_edges": list(LENGTH_BUCKET_EDGES),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> QualityReport:
        """Read a dict written by :meth:`to_dict`.

        Raises:
            InvalidInputError: the dict has another ``schema_version`` or misses fields.
        """
        version = data.get("schema_version") if isinstance(data, dict) else None
        if version != QUALITY_SCHEMA_VERSION:
            raise InvalidInputError(f"quality report schema_version {version!r} is not supported "
                                    f"(this fmhub reads {QUALITY_SCHEMA_VERSION})",
                                    hint="regenerate it with: fmhub data import")
        try:
            return cls(
                splits=tuple(SplitQuality.from_dict(s) for s in data["splits"]),
                leakage=tuple(SplitPairFinding.from_dict(p) for p in data["leakage"]),
                near_duplicates=tuple(SplitPairFinding.from_dict(p) for p in data["near_duplicates"]),
                label_conflicts=data["label_conflicts"],
                label_conflict_examples=tuple(LabelConflict.from_dict(c) for c in data["label_conflict_examples"]),
                similar=tuple(SplitPairFinding.from_dict(p) for p in data.get("similar", [])),
                similar_threshold=data.get("similar_threshold"),
                multi_label=bool(data.get("multi_label", False)),
                schema_version=version,
            )
        except (KeyError, TypeError, ValueError) as error:
            raise InvalidInputError(f"malformed quality report: {error!r}",
                                    hint="regenerate it with: fmhub data import") from None


def _plain(obj: Any) -> Any:
    """A dataclass (or tuple of them) as JSON-ready dicts and lists."""
    if hasattr(obj, "__dataclass_fields__"):
        return {name: _plain(getattr(obj, name)) for name in obj.__dataclass_fields__}
    if isinstance(obj, (tuple, list)):
        return [_plain(item) for item in obj]
    return obj


def _ints(values: tuple[int, ...], limit: int = 5) -> str:
    shown = ", ".join(str(v) for v in values[:limit])
    return shown + (", ..." if len(values) > limit else "")


# -- accumulator -----------------------------------------------------------------------------------


class _SplitState:
    __slots__ = ("name", "rows", "labels", "labeled", "empty", "empty_examples", "chars", "tokens")

    def __init__(self, name: str) -> None:
        self.name = name
        self.rows = 0
        self.labels: Counter[str] = Counter()
        self.labeled = 0
        self.empty = 0
        self.empty_examples: list[int] = []
        self.chars = array("I")
        self.tokens = array("I")


class _MatchingAccumulator:
    """What the quality accumulator of every modality shares: splits in the order they were named, label ids, and
    one entry per compared row for :func:`find_matches` (row, exact hash, normalized key, split, label: 25 bytes).

    A subclass names its per-split state class in ``_state`` and the hint of the too-many-splits error.
    """

    _state: ClassVar[type]
    _split_hint: ClassVar[str | None] = None

    def __init__(self, splits: Any = ()) -> None:
        self._splits: list[Any] = []
        self._split_ids: dict[str, int] = {}
        self._labels: list[str] = []  # label names (or, multi-label, label sets as JSON lists)
        self._label_ids: dict[str, int] = {}
        self._row = array("I")
        self._exact = array("q")
        self._key = array("q")
        self._split_of = array("B")
        self._label = array("i")
        for name in splits:
            self._split(name)

    def _split(self, name: str) -> Any:
        split_id = self._split_ids.get(name)
        if split_id is not None:
            return self._splits[split_id]
        if len(self._splits) >= _MAX_SPLITS:
            raise InvalidInputError(f"more than {_MAX_SPLITS} splits (adding {name!r})", hint=self._split_hint)
        self._split_ids[name] = len(self._splits)
        self._splits.append(self._state(name))
        return self._splits[-1]

    def _label_id(self, label: str) -> int:
        label_id = self._label_ids.get(label)
        if label_id is None:
            label_id = self._label_ids[label] = len(self._labels)
            self._labels.append(label)
        return label_id

    def _matches(self) -> tuple[Any, tuple[LabelConflict, ...]]:
        """:func:`find_matches` over every compared row, and its label conflicts named."""
        matches = find_matches(np.frombuffer(self._exact, dtype=np.int64), np.frombuffer(self._key, dtype=np.int64),
                               np.frombuffer(self._split_of, dtype=np.uint8), np.frombuffer(self._row, dtype=np.uint32),
                               np.frombuffer(self._label, dtype=np.int32), len(self._splits), MAX_EXAMPLES)
        conflicts = tuple(LabelConflict(tuple((self._labels[label_id], self._splits[split_id].name, index)
                                              for label_id, split_id, index in rows))
                          for rows in matches.conflict_examples)
        return matches, conflicts

    def _pairs(self, pairs: dict[tuple[int, int], tuple[int, list[tuple[int, int]]]]) -> tuple[SplitPairFinding, ...]:
        return tuple(SplitPairFinding(self._splits[a].name, self._splits[b].name, count, tuple(examples))
                     for (a, b), (count, examples) in sorted(pairs.items()))


class QualityAccumulator(_MatchingAccumulator):
    """Collects the quality report batch by batch, keeping hashes and lengths instead of texts.

    Feed rows with :meth:`add_batch` (or :meth:`add` for one row), in any order, then call
    :meth:`report`, which can be called more than once. Not thread-safe.

    Args:
        splits: split names in the order the report lists them and orients leakage (a row of ``test``
            also in ``train`` is reported as train → test); splits first seen later follow in that
            order. Splits that get no rows are left out of the report.

    Example::

        acc = QualityAccumulator(splits=["train", "test"])
        acc.add("test", "hello world", "greeting")
        acc.add("train", "Hello, World!", "greeting")
        acc.report().near_duplicates[0].first  # 'train'
    """

    _state = _SplitState
    _split_hint = "a split is a column value like 'train'; check the --split-column"

    def __init__(self, splits: Any = (), *, minhash: float | None = None) -> None:
        if minhash is not None and not 0 < minhash <= 1:
            raise InvalidInputError(f"MinHash threshold {minhash} is not in (0, 1]", hint="e.g. --minhash-threshold 0.8")
        self._minhash = minhash
        self._signatures: list[np.ndarray] = []  # with MinHash: 128 bytes per non-empty row
        self._multi_label: bool | None = None  # decided by the first labels given
        super().__init__(splits)  # one compared entry per non-empty row

    def add(self, split: str, text: str | None, label: str | None = None) -> None:
        """Count one row of ``split`` (see :meth:`add_batch`, which is much faster per row)."""
        self.add_batch(split, [text], None if label is None else [label])

    def add_batch(self, split: str, texts: Any, labels: Any = None) -> None:
        """Count rows of ``split``.

        Args:
            split: the split name (``"train"``, ``"validation"``...).
            texts: the rows' texts, an Arrow string array (or chunked array) or a list; null, empty or
                whitespace-only counts as empty. For token classification pass the tokens joined by spaces.
            labels: the rows' labels (same length; null for unlabeled rows), or ``None`` for none. For
                multi-label rows, lists of labels (an Arrow list array, or Python lists): each label is
                counted, and conflicts compare the sets.

        Raises:
            InvalidInputError: more than 255 splits, more than 2**32 - 1 rows in one split,
                ``labels`` of another length than ``texts``, or label lists mixed with single labels.
        """
        state = self._split(split)
        texts = as_string_array(texts)
        count = len(texts)
        start = state.rows
        if start + count > _MAX_U32:
            raise InvalidInputError(f"split {split!r} has more than {_MAX_U32} rows, the quality report's limit")
        label_ids = self._label_ids_of(state, labels, count)
        measured = measure(texts)
        state.rows = start + count
        state.chars.frombytes(measured.chars.tobytes())
        state.tokens.frombytes(measured.tokens.tobytes())
        empty = np.flatnonzero(measured.empty)
        state.empty += len(empty)
        state.empty_examples += (empty[:MAX_EXAMPLES - len(state.empty_examples)] + start).tolist()
        kept = ~measured.empty
        self._row.frombytes((np.flatnonzero(kept) + start).astype(np.uint32).tobytes())
        self._exact.frombytes(measured.exact[kept].tobytes())
        self._key.frombytes(measured.key[kept].tobytes())
        self._split_of.frombytes(np.full(int(kept.sum()), self._split_ids[split], dtype=np.uint8).tobytes())
        self._label.frombytes(label_ids[kept].tobytes())
        if self._minhash is not None:
            self._signatures.append(signatures(texts.fill_null("").filter(kept)))

    def report(self) -> QualityReport:
        """The report of every row added so far."""
        matches, conflicts = self._matches()
        splits = tuple(self._split_report(state, matches.duplicates[i], matches.duplicate_examples[i])
                       for i, state in enumerate(self._splits) if state.rows)
        similar = ()
        if self._minhash is not None:
            found = near_pairs(np.concatenate(self._signatures) if self._signatures else
                               np.zeros((0, PERMUTATIONS), dtype=np.uint16),
                               np.frombuffer(self._split_of, dtype=np.uint8), np.frombuffer(self._row, dtype=np.uint32),
                               self._minhash)
            similar = self._pairs({pair: (len(hits), [(a, b) for b, a in sorted(hits.items())[:MAX_EXAMPLES]])
                                   for pair, hits in found.items()})
        return QualityReport(splits=splits, leakage=self._pairs(matches.leakage),
                             near_duplicates=self._pairs(matches.near_duplicates),
                             label_conflicts=matches.label_conflicts, label_conflict_examples=conflicts,
                             similar=similar, similar_threshold=self._minhash, multi_label=bool(self._multi_label))

    # -- internals ---------------------------------------------------------------------------------

    def _label_ids_of(self, state: _SplitState, labels: Any, count: int) -> np.ndarray:
        """Each row's label id (-1 for none), counting the labels of ``state`` on the way."""
        import pyarrow.compute as pc

        if labels is None:
            return np.full(count, -1, dtype=np.int32)
        if not isinstance(labels, (pa.Array, pa.ChunkedArray)):
            labels = list(labels)
            if all(label is None for label in labels):  # says nothing about single or multi
                if len(labels) != count:
                    raise InvalidInputError(f"{len(labels)} labels for {count} texts")
                return np.full(count, -1, dtype=np.int32)
        multi = _is_lists(labels)
        if self._multi_label is not None and multi != self._multi_label:
            raise InvalidInputError("label lists mixed with single labels in one quality report",
                                    hint="pass every batch's labels as lists for a multi-label dataset")
        self._multi_label = multi
        if multi:
            return self._label_set_ids_of(state, labels, count)
        labels = as_string_array(labels if isinstance(labels, (pa.Array, pa.ChunkedArray)) else
                                 [None if label is None else str(label) for label in labels])
        if len(labels) != count:
            raise InvalidInputError(f"{len(labels)} labels for {count} texts")
        names = pc.unique(labels).drop_null()
        ids = pa.array([self._label_id(name) for name in names.to_pylist()], pa.int32())
        for entry in pc.value_counts(labels.drop_null()).to_pylist():
            state.labels[entry["values"]] += entry["counts"]
        state.labeled += len(labels) - labels.null_count
        return pc.take(ids, pc.index_in(labels, value_set=names)).fill_null(-1).to_numpy(
            zero_copy_only=False).astype(np.int32)

    def _label_set_ids_of(self, state: _SplitState, labels: Any, count: int) -> np.ndarray:
        """Multi-label: each row's label-set id (-1 for a null row), counting each label of ``state``.

        A set's id is that of its JSON list of sorted names, so :func:`find_matches` compares sets as it
        compares single labels. An empty list is a set (the row says: no label applies).
        """
        rows = labels.to_pylist() if isinstance(labels, (pa.Array, pa.ChunkedArray)) else list(labels)
        if len(rows) != count:
            raise InvalidInputError(f"{len(rows)} labels for {count} texts")
        ids = np.full(count, -1, dtype=np.int32)
        set_ids: dict[tuple[str, ...], int] = {}
        for i, row in enumerate(rows):
            if row is None:
                continue
            names = tuple(sorted({str(name) for name in row}))
            set_id = set_ids.get(names)
            if set_id is None:
                set_id = set_ids[names] = self._label_id(json.dumps(list(names), ensure_ascii=False))
            ids[i] = set_id
            state.labels.update(names)
            state.labeled += bool(names)
        return ids

    @staticmethod
    def _split_report(state: _SplitState, duplicates: int, examples: list[tuple[int, tuple[int, ...]]]
                      ) -> SplitQuality:
        labels = dict(sorted(state.labels.items(), key=lambda item: (-item[1], item[0])))
        return SplitQuality(name=state.name, rows=state.rows, labels=labels, empty=state.empty,
                            empty_examples=tuple(state.empty_examples),
                            chars=LengthStats.from_lengths("chars", state.chars),
                            tokens=LengthStats.from_lengths("tokens", state.tokens),
                            duplicates=duplicates,
                            duplicate_examples=tuple(DuplicateGroup(rows=rows, size=size) for size, rows in examples),
                            labeled=state.labeled)


def _is_lists(labels: Any) -> bool:
    """Whether ``labels`` are per-row label lists (an Arrow list array, or Python lists/tuples/sets)."""
    if isinstance(labels, (pa.Array, pa.ChunkedArray)):
        return pa.types.is_list(labels.type) or pa.types.is_large_list(labels.type)
    return any(isinstance(label, (list, tuple, set, frozenset)) for label in labels)


# -- presentation ----------------------------------------------------------------------------------


def render_quality(report: QualityReport, console: Any) -> None:
    """Print the report to a rich ``Console``: a per-split table, the label distribution, then findings.

    Leakage and label conflicts print in red, other findings in yellow. A report of another modality (images)
    renders itself.
    """
    if not isinstance(report, QualityReport):
        report.render(console)
        return
    from rich.table import Table
    from rich.text import Text

    summary = Table(title="Dataset quality")
    for column in ("split", "rows", "empty", "mean chars", "median chars", "p95 chars", "median tokens",
                   "duplicates"):
        summary.add_column(column, justify="left" if column == "split" else "right")
    for split in report.splits:
        summary.add_row(Text(split.name), f"{split.rows:,}", f"{split.empty:,}", f"{split.chars.mean:.1f}",
                        f"{split.chars.median:g}", str(split.chars.p95), f"{split.tokens.median:g}",
                        f"{split.duplicates:,}")
    console.print(summary)
    print_labels_and_findings(report, console)
    for pair in report.leakage:
        examples = ", ".join(f"{pair.first}[{a}] = {pair.second}[{b}]" for a, b in pair.examples)
        console.print(Text(f"  leaked rows: {examples}", style="red"))
    for conflict in report.label_conflict_examples:
        rows = ", ".join(f"{label!r} at {split}[{index}]" for label, split, index in conflict.rows)
        console.print(Text(f"  conflicting labels: {rows}", style="red"))


def quality_markdown(report: QualityReport, heading: str | None = "## Data quality") -> str:
    """A short markdown section for the dataset card: rows per split, labels, and a list of findings.

    Pass ``heading=None`` when the card writes its own heading. A report of another modality (images) writes its
    own section.
    """
    if not isinstance(report, QualityReport):
        return report.markdown(heading)
    lines = [heading, ""] if heading else []
    lines += ["| Split | Rows | Empty | Duplicates | Median chars | Median tokens |",
             "|---|---:|---:|---:|---:|---:|"]
    for split in report.splits:
        lines.append(f"| {_md(split.name)} | {split.rows:,} | {split.empty:,} | {split.duplicates:,} | "
                     f"{split.chars.median:g} | {split.tokens.median:g} |")
    return "\n".join(lines + markdown_labels_and_findings(report)) + "\n"


def print_labels_and_findings(report: _SplitReport, console: Any) -> None:
    """The part of a rendered report that every modality shares: the label distribution, then the findings
    (the strict kinds in red)."""
    from rich.table import Table
    from rich.text import Text

    labels = _all_labels(report)
    if labels:
        distribution = Table(title="Labels")
        distribution.add_column("label")
        for split in report.splits:
            distribution.add_column(Text(split.name), justify="right")
        for label in labels:  # Text: labels and split names are not rich markup
            distribution.add_row(Text(label), *[f"{split.labels.get(label, 0):,} "
                                                f"({split.label_fractions.get(label, 0.0):.1%})"
                                                for split in report.splits])
        console.print(distribution)
    findings = report.findings()
    if not any(kind == "leakage" for kind, _ in findings):
        console.print(Text("no leakage found between splits", style="green"))
    for kind, message in findings:
        console.print(Text(message, style="bold red" if kind in STRICT_KINDS else "yellow"))


def markdown_labels_and_findings(report: _SplitReport) -> list[str]:
    """The markdown lines that every modality's card section shares: the label table, then the findings."""
    lines = []
    labels = _all_labels(report)
    if labels:
        lines += ["", "| Label | " + " | ".join(_md(split.name) for split in report.splits) + " |",
                  "|---|" + "---:|" * len(report.splits)]
        for label in labels:
            cells = [f"{split.labels.get(label, 0):,} ({split.label_fractions.get(label, 0.0):.1%})"
                     for split in report.splits]
            lines.append(f"| {_md(label)} | " + " | ".join(cells) + " |")
    lines.append("")
    findings = report.findings()
    if not any(kind == "leakage" for kind, _ in findings):
        lines.append("- no leakage found between splits")
    for kind, message in findings:
        lines.append(f"- {'**' + _md(message) + '**' if kind in STRICT_KINDS else _md(message)}")
    return lines


def _all_labels(report: _SplitReport) -> list[str]:
    totals: Counter[str] = Counter()
    for split in report.splits:
        totals.update(split.labels)
    return [label for label, _ in sorted(totals.items(), key=lambda item: (-item[1], item[0]))]


def _md(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")
