"""Sequence classification whose last encoder layer runs only where the head reads it: the first token.

A BERT-family classification head reads one position of the encoder's output, the first one ([CLS], ``<s>``):
BERT's pooler takes ``hidden[:, 0]``, RoBERTa's head ``features[:, 0, :]``. Every position of the earlier layers
feeds the first token of the last layer (through attention), but the last layer's other positions feed nothing.
So the last layer computes keys and values over all tokens — the first token attends to them — and its query,
attention output, output projection, layer norm and feed-forward for position 0 only: a sixth of all-MiniLM-L6-v2's
layer work at length 256, none of it needed. The logits, the loss and every parameter's gradient are the full
model's (to float rounding: the same products, summed in another order), so this is how fmhub trains such models;
the model itself is untouched (its modules, weights and saved format are transformers' own), and evaluation and
every other head use the model's own forward pass.
"""

from __future__ import annotations

from typing import Any

__all__ = ["first_token_forward"]


def first_token_forward(model: Any) -> FirstTokenClassifier | None:
    """``model``'s training forward pass computing the last layer at the first token only (None: not applicable).

    Applies to ``BertForSequenceClassification`` and ``RobertaForSequenceClassification`` (exactly: a subclass
    may change the forward pass) with a plain encoder — not a decoder, no cross-attention — and SDPA or eager
    attention.
    """
    from transformers import BertForSequenceClassification, RobertaForSequenceClassification

    config = model.config
    if type(model) not in (BertForSequenceClassification, RobertaForSequenceClassification):
        return None
    if config.is_decoder or config.add_cross_attention or config._attn_implementation not in ("sdpa", "eager"):
        return None
    return FirstTokenClassifier(model)


class FirstTokenClassifier:
    """Call as the model: ``(input_ids, attention_mask, token_type_ids)`` → an output with ``.logits``."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.base = getattr(model, model.base_model_prefix)  # BertModel / RobertaModel

    def __call__(self, input_ids: Any, attention_mask: Any = None, token_type_ids: Any = None) -> Any:
        from transformers.masking_utils import create_bidirectional_mask
        from transformers.modeling_outputs import SequenceClassifierOutput

        base, model = self.base, self.model
        hidden = base.embeddings(input_ids=input_ids, token_type_ids=token_type_ids)  # (B, T, C)
        # The mask the model's own forward pass gives its layers: (B, 1, T, T), or None without padding.
        mask = create_bidirectional_mask(config=base.config, inputs_embeds=hidden, attention_mask=attention_mask)
        *layers, last = base.encoder.layer
        for layer in layers:
            hidden = _layer(layer, hidden, mask, first_only=False)
        first = _layer(last, hidden, None if mask is None else mask[:, :, :1], first_only=True)  # (B, 1, C)
        if base.pooler is not None:  # BERT: pooler (dense + tanh of position 0), dropout, classifier
            logits = model.classifier(model.dropout(base.pooler(first)))
        else:  # RoBERTa: a head that reads position 0 itself
            logits = model.classifier(first)
        return SequenceClassifierOutput(logits=logits)


def _layer(layer: Any, hidden: Any, mask: Any, *, first_only: bool) -> Any:
    """A BertLayer's output (B, T, C) — or at position 0 only, (B, 1, C): its self-attention, then its feed-forward.

    The query, key and value projections of the same input run as one matrix product: under autocast the input
    is cast to bfloat16 once instead of once per projection, and the backward pass sums the three paths' input
    gradients inside one product. The same sums of the same products, in another order.
    """
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
    from transformers.models.bert.modeling_bert import eager_attention_forward

    attention = layer.attention.self
    batch, _, _ = hidden.shape
    heads = (batch, -1, attention.num_attention_heads, attention.attention_head_size)
    if first_only:  # keys and values at every position, the query at the first
        key, value = _projections(hidden, attention.key, attention.value)
        query, residual = attention.query(hidden[:, :1]), hidden[:, :1]
    else:
        query, key, value = _projections(hidden, attention.query, attention.key, attention.value)
        residual = hidden
    query, key, value = (x.view(*heads).transpose(1, 2) for x in (query, key, value))  # (B, H, T or 1, D)
    attend = ALL_ATTENTION_FUNCTIONS.get_interface(attention.config._attn_implementation, eager_attention_forward)
    context, _ = attend(attention, query, key, value, mask, scaling=attention.scaling,
                        dropout=attention.dropout.p if attention.training else 0.0)  # (B, T or 1, H, D)
    context = context.reshape(batch, context.shape[1], -1)  # (B, T or 1, C)
    attended = layer.attention.output(context, residual)  # dense, dropout, LayerNorm(+ residual)
    return layer.output(layer.intermediate(attended), attended)  # feed-forward, dropout, LayerNorm(+ residual)


def _projections(hidden: Any, *linears: Any) -> tuple[Any, ...]:
    """The outputs of several linear layers applied to ``hidden``, from one matrix product."""
    import torch

    weight = torch.cat([linear.weight for linear in linears])
    bias = torch.cat([linear.bias for linear in linears])
    return torch.nn.functional.linear(hidden, weight, bias).split([linear.out_features for linear in linears], -1)
