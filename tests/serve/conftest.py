"""Live inference servers over tiny models: a classifier, a NER tagger, a masked LM and a causal LM."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest

from fmhub.client import Hub
from fmhub.serve import ServeConfig, app_for, prepare
from fmhub.serve._live import running


@pytest.fixture
def live() -> Callable[..., AbstractContextManager[str]]:
    """``with live("acme/clf", backend="onnx", max_wait_ms=20) as url``: a ready server (``/readyz`` 200)."""

    @contextmanager
    def start(model: str, **options) -> Iterator[str]:
        config = ServeConfig(model=model, threads=1, **options)
        config = dataclasses.replace(config, model=prepare(config))
        with running(app_for(config)) as url:
            yield url

    return start


def _upload(folder: Path, repo: str) -> str:
    with Hub.open() as hub:
        hub.create_repo(repo)
        return hub.upload(folder, repo).oid


@pytest.fixture
def ner_model(tiny_model: str, tiny_ner: str) -> str:
    from fmhub.train import TrainConfig, train

    assert train(TrainConfig.from_flat(dict(task="token-classification", model=tiny_model, data=tiny_ner, output="acme/ner-bert",
                             epochs=4, batch_size=8, learning_rate=5e-3, max_length=32, threads=1,
                             eval_split=None))) is not None
    return "acme/ner-bert"


@pytest.fixture
def masked_lm(tiny_model: str, tmp_path: Path) -> str:
    """A random-init BERT masked LM over the tiny vocabulary."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForMaskedLM

    with Hub.open() as hub:
        folder = hub.download(tiny_model)
    out = tmp_path / "masked-lm"
    torch.manual_seed(0)
    config = BertConfig.from_pretrained(folder)
    BertForMaskedLM(config).save_pretrained(out)
    AutoTokenizer.from_pretrained(folder).save_pretrained(out)
    _upload(out, "acme/tiny-mlm")
    return "acme/tiny-mlm"


@pytest.fixture
def causal_lm(tiny_model: str, tmp_path: Path) -> str:
    """A random-init GPT-2 (2 layers, width 32) over the tiny vocabulary."""
    import torch
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    with Hub.open() as hub:
        tokenizer = AutoTokenizer.from_pretrained(hub.download(tiny_model))
    out = tmp_path / "tiny-gpt"
    torch.manual_seed(0)
    # No end-of-text token: every generation runs to max_new_tokens (the prompt ends with the tokenizer's [SEP]).
    GPT2LMHeadModel(GPT2Config(vocab_size=len(tokenizer), n_positions=64, n_embd=32, n_layer=2, n_head=2,
                               bos_token_id=None, eos_token_id=None,
                               pad_token_id=tokenizer.pad_token_id)).save_pretrained(out)
    tokenizer.save_pretrained(out)
    _upload(out, "acme/tiny-gpt")
    return "acme/tiny-gpt"
