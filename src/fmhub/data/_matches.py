"""Duplicates, leakage, near-duplicates and label conflicts, found by sorting hashes with numpy.

The input is one entry per non-empty row: the hash of its exact text, the hash of its normalized
text (the *key*), its split (an index; lower splits come first, e.g. train before test), its row index
in that split and its label id (-1: none). Sorting by (hash, split, row) puts equal texts next to
each other in row order, so every finding is a handful of vectorized passes, and the examples are
chosen by row position only, never by hash value: the result does not depend on the per-process
hash key, and the same rows always give the same report.

- **duplicates** of split *s*: rows of *s* whose exact text appeared earlier in *s*;
- **leakage** from split *a* to a later split *b*: rows of *b* whose exact text is also in *a*;
- **near-duplicates** from *a* to *b*: rows of *b* whose normalized text is in *a* but whose exact text
  is not (those are leakage already);
- **label conflicts**: normalized texts carrying more than one label, anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Matches", "SortedGroups", "find_matches", "sorted_groups"]


@dataclass(frozen=True)
class Matches:
    """What :func:`find_matches` found; examples are capped at ``limit`` and ordered by row position."""

    duplicates: list[int]  # per split: rows repeating an earlier row of that split
    duplicate_examples: list[list[tuple[int, tuple[int, ...]]]]  # per split: (group size, first rows)
    leakage: dict[tuple[int, int], tuple[int, list[tuple[int, int]]]]  # (a, b) -> (count, (row in a, row in b))
    near_duplicates: dict[tuple[int, int], tuple[int, list[tuple[int, int]]]]
    label_conflicts: int
    conflict_examples: list[list[tuple[int, int, int]]]  # per text: (label id, split, row), first per label


def find_matches(exact: np.ndarray, key: np.ndarray, split: np.ndarray, row: np.ndarray, label: np.ndarray,
                 splits: int, limit: int) -> Matches:
    """Find every kind of match among the rows (arrays of one length; ``splits`` = number of splits)."""
    by_text = sorted_groups(exact, split, row)
    s, r = split[by_text.order], row[by_text.order]
    new_group = by_text.starts | _starts(s)
    duplicates = np.bincount(s[~new_group], minlength=splits).tolist()
    duplicate_examples = _duplicate_examples(s, r, new_group, splits, limit)
    exact_group = np.empty(len(exact), dtype=np.int64)
    exact_group[by_text.order] = by_text.group  # each row's exact-text group, in input order
    leakage = _pairs(by_text, split, row, limit)
    near = _pairs(sorted_groups(key, split, row), split, row, limit, exact_group=exact_group)
    conflicts, conflict_examples = _conflicts(key, split, row, label, limit)
    return Matches(duplicates, duplicate_examples, leakage, near, conflicts, conflict_examples)


def _starts(sorted_values: np.ndarray) -> np.ndarray:
    """True where a value differs from the one before it (and at 0)."""
    starts = np.ones(len(sorted_values), dtype=bool)
    starts[1:] = sorted_values[1:] != sorted_values[:-1]
    return starts


def _duplicate_examples(s: np.ndarray, r: np.ndarray, new_group: np.ndarray, splits: int,
                        limit: int) -> list[list[tuple[int, tuple[int, ...]]]]:
    starts = np.flatnonzero(new_group)
    sizes = np.diff(np.append(starts, len(s)))
    repeated = sizes > 1
    starts, sizes = starts[repeated], sizes[repeated]
    examples: list[list[tuple[int, tuple[int, ...]]]] = [[] for _ in range(splits)]
    for split_id in range(splits):
        mine = s[starts] == split_id
        first = starts[mine][np.argsort(r[starts[mine]], kind="stable")[:limit]]
        size_of = dict(zip(starts[mine].tolist(), sizes[mine].tolist()))
        examples[split_id] = [(size_of[start], tuple(r[start:start + min(size_of[start], limit)].tolist()))
                              for start in first.tolist()]
    return examples


@dataclass(frozen=True)
class SortedGroups:
    """Rows sorted by (value, split, row), cut into groups of equal value.

    ``order[first_at[g]:last_at[g] + 1]`` are the rows of group ``g``, by split then row; ``spans[g]``
    tells whether the group holds rows of more than one split (only those can match across splits).
    """

    order: np.ndarray
    starts: np.ndarray  # per sorted position: True where a group begins
    first_at: np.ndarray
    last_at: np.ndarray
    spans: np.ndarray

    @property
    def group(self) -> np.ndarray:
        """Each sorted position's group index."""
        return np.cumsum(self.starts) - 1


