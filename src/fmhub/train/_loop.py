"""The training loop: plain PyTorch over a transformers model, no Trainer.

:func:`prepare` resolves the base model and dataset to commits, loads them and checks every input
against the other (labels vs the model head, max length vs the model's positions, splits present)
before any training starts. :func:`run` trains with AdamW and a warmup + linear/cosine schedule,
gradient accumulation and clipping, evaluates under ``inference_mode``, checkpoints, stops early,
and resumes from the newest checkpoint to the same weights an uninterrupted run reaches.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fmhub.constants import settings
from fmhub.errors import FmhubError, InvalidInputError
from fmhub.train._checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from fmhub.train._config import TrainConfig, split_ref
from fmhub.train._data import TokenizedSplit, batch_order, collate, tokenize_split, tokenizer_digest

__all__ = ["Prepared", "TrainResult", "TrainingDivergedError", "prepare", "run", "checkpoint_dir"]


class TrainingDivergedError(FmhubError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


@dataclass
class Prepared:
    """Everything a run needs, loaded and checked."""

    config: TrainConfig
    model_repo: str
    model_commit: str
    data_repo: str
    data_commit: str
    model_folder: Path
    tokenizer: Any
    model: Any
    label_names: list[str]
    train: TokenizedSplit
    eval: TokenizedSplit | None


@dataclass
class TrainResult:
    steps: int
    epochs: float
    metrics: dict[str, float]  # final validation metrics (eval_*) and train_loss
    best_step: int | None
    samples_per_second: float
    stopped_early: bool
    history: list[dict[str, Any]] = field(default_factory=list)
    interrupted: bool = False  # stopped by ``stop_after`` before the end


def checkpoint_dir(config: TrainConfig) -> Path:
    """Where this configuration's checkpoints live: one folder per output repo and recipe."""
    recipe = {k: v for k, v in config.to_dict().items() if k not in ("threads", "license", "private")}
    digest = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]
    return settings().home / "checkpoints" / config.output.replace("/", "--") / digest


def prepare(config: TrainConfig, hub: Any) -> Prepared:
    """Resolve, download, load and check the base model and dataset (raises InvalidInputError early)."""
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    from fmhub.data import load

    model_repo, model_rev = split_ref(config.model, "--model")
    data_repo, data_rev = split_ref(config.data, "--data")
    model_commit = hub.repo_info(model_repo, revision=model_rev).commit.oid
    data_commit = hub.repo_info(data_repo, repo_type="dataset", revision=data_rev).commit.oid
    folder = hub.download(model_repo, revision=model_commit)
    dataset = load(data_repo, revision=data_commit, hub=hub)
    splits = [config.train_split] + ([config.eval_split] if config.eval_split else [])
    for name in splits:
        if name not in dataset:
            raise InvalidInputError(f"dataset {data_repo} has no {name!r} split (it has {', '.join(dataset)})",
                                    hint="name one with --train-split / --eval-split" +
                                         (", or pass --eval-split none" if name == config.eval_split else ""))
    features = dataset[config.train_split].features
    for column in (config.text_column, config.label_column):
        if column not in features:
            raise InvalidInputError(f"dataset {data_repo} has no column {column!r}; its columns are: "
                                    f"{', '.join(features)}", hint="name it with --text-column / --label-column")
    label_feature = features[config.label_column]
    if not hasattr(label_feature, "names"):
        raise InvalidInputError(f"column {config.label_column!r} is not a class label ({label_feature})",
                                hint="import the dataset with fmhub data import --label-column, which stores "
                                     "label names")
    label_names = list(label_feature.names)
    base = AutoConfig.from_pretrained(folder)
    _check_head(base, label_names, config)
    positions = getattr(base, "max_position_embeddings", None)
    if positions is not None and config.max_length > positions:
        raise InvalidInputError(f"--max-length {config.max_length} is beyond the model's {positions} positions",
                                hint=f"use --max-length {positions} or less")
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForSequenceClassification.from_pretrained(
        folder, num_labels=len(label_names), id2label=dict(enumerate(label_names)),
        label2id={name: i for i, name in enumerate(label_names)},
        ignore_mismatched_sizes=config.ignore_mismatched_sizes)
    cache = settings().home / "cache" / "tokenized"
    key = {"dataset": data_commit, "tokenizer": tokenizer_digest(folder)}
    tokenized = {name: tokenize_split(dataset[name], tokenizer, text_column=config.text_column,
                                      label_column=config.label_column, max_length=config.max_length,
                                      cache_dir=cache, cache_key={**key, "split": name}) for name in splits}
    return Prepared(config, model_repo, model_commit, data_repo, data_commit, folder, tokenizer, model, label_names,
                    tokenized[config.train_split], tokenized.get(config.eval_split) if config.eval_split else None)


