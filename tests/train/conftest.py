"""A tiny BERT (hidden size 32) and a tiny labeled dataset in the embedded store, made offline."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

WORDS = {"sport": "goal match team player score league coach win".split(),
         "tech": "chip phone software network data cloud robot app".split()}


@pytest.fixture
def tiny_model(tmp_path: Path) -> str:
    """``acme/tiny-bert``: a random-init 2-layer BERT with a WordPiece vocab of the dataset's words."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizer

    from fmhub.client import Hub

    words = {w for ws in WORDS.values() for w in ws} | set("ada lovelace alan turing grace paris new york london score"
                                                           .split())
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + sorted(words) + ["##s", "##ing"]
    (tmp_path / "vocab.txt").write_text("\n".join(vocab) + "\n")
    folder = tmp_path / "tiny-bert"
    BertTokenizer(vocab=str(tmp_path / "vocab.txt")).save_pretrained(folder)
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=37, max_position_embeddings=64)).save_pretrained(folder)
    with Hub.open() as hub:
        hub.create_repo("acme/tiny-bert")
        hub.upload(folder, "acme/tiny-bert")
    return "acme/tiny-bert"


@pytest.fixture
def tiny_data(tmp_path: Path) -> str:
    """``acme/topics``: 120 short texts in two separable classes, imported with splits 70/15/15."""
    from fmhub.client import Hub
    from fmhub.data._import import ImportOptions, import_dataset

    rng = random.Random(0)
    rows = ["text,label"]
    for i in range(120):
        label = "sport" if i % 2 else "tech"
        rows.append(" ".join(rng.choice(WORDS[label]) for _ in range(rng.randint(3, 12))) + f",{label}")
    (tmp_path / "topics.csv").write_text("\n".join(rows) + "\n")
    with Hub.open() as hub:
        import_dataset(hub, tmp_path / "topics.csv", "acme/topics", ImportOptions(split="train=0.7,validation=0.15,test=0.15"))
    return "acme/topics"


@pytest.fixture
def tiny_ner(tmp_path: Path) -> str:
    """``acme/ner``: CoNLL sentences where names and places come from fixed word lists (B-/I- tags)."""
    from fmhub.client import Hub
    from fmhub.data._import import ImportOptions, import_dataset

    rng = random.Random(1)
    people, places = ["ada lovelace", "alan turing", "grace"], ["paris", "new york", "london"]
    lines = []
    for _ in range(90):
        person, place = rng.choice(people).split(), rng.choice(places).split()
        words = [(w, "O") for w in rng.choice(["goal match", "team win", "data cloud"]).split()]
        words += [(w, ("B-PER" if i == 0 else "I-PER")) for i, w in enumerate(person)]
        words += [(w, "O") for w in ["score"]] + [(w, ("B-LOC" if i == 0 else "I-LOC")) for i, w in enumerate(place)]
        lines += [f"{w} {t}" for w, t in words] + [""]
    (tmp_path / "ner.conll").write_text("\n".join(lines))
    with Hub.open() as hub:
        import_dataset(hub, tmp_path / "ner.conll", "acme/ner", ImportOptions(split="train=0.8,validation=0.2"))
    return "acme/ner"


@pytest.fixture
def topic_words() -> dict[str, list[str]]:
    """The words of each topic, from which the tiny datasets are made (and the tiny model's vocab)."""
    return WORDS
