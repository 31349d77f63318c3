"""Masked and causal LM: pretraining from scratch with a tokenizer trained on the corpus, continued
pretraining of a hub model, perplexity, and the checks that come before any training."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from fmhub.client import Hub
from fmhub.errors import InvalidInputError
from fmhub.train import TrainConfig, train

SMALL = dict(learning_rate=3e-3, batch_size=8, max_length=32, threads=1, hidden_size=32, layers=2, heads=2,
             vocab_size=200)


def test_masked_lm_from_scratch_then_fill_mask(tiny_data: str) -> None:
    from transformers import AutoModelForMaskedLM, AutoTokenizer, pipeline

    outcome = train(TrainConfig.from_flat(dict(task="masked-lm", model=None, data=tiny_data, output="acme/scratch-bert",
                                architecture="bert", epochs=8, **SMALL)))
    assert outcome is not None
    perplexity = outcome.result.metrics["eval_perplexity"]
    first = outcome.result.history[0]["eval_perplexity"]
    assert math.isfinite(perplexity) and perplexity < first  # it learned something about the corpus
    with Hub.open() as hub:
        folder = hub.download("acme/scratch-bert")
    card = (folder / "README.md").read_text()
    assert "pipeline_tag: fill-mask" in card and "\nbase_model:" not in card and "from scratch" in card
    tokenizer = AutoTokenizer.from_pretrained(folder)
    assert "goal" in tokenizer.get_vocab() and tokenizer.mask_token == "[MASK]"
    fill = pipeline("fill-mask", model=AutoModelForMaskedLM.from_pretrained(folder), tokenizer=tokenizer)
    assert len(fill("goal match [MASK]")) == 5


def test_causal_lm_from_scratch_and_continued(tiny_data: str, tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM

    scratch = train(TrainConfig.from_flat(dict(task="causal-lm", model=None, data=tiny_data, output="acme/scratch-gpt",
                                architecture="gpt2", epochs=4, **SMALL)))
    assert scratch is not None
    continued = train(TrainConfig.from_flat(dict(task="causal-lm", model="acme/scratch-gpt", data=tiny_data,
                                  output="acme/scratch-gpt-more", epochs=4,
                                  **{k: v for k, v in SMALL.items() if k not in ("hidden_size", "layers", "heads",
                                                                                   "vocab_size")})))
    assert continued is not None
    assert continued.result.metrics["eval_perplexity"] < scratch.result.metrics["eval_perplexity"]
    with Hub.open() as hub:
        folder = hub.download("acme/scratch-gpt-more")
    card = (folder / "README.md").read_text()
    assert "base_model: acme/scratch-gpt" in card and "pipeline_tag: text-generation" in card
    model = AutoModelForCausalLM.from_pretrained(folder)
    assert model.config.model_type == "gpt2"
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt2", "n_embd": 32, "n_layer": 1, "n_head": 2}))
    from_file = train(TrainConfig.from_flat(dict(task="causal-lm", model=None, data=tiny_data, output="acme/from-file",
                                  from_config=str(tmp_path / "config.json"), epochs=1, **{
                                      k: v for k, v in SMALL.items() if k not in ("hidden_size", "layers", "heads")})))
    assert from_file is not None and math.isfinite(from_file.result.metrics["eval_perplexity"])


def test_language_modeling_checks(tiny_model: str, tiny_data: str, tmp_path: Path) -> None:
    base = dict(data=tiny_data, output="acme/never")
    with pytest.raises(InvalidInputError, match="does not fit masked-lm"):
        TrainConfig.from_flat(dict(task="masked-lm", model=None, architecture="gpt2", **base)).validate()
    with pytest.raises(InvalidInputError, match="from scratch is for"):
        TrainConfig.from_flat(dict(task="text-classification", model=None, architecture="bert", **base)).validate()
    with pytest.raises(InvalidInputError, match="both given"):
        TrainConfig.from_flat(dict(task="masked-lm", model=tiny_model, architecture="bert", **base)).validate()
    with pytest.raises(InvalidInputError, match="missing model"):
        TrainConfig.from_dict({"task": "masked-lm", **base})
    with pytest.raises(InvalidInputError, match="no such file"):
        train(TrainConfig.from_flat(dict(task="causal-lm", model=None, from_config=str(tmp_path / "nope.json"), **base)))
    with pytest.raises(InvalidInputError, match="class-weights"):
        TrainConfig.from_flat(dict(task="masked-lm", model=tiny_model, class_weights=True, **base)).validate()
