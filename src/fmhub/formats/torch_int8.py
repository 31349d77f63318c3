"""``torch-int8``: PyTorch dynamic int8 ``Linear`` layers, saved without pickle.

``torch.ao.quantization.quantize_dynamic`` of every ``nn.Linear`` with per-channel int8 weights. The variant's
``model.safetensors`` holds each quantized layer's int8 weight (``<layer>.weight_int8``), its per-channel scales
and zero points (``.weight_scale``, ``.weight_zero_point``) and float bias, beside the float parameters of every
other layer. To load, the float architecture is built from ``config.json``, quantized the same way, and each
layer's weights set from those tensors.
"""

from __future__ import annotations

import contextlib
import copy
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from fmhub.errors import InvalidInputError
from fmhub.formats._base import LoadedModel
from fmhub.formats.torch import TorchModule

__all__ = ["TorchInt8", "save_torch_int8", "load_torch_int8"]


class TorchInt8(TorchModule):
    name = "torch-int8"
    library = "fmhub"
    description = "a PyTorch int8"
    # Quantized Linear kernels have no backward pass: no gradients (integrated gradients), attentions remain.
    capabilities = frozenset({"logits", "hidden_states", "generate", "attentions"})

    def load(self, folder: Path, config: Any, head: Any, threads: int | None) -> tuple[Any, int]:
        return load_torch_int8(folder, config, head), self._threads()

    def parameters(self, loaded: LoadedModel) -> int:
        from safetensors import safe_open

        with safe_open(str(loaded.folder / "model.safetensors"), "np") as f:
            return int(sum(int(np.prod(f.get_slice(k).get_shape())) for k in f.keys()
                           if not k.endswith(("weight_scale", "weight_zero_point"))))


def _quantized_linears(model: Any) -> Any:
    import torch

    with _quiet_deprecations():
        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

        return quantize_dynamic(model, {torch.nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8)


@contextlib.contextmanager
def _quiet_deprecations() -> Iterator[None]:
    """torch.ao.quantization still works in this torch but warns on every call that torchao replaces it."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*torch\.ao\.quantization is deprecated",
                                category=DeprecationWarning)
        warnings.filterwarnings("ignore", message=r".*quantized tensor creation functions", category=UserWarning)
        yield


def save_torch_int8(model: Any, folder: Path) -> dict[str, Any]:
    """Quantize a copy of the float torch ``model`` and write its ``model.safetensors`` to ``folder``; return the
    variant fields (``format``, what was quantized)."""
    import torch
    from safetensors.torch import save_file
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

    quantized = _quantized_linears(copy.deepcopy(model).eval())
    tensors: dict[str, Any] = {}
    layers = []
    for name, module in quantized.named_modules():
        if isinstance(module, DynamicLinear):
            weight, bias = module._packed_params._weight_bias()
            tensors[f"{name}.weight_int8"] = weight.int_repr().contiguous()
            tensors[f"{name}.weight_scale"] = weight.q_per_channel_scales().to(torch.float32).contiguous()
            tensors[f"{name}.weight_zero_point"] = weight.q_per_channel_zero_points().to(torch.int64).contiguous()
            if bias is not None:
                tensors[f"{name}.bias"] = bias.detach().contiguous()
            layers.append(name)
    quantized_prefixes = tuple(f"{name}." for name in layers)
    for key, value in model.state_dict().items():
        if not key.startswith(quantized_prefixes) and isinstance(value, torch.Tensor):
            tensors.setdefault(key, value.detach().contiguous())
    save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt", "fmhub": "torch-int8"})
    return {"format": TorchInt8.name, "weights": f"int8 per channel in {len(layers)} Linear layers",
            "activations": "quantized per batch at run time", "layers": len(layers)}


def load_torch_int8(folder: Path, config: Any, head: Any) -> Any:
    """Rebuild a ``torch-int8`` variant: float architecture → dynamic quantization → the saved int8 weights."""
    import torch
    from safetensors.torch import load_file
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

    tensors = load_file(str(folder / "model.safetensors"))
    int8 = ("weight_int8", "weight_scale", "weight_zero_point")
    floats = {k: v for k, v in tensors.items() if not k.endswith(int8)}
    model = head.from_config(config).eval()
    unexpected = model.load_state_dict(floats, strict=False).unexpected_keys  # the Linear layers come next
    if unexpected:
        raise InvalidInputError(f"{folder}: weights the architecture does not have: {', '.join(unexpected[:5])}",
                                hint="the variant is damaged; quantize its parent again")
    model = _quantized_linears(model)
    missing = []
    for name, module in model.named_modules():
        if isinstance(module, DynamicLinear):
            try:
                with _quiet_deprecations():
                    weight = torch._make_per_channel_quantized_tensor(
                        tensors[f"{name}.weight_int8"], tensors[f"{name}.weight_scale"].double(),
                        tensors[f"{name}.weight_zero_point"], 0)
            except KeyError:
                missing.append(name)
                continue
            module.set_weight_bias(weight, tensors.get(f"{name}.bias"))
    if missing:
        raise InvalidInputError(f"{folder}: no int8 weights for {', '.join(missing[:5])}",
                                hint="the variant is damaged; quantize its parent again")
    return model.eval()
