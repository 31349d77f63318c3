"""``fmhub optimize prune``: remove weights by magnitude, or whole feed-forward neurons.

- unstructured (default): global magnitude pruning — the ``sparsity`` share of the smallest-magnitude
  weights among all ``nn.Linear`` weight matrices of the encoder/decoder layers (the task head and the
  embeddings are kept) is set to exactly zero. Same shapes, so the variant loads as any transformers
  model; the zeros pay off with sparse kernels or compression, not by themselves.
- ``--structured neurons``: in every layer, the ``sparsity`` share of feed-forward neurons with the
  smallest L2 norm of their in- and out-weights, removed (``intermediate_size`` shrinks by as many in
  every layer, so the config stays one number): smaller and faster.
- ``--structured heads``: in every layer, the ``sparsity`` share of attention heads with the smallest L2
  norm of their query, key and value rows and output-projection columns, removed (the same number in
  every layer). transformers 5 has no config field for fewer heads than ``hidden_size / head size``
  (it dropped ``pruned_heads``), so the variant's format is ``torch-pruned-heads``
  (:mod:`fmhub.formats.pruned_heads`), a plain ``model.safetensors`` with narrower attention matrices.

``finetune_steps`` > 0 recovers accuracy with that many optimizer steps of the training engine on the
dataset the parent was trained on (``data`` else), tracked as a run; unstructured zeros stay zero
(``keep_zeros``), so the asked sparsity holds after the fine-tune.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fmhub.client import Hub
from fmhub.errors import InvalidInputError
from fmhub.formats.pruned_heads import PrunedHeads, attention_of, encoder_layers, keep_heads, linear
from fmhub.formats.torch import TorchWeights
from fmhub.explain import ExplainOptions
from fmhub.optimize._variant import Parent, VariantOutcome, check_parity, make_variant
from fmhub.train import TrainConfig, train

__all__ = ["prune", "prune_unstructured", "prune_neurons", "prune_heads", "STRUCTURES", "sparsity_of"]

#: Structured pruning: feed-forward neurons (plain transformers loads the result) or attention heads
#: (``fmhub.load`` does; see the module docstring).
STRUCTURES = ("neurons", "heads")


def _prunable(model: Any) -> list[tuple[str, Any]]:
    import torch

    head = {name for name, _ in model.named_modules() if name.startswith(("classifier", "cls", "lm_head", "score",
                                                                          "qa_outputs"))}
    return [(name, module.weight) for name, module in model.named_modules()
            if isinstance(module, torch.nn.Linear) and name not in head and ".pooler" not in f".{name}"
            and not name.startswith("pooler")]


def sparsity_of(model: Any) -> float:
    """Share of exact zeros in the prunable weights."""
    weights = [w for _, w in _prunable(model)]
    total = sum(w.numel() for w in weights)
    return float(sum(int((w == 0).sum()) for w in weights) / max(1, total))


def prune_unstructured(model: Any, sparsity: float) -> dict[str, Any]:
    """Zero the globally smallest-magnitude ``sparsity`` share of the prunable Linear weights, in place."""
    import torch

    weights = _prunable(model)
    if not weights:
        raise InvalidInputError(f"{model.config.model_type} has no Linear layers to prune")
    magnitudes = torch.cat([w.detach().abs().flatten() for _, w in weights])
    count = int(round(sparsity * magnitudes.numel()))
    if count:
        threshold = torch.kthvalue(magnitudes, count).values
        below = int((magnitudes < threshold).sum())
        with torch.no_grad():
            left = count - below  # ties at the threshold: zero just enough of them, in order
            for _, w in weights:
                mask = w.abs() < threshold
                if left > 0:
                    tied = (w.abs() == threshold).flatten().nonzero().flatten()[:left]
                    mask.view(-1)[tied] = True
                    left -= len(tied)
                w[mask] = 0.0
    return {"structure": "unstructured", "layers": len(weights), "sparsity": sparsity_of(model)}


def prune_neurons(model: Any, sparsity: float) -> dict[str, Any]:
    """Remove the weakest ``sparsity`` share of feed-forward neurons in every layer."""
    import torch

    layers = encoder_layers(model)
    width = model.config.intermediate_size
    keep = max(1, width - int(round(sparsity * width)))
    if keep == width:
        raise InvalidInputError(f"--sparsity {sparsity:g} removes no neuron of {width} per layer",
                                hint=f"ask for at least {0.5 / width:.3g} (half a neuron)")
    for layer in layers:
        inner, outer = layer.intermediate.dense, layer.output.dense
        norms = inner.weight.detach().pow(2).sum(1) + outer.weight.detach().pow(2).sum(0)
        kept = torch.sort(torch.topk(norms, keep).indices).values
        layer.intermediate.dense = linear(inner.weight[kept], inner.bias[kept])
        layer.output.dense = linear(outer.weight[:, kept], outer.bias)
    model.config.intermediate_size = keep
    return {"structure": "neurons", "neurons_kept": keep, "neurons_total": width, "layers": len(layers),
            "sparsity": 1 - keep / width}


def prune_heads(model: Any, sparsity: float) -> dict[str, Any]:
    """Remove the weakest ``sparsity`` share of attention heads in every layer (the same number in each)."""
    import torch

    layers = encoder_layers(model)
    heads = model.config.num_attention_heads
    head_size = model.config.hidden_size // heads
    keep = max(1, heads - int(round(sparsity * heads)))
    if keep == heads:
        raise InvalidInputError(f"--sparsity {sparsity:g} removes no head of {heads} per layer",
                                hint=f"ask for at least {0.5 / heads:.3g} (half a head)")
    kept_per_layer = []
    for layer in layers:
        inner, output = attention_of(layer, model.config.model_type)
        norms = sum(getattr(inner, n).weight.detach().reshape(heads, -1).pow(2).sum(1)
                    for n in ("query", "key", "value"))
        norms = norms + output.dense.weight.detach().reshape(-1, heads, head_size).pow(2).sum((0, 2))
        kept = sorted(torch.topk(norms, keep).indices.tolist())
        keep_heads(layer, kept, head_size, model.config.model_type)
        kept_per_layer.append(kept)
    return {"structure": "heads", "heads_kept": keep, "heads_total": heads, "layers": len(layers),
            "kept": kept_per_layer, "sparsity": 1 - keep / heads}


def prune(model: str, output: str, *, sparsity: float = 0.5, structured: str | None = None, data: str | None = None,
          max_length: int = 128, finetune_steps: int = 0, finetune_learning_rate: float = 5e-5,
          private: bool = False, hub: Hub | None = None, report: bool = True, eval_data: str | None = None,
          eval_split: str = "test", eval_skip: tuple[str, ...] = (), explain: ExplainOptions | None = None,
          progress: Any = None,
          on_step: Callable[[int, int, float, float], None] | None = None) -> VariantOutcome:
    """Prune ``model`` (REPO[@REV]) and commit the variant (safetensors) to ``output``; see the module docstring."""
    if finetune_steps < 0:
        raise InvalidInputError(f"--finetune-steps {finetune_steps} must be 0 (none) or more")
    if not finetune_learning_rate > 0:
        raise InvalidInputError(f"--finetune-learning-rate {finetune_learning_rate} must be positive")
    if not 0 < sparsity < 1:
        raise InvalidInputError(f"--sparsity {sparsity} must be between 0 and 1 (exclusive)",
                                hint="e.g. --sparsity 0.5")
    if structured is not None and structured not in STRUCTURES:
        raise InvalidInputError(f"unknown --structured {structured!r}", hint=f"choose from {', '.join(STRUCTURES)}")

    def build(parent: Parent, batch: dict[str, Any], folder: Path) -> dict[str, Any]:
        if not parent.loaded.form.trainable:
            raise InvalidInputError(f"{parent.repo} is {parent.loaded.format}; pruning works on torch weights",
                                    hint="prune its torch parent, then export or quantize the result")
        pruned = copy.deepcopy(parent.loaded.model).eval()
        how = {"neurons": prune_neurons, "heads": prune_heads}.get(structured or "", prune_unstructured)
        fields = how(pruned, sparsity)
        if finetune_steps:
            fields["finetune"] = _recover(parent, pruned)
            if structured is None:
                fields["sparsity"] = sparsity_of(pruned)
        pruned.eval().save_pretrained(folder, safe_serialization=True)
        parent.loaded.tokenizer.save_pretrained(folder)
        form = PrunedHeads.name if structured == "heads" else TorchWeights.name
        return {"format": form, "method": "prune", **fields,
                "asked_sparsity": sparsity,
                "description": f"pruned ({fields['structure']}, {fields['sparsity']:.0%})"}

    def check(parent: Parent, variant: Any, batch: dict[str, Any]) -> dict[str, Any]:  # recorded, not a gate
        return check_parity(f"pruning {parent.repo}", parent.loaded, variant, batch, tolerance=None)

    def _recover(parent: Parent, pruned: Any) -> dict[str, Any]:
        """Fine-tune ``pruned`` in place for ``finetune_steps`` with the training engine (zeros kept)."""
        dataset = data or parent.training_data("--data")
        config = TrainConfig.from_flat(dict(
            task=parent.loaded.task.name, model=f"{parent.repo}@{parent.commit}", data=dataset, output=output,
            max_steps=finetune_steps, learning_rate=finetune_learning_rate, max_length=max_length, eval_split=None,
            keep_zeros=structured is None), source="the pruned model's fine-tune")
        trained = train(config, parent.hub, model=pruned, publish=False, on_step=on_step,
                        command=f"fmhub optimize prune --finetune-steps {finetune_steps}")
        assert trained is not None  # one process, never cut short
        return {"steps": trained.result.steps, "learning_rate": finetune_learning_rate, "data": dataset,
                "run_id": trained.run_id}

    return make_variant(model, output, build=build, check=check,
                        title=f"Prune {{parent}} ({structured or 'unstructured'}, {sparsity:g})",
                        args={"method": "prune", "sparsity": sparsity, "structured": structured,
                              "finetune_steps": finetune_steps, "finetune_learning_rate": finetune_learning_rate},
                        data=data, max_length=max_length, private=private, hub=hub, report=report,
                        eval_data=eval_data, eval_split=eval_split, eval_skip=eval_skip, explain=explain,
                        progress=progress)
