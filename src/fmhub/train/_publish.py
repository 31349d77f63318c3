"""Publish a trained model: one commit with weights, config, tokenizer, training args and a model card.

The card's YAML carries what the Hub understands (``base_model``, ``datasets``, ``pipeline_tag``,
``license``, ``model-index`` with the validation metrics) and fmhub's lineage as data: the base model
and dataset commits and the run id, so the version can be traced back exactly.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from fmhub.cards import validate_metadata
from fmhub.client import Hub, UploadFile
from fmhub.errors import EmptyCommitError, InvalidInputError
from fmhub.tasks import Metric
from fmhub.train._loop import Prepared, TrainResult

__all__ = ["publish", "model_card", "distillation"]

def model_card(prepared: Prepared, result: TrainResult, run_id: str | None) -> str:
    config = prepared.config
    task = prepared.task
    metrics = [{"type": m.kind, "value": round(result.metrics[m.key], 6), "name": m.name}
               for m in (*task.validation_metrics, Metric("eval_loss", "loss", "Loss")) if m.key in result.metrics]
    pipeline_tag = task.pipeline_tag
    lineage = {"base_model": prepared.model_repo, "base_model_commit": prepared.model_commit,
               "dataset": prepared.data_repo, "dataset_commit": prepared.data_commit, "run_id": run_id}
    fmhub: dict[str, Any] = {"lineage": lineage}
    variant = distillation(prepared)
    if variant is not None:  # a student: its parent is the teacher, as for every optimized variant
        fmhub = {"variant": variant, "lineage": {**lineage, "parent": prepared.teacher_repo,
                                                 "parent_commit": prepared.teacher_commit}}
    # huggingface_hub's card data writes the fields the Hub reads (model-index from the eval results); fmhub's
    # strict validation then checks the whole front matter.
    data = ModelCardData(
        license=config.license or "unknown", base_model=prepared.model_repo, datasets=[prepared.data_repo],
        pipeline_tag=pipeline_tag, library_name="transformers",
        tags=["fmhub", config.task] + (["distill"] if variant is not None else []),
        model_name=config.output.split("/", 1)[1] if metrics else None,
        eval_results=[EvalResult(task_type=pipeline_tag, task_name=prepared.task.title,
                                 dataset_type=prepared.data_repo, dataset_name=prepared.data_repo,
                                 dataset_split=config.inputs.eval_split, dataset_revision=prepared.data_commit,
                                 metric_type=m["type"], metric_value=m["value"], metric_name=m["name"])
                      for m in metrics] or None,
        fmhub=fmhub)
    metadata = data.to_dict()
    problems = validate_metadata(metadata, "model")
    if not problems.ok:
        raise InvalidInputError(f"the generated model card is invalid: {'; '.join(problems.errors)}")
    if prepared.model_repo is None:
        origin = f"Pretrained from scratch ({config.scratch.from_config or config.scratch.architecture}, {config.task})"
    elif task.label_column is None:  # self-supervised: more of the same objective
        origin = f"`{prepared.model_repo}` with continued pretraining ({config.task})"
    else:
        origin = f"`{prepared.model_repo}` fine-tuned for {config.task}"
    if variant is not None:
        origin += f", {variant['description']}"
    elif prepared.layers_from:
        origin += f", keeping {len(prepared.layers_from)} of its layers ({', '.join(map(str, prepared.layers_from))})"
    labels = f" (labels: {', '.join(prepared.label_names)})" if prepared.label_names else ""
    lines = [f"# {config.output}\n", f"{origin} on `{prepared.data_repo}`{labels} by `fmhub train`.\n",
             "## Results\n"]
    if metrics:
        at = result.weights_step if result.weights_step is not None else result.steps
        best = f" (the best evaluation of {result.steps} steps: --load-best-at-end)" if at != result.steps else ""
        epochs = result.epochs * at / max(1, result.steps)
        lines += [f"On the `{config.inputs.eval_split}` split after {at} steps ({epochs:.2f} epochs){best}:\n",
                  "| metric | value |", "|---|---:|"]
        lines += [f"| {m['name']} | {m['value']:.4f} |" for m in metrics]
    else:
        lines.append("No evaluation split was used.")
    if variant is not None:
        lines += ["", "## Distillation\n", "| | |", "|---|---|"]
        lines += [f"| {k} | `{v}` |" for k, v in variant.items() if k != "description"]
    lines += ["", "## Training\n", "| option | value |", "|---|---|"]
    lines += [f"| {k} | `{v}` |" for k, v in config.applied().items()]  # training_args.json has every option
    lines.append(f"| precision used | `{prepared.precision}` |")
    lines += ["", "## Lineage\n",
              f"- base model: `{prepared.model_repo}` at `{prepared.model_commit}`" if prepared.model_repo else
              "- base model: none (from scratch, tokenizer trained on the dataset)",
              f"- dataset: `{prepared.data_repo}` at `{prepared.data_commit}`"]
    if run_id:
        lines.append(f"- run: `{run_id}` (`fmhub runs show {run_id}`)")
    lines += ["", "## Use\n", "```python", "from transformers import pipeline",
              f'model = pipeline("{pipeline_tag}", model="{config.output}")', "```"]
    card = ModelCard(f"---\n{data.to_yaml()}\n---\n" + "\n".join(lines) + "\n")
    return str(card)


def distillation(prepared: Prepared) -> dict[str, Any] | None:
    """The card's ``fmhub.variant`` of a distilled student (None when no teacher took part)."""
    config = prepared.config
    if prepared.distiller is None:
        return None
    layers = prepared.model.config.num_hidden_layers
    kept = f" (its layers {', '.join(map(str, prepared.layers_from))})" if prepared.layers_from else ""
    return {"format": "torch", "method": "distill", "teacher": f"{prepared.teacher_repo}@{prepared.teacher_commit}",
            "student_layers": layers, "layers_from": prepared.layers_from, "temperature": config.distill.temperature,
            "alpha": config.distill.alpha, "hidden_loss": config.distill.hidden_loss,
            "description": f"distilled from `{prepared.teacher_repo}` into a {layers}-layer student{kept}"}


def publish(hub: Hub, prepared: Prepared, result: TrainResult, run_id: str | None) -> str:
    """Commit the model to ``config.output`` (created if missing); return the commit id."""
    config = prepared.config
    with tempfile.TemporaryDirectory(prefix="fmhub-train-") as tmp:
        folder = Path(tmp)
        prepared.model.save_pretrained(folder, safe_serialization=True)
        prepared.tokenizer.save_pretrained(folder)
        (folder / "training_args.json").write_text(json.dumps(
            {**config.to_dict(), "run_id": run_id, "base_model_commit": prepared.model_commit,
             "dataset_commit": prepared.data_commit, "steps": result.steps, "precision_used": prepared.precision},
            indent=2, sort_keys=True) + "\n")
        (folder / "README.md").write_text(model_card(prepared, result, run_id))
        hub.create_repo(config.output, private=config.private, exist_ok=True)
        files = sorted(p for p in folder.iterdir() if p.is_file())
        try:
            commit = hub.commit(config.output, [UploadFile(p.name, p) for p in files],
                                title=f"Train {config.task} on {prepared.data_repo}",
                                message=f"base model: {prepared.model_repo}@{prepared.model_commit}\n"
                                        f"dataset: {prepared.data_repo}@{prepared.data_commit}\nrun: {run_id}")
        except EmptyCommitError:
            return hub.repo_info(config.output).commit.oid
    return commit.oid
