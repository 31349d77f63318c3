"""The dataset quality report of ``fmhub data import``: counts, empties, lengths, duplicates, leakage.

A :class:`QualityAccumulator` is fed split by split, row by row, and never keeps texts: each non-empty
row is reduced to two 16-byte blake2b digests, one of the exact text and one of its normalized form
(:func:`normalize_text`: NFKC, casefold, punctuation removed, whitespace collapsed). One dict keyed by
the normalized digest finds, in one lookup per row,

- exact duplicates within a split (the same text twice in ``train``),
- **leakage**: the exact same text in two splits (a ``test`` row that is also in ``train``),
- near-duplicates across splits: the same normalized text, different exact text
  (``"Hello, World!"`` in train, ``"hello world"`` in test),
- **label conflicts**: the same normalized text with different labels, anywhere.

Exact medians and 95th percentiles need every length, so each split keeps its lengths in two
``array('I')`` (characters and whitespace tokens): 8 bytes per row. Per row in all: a dict slot, a
16-byte key (56-byte object), one 23-byte packed value (56-byte object) and the two lengths. Measured
with tracemalloc on unique texts: 166 bytes/row at 200k rows, 155 bytes/row (155 MB) at 1M rows, and
171 MB peak while :meth:`QualityAccumulator.report` sorts the lengths. Rows whose normalized text
repeats are upgraded to a small group object, so duplicated data costs a little more per repeated
text, never per row (183 bytes/row at 200k rows with 30% duplicates).

The result, :class:`QualityReport`, is a frozen dataclass stored as ``quality.json``
(:meth:`QualityReport.to_dict`), shown with :func:`render_quality` and summarized in the dataset card by
:func:`quality_markdown`.

Example::

    acc = QualityAccumulator()
    for row in train_rows:
        acc.add("train", row["text"], row["label"])
    for row in test_rows:
        acc.add("test", row["text"], row["label"])
    report = acc.report()
    if strict and report.has_blocking_problems:
        raise SystemExit("\\n".join(report.problems()))
"""

from __future__ import annotations

import functools
import hashlib
import math
import struct
import unicodedata
from array import array
from bisect import bisect_right
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

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
FINDING_KINDS = ("leakage", "label_conflicts", "near_duplicates", "duplicates", "empty")
#: The kinds that fail ``fmhub data import --strict`` by default.
STRICT_KINDS = ("leakage", "label_conflicts")
#: How many examples (row indices, groups, pairs) a finding keeps.
MAX_EXAMPLES = 10

_DIGEST_SIZE = 16
_MAX_U32 = 0xFFFF_FFFF
# The value stored for a normalized text seen once: exact digest + split id + row index + label id.
# 23 bytes keeps the bytes object in a 56-byte allocation (33 bytes of header); see the module docstring.
_PACKED = struct.Struct("<BIH")
_PACKED_NO_LABEL = 0xFFFF  # packed label meaning "no label"; label ids at or above it go to a _Group instead
_MAX_SPLITS = 255


# -- normalization ---------------------------------------------------------------------------------


class _PunctuationTable(dict):
    """A ``str.translate`` table that deletes Unicode punctuation, filled lazily one code point at a time."""

    def __missing__(self, codepoint: int) -> int | None:
        value = None if unicodedata.category(chr(codepoint)).startswith("P") else codepoint
        self[codepoint] = value
        return value


@functools.cache
def _punctuation_table() -> _PunctuationTable:
    return _PunctuationTable()


def normalize_text(text: str) -> str:
    """The form near-duplicates and label conflicts compare: NFKC, casefold, no punctuation, single spaces.

    >>> normalize_text("  Hello,\\tWORLD! ")
    'hello world'
    """
    text = unicodedata.normalize("NFKC", text).casefold().translate(_punctuation_table())
    return " ".join(text.split())


def _digest(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=_DIGEST_SIZE).digest()


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
        counts = [0] * len(edges)
        for length, n in Counter(lengths).items():
            counts[bisect_right(edges, length) - 1] += n
        if not lengths:
            return cls(unit, tuple(edges), tuple(counts))
        ordered = sorted(lengths)
        n = len(ordered)
        middle = n // 2
        median = float(ordered[middle]) if n % 2 else (ordered[middle - 1] + ordered[middle]) / 2
        return cls(unit, tuple(edges), tuple(counts), min=ordered[0], mean=sum(ordered) / n, median=median,
                   p95=ordered[max(0, math.ceil(0.95 * n) - 1)], max=ordered[-1])

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

    @property
    def labeled_rows(self) -> int:
        return sum(self.labels.values())

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
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SplitQuality:
        return cls(name=data["name"], rows=data["rows"], labels=dict(data["labels"]), empty=data["empty"],
                   empty_examples=tuple(data["empty_examples"]), chars=LengthStats.from_dict(data["chars"]),
                   tokens=LengthStats.from_dict(data["tokens"]), duplicates=data["duplicates"],
                   duplicate_examples=tuple(DuplicateGroup.from_dict(g) for g in data["duplicate_examples"]))


