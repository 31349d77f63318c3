"""``fmhub.load``: any model version, in whatever form its card declares, behind one forward function.

A model repo holds one of these forms, named in its card's ``fmhub.variant.format`` (no entry: torch):

- ``torch``: transformers weights (``model.safetensors``) — loaded with ``AutoModelFor<task>``;
- ``onnx``: ``model.onnx`` (fp32, or int8 after dynamic quantization) — an onnxruntime
  ``InferenceSession`` on the CPU;
- ``torch-int8``: PyTorch dynamic int8 ``Linear`` layers saved as int8 tensors with their scales in
  ``model.safetensors`` — rebuilt by :func:`fmhub.optimize._quantize.load_torch_int8`;
- ``torch-pruned-heads``: transformers weights with fewer attention heads per layer than the config
  names — rebuilt by :func:`fmhub.optimize._prune.load_pruned_heads`.

Every form answers :meth:`LoadedModel.logits` on padded ``input_ids`` and ``attention_mask`` arrays,
which is what evaluation, optimization and serving call; ``model`` is the native object for anything else.

Example:
    >>> import fmhub
    >>> loaded = fmhub.load("acme/bbc-minilm-int8@v1")
    >>> batch = loaded.tokenizer(["Shares rose on Monday"], return_tensors="np")
    >>> loaded.logits(batch["input_ids"], batch["attention_mask"]).argmax(-1)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fmhub.errors import InvalidInputError

__all__ = ["load", "load_folder", "LoadedModel", "FORMATS", "TORCH_FORMATS", "EXPORTABLE_FORMATS", "TASK_HEADS",
           "task_of_config", "variant_of", "fmhub_section", "require_torch_weights"]

#: ONNX Runtime graph transformers every fmhub session leaves out: its CPU SkipLayerNormalization kernel is
#: slower than the Add and LayerNormalization it would replace (see :mod:`fmhub.optimize._onnx`).
ORT_DISABLED_OPTIMIZERS = ("SkipLayerNormFusion",)

#: The forms a model version can take (``fmhub.variant.format`` in its card).
FORMATS = ("torch", "onnx", "torch-int8", "torch-pruned-heads")
#: The forms whose ``model`` is a torch module (the others: an onnxruntime session).
TORCH_FORMATS = ("torch", "torch-int8", "torch-pruned-heads")
#: The float torch forms, which an ONNX export starts from.
EXPORTABLE_FORMATS = ("torch", "torch-pruned-heads")
#: task → the transformers auto class of its head
TASK_HEADS = {"text-classification": "AutoModelForSequenceClassification",
              "token-classification": "AutoModelForTokenClassification",
              "masked-lm": "AutoModelForMaskedLM", "causal-lm": "AutoModelForCausalLM"}
_HEADS = (("ForSequenceClassification", "text-classification"), ("ForTokenClassification", "token-classification"),
          ("ForMaskedLM", "masked-lm"), ("ForCausalLM", "causal-lm"), ("LMHeadModel", "causal-lm"))


def task_of_config(model_config: Any, repo: str) -> str:
    """The task a model's head does, from ``config.architectures``; a headless model is an input error."""
    architectures = list(getattr(model_config, "architectures", None) or [])
    for architecture in architectures:
        for suffix, task in _HEADS:
            if architecture.endswith(suffix):
                return task
    shown = ", ".join(architectures) or "none recorded"
    raise InvalidInputError(f"{repo} has no task head (architectures: {shown})",
                            hint="fine-tune it first (fmhub train --task text-classification ...), or use a model "
                                 "with a classification, token-classification or language-model head")


def _card_metadata(folder: Path) -> dict[str, Any]:
    """The YAML of the folder's ``README.md`` card (``{}`` without one, or when it does not parse)."""
    from fmhub.cards import parse_card

    readme = folder / "README.md"
    if not readme.is_file():
        return {}
    try:
        return parse_card(readme.read_text(encoding="utf-8", errors="replace")).metadata
    except InvalidInputError:
        return {}


def variant_of(folder: Path) -> dict[str, Any]:
    """The card's ``fmhub.variant`` mapping (``{}`` for a plain transformers model)."""
    return fmhub_section(_card_metadata(folder), "variant")


def require_torch_weights(folder: Path, repo: str, role: str) -> None:
    """Refuse, as an input error, a variant whose weights plain transformers cannot load (ONNX, torch int8).

    Training (``--model``, ``--teacher``) loads weights with ``from_pretrained``; an optimized variant is an
    end product, so the fix is to start from the model it was made from (its ``fmhub.lineage`` parent).
    """
    metadata = _card_metadata(folder)
    form = fmhub_section(metadata, "variant").get("format", "torch")
    if form == "torch":
        return
    parent = fmhub_section(metadata, "lineage").get("parent")
    named = {"onnx": "an ONNX", "torch-int8": "a PyTorch int8", "torch-pruned-heads": "a head-pruned"}.get(
        form, f"a {form}")
    raise InvalidInputError(f"{role} {repo} is {named} variant; training needs a model with torch weights",
                            hint=f"use the model it was made from ({parent})" if parent else
                            "use the torch model it was made from (see its card)")


