"""``onnx``: an ONNX graph (``model.onnx``, fp32, or int8 after dynamic quantization), run by an ONNX Runtime
``InferenceSession`` on the CPU; and how a torch model is exported to it.

The export traces the model with ``torch.onnx.export`` (the TorchScript exporter; opset ≥ 17) on the inputs its
task names with their dynamic axes (``input_ids`` and ``attention_mask``, batch and sequence; an image model's
``pixel_values``, batch), output ``logits``. ONNX Runtime's
transformer optimizer then fuses attention, embeddings + layer norm and bias + GELU for the BERT and GPT-2
families (other architectures get ONNX Runtime's portable basic pass).

Two choices make the CPU graph fast (``bench/optimize_bench.py``):

- BERT-family models are traced with transformers' eager attention: the optimizer fuses its pattern
  (scores + additive mask, softmax) into one ``Attention`` node, which int8 quantization turns into
  ``QAttention``; the SDPA trace's masking (``IsNaN`` + ``Where`` on every score) is not fused and took
  29% of the int8 BBC model's time.
- Residual adds stay ``Add`` + ``LayerNormalization``: ONNX Runtime's CPU ``SkipLayerNormalization``
  kernel is a scalar loop, 3.5× slower there than the two standard kernels. The optimizer is told not to fuse
  them, and every session here is told not to either (:data:`ORT_DISABLED_OPTIMIZERS`).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from fmhub.errors import InvalidInputError
from fmhub.formats._base import LoadedModel, ModelFormat

__all__ = ["OnnxGraph", "write_onnx", "session", "DEFAULT_OPSET", "MIN_OPSET", "EXPORT_RECIPE",
           "ORT_DISABLED_OPTIMIZERS"]

#: ONNX Runtime graph transformers every fmhub session leaves out: its CPU SkipLayerNormalization kernel is
#: slower than the Add and LayerNormalization it would replace (see the module docstring).
ORT_DISABLED_OPTIMIZERS = ("SkipLayerNormFusion",)
DEFAULT_OPSET = 17
MIN_OPSET = 17
#: Bumped whenever the export writes a different graph for the same model (2: eager attention, residual layer
#: norms unfused); ``fmhub serve`` keys the exports it caches on it, so an upgrade does not serve a stale graph.
EXPORT_RECIPE = 2
#: config.model_type → ONNX Runtime transformer-optimizer model type (fusions for that family)
_FUSIONS = {"bert": "bert", "roberta": "bert", "xlm-roberta": "bert", "distilbert": "bert", "electra": "bert",
            "camembert": "bert", "gpt2": "gpt2"}


@contextmanager
def _tracing(model: Any) -> Iterator[None]:
    """The model as it is traced, then as it was: BERT-family attention eager (see the module docstring), and
    no key/value cache returned (GPT-2's default output, which the tracer cannot take)."""
    config = model.config
    attention, cache = config._attn_implementation, getattr(config, "use_cache", None)
    eager = _FUSIONS.get(config.model_type) == "bert" and attention != "eager"
    if eager:
        model.set_attn_implementation("eager")
    if cache:
        config.use_cache = False
    try:
        yield
    finally:
        if eager:
            model.set_attn_implementation(attention)
        if cache:
            config.use_cache = cache


def _export(model: Any, batch: dict[str, Any], path: Path, opset: int, task: Any) -> None:
    """Trace ``model`` on ``batch`` into ``path``: the inputs the task names (with their dynamic axes), ``logits``."""
    import torch

    inputs = task.input_axes()
    axes = {**inputs, "logits": {0: "batch", 1: "sequence"} if task.per_token else {0: "batch"}}
    sample = {k: torch.from_numpy(batch[k][:2]) for k in inputs}
    model.eval()
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad(), _tracing(model):
        warnings.simplefilter("ignore")  # tracer notes about Python control flow on shapes
        torch.onnx.export(model, (), str(path), kwargs=sample, input_names=list(inputs), output_names=["logits"],
                          dynamic_axes=axes, opset_version=opset, dynamo=False, do_constant_folding=True)


def _optimize(path: Path, config: Any, heads: int | None = None) -> str:
    """Fuse in place; return what was done (recorded in the card). ``heads``: per layer, when pruned."""
    import onnxruntime as ort

    family = _FUSIONS.get(config.model_type)
    if family is not None:
        from onnxruntime.transformers.fusion_options import FusionOptions
        from onnxruntime.transformers.optimizer import optimize_model

        heads = heads or getattr(config, "num_attention_heads", None) or getattr(config, "n_head", 0)
        hidden = getattr(config, "hidden_size", None) or getattr(config, "n_embd", 0)
        fusions = FusionOptions(family)
        fusions.enable_skip_layer_norm = False  # slower on the CPU than Add + LayerNormalization
        optimized = optimize_model(str(path), model_type=family, num_heads=heads, hidden_size=hidden, opt_level=1,
                                   use_gpu=False, optimization_options=fusions)
        optimized.save_model_to_file(str(path))
        return f"onnxruntime transformer optimizer ({family} fusions, residual layer norms unfused)"
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.optimized_model_filepath = str(path.with_suffix(".opt.onnx"))
    ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    path.with_suffix(".opt.onnx").replace(path)
    return "onnxruntime basic graph optimization"


def write_onnx(loaded: LoadedModel, batch: dict[str, Any], folder: Path, opset: int, optimize: bool
               ) -> dict[str, Any]:
    """Write ``model.onnx``, config and preprocessor files of a loaded torch model to ``folder``; return the variant
    fields. ``batch`` (the model inputs the task names: padded ``input_ids`` and ``attention_mask``, or
    ``pixel_values``...) is what the export traces."""
    if not loaded.form.exportable:
        raise InvalidInputError(f"{loaded.repo} is already {loaded.format}; export-onnx converts a torch model",
                                hint="export its parent, or use it as it is")
    _export(loaded.model, batch, folder / "model.onnx", opset, loaded.task)
    heads = loaded.form.attention_heads(loaded.model)  # the fusions must know a narrower attention
    optimization = _optimize(folder / "model.onnx", loaded.config, heads) if optimize else "none"
    loaded.config.save_pretrained(folder)
    loaded.tokenizer.save_pretrained(folder)
    return {"format": "onnx", "opset": opset, "graph_optimization": optimization}


def session(path: Path, threads: int) -> Any:
    """An ONNX Runtime CPU session of ``path`` with all graph optimizations but :data:`ORT_DISABLED_OPTIMIZERS`."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"],
                                disabled_optimizers=list(ORT_DISABLED_OPTIMIZERS))


class OnnxGraph(ModelFormat):
    name = "onnx"
    library = "onnx"
    description = "an ONNX"

    def load(self, folder: Path, config: Any, head: Any, threads: int | None) -> tuple[Any, int]:
        if not (folder / "model.onnx").is_file():
            raise InvalidInputError(f"{folder} declares an ONNX model but holds no model.onnx")
        used = threads or max(1, len(os.sched_getaffinity(0)))
        return session(folder / "model.onnx", used), used

    def logits(self, model: Any, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        names = {i.name for i in model.get_inputs()}
        feed = {k: np.asarray(v, dtype=np.int64) if np.issubdtype(np.asarray(v).dtype, np.integer) else
                np.asarray(v, dtype=np.float32) for k, v in inputs.items() if k in names}
        if "token_type_ids" in names and "token_type_ids" not in feed and "input_ids" in feed:
            feed["token_type_ids"] = np.zeros_like(feed["input_ids"])
        return model.run(["logits"], feed)[0]

    def parameters(self, loaded: LoadedModel) -> int:
        import onnx

        graph = onnx.load(str(loaded.folder / "model.onnx"), load_external_data=False).graph
        return int(sum(int(np.prod(t.dims)) for t in graph.initializer
                       if not t.name.endswith(("_scale", "_zero_point"))))
