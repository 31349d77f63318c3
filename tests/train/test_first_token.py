"""The training forward pass that computes the last encoder layer at the first token only: the full model's logits
and gradients, used where the head reads only the first token, the model's own forward pass elsewhere."""

from __future__ import annotations

import pytest
import torch
from transformers import (BertConfig, BertForSequenceClassification, BertForTokenClassification,
                          DistilBertConfig, DistilBertForSequenceClassification, RobertaConfig,
                          RobertaForSequenceClassification)

from fmhub.train import TrainConfig
from fmhub.train._first_token import FirstTokenClassifier, first_token_forward
from fmhub.train._loop import Trainer, prepare

SIZES = dict(hidden_size=32, num_hidden_layers=3, num_attention_heads=4, intermediate_size=48, vocab_size=99,
             max_position_embeddings=40, num_labels=3, pad_token_id=1)


def batch() -> dict[str, torch.Tensor]:
    torch.manual_seed(1)
    input_ids = torch.randint(3, 99, (4, 12))
    attention_mask = torch.ones(4, 12, dtype=torch.long)
    attention_mask[0, 7:] = 0  # padded rows: the first token must not attend to the padding
    attention_mask[2, 3:] = 0
    input_ids[attention_mask == 0] = 1
    return {"input_ids": input_ids, "attention_mask": attention_mask}


def logits_and_gradients(forward, model: torch.nn.Module) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    model.zero_grad(set_to_none=True)
    logits = forward(**batch()).logits
    (logits * torch.arange(1.0, 4.0)).sin().sum().backward()  # a loss that weighs each logit differently
    return logits.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
@pytest.mark.parametrize("architecture", [(BertConfig, BertForSequenceClassification),
                                          (RobertaConfig, RobertaForSequenceClassification)])
def test_the_same_logits_and_gradients_as_the_full_model(architecture, attention: str) -> None:
    config_class, model_class = architecture
    torch.manual_seed(0)
    model = model_class(config_class(**SIZES, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                                     attn_implementation=attention)).train()
    full_logits, full = logits_and_gradients(model, model)
    forward = first_token_forward(model)
    assert isinstance(forward, FirstTokenClassifier)
    logits, grads = logits_and_gradients(forward, model)
    torch.testing.assert_close(logits, full_logits, rtol=1e-5, atol=1e-6)
    assert grads.keys() == full.keys()  # every parameter of the last layer still gets its gradient
    assert any(".layer.2." in name for name in grads)
    for name, grad in full.items():
        torch.testing.assert_close(grads[name], grad, rtol=1e-4, atol=1e-6, msg=name)
        assert grad.abs().sum() > 0, name  # the comparison means something: no parameter is left out


def test_other_heads_and_architectures_keep_the_models_forward() -> None:
    token = BertForTokenClassification(BertConfig(**SIZES))  # reads every position
    distil = DistilBertForSequenceClassification(DistilBertConfig(vocab_size=99, dim=32, n_layers=2, n_heads=4,
                                                                  hidden_dim=48, max_position_embeddings=40))
    decoder = BertForSequenceClassification(BertConfig(**SIZES, is_decoder=True))  # causal: not the same sums

    class OwnHead(BertForSequenceClassification):  # a subclass may read other positions
        pass

    assert first_token_forward(OwnHead(BertConfig(**SIZES))) is None
    assert first_token_forward(token) is None
    assert first_token_forward(distil) is None
    assert first_token_forward(decoder) is None


def test_fmhub_train_uses_it_for_a_bert_classifier(tiny_model: str, tiny_data: str) -> None:
    from fmhub.client import Hub

    config = TrainConfig.from_flat(dict(task="text-classification", model=tiny_model, data=tiny_data,
                                        output="acme/first-token", max_length=32, threads=1, seed=0))
    with Hub.open() as hub:
        loop = Trainer(prepare(config, hub))
    assert isinstance(loop.forward, FirstTokenClassifier) and loop.forward.model is loop.model