def fmhub_section(metadata: dict[str, Any], name: str) -> dict[str, Any]:
    """``metadata["fmhub"][name]`` of a card's YAML when it is a mapping, else ``{}``."""
    fmhub = metadata.get("fmhub")
    section = fmhub.get(name) if isinstance(fmhub, dict) else None
    return section if isinstance(section, dict) else {}


@dataclass
class LoadedModel:
    """A model version ready to run: its native object, tokenizer and config, and one forward function."""

    repo: str
    commit: str
    folder: Path
    format: str
    task: str
    config: Any  # transformers config (labels, sizes)
    tokenizer: Any
    model: Any  # a torch module, or an onnxruntime InferenceSession
    variant: dict[str, Any]
    threads: int  # CPU threads a forward pass uses

    def logits(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        """float32 logits of a padded batch (int64 arrays of shape (batch, length))."""
        if self.format == "onnx":
            feed = {"input_ids": np.asarray(input_ids, dtype=np.int64),
                    "attention_mask": np.asarray(attention_mask, dtype=np.int64)}
            names = {i.name for i in self.model.get_inputs()}
            if "token_type_ids" in names:
                feed["token_type_ids"] = np.zeros_like(feed["input_ids"])
            return self.model.run(["logits"], {k: v for k, v in feed.items() if k in names})[0]
        import torch

        with torch.inference_mode():
            out = self.model(input_ids=torch.as_tensor(input_ids), attention_mask=torch.as_tensor(attention_mask))
            return out.logits.float().numpy()

    def parameters(self) -> int:
        """Parameter count (ONNX: elements of the graph's initializers; int8 forms: weights, not their scales)."""
        if self.format == "onnx":
            import onnx

            graph = onnx.load(str(self.folder / "model.onnx"), load_external_data=False).graph
            return int(sum(int(np.prod(t.dims)) for t in graph.initializer
                           if not t.name.endswith(("_scale", "_zero_point"))))
        if self.format == "torch-int8":
            from safetensors import safe_open

            with safe_open(str(self.folder / "model.safetensors"), "np") as f:
                return int(sum(int(np.prod(f.get_slice(k).get_shape())) for k in f.keys()
                               if not k.endswith(("weight_scale", "weight_zero_point"))))
        return int(sum(p.numel() for p in self.model.parameters()))


def _onnx_session(path: Path, threads: int) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"],
                                disabled_optimizers=list(ORT_DISABLED_OPTIMIZERS))


def load_folder(folder: Path, repo: str = "", commit: str = "", threads: int | None = None) -> LoadedModel:
    """Load a downloaded model version (see :func:`load`)."""
    import transformers
    from transformers import AutoConfig, AutoTokenizer

    variant = variant_of(folder)
    form = variant.get("format", "torch")
    if form not in FORMATS:
        raise InvalidInputError(f"{repo or folder} declares format {form!r}, which this fmhub cannot load",
                                hint=f"known formats: {', '.join(FORMATS)}")
    config = AutoConfig.from_pretrained(folder)
    task = task_of_config(config, repo or str(folder))
    tokenizer = AutoTokenizer.from_pretrained(folder)
    if tokenizer.pad_token_id is None and tokenizer.eos_token_id is not None:
        tokenizer.pad_token = tokenizer.eos_token
    if form == "onnx":
        if not (folder / "model.onnx").is_file():
            raise InvalidInputError(f"{repo or folder} declares an ONNX model but holds no model.onnx")
        used = threads or max(1, len(os.sched_getaffinity(0)))
        model = _onnx_session(folder / "model.onnx", used)
    else:
        import torch

        head = getattr(transformers, TASK_HEADS[task])
        if form == "torch-int8":
            from fmhub.optimize._quantize import load_torch_int8

            model = load_torch_int8(folder, config, head)
        elif form == "torch-pruned-heads":
            from fmhub.optimize._prune import load_pruned_heads

            model = load_pruned_heads(folder, config, head)
        else:
            model = head.from_pretrained(folder).eval()
        used = torch.get_num_threads()
    return LoadedModel(repo, commit, folder, form, task, config, tokenizer, model, variant, used)


def load(ref: str, *, hub: Any = None, threads: int | None = None) -> LoadedModel:
    """Download ``REPO[@REV]`` (embedded store or ``FMHUB_ENDPOINT``) and load it by its declared format."""
    from fmhub.client import Hub
    from fmhub.train._config import split_ref

    repo, revision = split_ref(ref, "MODEL")
    owned = hub is None
    hub = hub or Hub.open()
    try:
        commit = hub.repo_info(repo, revision=revision).commit.oid
        folder = hub.download(repo, revision=commit, exclude=["eval/*"])
    finally:
        if owned:
            hub.close()
    return load_folder(folder, repo, commit, threads)