def sorted_groups(values: np.ndarray, split: np.ndarray, row: np.ndarray) -> SortedGroups:
    """Group the rows by ``values``; see :class:`SortedGroups`."""
    order = np.lexsort((row, split, values))
    starts = _starts(values[order])
    first_at = np.flatnonzero(starts)
    last_at = np.append(first_at[1:], len(order))[:len(first_at)] - 1
    s = split[order]  # each group is sorted by split: its first and last entries hold its lowest and highest
    return SortedGroups(order, starts, first_at, last_at, s[first_at] != s[last_at])


def _pairs(sorted_rows: SortedGroups, split: np.ndarray, row: np.ndarray, limit: int,
           exact_group: np.ndarray | None = None) -> dict[tuple[int, int], tuple[int, list[tuple[int, int]]]]:
    """For splits a < b: rows of b whose grouped value also occurs in a, with (first row in a, row in b)
    examples.

    With ``exact_group`` (each row's exact-text group), rows of b whose exact text is in a are left out.
    """
    if not len(sorted_rows.order):
        return {}
    group = sorted_rows.group
    groups = len(sorted_rows.first_at)
    shared = sorted_rows.spans[group]  # only groups spanning several splits can match: usually a small subset
    if not shared.any():
        return {}
    idx = sorted_rows.order[shared]
    g, s, r = group[shared], split[idx], row[idx]  # sorted by (group, split, row)
    if exact_group is not None:
        exact_groups = int(exact_group.max()) + 1
        exact_group = exact_group[idx]
    found: dict[tuple[int, int], tuple[int, list[tuple[int, int]]]] = {}
    for a in np.unique(s).tolist():
        in_a = s == a
        has_a = np.zeros(groups, dtype=bool)
        has_a[g[in_a]] = True
        first_in_a = np.full(groups, -1, dtype=np.int64)
        g_a, r_a = g[in_a], r[in_a]
        first = _starts(g_a)  # each group's rows of a are in row order: its first is the first row
        first_in_a[g_a[first]] = r_a[first]
        if exact_group is not None:
            exact_in_a = np.zeros(exact_groups, dtype=bool)
            exact_in_a[exact_group[in_a]] = True
        for b in np.unique(s[s > a]).tolist():
            hit = (s == b) & has_a[g]
            if exact_group is not None:
                hit &= ~exact_in_a[exact_group]
            count = int(hit.sum())
            if count:
                rows_b = r[hit]
                pick = np.argsort(rows_b, kind="stable")[:limit]
                found[(a, b)] = (count, list(zip(first_in_a[g[hit]][pick].tolist(), rows_b[pick].tolist())))
    return found


def _conflicts(key: np.ndarray, split: np.ndarray, row: np.ndarray, label: np.ndarray,
               limit: int) -> tuple[int, list[list[tuple[int, int, int]]]]:
    labeled = np.flatnonzero(label >= 0)
    if not len(labeled):
        return 0, []
    k, lab, s, r = key[labeled], label[labeled], split[labeled], row[labeled]
    order = np.lexsort((r, s, lab, k))
    k, lab, s, r = k[order], lab[order], s[order], r[order]
    firsts = np.flatnonzero(_starts(k) | _starts(lab))  # first row of each (text, label), in row order
    text_of_first = np.cumsum(_starts(k))[firsts] - 1
    labels_per_text = np.bincount(text_of_first)
    conflicting = labels_per_text[text_of_first] > 1
    count = int((labels_per_text > 1).sum())
    firsts, texts = firsts[conflicting], text_of_first[conflicting]
    # Order each text's entries by position, and the texts by their earliest entry.
    position = s[firsts].astype(np.int64) << 32 | r[firsts].astype(np.int64)
    earliest = np.full(int(texts.max()) + 1 if len(texts) else 0, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(earliest, texts, position)
    ranked = np.lexsort((position, earliest[texts]))
    examples: list[list[tuple[int, int, int]]] = []
    current = -1
    for i in ranked.tolist():
        entry = (int(lab[firsts[i]]), int(s[firsts[i]]), int(r[firsts[i]]))
        if texts[i] == current:
            if len(examples[-1]) < limit:
                examples[-1].append(entry)
            continue
        if len(examples) == limit:
            break
        current = texts[i]
        examples.append([entry])
    return count, examples
