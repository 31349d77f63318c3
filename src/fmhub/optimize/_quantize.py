"""``fmhub optimize quantize``: int8 weights; activations quantized on the fly (``dynamic-int8``) or with ranges
calibrated on real rows (``static-int8``).

``dynamic-int8`` suits transformers (their MatMuls and fused attention); ``static-int8`` suits convolutional models:
ONNX Runtime's dynamic ``ConvInteger`` quantizes every activation at run time and was 5× slower than the fp32 graph
on the digits ResNet, where the calibrated ``QLinearConv`` graph is faster than fp32 (``bench/images_bench.py``).
``static-int8`` is ONNX Runtime's ``quantize_static`` in the QDQ format (int8 weights per channel, uint8
activations, MinMax ranges) calibrated on ``--calibration-rows`` rows of the training split of ``--data``
(default: the parent's training dataset), after ONNX Runtime's shape inference pre-processing.

Two backends for ``dynamic-int8``:

- ``onnx`` (default): ONNX Runtime's dynamic quantization (``quantize_dynamic``, int8 weights per
  output channel where the operator supports it — ``per_channel=False``: one scale per weight tensor —, uint8
  activations) of the parent's ONNX graph — the parent's own ``model.onnx`` if it is an ONNX variant, else a
  fresh export (:mod:`._onnx`) with the transformer fusions, so attention is quantized as one operator.
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
from fmhub.data import load as load_dataset
from fmhub.errors import InvalidInputError
from fmhub.formats.onnx import DEFAULT_OPSET, write_onnx
from fmhub.refs import split_ref
from fmhub.formats.torch_int8 import save_torch_int8
from fmhub.explain import ExplainOptions
from fmhub.optimize._variant import Parent, VariantOutcome, check_parity, make_variant

__all__ = ["quantize", "METHODS", "BACKENDS"]

METHODS = ("dynamic-int8", "static-int8")
BACKENDS = ("onnx", "torch")


def _onnx_int8(parent: Any, batch: dict[str, Any], folder: Path, calibration: list[dict[str, Any]] | None = None,
               per_channel: bool = True) -> dict[str, Any]:
    """The parent's ONNX graph quantized into ``folder/model.onnx``: dynamically, or (``calibration``: batches of
    real model inputs) statically."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    source = folder / "fp32.onnx"
    if parent.loaded.form.name == "onnx":
        shutil.copyfile(parent.loaded.folder / "model.onnx", source)
        parent.loaded.config.save_pretrained(folder)
        parent.loaded.preprocessor.save_pretrained(folder)
        graph = parent.loaded.variant.get("graph_optimization", "as the parent")
    else:
        graph = write_onnx(parent.loaded, batch, folder, DEFAULT_OPSET, optimize=True)["graph_optimization"]
        (folder / "model.onnx").replace(source)
    # Fused operators (com.microsoft Attention, SkipLayerNormalization) defeat ONNX shape inference: float it is.
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantizers log advice to the root logger on every call
    try:
        if calibration is None:
            quantize_dynamic(str(source), str(folder / "model.onnx"), weight_type=QuantType.QInt8,
                             per_channel=per_channel,
                             extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
            activations = "uint8, quantized per batch at run time"
        else:
            _static(source, folder, calibration, per_channel)
            activations = f"uint8, ranges calibrated (MinMax) on {sum(len(next(iter(b.values()))) for b in calibration)}" \
                          " training rows"
    finally:
        root.setLevel(level)
        for leftover in (source, folder / "prepared.onnx"):
            leftover.unlink(missing_ok=True)
    return {"format": "onnx", "graph_optimization": graph,
            "weights": f"int8 per {'channel' if per_channel else 'tensor'} ({_int8_ops(folder)})",
            "activations": activations}


def _static(source: Path, folder: Path, calibration: list[dict[str, Any]], per_channel: bool = True) -> None:
    """ONNX Runtime's static quantization (QDQ, int8 weights per channel, uint8 activations) of ``source``."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter(calibration)

        def get_next(self) -> dict[str, Any] | None:
            return next(self.batches, None)

    prepared = folder / "prepared.onnx"
    try:
        # auto_merge: symbolic dims that meet (a transformer's sequence length through reshapes) are merged instead
        # of failing the inference, which also wrote its partial graph into the working directory
        quant_pre_process(str(source), str(prepared), auto_merge=True)
        quantize_static(str(prepared), str(folder / "model.onnx"), Reader(), quant_format=QuantFormat.QDQ,
                        per_channel=per_channel, weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8)
    except Exception as exc:  # ONNX Runtime's tools raise bare exceptions on graphs they cannot calibrate
        raise InvalidInputError(f"static int8 quantization failed on this graph: {type(exc).__name__}: {exc}",
                                hint="use --method dynamic-int8 (transformers quantize best dynamically)") from None


def _calibration(parent: Parent, data: str | None, rows: int) -> list[dict[str, Any]]:
    """Batches of model inputs from the first ``rows`` rows of the training split of ``data`` (default: the dataset
    the parent was trained on)."""
    data = data or parent.training_data("--data")
    repo, revision = split_ref(data, "--data")
    dataset = load_dataset(repo, revision=revision, hub=parent.hub)
    split = next((s for s in ("train", "validation", "test") if s in dataset), next(iter(dataset)))
    chosen = dataset[split].select(range(min(rows, len(dataset[split]))))
    if len(chosen) == 0:
        raise InvalidInputError(f"{data} has no rows to calibrate on", hint="pass another --data")
    task = parent.loaded.task
    column = task.input_column if task.input_column in chosen.features else next(iter(chosen.features))
    values = task.read_inputs(chosen, column)
    return [task.encode_batch(parent.loaded.preprocessor, values[i:i + 16], 128) for i in range(0, len(values), 16)]


def _int8_ops(folder: Path) -> str:
    """What the quantization made int8, from the graph: "6 MatMulInteger, 2 QAttention" (dynamic), or "9 Conv,
    1 Gemm (QDQ)" (static: operators whose weights are dequantized int8, which ONNX Runtime runs as int8 kernels)."""
    import collections

    import onnx

    graph = onnx.load(str(folder / "model.onnx"), load_external_data=False).graph
    weights = {t.name for t in graph.initializer}
    dequantized = {out for n in graph.node if n.op_type == "DequantizeLinear" and n.input[0] in weights
                   for out in n.output}  # int8 weights (not the activations' round trips)
    counts = collections.Counter(n.op_type for n in graph.node
                                 if n.op_type.endswith("Integer") or n.op_type.startswith(("QLinear", "QAttention"))
                                 or n.op_type == "DynamicQuantizeMatMul")
    qdq = collections.Counter(n.op_type for n in graph.node if n.op_type not in ("QuantizeLinear", "DequantizeLinear")
                              and any(i in dequantized for i in n.input))
    shown = [f"{count} {op}" for op, count in sorted(counts.items())]
    if qdq:
        shown.append(", ".join(f"{count} {op}" for op, count in sorted(qdq.items())) + " (QDQ)")
    return ", ".join(shown) or "no operator"


def quantize(model: str, output: str, *, method: str = "dynamic-int8", backend: str = "onnx",
             data: str | None = None, min_agreement: float = 0.9, max_length: int = 128, private: bool = False,
             hub: Hub | None = None, report: bool = True, eval_data: str | None = None, eval_split: str = "test",
             eval_skip: tuple[str, ...] = (), explain: ExplainOptions | None = None,
             progress: Any = None, calibration_rows: int = 128,
             per_channel: bool = True) -> VariantOutcome:
    """Quantize ``model`` (REPO[@REV]) and commit the variant to ``output``; see the module docstring.

    ``report``: then push the variant's report card against its parent (:func:`fmhub.optimize._variant.report_against_parent`).
    """
    if method not in METHODS:
        raise InvalidInputError(f"unknown --method {method!r}", hint=f"choose from {', '.join(METHODS)}")
    if backend not in BACKENDS:
        raise InvalidInputError(f"unknown --backend {backend!r}", hint=f"choose from {', '.join(BACKENDS)}")
    if not 0 <= min_agreement <= 1:
        raise InvalidInputError(f"--min-agreement {min_agreement} must be in [0, 1]")
    if method == "static-int8" and backend != "onnx":
        raise InvalidInputError("--method static-int8 quantizes ONNX graphs", hint="pass --backend onnx")

    def build(parent: Parent, batch: dict[str, Any], folder: Path) -> dict[str, Any]:
        if parent.loaded.variant.get("quantized"):
            raise InvalidInputError(f"{parent.repo} is already quantized ({parent.loaded.variant.get('method')})",
                                    hint=f"quantize its parent {parent.loaded.variant.get('parent', '')} instead")
        if backend == "torch" and not parent.loaded.form.trainable:
            raise InvalidInputError(f"{parent.repo} is {parent.loaded.format}; the torch backend quantizes a torch "
                                    "model", hint="use --backend onnx, or quantize its torch parent")
        if backend == "onnx":
            calibration = _calibration(parent, data, calibration_rows) if method == "static-int8" else None
            fields = _onnx_int8(parent, batch, folder, calibration, per_channel)
        else:
            fields = save_torch_int8(parent.loaded.model, folder)
            parent.loaded.config.save_pretrained(folder)
            parent.loaded.preprocessor.save_pretrained(folder)
        return {**fields, "method": "quantize", "quantized": method, "backend": backend,
                "description": f"{method} ({backend})"}

    def check(parent: Parent, variant: Any, batch: dict[str, Any]) -> dict[str, Any]:
        return check_parity(f"the {backend} int8 quantization of {parent.repo}", parent.loaded, variant, batch,
                            tolerance=None, min_agreement=min_agreement)

    return make_variant(model, output, build=build, check=check, title=f"Quantize {{parent}} ({method}, {backend})",
                        args={"method": "quantize", "quantization": method, "backend": backend,
                              "min_agreement": min_agreement, "calibration_rows": calibration_rows,
                              "per_channel": per_channel},
                        data=data, max_length=max_length, private=private, hub=hub, report=report,
                        eval_data=eval_data, eval_split=eval_split, eval_skip=eval_skip, explain=explain,
                        progress=progress)
