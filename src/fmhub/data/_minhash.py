"""MinHash near-duplicates across splits (``fmhub data import --minhash``): texts that share most of
their word 3-grams, such as the same article with an edited sentence, which the normalized-text hash
(exact match after normalization) cannot see.

Each text becomes a signature of 64 minimum hashes over its word 3-gram shingles (lowercased,
punctuation removed), each kept as 16 bits: 128 bytes per row. Locality-sensitive hashing over 16
bands of 4 values proposes candidate pairs (two rows sharing a band; a pair with Jaccard similarity
0.8 becomes a candidate with probability 0.9998, one with 0.5 with 0.64); a candidate counts when the signatures agree on at
least ``threshold`` of their 64 values, the MinHash estimate of the Jaccard similarity.

Everything is seeded by constants (word hashes are CRC-32, the 64 hash functions come from a fixed
PCG64 stream), so the same rows give the same findings in every run and process.
"""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np
import pyarrow.compute as pc

from fmhub.data._matches import sorted_groups

__all__ = ["PERMUTATIONS", "BANDS", "signatures", "near_pairs"]

PERMUTATIONS = 64
BANDS = 16
_BAND_WIDTH = PERMUTATIONS // BANDS
_SHINGLE_WORDS = 3
_RAW = np.random.PCG64(0x6D696E68617368).random_raw(2 * PERMUTATIONS).astype(np.uint64)
_MULTIPLIERS = _RAW[:PERMUTATIONS] | np.uint64(1)  # odd: multiply-shift hashing
_ADDENDS = _RAW[PERMUTATIONS:]
_MIX = (np.uint64(0x9E3779B97F4A7C15), np.uint64(0xC2B2AE3D27D4EB4F), np.uint64(0x165667B19E3779F9))
_CHUNK_SHINGLES = 65_536  # shingles hashed at once: a 32 MB (shingles × permutations) matrix
_MAX_CANDIDATES = 64  # rows of an earlier split checked per row and band (bounds boilerplate-heavy buckets)
_PUNCTUATION = r"\p{P}+"


def signatures(texts: Any) -> np.ndarray:
    """A ``(rows, 64)`` uint16 MinHash signature per text (an Arrow string array; empty texts get all-ones)."""
    words = pc.utf8_split_whitespace(pc.replace_substring_regex(
        pc.utf8_lower(pc.utf8_normalize(texts, "NFKC")), _PUNCTUATION, " "))
    shingle_rows: list[np.ndarray] = []
    for row in words.to_pylist():
        hashed = np.fromiter((zlib.crc32(w.encode("utf-8")) for w in row if w), dtype=np.uint64)
        shingle_rows.append(_shingles(hashed))
    out = np.full((len(shingle_rows), PERMUTATIONS), 0xFFFF, dtype=np.uint16)
    start = 0
    while start < len(shingle_rows):
        stop, total = start, 0
        while stop < len(shingle_rows) and (total == 0 or total + len(shingle_rows[stop]) <= _CHUNK_SHINGLES):
            total += len(shingle_rows[stop])
            stop += 1
        chunk = shingle_rows[start:stop]
        lengths = np.array([len(s) for s in chunk])
        if total:
            hashed = (np.concatenate(chunk)[:, None] * _MULTIPLIERS + _ADDENDS) >> np.uint64(48)
            present = np.flatnonzero(lengths)
            firsts = np.concatenate(([0], np.cumsum(lengths)[:-1]))[present]
            out[start + present] = np.minimum.reduceat(hashed, firsts, axis=0).astype(np.uint16)
        start = stop
    return out


def _shingles(words: np.ndarray) -> np.ndarray:
    """64-bit hashes of the word 3-grams (the whole text when it has fewer words)."""
    if len(words) == 0:
        return words
    if len(words) < _SHINGLE_WORDS:
        mixed = np.zeros(1, dtype=np.uint64)
        for i, word in enumerate(words):
            mixed += word * _MIX[i]
        return mixed
    n = len(words) - _SHINGLE_WORDS + 1
    return words[:n] * _MIX[0] + words[1:n + 1] * _MIX[1] + words[2:n + 2] * _MIX[2]


def near_pairs(signature: np.ndarray, split: np.ndarray, row: np.ndarray, threshold: float
               ) -> dict[tuple[int, int], dict[int, int]]:
    """For splits a < b: rows of b with a MinHash near-duplicate in a, as {(a, b): {row in b: row in a}}.

    ``signature``, ``split`` and ``row`` describe the same (non-empty) rows; ``threshold`` is the least
    fraction of agreeing signature values (estimated Jaccard similarity) that counts.
    """
    found: dict[tuple[int, int], dict[int, int]] = {}
    if len(signature) < 2:
        return found
    need = int(np.ceil(threshold * PERMUTATIONS))
    bands = np.ascontiguousarray(signature).view(np.uint64)  # 4 uint16 values = one 64-bit band key
    empty_band = np.uint64(0xFFFF_FFFF_FFFF_FFFF)
    for band in range(BANDS):
        keys = bands[:, band]
        groups = sorted_groups(keys, split, row)
        first_at, last_at = groups.first_at, groups.last_at
        spanning = groups.spans & (keys[groups.order[first_at]] != empty_band)
        for g in np.flatnonzero(spanning).tolist():
            members = groups.order[first_at[g]:last_at[g] + 1]  # sorted by (split, row)
            for position, b_index in enumerate(members.tolist()):
                b = int(split[b_index])
                earlier = members[:position][split[members[:position]] < b][:_MAX_CANDIDATES]
                if not len(earlier):
                    continue
                agree = (signature[earlier] == signature[b_index]).sum(axis=1)
                for a_index in earlier[agree >= need].tolist():
                    a = int(split[a_index])
                    hits = found.setdefault((a, b), {})
                    b_row, a_row = int(row[b_index]), int(row[a_index])
                    if b_row not in hits or a_row < hits[b_row]:
                        hits[b_row] = a_row
    return found