def _check_head(base: Any, label_names: list[str], config: TrainConfig) -> None:
    """A base model that already classifies must have the dataset's labels, unless told otherwise."""
    is_classifier = any(a.endswith("ForSequenceClassification") for a in (base.architectures or []))
    if not is_classifier or config.ignore_mismatched_sizes:
        return
    current = [base.id2label[i] for i in sorted(base.id2label)] if base.id2label else []
    if current != label_names:
        raise InvalidInputError(f"the model's classifier has labels {current}, the dataset {label_names}",
                                hint="pass --ignore-mismatched-sizes to replace the head with a new one "
                                     "for the dataset's labels")


def _schedule(config: TrainConfig, total: int) -> Callable[[int], float]:
    warmup = int(config.warmup_ratio * total)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        if config.schedule == "constant":
            return 1.0
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return 1.0 - progress if config.schedule == "linear" else 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor


def _freeze(model: Any, config: TrainConfig) -> None:
    base = getattr(model, model.base_model_prefix, model)
    if config.freeze_embeddings and hasattr(base, "embeddings"):
        for p in base.embeddings.parameters():
            p.requires_grad_(False)
    if config.freeze_layers:
        layers = getattr(getattr(base, "encoder", None), "layer", None)
        if layers is None:
            raise InvalidInputError("--freeze-layers: this model has no encoder.layer list to freeze")
        if config.freeze_layers > len(layers):
            raise InvalidInputError(f"--freeze-layers {config.freeze_layers}: the model has {len(layers)} layers")
        for layer in layers[:config.freeze_layers]:
            for p in layer.parameters():
                p.requires_grad_(False)


def evaluate(model: Any, split: TokenizedSplit, batch_size: int, pad_id: int, num_labels: int) -> dict[str, float]:
    """Loss, accuracy and macro-F1 on ``split`` (under ``inference_mode``)."""
    import torch

    model.eval()
    predictions = np.zeros(len(split), dtype=np.int64)
    total_loss = 0.0
    with torch.inference_mode():
        for rows in batch_order(split.lengths, batch_size * 2, 0, 0, shuffle=False):
            batch = collate(split, rows, pad_id)
            out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
            total_loss += torch.nn.functional.cross_entropy(out.logits, batch["labels"], reduction="sum").item()
            predictions[rows] = out.logits.argmax(-1).numpy()
    model.train()
    gold = split.labels
    f1s = []
    for label in range(num_labels):
        tp = int(((predictions == label) & (gold == label)).sum())
        fp = int(((predictions == label) & (gold != label)).sum())
        fn = int(((predictions != label) & (gold == label)).sum())
        if tp + fp + fn:
            f1s.append(2 * tp / (2 * tp + fp + fn))
    return {"loss": total_loss / len(split), "accuracy": float((predictions == gold).mean()),
            "f1_macro": float(np.mean(f1s)) if f1s else 0.0}


