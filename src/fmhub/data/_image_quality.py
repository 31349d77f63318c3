"""The quality report of an image import: sizes and modes, unreadable files, duplicates, leakage, class balance.

An :class:`ImageQualityAccumulator` is fed each stored image's measurements (never its pixels): width and
height, mode and format, a 64-bit hash of its bytes and its 64-bit perceptual hash (dHash), its split, row
and label. The findings are the text report's, by the same sorting machinery
(:func:`fmhub.data._matches.find_matches`), with images for texts:

- **duplicates** within a split: the same bytes twice;
- **leakage**: the same bytes in two splits;
- **near-duplicates** across splits: the same perceptual hash, different bytes (a resized, re-encoded or
  recompressed copy);
- **label conflicts**: one perceptual hash carrying different labels;
- with ``similar_bits``: **similar** images across splits, whose perceptual hashes differ in at most that many
  of their 64 bits (a superset of leakage and near-duplicates; found by multi-index hashing: two hashes within
  *k* bits agree exactly on one of *k* + 1 blocks);
- **unreadable** files (not an image, truncated, corrupt, missing): listed with the reason, left out of the
  dataset — they never stop the import (images over the pixel limit do: they are refused, see the import);
- **class balance**: per split, the largest class's size over the smallest's.

The report is stored as ``quality.json`` (``"modality": "image"``), rendered with :meth:`ImageQualityReport.render`
and summarized in the dataset card by :meth:`ImageQualityReport.markdown`.
"""

from __future__ import annotations

from array import array
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from fmhub.data._matches import sorted_groups
from fmhub.data._quality import (
    MAX_EXAMPLES,
    QUALITY_SCHEMA_VERSION,
    DuplicateGroup,
    LabelConflict,
    LengthStats,
    SplitPairFinding,
    _ints,
    _MatchingAccumulator,
    _md,
    _plain,
    _SplitReport,
    markdown_labels_and_findings,
    print_labels_and_findings,
)
from fmhub.errors import InvalidInputError

__all__ = ["ImageQualityAccumulator", "ImageQualityReport", "ImageSplitQuality", "UnreadableImage",
           "IMAGE_FINDING_KINDS", "IMBALANCE_RATIO", "similar_pairs"]

#: Every kind of finding of an image report, in the order reports list them.
IMAGE_FINDING_KINDS = ("leakage", "label_conflicts", "near_duplicates", "similar", "duplicates", "unreadable",
                       "imbalance")
#: A split whose largest class holds at least this many times the rows of its smallest is reported.
IMBALANCE_RATIO = 5.0
_MAX_CANDIDATES = 256  # images compared per image and hash block (bounds the work on blank or uniform images)


@dataclass(frozen=True)
class UnreadableImage:
    """A source image left out of the dataset: where it was and why."""

    path: str | None
    reason: str

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> UnreadableImage:
        return cls(path=data.get("path"), reason=data["reason"])


@dataclass(frozen=True)
class ImageSplitQuality:
    """Everything the report says about one split (``rows``: the images stored)."""

    name: str
    rows: int
    labels: dict[str, int]  # label -> rows, most frequent first
    width: LengthStats  # pixels
    height: LengthStats
    modes: dict[str, int]  # Pillow mode (RGB, L, RGBA, P...) -> images
    formats: dict[str, int]  # PNG, JPEG... -> images
    duplicates: int
    duplicate_examples: tuple[DuplicateGroup, ...]
    unreadable: int
    unreadable_examples: tuple[UnreadableImage, ...]

    @property
    def labeled_rows(self) -> int:
        return sum(self.labels.values())

    @property
    def label_fractions(self) -> dict[str, float]:
        total = self.labeled_rows
        return {label: count / total for label, count in self.labels.items()} if total else {}

    @property
    def imbalance(self) -> float | None:
        """The largest class's rows over the smallest's (None without two labels)."""
        counts = [c for c in self.labels.values() if c]
        return max(counts) / min(counts) if len(counts) >= 2 else None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "rows": self.rows, "labels": dict(self.labels),
                "label_fractions": {k: round(v, 6) for k, v in self.label_fractions.items()},
                "labeled_rows": self.labeled_rows, "imbalance": self.imbalance,
                "width": _plain(self.width), "height": _plain(self.height), "modes": dict(self.modes),
                "formats": dict(self.formats), "duplicates": self.duplicates,
                "duplicate_examples": [_plain(g) for g in self.duplicate_examples],
                "unreadable": self.unreadable, "unreadable_examples": [_plain(u) for u in self.unreadable_examples],
                # what the text report calls empties, for readers that count them across modalities
                "empty": self.unreadable}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ImageSplitQuality:
        return cls(name=data["name"], rows=data["rows"], labels=dict(data["labels"]),
                   width=LengthStats.from_dict(data["width"]), height=LengthStats.from_dict(data["height"]),
                   modes=dict(data["modes"]), formats=dict(data["formats"]), duplicates=data["duplicates"],
                   duplicate_examples=tuple(DuplicateGroup.from_dict(g) for g in data["duplicate_examples"]),
                   unreadable=data["unreadable"],
                   unreadable_examples=tuple(UnreadableImage.from_dict(u) for u in data["unreadable_examples"]))


