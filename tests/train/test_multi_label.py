"""--multi-label: a sigmoid per label, BCE loss, micro/macro F1 and subset accuracy; config says so."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from fmhub.errors import InvalidInputError
from fmhub.train import TrainConfig, train


@pytest.fixture
def tiny_multi(tmp_path: Path, topic_words: dict[str, list[str]]) -> str:
    """``acme/multi``: texts mixing words of one or two topics, labelled with each topic present (JSON Lines,
    imported by fmhub data import as a multi-label dataset)."""
    from fmhub.client import Hub
    from fmhub.data._import import ImportOptions, import_dataset

    rng = random.Random(2)
    lines = []
    for _ in range(150):
        topics = rng.choice([["sport"], ["tech"], ["sport", "tech"]])
        words = [rng.choice(topic_words[t]) for t in topics for _ in range(rng.randint(2, 5))]
        rng.shuffle(words)
        lines.append(json.dumps({"text": " ".join(words), "labels": topics}))
    (tmp_path / "multi.jsonl").write_text("\n".join(lines) + "\n")
    with Hub.open() as hub:
        import_dataset(hub, tmp_path / "multi.jsonl", "acme/multi", ImportOptions(split="train=0.8,validation=0.2"))
    return "acme/multi"


def test_multi_label_fine_tune(tiny_model: str, tiny_multi: str) -> None:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from fmhub.client import Hub

    outcome = train(TrainConfig.from_flat(dict(task="text-classification", multi_label=True, model=tiny_model, data=tiny_multi,
                                output="acme/multi-bert", learning_rate=3e-3, epochs=8, batch_size=8, max_length=32,
                                threads=1)))
    assert outcome is not None
    metrics = outcome.result.metrics
    assert metrics["eval_f1_micro"] >= 0.9 and metrics["eval_subset_accuracy"] >= 0.7, metrics
    with Hub.open() as hub:
        folder = hub.download("acme/multi-bert")
    model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    assert model.config.problem_type == "multi_label_classification"
    tokenizer = AutoTokenizer.from_pretrained(folder)
    with torch.inference_mode():
        logits = model(**tokenizer(["goal match chip cloud"], return_tensors="pt")).logits
    assert (logits > 0).tolist() == [[True, True]]  # both topics


def test_multi_label_checks(tiny_model: str, tiny_data: str, tiny_multi: str) -> None:
    with pytest.raises(InvalidInputError, match="drop --multi-label"):
        train(TrainConfig.from_flat(dict(task="text-classification", multi_label=True, model=tiny_model, data=tiny_data,
                          output="acme/never", max_length=32)))
    with pytest.raises(InvalidInputError, match="applies to text-classification"):
        TrainConfig.from_flat(dict(task="token-classification", multi_label=True, model=tiny_model, data=tiny_data,
                    output="acme/never")).validate()
    with pytest.raises(InvalidInputError, match="--multi-label"):
        train(TrainConfig.from_flat(dict(task="text-classification", model=tiny_model, data=tiny_multi, output="acme/never",
                          max_length=32)))
