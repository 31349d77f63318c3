"""Deterministic text perturbations for the robustness section of a report card.

Each perturbation is a pure function of (text, seed, row): the same seed gives the same texts in every
process and on every machine (NumPy's PCG64 streams are stable across versions; Python's ``hash`` and
``random`` are not used). Word-level variants keep the word count, so token-classification tags stay
aligned; ``truncate`` keeps the first half of the words (and the caller cuts the tags to match).

- ``typos``: 5% of the letters (at least one per text that has any) get a typo: a swap with the next
  letter, a deletion, a doubled letter or another letter of the same case in place.
- ``lowercase`` / ``uppercase``: the whole text.
- ``whitespace``: 10% of the spaces become 2–3 spaces, a tab or a newline, plus a leading and a
  trailing space.
- ``truncate``: the first half of the words (rounded up).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["PERTURBATIONS", "perturb_text", "perturb_words", "TYPO_RATE"]

TYPO_RATE = 0.05
_WHITESPACE_RATE = 0.10
_LETTERS = "abcdefghijklmnopqrstuvwxyz"
_SPACES = ("  ", "   ", "\t", "\n")

#: name → what it does (the report card lists these descriptions).
PERTURBATIONS = {
    "typos": f"typos at {TYPO_RATE:.0%} of letters (swap, deletion, doubling, substitution)",
    "lowercase": "the whole text lower-cased",
    "uppercase": "the whole text upper-cased",
    "whitespace": f"{_WHITESPACE_RATE:.0%} of spaces widened to 2-3 spaces, a tab or a newline; padded ends",
    "truncate": "the first half of the words",
}


def _rng(seed: int, row: int, name: str) -> np.random.Generator:
    return np.random.default_rng([seed, row, sum(ord(c) << (8 * i) for i, c in enumerate(name[:7]))])


def _typos(text: str, rng: np.random.Generator) -> str:
    letters = [i for i, c in enumerate(text) if c.isalpha()]
    if not letters:
        return text
    count = max(1, round(TYPO_RATE * len(letters)))
    chosen = set(rng.choice(letters, size=min(count, len(letters)), replace=False).tolist())
    kinds = rng.integers(0, 4, size=len(text))
    replacements = rng.integers(0, len(_LETTERS), size=len(text))
    out: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if i not in chosen:
            out.append(char)
            i += 1
            continue
        kind = kinds[i]
        if kind == 0 and i + 1 < len(text) and text[i + 1].isalpha():  # swap with the next letter
            out += [text[i + 1], char]
            i += 2
            continue
        if kind == 1:  # deletion
            pass
        elif kind == 2:  # doubled
            out += [char, char]
        else:  # substitution (a different letter, same case)
            letter = _LETTERS[replacements[i]]
            if letter == char.lower():
                letter = _LETTERS[(replacements[i] + 1) % len(_LETTERS)]
            out.append(letter.upper() if char.isupper() else letter)
        i += 1
    return "".join(out)


def _whitespace(text: str, rng: np.random.Generator) -> str:
    parts = text.split(" ")
    if len(parts) > 1:
        widen = rng.random(len(parts) - 1) < _WHITESPACE_RATE
        spaces = rng.integers(0, len(_SPACES), size=len(parts) - 1)
        glue = [_SPACES[s] if w else " " for w, s in zip(widen, spaces, strict=True)]
        text = parts[0] + "".join(g + p for g, p in zip(glue, parts[1:], strict=True))
    return f" {text} "


def _truncate(text: str) -> str:
    words = text.split()
    return " ".join(words[:(len(words) + 1) // 2])


_TEXT: dict[str, Callable[[str, np.random.Generator], str]] = {
    "typos": _typos,
    "lowercase": lambda text, _: text.lower(),
    "uppercase": lambda text, _: text.upper(),
    "whitespace": _whitespace,
    "truncate": lambda text, _: _truncate(text),
}


def perturb_text(name: str, text: str, seed: int, row: int) -> str:
    """``text`` under perturbation ``name`` (one of :data:`PERTURBATIONS`) for this seed and row."""
    return _TEXT[name](text or "", _rng(seed, row, name))


def perturb_words(name: str, words: list[str], seed: int, row: int) -> list[str]:
    """Word-list variant for token classification: as many words out as in (``truncate``: the first half).

    Whitespace noise has no meaning for pre-split words and returns them unchanged.
    """
    if name == "truncate":
        return list(words[:(len(words) + 1) // 2])
    if name == "whitespace":
        return list(words)
    joined = _TEXT[name]("\x00".join(words), _rng(seed, row, name))  # typos never cross the separator
    out = joined.split("\x00")
    return [new if new else old for new, old in zip(out, words, strict=True)]  # a deleted one-letter word stays