@dataclass(frozen=True)
class ImageQualityReport(_SplitReport):
    """The quality report of one image dataset version (``quality.json``); see the module docstring."""

    finding_kinds: ClassVar[tuple[str, ...]] = IMAGE_FINDING_KINDS

    splits: tuple[ImageSplitQuality, ...]
    leakage: tuple[SplitPairFinding, ...] = ()
    near_duplicates: tuple[SplitPairFinding, ...] = ()
    label_conflicts: int = 0
    label_conflict_examples: tuple[LabelConflict, ...] = ()
    similar: tuple[SplitPairFinding, ...] = ()
    similar_bits: int | None = None
    max_pixels: int | None = None  # the import's pixel limit
    schema_version: int = field(default=QUALITY_SCHEMA_VERSION)

    def findings(self) -> list[tuple[str, str]]:
        """Every finding as ``(kind, human message)``, most serious kinds first (:data:`IMAGE_FINDING_KINDS`)."""
        found: list[tuple[str, str]] = []
        for pair in self.leakage:
            found.append(("leakage", f"leakage: {pair.count} {pair.second} image(s) also in {pair.first}, byte for "
                          f"byte (e.g. {pair.first}[{pair.examples[0][0]}] = {pair.second}[{pair.examples[0][1]}])"))
        if self.label_conflicts:
            example = ", ".join(f"{label!r} at {split}[{index}]" for label, split, index in
                                self.label_conflict_examples[0].rows)
            found.append(("label_conflicts", f"label conflicts: {self.label_conflicts} picture(s) (same perceptual "
                          f"hash) carry different labels (e.g. {example})"))
        for pair in self.near_duplicates:
            found.append(("near_duplicates", f"near-duplicates: {pair.count} {pair.second} image(s) look like a "
                          f"{pair.first} image (same perceptual hash, other bytes; e.g. "
                          f"{pair.first}[{pair.examples[0][0]}] ~ {pair.second}[{pair.examples[0][1]}])"))
        for pair in self.similar:
            found.append(("similar", f"similar images: {pair.count} {pair.second} image(s) within "
                          f"{self.similar_bits} bits of a {pair.first} image's perceptual hash (e.g. "
                          f"{pair.first}[{pair.examples[0][0]}] ≈ {pair.second}[{pair.examples[0][1]}])"))
        for split in self.splits:
            if split.duplicates:
                found.append(("duplicates", f"duplicates: {split.duplicates} {split.name} image(s) repeat an earlier "
                              f"{split.name} image byte for byte (e.g. rows {_ints(split.duplicate_examples[0].rows)})"))
        for split in self.splits:
            if split.unreadable:
                example = split.unreadable_examples[0]
                found.append(("unreadable", f"unreadable: {split.unreadable} {split.name} file(s) left out (e.g. "
                              f"{example.path}: {example.reason})"))
        for split in self.splits:
            ratio = split.imbalance
            if ratio is not None and ratio >= IMBALANCE_RATIO:
                large = max(split.labels, key=lambda k: split.labels[k])
                small = min(split.labels, key=lambda k: split.labels[k])
                found.append(("imbalance", f"class imbalance: in {split.name}, {large!r} has {ratio:.1f}× the images "
                              f"of {small!r} ({split.labels[large]} vs {split.labels[small]})"))
        return found

    def to_dict(self) -> dict[str, Any]:
        return {"schema_version": self.schema_version, "modality": "image", "rows": self.rows,
                "splits": [s.to_dict() for s in self.splits], "leakage": [_plain(p) for p in self.leakage],
                "near_duplicates": [_plain(p) for p in self.near_duplicates],
                "label_conflicts": self.label_conflicts,
                "label_conflict_examples": [_plain(c) for c in self.label_conflict_examples],
                "similar": [_plain(p) for p in self.similar], "similar_bits": self.similar_bits,
                "max_pixels": self.max_pixels,
                "perceptual_hash": "dHash, 64 bits (9×8 grayscale, LANCZOS)"}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ImageQualityReport:
        if data.get("schema_version") != QUALITY_SCHEMA_VERSION or data.get("modality") != "image":
            raise InvalidInputError("not an image quality report of this fmhub's schema",
                                    hint="regenerate it with: fmhub data import")
        return cls(splits=tuple(ImageSplitQuality.from_dict(s) for s in data["splits"]),
                   leakage=tuple(SplitPairFinding.from_dict(p) for p in data["leakage"]),
                   near_duplicates=tuple(SplitPairFinding.from_dict(p) for p in data["near_duplicates"]),
                   label_conflicts=data["label_conflicts"],
                   label_conflict_examples=tuple(LabelConflict.from_dict(c) for c in data["label_conflict_examples"]),
                   similar=tuple(SplitPairFinding.from_dict(p) for p in data.get("similar", [])),
                   similar_bits=data.get("similar_bits"), max_pixels=data.get("max_pixels"))

    # -- presentation ------------------------------------------------------------------------------------

    def render(self, console: Any) -> None:
        """Print the report to a rich ``Console``: sizes and modes per split, labels, then the findings."""
        from rich.table import Table
        from rich.text import Text

        summary = Table(title="Image quality")
        for column in ("split", "images", "unreadable", "width (min/median/max)", "height (min/median/max)", "modes",
                       "duplicates"):
            summary.add_column(column, justify="left" if column in ("split", "modes") else "right")
        for s in self.splits:
            summary.add_row(Text(s.name), f"{s.rows:,}", f"{s.unreadable:,}", _spread(s.width), _spread(s.height),
                            Text(_counts(s.modes)), f"{s.duplicates:,}")
        console.print(summary)
        print_labels_and_findings(self, console)

    def markdown(self, heading: str | None = "## Data quality") -> str:
        """A short markdown section for the dataset card."""
        lines = [heading, ""] if heading else []
        lines += ["| Split | Images | Unreadable | Duplicates | Width (median) | Height (median) | Modes |",
                  "|---|---:|---:|---:|---:|---:|---|"]
        for s in self.splits:
            lines.append(f"| {_md(s.name)} | {s.rows:,} | {s.unreadable:,} | {s.duplicates:,} | "
                         f"{s.width.median:g} | {s.height.median:g} | {_md(_counts(s.modes))} |")
        return "\n".join(lines + markdown_labels_and_findings(self)) + "\n"


