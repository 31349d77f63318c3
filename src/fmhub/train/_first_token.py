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

Under bfloat16 autocast on a CPU, attention runs in whichever of two forms of the same arithmetic is faster on
this machine, timed once on the first batch's shape (forward and backward, three times each, on random tensors
from a generator of its own: the training's random numbers are untouched): PyTorch's fused kernel
(``scaled_dot_product_attention``) or the eager form (two batched products and a softmax, transformers' ``eager``).
Which wins depends on the CPU: on 2 cores of an Intel CPU with AMX, the eager form forward and backward took 26
against 54 ms at length 256 (16 × 12 heads of 32), 16 against 75 at 128, 54 against 68 at 512; on an AMD CPU with
AVX512-BF16 and no AMX the fused kernel was 1.3-2.1× faster. In float32 (and on GPUs) the model's own choice
stands, and so does the fused kernel where the eager form's attention weights, which the backward pass keeps (six
bytes per score: float32 and bfloat16), would take more than 1 GiB over all layers (MiniLM, batch 16: 453 MB at
length 256, 1.8 GB at 512).
"""

from __future__ import annotations

from typing import Any

__all__ = ["first_token_forward"]

#: The most memory the eager form's kept attention weights may take over all layers (bytes).
_EAGER_MEMORY = 2**30


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
        self.attention: str | None = None  # under bf16 on a CPU: "sdpa" or "eager", timed at the first such call

    def __call__(self, input_ids: Any, attention_mask: Any = None, token_type_ids: Any = None) -> Any:
        from transformers.masking_utils import create_bidirectional_mask
        from transformers.modeling_outputs import SequenceClassifierOutput

        base, model = self.base, self.model
        hidden = base.embeddings(input_ids=input_ids, token_type_ids=token_type_ids)  # (B, T, C)
        # The mask the model's own forward pass gives its layers: (B, 1, T, T), or None without padding.
        mask = create_bidirectional_mask(config=base.config, inputs_embeds=hidden, attention_mask=attention_mask)
        *layers, last = base.encoder.layer
        attend = self._attention_function(hidden)
        for layer in layers:
            hidden = _layer(layer, hidden, mask, attend, first_only=False)
        first = _layer(last, hidden, None if mask is None else mask[:, :, :1], attend, first_only=True)  # (B, 1, C)
        if base.pooler is not None:  # BERT: pooler (dense + tanh of position 0), dropout, classifier
            logits = model.classifier(model.dropout(base.pooler(first)))
        else:  # RoBERTa: a head that reads position 0 itself
            logits = model.classifier(first)
        return SequenceClassifierOutput(logits=logits)

    def _attention_function(self, hidden: Any) -> Any:
        """transformers' attention function for this call: the model's own, or under bf16 on a CPU the faster form."""
        import torch

        forms = _forms()
        own = self.base.config._attn_implementation
        if not (hidden.device.type == "cpu" and torch.is_autocast_enabled("cpu")
                and torch.get_autocast_dtype("cpu") == torch.bfloat16 and own in forms):
            return _interface(own)
        if self.attention is None:
            config = self.base.config
            batch, length, heads = hidden.shape[0], hidden.shape[1], config.num_attention_heads
            if batch * heads * length * length * 6 * config.num_hidden_layers > _EAGER_MEMORY:
                self.attention = "sdpa"
            else:
                self.attention = faster_attention(self.base.encoder.layer[0].attention.self, batch, length)
        return forms[self.attention]


def _interface(name: str) -> Any:
    """transformers' attention function registered as ``name`` (eager for an unknown name, as its models do)."""
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
    from transformers.models.bert.modeling_bert import eager_attention_forward

    return ALL_ATTENTION_FUNCTIONS.get_interface(name, eager_attention_forward)


def _forms() -> dict[str, Any]:
    """The two forms timed against each other: PyTorch's fused kernel and the eager form, transformers' own."""
    return {"sdpa": _interface("sdpa"), "eager": _interface("eager")}


def faster_attention(attention: Any, batch: int, length: int, repeats: int = 3) -> str:
    """"sdpa" or "eager": the form of ``attention``'s (a BertSelfAttention) attention that runs faster in bf16 on
    this CPU at this shape, forward and backward — each called as a layer calls it, without mask and dropout."""
    import time

    import torch

    generator = torch.Generator().manual_seed(0)
    shape = (batch, attention.num_attention_heads, length, attention.attention_head_size)
    query, key, value = (torch.randn(shape, generator=generator).bfloat16().requires_grad_() for _ in range(3))
    grad = torch.randn(shape, generator=generator).bfloat16().transpose(1, 2)  # as the context: (B, T, H, D)
    best = dict.fromkeys(_forms(), float("inf"))
    with torch.enable_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        for _ in range(repeats):  # interleaved, so a moment of load falls on both
            for name, form in _forms().items():
                began = time.perf_counter()
                context, _ = form(attention, query, key, value, None, scaling=attention.scaling, dropout=0.0)
                context.backward(grad)
                best[name] = min(best[name], time.perf_counter() - began)
    return min(best, key=best.get)


def _layer(layer: Any, hidden: Any, mask: Any, attend: Any, *, first_only: bool) -> Any:
    """A BertLayer's output (B, T, C) — or at position 0 only, (B, 1, C): its self-attention, then its feed-forward.

    The query, key and value projections of the same input run as one matrix product: under autocast the input
    is cast to bfloat16 once instead of once per projection, and the backward pass sums the three paths' input
    gradients inside one product. The same sums of the same products, in another order.
    """
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
