"""``fmhub optimize quantize --method dynamic-int8``: int8 weights, activations quantized on the fly.

Two backends:

- ``onnx`` (default): ONNX Runtime's dynamic quantization (``quantize_dynamic``, int8 weights per
  output channel where the operator supports it, uint8 activations) of the parent's ONNX graph — the
  parent's own ``model.onnx`` if it is an ONNX variant, else a fresh export (:mod:`._onnx`) with the
  transformer fusions, so attention is quantized as one operator.
- ``torch``: ``torch.ao.quantization.quantize_dynamic`` of every ``nn.Linear`` with per-channel int8
  weights, saved without pickle in the ``torch-int8`` format (:mod:`fmhub.formats.torch_int8`).

A quantized model differs from its parent by design, so its check is on decisions: argmax agreement
with the parent on real rows must reach ``--min-agreement`` (the max logit difference is recorded).
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

from fmhub.client import Hub
from fmhub.errors import InvalidInputError
from fmhub.formats.onnx import DEFAULT_OPSET, write_onnx
from fmhub.formats.torch_int8 import save_torch_int8
from fmhub.optimize._variant import Parent, VariantOutcome, check_parity, make_variant

__all__ = ["quantize", "METHODS", "BACKENDS"]

METHODS = ("dynamic-int8",)
BACKENDS = ("onnx", "torch")


def _onnx_int8(parent: Any, batch: dict[str, Any], folder: Path) -> dict[str, Any]:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    source = folder / "fp32.onnx"
    if parent.loaded.form.name == "onnx":
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
    return {"format": "onnx", "graph_optimization": graph, "weights": f"int8 per channel ({_int8_ops(folder)})",
            "activations": "uint8, quantized per batch at run time"}


def _int8_ops(folder: Path) -> str:
    """What the quantization made int8, from the graph: "6 MatMulInteger, 2 QAttention" (a CNN: ConvInteger)."""
    import collections

    import onnx

    graph = onnx.load(str(folder / "model.onnx"), load_external_data=False).graph
    counts = collections.Counter(n.op_type for n in graph.node
                                 if n.op_type.endswith("Integer") or n.op_type.startswith(("QLinear", "QAttention"))
                                 or n.op_type == "DynamicQuantizeMatMul")
    return ", ".join(f"{count} {op}" for op, count in sorted(counts.items())) or "no operator"


def quantize(model: str, output: str, *, method: str = "dynamic-int8", backend: str = "onnx",
             data: str | None = None, min_agreement: float = 0.9, max_length: int = 128, private: bool = False,
             hub: Hub | None = None, report: bool = True, eval_data: str | None = None, eval_split: str = "test",
             eval_skip: tuple[str, ...] = (), progress: Any = None) -> VariantOutcome:
    """Quantize ``model`` (REPO[@REV]) and commit the variant to ``output``; see the module docstring.

    ``report``: then push the variant's report card against its parent (:func:`fmhub.optimize._variant.report_against_parent`).
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
        if backend == "torch" and not parent.loaded.form.trainable:
            raise InvalidInputError(f"{parent.repo} is {parent.loaded.format}; the torch backend quantizes a torch "
                                    "model", hint="use --backend onnx, or quantize its torch parent")
        if backend == "onnx":
            fields = _onnx_int8(parent, batch, folder)
        else:
            fields = save_torch_int8(parent.loaded.model, folder)
            parent.loaded.config.save_pretrained(folder)
            parent.loaded.tokenizer.save_pretrained(folder)
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