@dataclass(frozen=True)
class QualityReport:
    """The quality report of one dataset version (``quality.json``).

    Build it with :class:`QualityAccumulator`; store it with :meth:`to_dict` and read it back with
    :meth:`from_dict`.
    """

    splits: tuple[SplitQuality, ...]
    leakage: tuple[SplitPairFinding, ...] = ()
    near_duplicates: tuple[SplitPairFinding, ...] = ()
    label_conflicts: int = 0  # normalized texts seen with more than one label
    label_conflict_examples: tuple[LabelConflict, ...] = ()
    schema_version: int = field(default=QUALITY_SCHEMA_VERSION)

    @property
    def rows(self) -> int:
        return sum(split.rows for split in self.splits)

    def split(self, name: str) -> SplitQuality:
        """The report of split ``name``; ``KeyError`` if no row of it was added."""
        for split in self.splits:
            if split.name == name:
                return split
        raise KeyError(name)

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
        for split in self.splits:
            if split.duplicates:
                found.append(("duplicates", f"duplicates: {split.duplicates} {split.name} row(s) repeat an "
                              f"earlier {split.name} row (e.g. rows {_ints(split.duplicate_examples[0].rows)})"))
        for split in self.splits:
            if split.empty:
                found.append(("empty", f"empty texts: {split.empty} {split.name} row(s) are empty or whitespace "
                              f"(e.g. rows {_ints(split.empty_examples)})"))
        return found

    def problems(self, strict_kinds: tuple[str, ...] = STRICT_KINDS) -> list[str]:
        """Messages for the findings of ``strict_kinds``: what ``--strict`` refuses.

        Raises:
            InvalidInputError: a kind is not one of :data:`FINDING_KINDS`.
        """
        unknown = sorted(set(strict_kinds) - set(FINDING_KINDS))
        if unknown:
            raise InvalidInputError(f"unknown quality check(s) for --strict: {', '.join(unknown)}",
                                    hint=f"choose from {', '.join(FINDING_KINDS)}")
        return [message for kind, message in self.findings() if kind in strict_kinds]

    @property
    def has_blocking_problems(self) -> bool:
        """True if ``--strict`` (the default :data:`STRICT_KINDS`) should refuse this dataset."""
        return bool(self.problems())

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


class _Group:
    """A normalized text seen more than once: where each exact variant first appeared, and its labels.

    Lists of tuples, not dicts: a group usually holds one or two entries, and groups are the memory
    cost of duplicated data (measured at 30% duplicate rows: 183 bytes/row overall, 258 with nested dicts).
    """

    __slots__ = ("firsts", "labels")

    def __init__(self) -> None:
        self.firsts: list[tuple[bytes, int, int]] = []  # (exact digest, split id, first row index in it)
        self.labels: list[tuple[int, int, int]] | None = None  # (label id, split id, row index), first per label


class _SplitState:
    __slots__ = ("name", "rows", "labels", "empty", "empty_examples", "chars", "tokens", "duplicates",
                 "duplicate_examples")

    def __init__(self, name: str) -> None:
        self.name = name
        self.rows = 0
        self.labels: Counter[str] = Counter()
        self.empty = 0
        self.empty_examples: list[int] = []
        self.chars = array("I")
        self.tokens = array("I")
        self.duplicates = 0
        self.duplicate_examples: dict[bytes, list[int]] = {}  # exact digest -> [group size, row, row...]


class _PairState:
    __slots__ = ("count", "examples")

    def __init__(self) -> None:
        self.count = 0
        self.examples: list[tuple[int, int]] = []

    def add(self, first_index: int, second_index: int) -> None:
        self.count += 1
        if len(self.examples) < MAX_EXAMPLES:
            self.examples.append((first_index, second_index))