def _spread(stats: LengthStats) -> str:
    return f"{stats.min}/{stats.median:g}/{stats.max}"


def _counts(counter: dict[str, int]) -> str:
    return ", ".join(f"{k} {v:,}" for k, v in counter.items())


# -- accumulator -----------------------------------------------------------------------------------------


class _SplitState:
    __slots__ = ("name", "rows", "labels", "widths", "heights", "modes", "formats", "unreadable", "unreadable_examples")

    def __init__(self, name: str) -> None:
        self.name = name
        self.rows = 0
        self.labels: Counter[str] = Counter()
        self.widths = array("I")
        self.heights = array("I")
        self.modes: Counter[str] = Counter()
        self.formats: Counter[str] = Counter()
        self.unreadable = 0
        self.unreadable_examples: list[UnreadableImage] = []


class ImageQualityAccumulator(_MatchingAccumulator):
    """Collects the image quality report batch by batch (25 bytes per image for the matching, 8 for sizes).

    Args:
        splits: split names in the order the report lists them (and orients leakage: train → test).
        similar_bits: also report images across splits within this many bits of perceptual hash (None: off).
        max_pixels: the import's pixel limit, recorded in the report.
    """

    _state = _SplitState

    def __init__(self, splits: Any = (), *, similar_bits: int | None = None, max_pixels: int | None = None) -> None:
        if similar_bits is not None and not 0 <= similar_bits <= 16:
            raise InvalidInputError(f"--similar-images {similar_bits}: a number of bits in [0, 16]",
                                    hint="e.g. --similar-images 6 (of the perceptual hash's 64 bits)")
        self._similar_bits = similar_bits
        self._max_pixels = max_pixels
        super().__init__(splits)  # one compared entry per stored image

    def add(self, split: str, *, exact: np.ndarray, key: np.ndarray, widths: np.ndarray, heights: np.ndarray,
            modes: list[str], formats: list[str], labels: list[str | None] | None) -> None:
        """Count the images stored for ``split`` in this batch (arrays of one length, in stored-row order)."""
        state = self._split(split)
        count = len(exact)
        start = state.rows
        state.rows += count
        state.widths.frombytes(np.asarray(widths, dtype=np.uint32).tobytes())
        state.heights.frombytes(np.asarray(heights, dtype=np.uint32).tobytes())
        state.modes.update(modes)
        state.formats.update(formats)
        ids = np.full(count, -1, dtype=np.int32)
        for i, label in enumerate(labels or []):
            if label is not None:
                state.labels[label] += 1
                ids[i] = self._label_id(label)
        self._row.frombytes(np.arange(start, start + count, dtype=np.uint32).tobytes())
        self._exact.frombytes(np.asarray(exact, dtype=np.int64).tobytes())
        self._key.frombytes(np.asarray(key, dtype=np.int64).tobytes())
        self._split_of.frombytes(np.full(count, self._split_ids[split], dtype=np.uint8).tobytes())
        self._label.frombytes(ids.tobytes())

    def add_unreadable(self, split: str, path: str | None, reason: str) -> None:
        state = self._split(split)
        state.unreadable += 1
        if len(state.unreadable_examples) < MAX_EXAMPLES:
            state.unreadable_examples.append(UnreadableImage(path, reason))

    def report(self) -> ImageQualityReport:
        split_of = np.frombuffer(self._split_of, dtype=np.uint8)
        rows = np.frombuffer(self._row, dtype=np.uint32)
        key = np.frombuffer(self._key, dtype=np.int64)
        matches, conflicts = self._matches()
        splits = tuple(self._split_report(state, matches.duplicates[i], matches.duplicate_examples[i])
                       for i, state in enumerate(self._splits) if state.rows or state.unreadable)
        similar: tuple[SplitPairFinding, ...] = ()
        if self._similar_bits is not None:
            hits = similar_pairs(key, split_of, rows, self._similar_bits)
            similar = self._pairs({pair: (len(found), [(a, b) for b, a in sorted(found.items())[:MAX_EXAMPLES]])
                                   for pair, found in hits.items()})
        return ImageQualityReport(splits, self._pairs(matches.leakage), self._pairs(matches.near_duplicates),
                                  matches.label_conflicts, conflicts, similar, self._similar_bits, self._max_pixels)

    # -- internals ---------------------------------------------------------------------------------------

    @staticmethod
    def _split_report(state: _SplitState, duplicates: int, examples: list[tuple[int, tuple[int, ...]]]
                      ) -> ImageSplitQuality:
        def ordered(counter: Counter[str]) -> dict[str, int]:
            return dict(sorted(counter.items(), key=lambda item: (-item[1], item[0])))

        return ImageSplitQuality(
            state.name, state.rows, ordered(state.labels), LengthStats.from_lengths("px", state.widths),
            LengthStats.from_lengths("px", state.heights), ordered(state.modes), ordered(state.formats), duplicates,
            tuple(DuplicateGroup(rows=rows, size=size) for size, rows in examples), state.unreadable,
            tuple(state.unreadable_examples))


