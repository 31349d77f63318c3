"""MinHash similar-text detection: edited copies across splits are found, unrelated texts are not."""

from __future__ import annotations

import random
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pytest

from fmhub.data._minhash import PERMUTATIONS, near_pairs, signatures
from fmhub.data._quality import QualityAccumulator
from fmhub.errors import InvalidInputError

WORDS = ("market shares fell sharply after the bank said profits would drop as energy prices rose and the "
         "government promised new rules for lenders while analysts expected growth to slow next year").split()


def article(seed: int, words: int = 120) -> str:
    rng = random.Random(seed)
    return " ".join(rng.choice(WORDS) + str(rng.randint(0, 50)) for _ in range(words))


def edited(text: str, changes: int, seed: int = 0) -> str:
    rng = random.Random(seed)
    words = text.split()
    for _ in range(changes):
        words[rng.randrange(len(words))] = "EDITED"
    return " ".join(words)


def test_signatures_are_fixed_and_agree_with_similarity() -> None:
    base = article(1)
    sig = signatures(pa.array([base, base.upper() + "!", edited(base, 3), article(2), "", "!!!"]))
    assert sig.shape == (6, PERMUTATIONS) and sig.dtype == np.uint16
    assert (sig[0] == sig[1]).all()  # case and punctuation do not matter
    assert (sig[0] == sig[2]).mean() > 0.7  # 3 words of 120 edited: Jaccard of 3-grams ~0.86
    assert (sig[0] == sig[3]).mean() < 0.2
    assert (sig[4] == 0xFFFF).all() and (sig[5] == 0xFFFF).all()  # no words: never similar
    # Seeded by constants: another process computes the same signature.
    code = ("import pyarrow as pa; from fmhub.data._minhash import signatures; import sys; "
            f"sys.stdout.write(signatures(pa.array([{base!r}])).tobytes().hex())")
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert other == sig[0].tobytes().hex()


def test_near_pairs_orients_from_earlier_splits_and_keeps_the_first_row() -> None:
    texts = [article(1), article(2), article(1), edited(article(2), 2), article(3), article(1)]
    split = np.array([0, 0, 0, 1, 1, 2], dtype=np.uint8)
    row = np.array([0, 1, 2, 0, 1, 0], dtype=np.uint32)
    found = near_pairs(signatures(pa.array(texts)), split, row, 0.8)
    assert found == {(0, 1): {0: 1}, (0, 2): {0: 0}}  # test[0] matches train[0] and [2]: the first is kept


def test_accumulator_reports_similar_rows_only_with_minhash() -> None:
    train = [article(i) for i in range(30)]
    test = [edited(article(i), 2, seed=i) for i in range(5)] + [article(100 + i) for i in range(25)]
    plain = QualityAccumulator(splits=["train", "test"])
    similar = QualityAccumulator(splits=["train", "test"], minhash=0.7)
    for acc in (plain, similar):
        acc.add_batch("train", train)
        acc.add_batch("test", test)
    assert plain.report().similar == () and plain.report().similar_threshold is None
    report = similar.report()
    (pair,) = report.similar
    assert (pair.first, pair.second, pair.count) == ("train", "test", 5)
    assert pair.examples == tuple((i, i) for i in range(5))
    assert report.leakage == () and report.near_duplicates == ()  # edited: no exact or normalized match
    assert any(kind == "similar" for kind, _ in report.findings())
    assert type(report).from_dict(report.to_dict()) == report
    with pytest.raises(InvalidInputError, match="MinHash threshold"):
        QualityAccumulator(minhash=1.5)