class QualityAccumulator:
    """Collects the quality report row by row, keeping 16-byte digests instead of texts.

    Feed rows with :meth:`add` (split by split is the intended order; interleaving works too), then
    call :meth:`report`, which can be called more than once. Not thread-safe.

    Example::

        acc = QualityAccumulator()
        acc.add("train", "Hello, World!", "greeting")
        acc.add("test", "hello world", "greeting")
        acc.report().near_duplicates[0].count  # 1
    """

    def __init__(self) -> None:
        self._splits: list[_SplitState] = []
        self._split_ids: dict[str, int] = {}
        self._labels: list[str] = []
        self._label_ids: dict[str, int] = {}
        # normalized digest -> packed first occurrence (bytes, see _PACKED) or a _Group once it repeats
        self._seen: dict[bytes, bytes | _Group] = {}
        self._leakage: dict[tuple[int, int], _PairState] = {}
        self._near: dict[tuple[int, int], _PairState] = {}
        self._conflicts = 0
        self._conflict_examples: list[_Group] = []

    def add(self, split: str, text: str | None, label: str | None = None) -> None:
        """Count one row of ``split``.

        Args:
            split: the split name (``"train"``, ``"validation"``...).
            text: the row's text; ``None``, empty or whitespace-only counts as empty. For token
                classification pass the tokens joined by spaces.
            label: the row's label, or ``None`` (unlabeled rows, token classification).

        Raises:
            InvalidInputError: more than 255 splits, or more than 2**32 - 1 rows in one split.
        """
        state = self._split(split)
        split_id = self._split_ids[split]
        index = state.rows
        if index >= _MAX_U32:
            raise InvalidInputError(f"split {split!r} has more than {_MAX_U32} rows, the quality report's limit")
        state.rows = index + 1
        label_id = -1
        if label is not None:
            label = str(label)
            state.labels[label] += 1
            label_id = self._label_id(label)
        if text is None or not text.strip():
            state.empty += 1
            if len(state.empty_examples) < MAX_EXAMPLES:
                state.empty_examples.append(index)
            state.chars.append(0)
            state.tokens.append(0 if text is None else len(text.split()))
            return
        state.chars.append(min(len(text), _MAX_U32))
        state.tokens.append(min(len(text.split()), _MAX_U32))

        exact = _digest(text)
        # Punctuation-only texts ("!!!", "...") normalize to "": key them by their exact text instead, so
        # they do not all become near-duplicates of one another (no normalized text has punctuation).
        key = _digest(normalize_text(text) or text)
        seen = self._seen.get(key)
        if seen is None:
            if label_id < _PACKED_NO_LABEL:
                packed_label = _PACKED_NO_LABEL if label_id < 0 else label_id
                self._seen[key] = exact + _PACKED.pack(split_id, index, packed_label)
                return
            seen = self._seen[key] = _Group()
        elif isinstance(seen, bytes):
            seen = self._seen[key] = self._unpack(seen)
        self._add_to_group(seen, state, split_id, index, exact, label_id)

    def report(self) -> QualityReport:
        """The report of every row added so far."""
        splits = tuple(self._split_report(state) for state in self._splits)
        conflicts = tuple(
            LabelConflict(tuple((self._labels[label_id], self._splits[split_id].name, index)
                                for label_id, split_id, index in (group.labels or [])[:MAX_EXAMPLES]))
            for group in self._conflict_examples)
        return QualityReport(splits=splits, leakage=self._pairs(self._leakage), near_duplicates=self._pairs(self._near),
                             label_conflicts=self._conflicts, label_conflict_examples=conflicts)

    # -- internals ---------------------------------------------------------------------------------

    def _split(self, name: str) -> _SplitState:
        split_id = self._split_ids.get(name)
        if split_id is not None:
            return self._splits[split_id]
        if len(self._splits) >= _MAX_SPLITS:
            raise InvalidInputError(f"more than {_MAX_SPLITS} splits (adding {name!r})",
                                    hint="a split is a column value like 'train'; check the --split-column")
        self._split_ids[name] = len(self._splits)
        self._splits.append(_SplitState(name))
        return self._splits[-1]

    def _label_id(self, label: str) -> int:
        label_id = self._label_ids.get(label)
        if label_id is None:
            label_id = self._label_ids[label] = len(self._labels)
            self._labels.append(label)
        return label_id

    @staticmethod
    def _unpack(packed: bytes) -> _Group:
        split_id, index, label_id = _PACKED.unpack_from(packed, _DIGEST_SIZE)
        group = _Group()
        group.firsts.append((packed[:_DIGEST_SIZE], split_id, index))
        if label_id != _PACKED_NO_LABEL:
            group.labels = [(label_id, split_id, index)]
        return group

    def _add_to_group(self, group: _Group, state: _SplitState, split_id: int, index: int, exact: bytes,
                      label_id: int) -> None:
        same: dict[int, int] = {}  # split id -> first row with this exact text
        near: dict[int, int] = {}  # split id -> first row with this normalized text (another exact text)
        for variant, other, other_index in group.firsts:
            if variant == exact:
                same[other] = other_index
            elif other not in near:
                near[other] = other_index
        first = same.get(split_id)
        if first is None:
            group.firsts.append((exact, split_id, index))
        else:
            state.duplicates += 1
            example = state.duplicate_examples.get(exact)
            if example is not None:
                example[0] += 1
                if len(example) <= MAX_EXAMPLES:
                    example.append(index)
            elif len(state.duplicate_examples) < MAX_EXAMPLES:
                state.duplicate_examples[exact] = [2, first, index]
        for other, other_index in same.items():
            if other != split_id:
                self._pair(self._leakage, other, other_index, split_id, index)
        for other, other_index in near.items():
            # An exact match in that split is leakage already; near-duplicates are the rest.
            if other != split_id and other not in same:
                self._pair(self._near, other, other_index, split_id, index)
        if label_id < 0:
            return
        if group.labels is None:
            group.labels = [(label_id, split_id, index)]
        elif all(seen != label_id for seen, _, _ in group.labels):
            group.labels.append((label_id, split_id, index))
            if len(group.labels) == 2:
                self._conflicts += 1
                if len(self._conflict_examples) < MAX_EXAMPLES:
                    self._conflict_examples.append(group)

    @staticmethod
    def _pair(pairs: dict[tuple[int, int], _PairState], a: int, a_index: int, b: int, b_index: int) -> None:
        # One entry per unordered pair, oriented by the order splits were first fed (train before test).
        if a > b:
            a, a_index, b, b_index = b, b_index, a, a_index
        pair = pairs.get((a, b))
        if pair is None:
            pair = pairs[(a, b)] = _PairState()
        pair.add(a_index, b_index)

    def _pairs(self, pairs: dict[tuple[int, int], _PairState]) -> tuple[SplitPairFinding, ...]:
        return tuple(SplitPairFinding(self._splits[a].name, self._splits[b].name, pair.count, tuple(pair.examples))
                     for (a, b), pair in sorted(pairs.items()))

    @staticmethod
    def _split_report(state: _SplitState) -> SplitQuality:
        labels = dict(sorted(state.labels.items(), key=lambda item: (-item[1], item[0])))
        groups = tuple(DuplicateGroup(rows=tuple(example[1:]), size=example[0])
                       for example in state.duplicate_examples.values())
        return SplitQuality(name=state.name, rows=state.rows, labels=labels, empty=state.empty,
                            empty_examples=tuple(state.empty_examples),
                            chars=LengthStats.from_lengths("chars", state.chars),
                            tokens=LengthStats.from_lengths("tokens", state.tokens),
                            duplicates=state.duplicates, duplicate_examples=groups)


