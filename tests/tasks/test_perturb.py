"""Robustness perturbations: deterministic per (seed, row), in this process and in another."""

from __future__ import annotations

import json
import subprocess
import sys

from hypothesis import given, settings
from hypothesis import strategies as st

from fmhub.tasks._perturb import PERTURBATIONS, TYPO_RATE, perturb_text, perturb_words

TEXT = ("Markets rallied on Tuesday as the central bank held rates steady, while technology shares led the gains "
        "and investors weighed fresh figures on inflation and jobs.")


def test_same_seed_same_text_other_seed_other_typos() -> None:
    for name in PERTURBATIONS:
        assert perturb_text(name, TEXT, 0, 7) == perturb_text(name, TEXT, 0, 7)
    assert perturb_text("typos", TEXT, 0, 7) != perturb_text("typos", TEXT, 1, 7)
    assert perturb_text("typos", TEXT, 0, 7) != perturb_text("typos", TEXT, 0, 8)


def test_the_same_texts_in_another_process() -> None:
    script = ("import json; from fmhub.tasks._perturb import PERTURBATIONS, perturb_text; "
              f"print(json.dumps([perturb_text(n, {TEXT!r}, 3, 5) for n in PERTURBATIONS]))")
    other = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                           env={"PYTHONHASHSEED": "123"}).stdout
    assert json.loads(other) == [perturb_text(n, TEXT, 3, 5) for n in PERTURBATIONS]


def _edit_distance(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        current = [i]
        for j, y in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
        previous = current
    return previous[-1]


def test_what_each_perturbation_does() -> None:
    typos = perturb_text("typos", TEXT, 0, 0)
    letters = sum(c.isalpha() for c in TEXT)
    typo_count = round(TYPO_RATE * letters)
    assert 1 <= _edit_distance(typos, TEXT) <= 2 * typo_count  # a swap costs two edits, the others one
    assert perturb_text("lowercase", TEXT, 0, 0) == TEXT.lower()
    assert perturb_text("uppercase", TEXT, 0, 0) == TEXT.upper()
    spaced = perturb_text("whitespace", TEXT, 0, 0)
    assert spaced.split() == TEXT.split() and spaced != TEXT and spaced.startswith(" ")
    assert perturb_text("truncate", TEXT, 0, 0).split() == TEXT.split()[:(len(TEXT.split()) + 1) // 2]
    assert perturb_text("typos", "", 0, 0) == "" and perturb_text("typos", "123 456", 0, 0) == "123 456"


@settings(max_examples=60, deadline=None)
@given(words=st.lists(st.text(alphabet="abcXYZé-", min_size=1, max_size=8), min_size=1, max_size=20),
       seed=st.integers(0, 2**32 - 1))
def test_word_perturbations_keep_the_words_aligned(words: list[str], seed: int) -> None:
    for name in PERTURBATIONS:
        out = perturb_words(name, words, seed, 1)
        expected = (len(words) + 1) // 2 if name == "truncate" else len(words)
        assert len(out) == expected and all(out), name
