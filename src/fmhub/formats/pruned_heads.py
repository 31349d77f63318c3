"""``torch-pruned-heads``: transformers weights with fewer attention heads per layer than the config names.

transformers 5 has no config field for fewer heads than ``hidden_size / head size`` (it dropped
``pruned_heads``), so such a variant is a plain ``model.safetensors`` with narrower attention matrices. To
load, the architecture is built from ``config.json``, each layer narrowed to the heads its saved query matrix
holds, then the weights are loaded (all of them, or an input error). BERT-family encoders (query, key, value
and output.dense layers in ``<base>.encoder.layer``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fmhub.errors import InvalidInputError
from fmhub.formats.torch import TorchModule

__all__ = ["PrunedHeads", "load_pruned_heads", "encoder_layers", "attention_of", "keep_heads", "heads_of", "linear"]


class PrunedHeads(TorchModule):
    name = "torch-pruned-heads"
    library = "fmhub"
    description = "a head-pruned"
    exportable = True  # float weights: the ONNX export starts from it (told the narrower attention)

    def load(self, folder: Path, config: Any, head: Any, threads: int | None) -> tuple[Any, int]:
        return load_pruned_heads(folder, config, head), self._threads()

    def attention_heads(self, model: Any) -> int | None:
        return heads_of(model)


def encoder_layers(model: Any) -> list[Any]:
    """The transformer blocks of a BERT-family model (``<base>.encoder.layer``)."""
    base = getattr(model, model.base_model_prefix, model)
    layers = getattr(getattr(base, "encoder", None), "layer", None)
    if layers is None:
        raise InvalidInputError(f"structured pruning supports BERT-family encoders (bert, roberta, electra…), not "
                                f"{model.config.model_type}", hint="use unstructured pruning (no --structured)")
    return list(layers)


def attention_of(layer: Any, model_type: str) -> tuple[Any, Any]:
    """A layer's self-attention (with ``query``/``key``/``value``) and its output projection's holder."""
    from torch.nn import Linear

    attention = getattr(layer, "attention", None)
    inner, output = getattr(attention, "self", None), getattr(attention, "output", None)
    if not all(isinstance(getattr(inner, n, None), Linear) for n in ("query", "key", "value")) \
            or not isinstance(getattr(output, "dense", None), Linear):
        raise InvalidInputError(f"head pruning supports BERT-family encoders whose attention has query, key, value "
                                f"and output.dense layers (bert, roberta, electra…), not {model_type}",
                                hint="use --structured neurons, or unstructured pruning")
    return inner, output


def linear(weight: Any, bias: Any) -> Any:
    """A new ``nn.Linear`` holding copies of ``weight`` (out, in) and ``bias`` (None: no bias)."""
    import torch

    layer = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None)
    with torch.no_grad():
        layer.weight.copy_(weight)
        if bias is not None:
            layer.bias.copy_(bias)
    return layer


def keep_heads(layer: Any, kept: list[int], head_size: int, model_type: str) -> None:
    """Narrow one layer's attention to the heads ``kept`` (in place)."""
    import torch

    inner, output = attention_of(layer, model_type)
    rows = torch.cat([torch.arange(h * head_size, (h + 1) * head_size) for h in kept])
    for name in ("query", "key", "value"):
        layer_linear = getattr(inner, name)
        setattr(inner, name, linear(layer_linear.weight[rows],
                                    None if layer_linear.bias is None else layer_linear.bias[rows]))
    output.dense = linear(output.dense.weight[:, rows], output.dense.bias)
    inner.num_attention_heads, inner.all_head_size = len(kept), len(kept) * head_size


def heads_of(model: Any) -> int:
    """Attention heads per layer of a (possibly head-pruned) BERT-family model."""
    inner, _ = attention_of(encoder_layers(model)[0], model.config.model_type)
    return int(inner.query.out_features // (model.config.hidden_size // model.config.num_attention_heads))


def load_pruned_heads(folder: Path, config: Any, head: Any) -> Any:
    """Rebuild a ``torch-pruned-heads`` variant: the architecture, each layer narrowed to the heads its saved
    query matrix holds, then the saved weights (all of them, or an input error)."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    model = head.from_config(config).eval()
    head_size = config.hidden_size // config.num_attention_heads
    names = {id(module): name for name, module in model.named_modules()}
    with safe_open(str(folder / "model.safetensors"), "pt") as f:
        shapes = {key: f.get_slice(key).get_shape() for key in f.keys()}
    for layer in encoder_layers(model):
        inner, _ = attention_of(layer, config.model_type)
        rows = shapes.get(f"{names[id(inner.query)]}.weight", [0])[0]
        if not rows or rows % head_size:
            raise InvalidInputError(f"{folder}: no whole attention heads in {names[id(inner.query)]}",
                                    hint="the variant is damaged; prune its parent again")
        keep_heads(layer, list(range(rows // head_size)), head_size, config.model_type)
    result = model.load_state_dict(load_file(str(folder / "model.safetensors")), strict=False)
    tied = set(getattr(model, "all_tied_weights_keys", None) or getattr(model, "_tied_weights_keys", None) or ())
    missing = [k for k in result.missing_keys if k not in tied]
    unexpected = result.unexpected_keys
    if missing or unexpected:
        raise InvalidInputError(f"{folder}: saved weights do not fit the architecture (missing "
                                f"{', '.join(missing[:3]) or 'none'}; unexpected {', '.join(unexpected[:3]) or 'none'})",
                                hint="the variant is damaged; prune its parent again")
    if tied:
        model.tie_weights()
    return model.eval()
