"""Token classification: sub-word label alignment, and an NER fine-tune end to end (entity scoring: tests/evaluate)."""

from __future__ import annotations

import torch

from fmhub.train import TrainConfig, train
from fmhub import tasks
from fmhub.tasks import IGNORE


def test_tags_go_to_the_first_sub_word(tmp_path) -> None:
    import datasets
    from transformers import BertTokenizer

    (tmp_path / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "run", "##ning",
                                                   "fast"]) + "\n")
    tokenizer = BertTokenizer(vocab=str(tmp_path / "vocab.txt"))
    rows = datasets.Dataset.from_dict({"tokens": [["running", "fast"]], "tags": [[1, 0]]})
    ids, labels = tasks.get("token-classification").tokenize(rows, tokenizer, "tokens", "tags", 16)
    assert tokenizer.convert_ids_to_tokens(ids[0]) == ["[CLS]", "run", "##ning", "fast", "[SEP]"]
    assert labels[0] == [IGNORE, 1, IGNORE, 0, IGNORE]


def test_ner_fine_tune_finds_the_entities(tiny_model: str, tiny_ner: str) -> None:
    from transformers import AutoModelForTokenClassification

    from fmhub.client import Hub

    config = TrainConfig.from_flat(dict(task="token-classification", model=tiny_model, data=tiny_ner, output="acme/ner-bert",
                         learning_rate=3e-3, epochs=6, batch_size=8, max_length=32, threads=1))
    outcome = train(config)
    assert outcome is not None
    assert outcome.result.metrics["eval_f1"] >= 0.9, outcome.result.metrics
    with Hub.open() as hub:
        folder = hub.download("acme/ner-bert")
        card = (folder / "README.md").read_text()
    model = AutoModelForTokenClassification.from_pretrained(folder)
    assert set(model.config.id2label.values()) == {"B-LOC", "B-PER", "I-LOC", "I-PER", "O"}
    assert "pipeline_tag: token-classification" in card and "Entity F1" in card
    assert torch.isfinite(next(model.parameters())).all()
