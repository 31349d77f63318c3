"""A tiny BERT trained in the test to key on one planted word: the word an explanation must put first."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

KEYWORD = "robot"  # in the tiny vocab; the positive class is "the text contains it"


@pytest.fixture
def keyword_data(tmp_path: Path, topic_words) -> str:
    """``acme/keyword``: texts of mixed sport/tech words; label ``yes`` exactly when ``robot`` is among them."""
    from fmhub.client import Hub
    from fmhub.data._import import ImportOptions, import_dataset

    rng = random.Random(3)
    pool = [w for ws in topic_words.values() for w in ws if w != KEYWORD]
    rows = ["text,label"]
    for i in range(240):
        words = [rng.choice(pool) for _ in range(rng.randint(4, 10))]
        label = "yes" if i % 2 else "no"
        if label == "yes":
            words.insert(rng.randrange(len(words) + 1), KEYWORD)
        rows.append(" ".join(words) + f",{label}")
    (tmp_path / "keyword.csv").write_text("\n".join(rows) + "\n")
    with Hub.open() as hub:
        import_dataset(hub, tmp_path / "keyword.csv", "acme/keyword",
                       ImportOptions(split="train=0.8,validation=0.1,test=0.1"))
    return "acme/keyword"


@pytest.fixture
def keyword_model(tiny_model: str, keyword_data: str) -> str:
    from fmhub.train import TrainConfig, train

    config = TrainConfig.from_flat(dict(task="text-classification", model=tiny_model, data=keyword_data,
                                        output="acme/keyword-clf", epochs=4, batch_size=16, learning_rate=3e-3,
                                        max_length=32, threads=1, eval_split=None, seed=0))
    assert train(config) is not None
    return "acme/keyword-clf"
