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


@pytest.mark.parametrize("form", ["eager", "sdpa"])
def test_bf16_on_the_cpu_attends_in_the_chosen_form_with_the_same_results(form: str) -> None:
    """Under bfloat16 autocast on a CPU attention runs in the form timed faster (here: set): the logits and
    gradients stay as close to float32's as the model's own bfloat16 forward pass is."""
    from torch.profiler import ProfilerActivity, profile

    def model() -> BertForSequenceClassification:
        torch.manual_seed(0)
        return BertForSequenceClassification(BertConfig(**SIZES, hidden_dropout_prob=0.0,
                                                        attention_probs_dropout_prob=0.0,
                                                        attn_implementation="sdpa")).train()

    def error(result: tuple, reference: tuple) -> tuple[float, float]:
        (logits, grads), (ref_logits, ref_grads) = result, reference
        flat = torch.cat([grads[n].flatten().float() for n in ref_grads])
        ref_flat = torch.cat([ref_grads[n].flatten() for n in ref_grads])
        return ((logits.float() - ref_logits).norm() / ref_logits.norm()).item(), \
            ((flat - ref_flat).norm() / ref_flat.norm()).item()

    fp32 = model()
    reference = logits_and_gradients(fp32, fp32)
    own, ours = model(), model()
    forward = first_token_forward(ours)
    forward.attention = form
    with torch.autocast("cpu", dtype=torch.bfloat16):
        own_result = logits_and_gradients(own, own)  # SDPA's fused kernel
        with profile(activities=[ProfilerActivity.CPU]) as profiled:
            our_result = logits_and_gradients(forward, ours)
    fused = any("scaled_dot_product" in event.key for event in profiled.key_averages())
    assert fused == (form == "sdpa")
    (own_logits, own_grads), (our_logits, our_grads) = error(own_result, reference), error(our_result, reference)
    assert our_logits < max(2 * own_logits, 1e-2) and our_grads < max(2 * own_grads, 1e-2), \
        (our_logits, own_logits, our_grads, own_grads)


def test_the_attention_form_is_timed_once_and_only_under_bf16_on_a_cpu() -> None:
    torch.manual_seed(0)
    model = BertForSequenceClassification(BertConfig(**SIZES, attn_implementation="sdpa")).train()
    forward = first_token_forward(model)
    forward(**batch())  # float32: the model's own attention, nothing timed
    assert forward.attention is None
    with torch.autocast("cpu", dtype=torch.bfloat16), torch.no_grad():  # timed with gradients even so
        forward(**batch())
    assert forward.attention in ("sdpa", "eager")
    chosen = forward.attention
    with torch.autocast("cpu", dtype=torch.bfloat16):
        forward(**batch())
    assert forward.attention == chosen


def test_timing_the_attention_draws_no_random_number_of_the_training() -> None:
    from fmhub.train._first_token import faster_attention

    attention = BertForSequenceClassification(BertConfig(**SIZES)).train().bert.encoder.layer[0].attention.self
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    assert faster_attention(attention, 2, 16, repeats=1) in ("sdpa", "eager")
    assert torch.equal(torch.rand(3), expected)


def test_the_training_forward_applies_the_models_hidden_dropout() -> None:
    torch.manual_seed(0)
    model = BertForSequenceClassification(BertConfig(**SIZES, hidden_dropout_prob=0.3,
                                                     attention_probs_dropout_prob=0.0)).train()
    forward, rows = first_token_forward(model), batch()
    with torch.no_grad():
        first, second = forward(**rows).logits, forward(**rows).logits
        model.eval()
        torch.testing.assert_close(forward(**rows).logits, model(**rows).logits, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(first, second)  # dropout drew different masks


def test_long_batches_keep_the_fused_kernel_without_timing(monkeypatch: pytest.MonkeyPatch) -> None:
    import fmhub.train._first_token as first_token

    timed = []
    monkeypatch.setattr(first_token, "faster_attention", lambda *args, **_: timed.append(args) or "eager")
    monkeypatch.setattr(first_token, "_EAGER_MEMORY", 4 * 4 * 12 * 12 * 6 * 3 - 1)  # this batch's weights, less one
    model = BertForSequenceClassification(BertConfig(**SIZES, attn_implementation="sdpa")).train()
    forward = first_token_forward(model)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        forward(**batch())
    assert forward.attention == "sdpa" and timed == []
