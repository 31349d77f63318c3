"""``fmhub optimize export-onnx``: a transformers model as ONNX, graph-optimized, checked against its parent.

The model is traced by ``torch.onnx.export`` (the TorchScript exporter; opset ≥ 17) with dynamic batch
and sequence axes and inputs ``input_ids`` and ``attention_mask``, output ``logits``. ONNX Runtime's
transformer optimizer then fuses attention, embeddings + layer norm and bias + GELU for the BERT and GPT-2
families (other architectures get ONNX Runtime's portable basic pass). The result must match the parent on
real rows (:func:`check_parity`) or nothing is pushed.

Two choices make the CPU graph fast (``bench/optimize_bench.py``):

- BERT-family models are traced with transformers' eager attention: the optimizer fuses its pattern
  (scores + additive mask, softmax) into one ``Attention`` node, which int8 quantization turns into
  ``QAttention``; the SDPA trace's masking (``IsNaN`` + ``Where`` on every score) is not fused and took
  29% of the int8 BBC model's time.
- Residual adds stay ``Add`` + ``LayerNormalization``: ONNX Runtime's CPU ``SkipLayerNormalization``
  kernel is a scalar loop, 3.5× slower there than the two standard kernels. The optimizer is told not to fuse
  them, and :func:`fmhub.loading.load_folder` tells the session not to either (``ORT_DISABLED_OPTIMIZERS``).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fmhub.errors import InvalidInputError
from fmhub.loading import EXPORTABLE_FORMATS, LoadedModel
from fmhub.optimize._variant import Parent, VariantOutcome, check_parity, make_variant

__all__ = ["export_onnx", "write_onnx", "DEFAULT_OPSET", "MIN_OPSET"]

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


def _export(model: Any, batch: dict[str, Any], path: Path, opset: int, per_token: bool) -> None:
    import torch

    axes = {"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"},
            "logits": {0: "batch", 1: "sequence"} if per_token else {0: "batch"}}
    sample = {k: torch.from_numpy(v[:2]) for k, v in batch.items()}
    model.eval()
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad(), _tracing(model):
        warnings.simplefilter("ignore")  # tracer notes about Python control flow on shapes
        torch.onnx.export(model, (), str(path), kwargs=sample, input_names=["input_ids", "attention_mask"],
                          output_names=["logits"], dynamic_axes=axes, opset_version=opset, dynamo=False,
                          do_constant_folding=True)


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
    """Write ``model.onnx``, config and tokenizer files of a loaded torch model to ``folder``; return the variant
    fields. ``batch`` (padded ``input_ids`` and ``attention_mask`` arrays) is what the export traces."""
    if loaded.format not in EXPORTABLE_FORMATS:
        raise InvalidInputError(f"{loaded.repo} is already {loaded.format}; export-onnx converts a torch model",
                                hint="export its parent, or use it as it is")
    per_token = loaded.task != "text-classification"
    _export(loaded.model, batch, folder / "model.onnx", opset, per_token)
    heads = None
    if loaded.format == "torch-pruned-heads":  # the fusions must know the narrower attention
        from fmhub.optimize._prune import heads_of

        heads = heads_of(loaded.model)
    optimization = _optimize(folder / "model.onnx", loaded.config, heads) if optimize else "none"
    loaded.config.save_pretrained(folder)
    loaded.tokenizer.save_pretrained(folder)
    return {"format": "onnx", "opset": opset, "graph_optimization": optimization}


def export_onnx(model: str, output: str, *, data: str | None = None, opset: int = DEFAULT_OPSET,
                tolerance: float = 1e-3, optimize: bool = True, max_length: int = 128, private: bool = False,
                hub: Any = None, report: bool = True, eval_data: str | None = None, eval_split: str = "test",
                eval_skip: tuple[str, ...] = (), progress: Any = None) -> VariantOutcome:
    """Export ``model`` (REPO[@REV]) to ONNX and commit it to ``output``; see the module docstring.

    ``report``: then push the variant's report card against its parent (:mod:`fmhub.optimize._compare`).
    """
    if opset < MIN_OPSET:
        raise InvalidInputError(f"--opset {opset} is below {MIN_OPSET}", hint=f"use --opset {MIN_OPSET} or more")
    if not tolerance > 0:
        raise InvalidInputError(f"--tolerance {tolerance} must be positive")

    def build(parent: Parent, batch: dict[str, Any], folder: Path) -> dict[str, Any]:
        return {**write_onnx(parent.loaded, batch, folder, opset, optimize), "method": "export-onnx",
                "description": "an ONNX graph (fp32)"}

    def check(parent: Parent, variant: Any, batch: dict[str, Any]) -> dict[str, Any]:
        return check_parity(f"the ONNX export of {parent.repo}", parent.loaded, variant, batch, tolerance)

    return make_variant(model, output, build=build, check=check, title="Export {parent} to ONNX",
                        args={"method": "export-onnx", "opset": opset, "tolerance": tolerance, "optimize": optimize},
                        data=data, max_length=max_length, private=private, hub=hub, report=report,
                        eval_data=eval_data, eval_split=eval_split, eval_skip=eval_skip, progress=progress)