def run(prepared: Prepared, *, resume: bool = False, on_metrics: Callable[[int, float, dict[str, float]], None]
        | None = None, on_step: Callable[[int, int, float, float], None] | None = None,
        stop_after: int | None = None) -> TrainResult:
    """Train ``prepared.model`` in place.

    Args:
        resume: continue from the newest checkpoint of this configuration (:func:`checkpoint_dir`).
        on_metrics: called with (step, epoch, metrics) for train and eval metrics.
        on_step: called with (step, total steps, loss, samples/s) after each optimizer step.
        stop_after: stop (as if killed) after this many optimizer steps, after checkpointing; for tests.
    """
    import torch

    config, model = prepared.config, prepared.model
    torch.manual_seed(config.seed)
    torch.set_num_threads(config.threads or max(1, len(os.sched_getaffinity(0))))
    _freeze(model, config)
    model.train()
    pad_id = prepared.tokenizer.pad_token_id if prepared.tokenizer.pad_token_id is not None else 0
    train = prepared.train
    lengths = train.lengths
    micro_per_epoch = math.ceil(len(train) / config.batch_size)
    steps_per_epoch = max(1, micro_per_epoch // config.gradient_accumulation)
    total = config.max_steps or max(1, math.ceil(config.epochs * steps_per_epoch))
    decay = [p for n, p in model.named_parameters() if p.requires_grad and not _no_decay(n)]
    no_decay = [p for n, p in model.named_parameters() if p.requires_grad and _no_decay(n)]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": config.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=config.learning_rate)
    factor = _schedule(config, total)
    weights = None
    if config.class_weights:
        counts = np.bincount(train.labels, minlength=len(prepared.label_names)).astype(np.float64)
        weights = torch.tensor(len(train) / (len(counts) * np.maximum(counts, 1)), dtype=torch.float32)
    loss_fn = torch.nn.CrossEntropyLoss(weight=weights, label_smoothing=config.label_smoothing)
    folder = checkpoint_dir(config)
    state: dict[str, Any] = {"epoch": 0, "micro": 0, "best": None, "best_step": None, "bad_evals": 0,
                             "history": [], "samples": 0, "seconds": 0.0}
    step = 0
    if resume and (found := latest_checkpoint(folder)) is not None:
        state = load_checkpoint(found, model, optimizer)
        step = state.pop("step")
    stopped_early = False
    started = time.perf_counter() - state["seconds"]
    running_loss, running_count = 0.0, 0

    def save() -> None:
        state["seconds"] = time.perf_counter() - started
        save_checkpoint(folder, step, model, optimizer, state)

    def evaluate_now() -> bool:
        """Evaluate, record, update early stopping; True if training should stop."""
        if prepared.eval is None:
            return False
        metrics = evaluate(model, prepared.eval, config.batch_size, pad_id, len(prepared.label_names))
        record = {f"eval_{k}": v for k, v in metrics.items()}
        epoch = step / steps_per_epoch
        state["history"].append({"step": step, "epoch": round(epoch, 4), **record})
        if on_metrics:
            on_metrics(step, epoch, record)
        value = metrics.get(config.metric, metrics["accuracy"])
        if state["best"] is None or value > state["best"]:
            state["best"], state["best_step"], state["bad_evals"] = value, step, 0
        else:
            state["bad_evals"] += 1
        return bool(config.early_stopping_patience and state["bad_evals"] >= config.early_stopping_patience)

    optimizer.zero_grad(set_to_none=True)
    while step < total and not stopped_early:
        batches = batch_order(lengths, config.batch_size, config.seed, state["epoch"])
        usable = len(batches) - len(batches) % config.gradient_accumulation or len(batches)
        while state["micro"] < usable and step < total:
            rows = batches[state["micro"]]
            batch = collate(train, rows, pad_id)
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
            loss = loss_fn(logits, batch["labels"])
            if not torch.isfinite(loss):
                raise TrainingDivergedError(
                    f"the loss became {loss.item()} at step {step + 1}; the last good checkpoint is kept in {folder}",
                    hint="lower --learning-rate, or set --max-grad-norm 1.0, then run again with --resume")
            (loss / config.gradient_accumulation).backward()
            running_loss += loss.item() * len(rows)
            running_count += len(rows)
            state["micro"] += 1
            if state["micro"] % config.gradient_accumulation:
                continue
            if config.max_grad_norm:
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
            lr = config.learning_rate * factor(step)
            for group in optimizer.param_groups:
                group["lr"] = lr
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            state["samples"] += running_count
            rate = state["samples"] / max(1e-9, time.perf_counter() - started)
            train_metrics = {"loss": running_loss / running_count, "learning_rate": lr, "samples_per_second": rate}
            running_loss, running_count = 0.0, 0
            if on_metrics:
                on_metrics(step, step / steps_per_epoch, train_metrics)
            if on_step:
                on_step(step, total, train_metrics["loss"], rate)
            if config.eval_steps and step % config.eval_steps == 0 and evaluate_now():
                stopped_early = True
            if config.save_steps and step % config.save_steps == 0:
                save()
            if stopped_early or (stop_after is not None and step >= stop_after):
                break
        if stop_after is not None and step >= stop_after and step < total:
            return TrainResult(step, step / steps_per_epoch, {}, state["best_step"], 0.0, False, state["history"],
                               interrupted=True)
        if state["micro"] >= usable:
            state["epoch"] += 1
            state["micro"] = 0
            if not stopped_early and not (config.eval_steps and step % config.eval_steps == 0):
                stopped_early = evaluate_now()
            save()
    seconds = time.perf_counter() - started
    final: dict[str, float] = {}
    if state["history"]:
        final = {k: v for k, v in state["history"][-1].items() if k.startswith("eval_")}
    return TrainResult(step, step / steps_per_epoch, final, state["best_step"], state["samples"] / max(seconds, 1e-9),
                       stopped_early, state["history"])


def _no_decay(name: str) -> bool:
    return name.endswith("bias") or "LayerNorm" in name or "layer_norm" in name or "norm.weight" in name
