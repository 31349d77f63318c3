"""``fmhub optimize quantize --method dynamic-int8``: int8 weights, activations quantized on the fly.

Two backends:

- ``onnx`` (default): ONNX Runtime's dynamic quantization (``quantize_dynamic``, int8 weights per
  output channel where the operator supports it, uint8 activations) of the parent's ONNX graph — the
  parent's own ``model.onnx`` if it is an ONNX variant, else a fresh export (:mod:`._onnx`) with the
  transformer fusions, so attention is quantized as one operator.
- ``torch``: ``torch.ao.quantization.quantize_dynamic`` of every ``nn.Linear`` with per-channel int8
  weights. It is saved without pickle: ``model.safetensors`` holds each quantized layer's int8 weight
  (``<layer>.weight_int8``), its per-channel scales and zero points (``.weight_scale``,
  ``.weight_zero_point``) and float bias, beside the float parameters of every other layer. To reload,
  :func:`load_torch_int8` builds the float architecture from ``config.json``, quantizes it the same way
  and sets each layer's weights from those tensors (``fmhub.load`` does this for ``format: torch-int8``).

A quantized model differs from its parent by design, so its check is on decisions: argmax agreement
with the parent on real rows must reach ``--min-agreement`` (the max logit difference is recorded).
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fmhub.errors import InvalidInputError
from fmhub.optimize._variant import Parent, VariantOutcome, check_parity, make_variant

__all__ = ["quantize", "load_torch_int8", "METHODS", "BACKENDS"]

METHODS = ("dynamic-int8",)
BACKENDS = ("onnx", "torch")


def _onnx_int8(parent: Any, batch: dict[str, Any], folder: Path) -> dict[str, Any]:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from fmhub.optimize._onnx import DEFAULT_OPSET, write_onnx

    source = folder / "fp32.onnx"
    if parent.loaded.format == "onnx":
        shutil.copyfile(parent.loaded.folder / "model.onnx", source)
        parent.loaded.config.save_pretrained(folder)
        parent.loaded.tokenizer.save_pretrained(folder)
        graph = parent.loaded.variant.get("graph_optimization", "as the parent")
    else:
        graph = write_onnx(parent.loaded, batch, folder, DEFAULT_OPSET, optimize=True)["graph_optimization"]
        (folder / "model.onnx").replace(source)
    # Fused operators (com.microsoft Attention, SkipLayerNormalization) defeat ONNX shape inference: float it is.
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # quantize_dynamic logs advice to the root logger on every call
    try:
        quantize_dynamic(str(source), str(folder / "model.onnx"), weight_type=QuantType.QInt8, per_channel=True,
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    finally:
        root.setLevel(level)
    source.unlink()
    return {"format": "onnx", "graph_optimization": graph, "weights": "int8 per channel (MatMul, Attention)",
            "activations": "uint8, quantized per batch at run time"}


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


def _torch_int8(parent: Any, folder: Path) -> dict[str, Any]:
    import copy

    import torch
    from safetensors.torch import save_file
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

    quantized = _quantized_linears(copy.deepcopy(parent.loaded.model).eval())
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
    for key, value in parent.loaded.model.state_dict().items():
        if not key.startswith(quantized_prefixes) and isinstance(value, torch.Tensor):
            tensors.setdefault(key, value.detach().contiguous())
    save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt", "fmhub": "torch-int8"})
    parent.loaded.config.save_pretrained(folder)
    parent.loaded.tokenizer.save_pretrained(folder)
    return {"format": "torch-int8", "weights": f"int8 per channel in {len(layers)} Linear layers",
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


def quantize(model: str, output: str, *, method: str = "dynamic-int8", backend: str = "onnx",
             data: str | None = None, min_agreement: float = 0.9, max_length: int = 128, private: bool = False,
             hub: Any = None, report: bool = True, eval_data: str | None = None, eval_split: str = "test",
             eval_skip: tuple[str, ...] = (), progress: Any = None) -> VariantOutcome:
    """Quantize ``model`` (REPO[@REV]) and commit the variant to ``output``; see the module docstring.

    ``report``: then push the variant's report card against its parent (:mod:`fmhub.optimize._compare`).
    """
    if method not in METHODS:
        raise InvalidInputError(f"unknown --method {method!r}", hint=f"choose from {', '.join(METHODS)}")
    if backend not in BACKENDS:
        raise InvalidInputError(f"unknown --backend {backend!r}", hint=f"choose from {', '.join(BACKENDS)}")
    if not 0 <= min_agreement <= 1:
        raise InvalidInputError(f"--min-agreement {min_agreement} must be in [0, 1]")

    def build(parent: Parent, batch: dict[str, Any], folder: Path) -> dict[str, Any]:
        if parent.loaded.variant.get("quantized"):
            raise InvalidInputError(f"{parent.repo} is already quantized ({parent.loaded.variant.get('method')})",
                                    hint=f"quantize its parent {parent.loaded.variant.get('parent', '')} instead")
        if backend == "torch" and parent.loaded.format != "torch":
            raise InvalidInputError(f"{parent.repo} is {parent.loaded.format}; the torch backend quantizes a torch "
                                    "model", hint="use --backend onnx, or quantize its torch parent")
        fields = _onnx_int8(parent, batch, folder) if backend == "onnx" else _torch_int8(parent, folder)
        return {**fields, "method": "quantize", "quantized": method, "backend": backend,
                "description": f"{method} ({backend})"}

    def check(parent: Parent, variant: Any, batch: dict[str, Any]) -> dict[str, Any]:
        return check_parity(f"the {backend} int8 quantization of {parent.repo}", parent.loaded, variant, batch,
                            tolerance=None, min_agreement=min_agreement)

    return make_variant(model, output, build=build, check=check, title=f"Quantize {{parent}} ({method}, {backend})",
                        args={"method": "quantize", "quantization": method, "backend": backend,
                              "min_agreement": min_agreement},
                        data=data, max_length=max_length, private=private, hub=hub, report=report,
                        eval_data=eval_data, eval_split=eval_split, eval_skip=eval_skip, progress=progress)