def similar_pairs(key: np.ndarray, split: np.ndarray, row: np.ndarray, bits: int
                  ) -> dict[tuple[int, int], dict[int, int]]:
    """For splits a < b: rows of b whose 64-bit hash is within ``bits`` bits of a row of a, as
    ``{(a, b): {row in b: first row in a}}`` (multi-index hashing over ``bits`` + 1 blocks)."""
    found: dict[tuple[int, int], dict[int, int]] = {}
    if len(key) < 2:
        return found
    unsigned = key.view(np.uint64)
    blocks = bits + 1
    width = -(-64 // blocks)
    for block in range(blocks):
        shift = np.uint64(block * width)
        mask = np.uint64((1 << min(width, 64 - block * width)) - 1)
        values = ((unsigned >> shift) & mask).astype(np.int64)
        groups = sorted_groups(values, split, row)
        for g in np.flatnonzero(groups.spans).tolist():
            members = groups.order[groups.first_at[g]:groups.last_at[g] + 1]  # sorted by (split, row)
            for position, b_index in enumerate(members.tolist()):
                b = int(split[b_index])
                earlier = members[:position][split[members[:position]] < b][:_MAX_CANDIDATES]
                if not len(earlier):
                    continue
                distance = np.unpackbits((unsigned[earlier] ^ unsigned[b_index]).view(np.uint8).reshape(-1, 8),
                                         axis=1).sum(axis=1)
                for a_index in earlier[distance <= bits].tolist():
                    hits = found.setdefault((int(split[a_index]), b), {})
                    b_row, a_row = int(row[b_index]), int(row[a_index])
                    if b_row not in hits or a_row < hits[b_row]:
                        hits[b_row] = a_row
    return found
