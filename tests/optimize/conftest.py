"""A tiny trained classifier to optimize (the tiny BERT fine-tuned on the two-topic dataset)."""

from __future__ import annotations

import pytest


@pytest.fixture
def classifier(tiny_model: str, tiny_data: str) -> str:
    from fmhub.train import TrainConfig, train

    assert train(TrainConfig(task="text-classification", model=tiny_model, data=tiny_data, output="acme/clf",
                             epochs=2, batch_size=8, learning_rate=3e-3, max_length=32, threads=1,
                             eval_split=None)) is not None
    return "acme/clf"