# -- presentation ----------------------------------------------------------------------------------


def render_quality(report: QualityReport, console: Any) -> None:
    """Print the report to a rich ``Console``: a per-split table, the label distribution, then findings.

    Leakage and label conflicts print in red, other findings in yellow.
    """
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

    labels = _all_labels(report)
    if labels:
        distribution = Table(title="Labels")
        distribution.add_column("label")
        for split in report.splits:
            distribution.add_column(Text(split.name), justify="right")
        for label in labels:
            cells = []
            for split in report.splits:
                count = split.labels.get(label, 0)
                cells.append(f"{count:,} ({split.label_fractions.get(label, 0.0):.1%})")
            distribution.add_row(Text(label), *cells)  # Text: labels are not rich markup
        console.print(distribution)

    findings = report.findings()
    if not any(kind == "leakage" for kind, _ in findings):
        console.print(Text("no leakage found between splits", style="green"))
    for kind, message in findings:
        console.print(Text(message, style="bold red" if kind in STRICT_KINDS else "yellow"))
    for pair in report.leakage:
        examples = ", ".join(f"{pair.first}[{a}] = {pair.second}[{b}]" for a, b in pair.examples)
        console.print(Text(f"  leaked rows: {examples}", style="red"))
    for conflict in report.label_conflict_examples:
        rows = ", ".join(f"{label!r} at {split}[{index}]" for label, split, index in conflict.rows)
        console.print(Text(f"  conflicting labels: {rows}", style="red"))


def quality_markdown(report: QualityReport, heading: str | None = "## Data quality") -> str:
    """A short markdown section for the dataset card: rows per split, labels, and a list of findings.

    Pass ``heading=None`` when the card writes its own heading.
    """
    lines = [heading, ""] if heading else []
    lines += ["| Split | Rows | Empty | Duplicates | Median chars | Median tokens |",
             "|---|---:|---:|---:|---:|---:|"]
    for split in report.splits:
        lines.append(f"| {_md(split.name)} | {split.rows:,} | {split.empty:,} | {split.duplicates:,} | "
                     f"{split.chars.median:g} | {split.tokens.median:g} |")
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
    return "\n".join(lines) + "\n"


def _all_labels(report: QualityReport) -> list[str]:
    totals: Counter[str] = Counter()
    for split in report.splits:
        totals.update(split.labels)
    return [label for label, _ in sorted(totals.items(), key=lambda item: (-item[1], item[0]))]


def _md(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")
