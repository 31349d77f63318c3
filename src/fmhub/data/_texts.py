"""Per-row text measurements for the quality report, a whole Arrow batch at a time.

:func:`measure` gives each row's length in characters and whitespace tokens, whether it is empty, and
two 64-bit hashes: of the exact text and of its normalized form (:func:`normalize_texts`: NFKC,
lowercase, Unicode punctuation and whitespace removed, so ``"Hello, World!"`` and ``"hello world"``
match). Pure-ASCII rows (nearly every row of most corpora) are normalized with one ``bytes.translate``
each and their tokens counted with numpy on the Arrow buffers; other rows go through Arrow's Unicode
kernels. Both paths agree on ASCII text, so a row normalizes the same way whatever batch it is in.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["TextMeasures", "measure", "normalize_texts", "normalize_text", "as_string_array"]

_LOWER = bytes(c + 32 if ord("A") <= c <= ord("Z") else c for c in range(256))
#: ASCII whitespace as Python's ``str.split`` sees it (incl. \x1c-\x1f); Arrow's Unicode kernels agree.
_ASCII_SPACE = bytes(c for c in range(128) if chr(c).isspace())
#: What normalization deletes from ASCII text: category P (``$+<=>^`|~`` are symbols, S, and stay) and
#: whitespace, as the Unicode path's regex does.
_ASCII_DROP = bytes(c for c in range(128) if unicodedata.category(chr(c)).startswith("P")) + _ASCII_SPACE
_UNICODE_DROP = r"[\p{P}\p{Z}\x{09}-\x{0d}\x{1c}-\x{1f}\x{85}]+"  # P, separators, and the C0/C1 spaces
_WORD_BYTE = bytes(0 if chr(c).isspace() and c < 128 else 1 for c in range(256))


def as_string_array(values: Any) -> pa.Array:
    """``values`` (an Arrow string array or chunked array, or a list) as one Arrow string array."""
    if isinstance(values, pa.ChunkedArray):
        return values.combine_chunks() if values.num_chunks != 1 else values.chunk(0)
    if isinstance(values, pa.Array):
        return values
    return pa.array(values, pa.string())


def normalize_texts(texts: Any) -> list[bytes]:
    """The form near-duplicates and label conflicts compare, as UTF-8: NFKC, lowercase, Unicode
    punctuation and whitespace removed. Nulls become ``b""``.
    """
    texts = as_string_array(texts).fill_null("")
    is_ascii = pc.string_is_ascii(texts).to_numpy(zero_copy_only=False)
    normal: list[bytes] = [b""] * len(texts)
    for i, text in zip(np.flatnonzero(is_ascii).tolist(), texts.filter(is_ascii).to_pylist()):
        normal[i] = text.encode("ascii").translate(_LOWER, _ASCII_DROP)
    others = np.flatnonzero(~is_ascii)
    if len(others):
        for i, text in zip(others.tolist(), _normalize_unicode(texts.take(others))):
            normal[i] = text
    return normal


def _normalize_unicode(texts: pa.Array) -> list[bytes]:
    """:func:`normalize_texts` by Arrow's Unicode kernels (any text; used for the non-ASCII rows)."""
    folded = pc.utf8_lower(pc.utf8_normalize(texts, "NFKC"))
    return [text.encode("utf-8") for text in pc.replace_substring_regex(folded, _UNICODE_DROP, "").to_pylist()]


def normalize_text(text: str) -> str:
    """:func:`normalize_texts` of one text.

    >>> normalize_text("  Hello,\tWORLD! ")
    'helloworld'
    """
    return normalize_texts([text])[0].decode("utf-8")


def _ascii_token_counts(texts: pa.Array) -> np.ndarray:
    """Whitespace-separated tokens per row (``len(text.split())``), for ASCII rows, from the Arrow buffers."""
    rows = len(texts)
    offsets = np.frombuffer(texts.buffers()[1], dtype=np.int32)[texts.offset:texts.offset + rows + 1].astype(np.int64)
    if rows == 0 or offsets[-1] == offsets[0]:
        return np.zeros(rows, dtype=np.int64)
    data = np.frombuffer(texts.buffers()[2], dtype=np.uint8)[offsets[0]:offsets[-1]]
    offsets -= offsets[0]
    word = np.frombuffer(data.tobytes().translate(_WORD_BYTE), dtype=np.bool_)
    starts = word.copy()
    starts[1:] &= ~word[:-1]  # a word byte after a space byte
    counts = np.diff(np.searchsorted(np.flatnonzero(starts), offsets))
    # A row whose first byte is a word byte starts a word even when the previous row ended in one.
    first = offsets[:-1]
    continued = (offsets[1:] > first) & (first > 0)
    continued[continued] = word[first[continued]] & word[first[continued] - 1]
    return counts + continued


@dataclass(frozen=True)
class TextMeasures:
    """Per-row measurements of a batch (numpy arrays of one length)."""

    chars: np.ndarray  # uint32: characters (code points)
    tokens: np.ndarray  # uint32: whitespace-separated tokens
    empty: np.ndarray  # bool: null, empty or whitespace-only
    exact: np.ndarray  # int64: hash of the text
    key: np.ndarray  # int64: hash of the normalized text (of the text itself when that is empty)


def measure(texts: Any) -> TextMeasures:
    """Measure every row of ``texts`` (Arrow strings or a list; nulls count as empty)."""
    texts = as_string_array(texts).fill_null("")
    rows = len(texts)
    chars = pc.utf8_length(texts).to_numpy(zero_copy_only=False).astype(np.uint32)
    is_ascii = pc.string_is_ascii(texts).to_numpy(zero_copy_only=False)
    tokens = _ascii_token_counts(texts).astype(np.uint32)  # exact for ASCII rows; the others are redone
    others = np.flatnonzero(~is_ascii)
    if len(others):
        split = pc.utf8_split_whitespace(pc.utf8_trim_whitespace(texts.take(others)))
        counts = pc.list_value_length(split).to_numpy(zero_copy_only=False)
        lone = pc.equal(pc.binary_length(pc.list_element(split, 0)), 0).to_numpy(zero_copy_only=False)
        tokens[others] = np.where(lone & (counts == 1), 0, counts)  # "" splits into [""]
    empty = tokens == 0
    exact = np.fromiter(map(hash, texts.to_pylist()), dtype=np.int64, count=rows)
    # Punctuation-only texts ("!!!", "...") normalize to b"": key them by their exact text instead, so they
    # do not all become near-duplicates of one another (no normalized text has punctuation).
    key = np.fromiter((hash(normal) if normal else 0 for normal in normalize_texts(texts)), dtype=np.int64,
                      count=rows)
    blank = key == 0
    key[blank] = exact[blank]
    return TextMeasures(chars, tokens, empty, exact, key)
