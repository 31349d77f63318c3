"""The training loop: plain PyTorch over a transformers model, no Trainer.

:func:`prepare` resolves the base model and dataset to commits, loads them and checks every input
against the other (labels vs the model head, max length vs the model's positions, splits present)
before any training starts. :func:`run` trains with AdamW and a warmup + linear/cosine schedule,
gradient accumulation and clipping, evaluates under ``inference_mode``, checkpoints, stops early,
and resumes from the newest checkpoint to the same weights an uninterrupted run reaches.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fmhub.constants import settings
from fmhub.errors import FmhubError, InvalidInputError
from fmhub.train import _distributed as distributed
from fmhub.train._checkpoint import checkpoint_path, latest_checkpoint, load_checkpoint, save_checkpoint
from fmhub.formats import require_trainable
from fmhub.refs import split_ref
from fmhub.tasks import IGNORE, Task, TokenizedSplit, batch_order
from fmhub.train._config import TrainConfig
from fmhub.train._data import tokenize_split, tokenizer_digest
from fmhub.train._distill import Distiller, keep_layers, load_teacher
from fmhub.train._scratch import scratch_config, scratch_tokenizer

__all__ = ["Prepared", "TrainResult", "TrainingDivergedError", "prepare", "run", "checkpoint_dir"]


class TrainingDivergedError(FmhubError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


@dataclass
class Prepared:
    """Everything a run needs, loaded and checked."""

    config: TrainConfig
    model_repo: str | None  # None: pretrained from scratch
    model_commit: str | None
    data_repo: str
    data_commit: str
    model_folder: Path | None
    tokenizer: Any
    model: Any
    task: Task
    label_names: list[str]
    train: TokenizedSplit
    eval: TokenizedSplit | None
    distiller: Distiller | None = None  # --teacher
    teacher_repo: str | None = None
    teacher_commit: str | None = None
    layers_from: list[int] | None = None  # --student-layers: the model's layers the student kept


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
    ranks_in_sync: bool | None = None  # DDP: every rank ended with the same weights (None: one process)
    weights_step: int | None = None  # the step whose weights the model holds (--load-best-at-end: the best)


def checkpoint_dir(config: TrainConfig) -> Path:
    """Where this configuration's checkpoints live: one folder per output repo and recipe."""
    recipe = {k: v for k, v in config.to_dict().items() if k not in ("threads", "license", "private")}
    digest = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]
    return settings().home / "checkpoints" / config.output.replace("/", "--") / digest


def prepare(config: TrainConfig, hub: Any, model: Any = None) -> Prepared:
    """Resolve, download, load and check the base model and dataset (raises InvalidInputError early).

    ``model``: train this in-memory model (e.g. a pruned copy of ``config.model``) instead of loading
    ``config.model``'s weights; its tokenizer, checks and lineage still come from ``config.model``.
    """
    from transformers import AutoConfig, AutoTokenizer

    from fmhub.data import load

    task = config.task_spec
    labelled = task.label_column is not None
    input_column = config.text_column or task.input_column
    label_column = (config.label_column or task.label_column) if labelled else None
    data_repo, data_rev = split_ref(config.data, "--data")
    model_repo = model_commit = folder = None
    given = model
    if config.model is not None:
        model_repo, model_rev = split_ref(config.model, "--model")
        model_commit = hub.repo_info(model_repo, revision=model_rev).commit.oid
    data_commit = hub.repo_info(data_repo, repo_type="dataset", revision=data_rev).commit.oid
    if model_repo is not None:
        folder = hub.download(model_repo, revision=model_commit)
        if given is None:
            require_trainable(folder, model_repo, "--model")
    dataset = load(data_repo, revision=data_commit, hub=hub)
    splits = [config.train_split] + ([config.eval_split] if config.eval_split else [])
    for name in splits:
        if name not in dataset:
            raise InvalidInputError(f"dataset {data_repo} has no {name!r} split (it has {', '.join(dataset)})",
                                    hint="name one with --train-split / --eval-split" +
                                         (", or pass --eval-split none" if name == config.eval_split else ""))
    features = dataset[config.train_split].features
    for column in (input_column, label_column) if labelled else (input_column,):
        if column not in features:
            raise InvalidInputError(f"dataset {data_repo} has no column {column!r}; its columns are: "
                                    f"{', '.join(features)}", hint="name it with --text-column / --label-column")
    label_names = task.label_names(features, label_column)
    cache = settings().home / "cache"
    if folder is None:  # from scratch: a tokenizer trained on the corpus, a model from a config
        tokenizer_folder = scratch_tokenizer(config, dataset[config.train_split][input_column], cache / "tokenizers",
                                             {"dataset": data_commit, "split": config.train_split,
                                              "column": input_column})
        tokenizer = AutoTokenizer.from_pretrained(tokenizer_folder)
        built = scratch_config(config, tokenizer)
        for name, value in _attention_dropout(built, config).items():
            setattr(built, name, value)
        model = task.model_class().from_config(built)
    else:
        tokenizer_folder = folder
        base = AutoConfig.from_pretrained(folder)
        if labelled:
            _check_head(base, task, label_names, config)
        positions = getattr(base, "max_position_embeddings", None) or getattr(base, "n_positions", None)
        if positions is not None and config.max_length > positions:
            raise InvalidInputError(f"--max-length {config.max_length} is beyond the model's {positions} positions",
                                    hint=f"use --max-length {positions} or less")
        tokenizer = AutoTokenizer.from_pretrained(folder)
        dropout = _attention_dropout(base, config)
        if given is not None:
            _set_attention_dropout(given, dropout)
            model = given
        elif not labelled:
            model = task.model_class().from_pretrained(folder, **dropout)
        else:
            model = task.model_class().from_pretrained(
                folder, num_labels=len(label_names), id2label=dict(enumerate(label_names)),
                label2id={name: i for i, name in enumerate(label_names)},
                ignore_mismatched_sizes=config.ignore_mismatched_sizes, **dropout, **task.model_options())
    layers_from = keep_layers(model, config.student_layers) if config.student_layers else None
    distiller = teacher_repo = teacher_commit = None
    if config.teacher is not None:
        distiller, teacher_repo, teacher_commit = load_teacher(config, hub, model, tokenizer, label_names,
                                                               task.model_class())
    task = task.bind(tokenizer, num_labels=len(label_names), options=config.to_dict())
    if tokenizer.pad_token_id is None and tokenizer.eos_token_id is not None:
        tokenizer.pad_token = tokenizer.eos_token  # GPT-2 style tokenizers have none; padding is masked out anyway
    key = {"dataset": data_commit, "tokenizer": tokenizer_digest(tokenizer_folder)}
    tokenized = {name: tokenize_split(dataset[name], task, tokenizer, input_column=input_column,
                                      label_column=label_column, max_length=config.max_length,
                                      cache_dir=cache / "tokenized", cache_key={**key, "split": name})
                 for name in splits}
    return Prepared(config, model_repo, model_commit, data_repo, data_commit, folder, tokenizer, model, task,
                    label_names, tokenized[config.train_split],
                    tokenized.get(config.eval_split) if config.eval_split else None, distiller, teacher_repo,
                    teacher_commit, layers_from)


# How transformers configs name the dropout on attention probabilities (BERT/RoBERTa, GPT-2, DistilBERT/Llama).
_ATTENTION_DROPOUT = ("attention_probs_dropout_prob", "attn_pdrop", "attention_dropout")


def _attention_dropout(model_config: Any, config: TrainConfig) -> dict[str, float]:
    """Config overrides setting the attention dropout to ``--attention-dropout`` (none: keep the model's)."""
    if config.attention_dropout is None:
        return {}
    return {name: float(config.attention_dropout) for name in _ATTENTION_DROPOUT if hasattr(model_config, name)}


def _set_attention_dropout(model: Any, overrides: dict[str, float]) -> None:
    """Apply ``--attention-dropout`` to a model already built (its modules read the config when made)."""
    import torch

    for name, value in overrides.items():
        setattr(model.config, name, value)
    if overrides:
        value = next(iter(overrides.values()))
        for module in model.modules():
            if "Attention" in type(module).__name__:
                for attribute in ("dropout", "attn_dropout"):
                    if isinstance(getattr(module, attribute, None), torch.nn.Dropout):
                        getattr(module, attribute).p = value


def _check_head(base: Any, task: Task, label_names: list[str], config: TrainConfig) -> None:
    """A base model that already classifies must have the dataset's labels, unless told otherwise."""
    if not task.recognizes(base) or config.ignore_mismatched_sizes:
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
    torch.set_num_threads(config.threads or int(os.environ.get("OMP_NUM_THREADS", "0"))
                          or max(1, len(os.sched_getaffinity(0))))
    _freeze(model, config)
    model.train()
    world, main = distributed.world_size(), distributed.is_main()
    forward = model
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        forward = DistributedDataParallel(model)
    pad_id = prepared.tokenizer.pad_token_id if prepared.tokenizer.pad_token_id is not None else 0
    train = prepared.train
    lengths = train.lengths
    micro_per_epoch = math.ceil(len(train) / config.batch_size) // world  # each rank's share
    steps_per_epoch = max(1, micro_per_epoch // config.gradient_accumulation)
    total = config.max_steps or max(1, math.ceil(config.epochs * steps_per_epoch))
    decay = [p for n, p in model.named_parameters() if p.requires_grad and not _no_decay(n)]
    no_decay = [p for n, p in model.named_parameters() if p.requires_grad and _no_decay(n)]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": config.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=config.learning_rate)
    factor = _schedule(config, total)
    task = prepared.task
    weights = task.class_weights(train, len(prepared.label_names)) if config.class_weights else None
    loss_fn = task.loss_function(weights, config.label_smoothing)
    distiller = prepared.distiller
    folder = checkpoint_dir(config)
    state: dict[str, Any] = {"epoch": 0, "micro": 0, "best": None, "best_step": None, "bad_evals": 0,
                             "history": [], "samples": 0, "seconds": 0.0}
    step = 0
    if resume and (found := latest_checkpoint(folder)) is not None:
        state = load_checkpoint(found, model, optimizer)
        step = state.pop("step")
    # --keep-zeros: the weight matrices' zeros (a pruned model's) are put back after every optimizer step.
    zeros = [(p, p != 0) for p in model.parameters() if config.keep_zeros and p.requires_grad and p.ndim >= 2
             and bool((p == 0).any())]
    stopped_early = False
    # Throughput counts training time only: evaluation and checkpointing are left out ("seconds" = training).
    started = time.perf_counter() - state["seconds"]
    running_loss, running_count = 0.0, 0

    def training_seconds() -> float:
        return time.perf_counter() - started

    def paused(work: Callable[[], Any]) -> Any:
        nonlocal started
        begin = time.perf_counter()
        try:
            return work()
        finally:
            started += time.perf_counter() - begin

    def save() -> None:
        def write() -> None:
            if main:
                state["seconds"] = training_seconds()
                save_checkpoint(folder, step, model, optimizer, state)
            distributed.barrier()

        paused(write)

    def evaluate_now() -> bool:
        """Evaluate (rank 0), record, update early stopping; True on every rank if training should stop."""
        if prepared.eval is None:
            return False
        state["evaluated_at"] = step  # on every rank, so all ranks agree on whether a final evaluation is due
        if not main:
            return paused(lambda: distributed.broadcast_flag(False))
        return paused(lambda: distributed.broadcast_flag(evaluate_and_update()))

    def evaluate_and_update() -> bool:
        metrics = task.validate(model, prepared.eval, config.batch_size, pad_id, prepared.label_names)
        record = {f"eval_{k}": v for k, v in metrics.items()}
        epoch = step / steps_per_epoch
        state["history"].append({"step": step, "epoch": round(epoch, 4), **record})
        if on_metrics:
            on_metrics(step, epoch, record)
        name = config.metric or task.validation_metrics[0].short
        value = -metrics[name] if name in ("perplexity", "loss") else metrics[name]  # higher is better
        if state["best"] is None or value > state["best"]:
            state["best"], state["best_step"], state["bad_evals"] = value, step, 0
        else:
            state["bad_evals"] += 1
        return bool(config.early_stopping_patience and state["bad_evals"] >= config.early_stopping_patience)

    optimizer.zero_grad(set_to_none=True)
    while step < total and not stopped_early:
        batches = batch_order(lengths, config.batch_size, config.seed, state["epoch"])
        share = len(batches) // world  # every rank takes every world-th batch, the same count each
        batches = batches[distributed.rank():share * world:world] if world > 1 else batches
        usable = len(batches) - len(batches) % config.gradient_accumulation or len(batches)
        while state["micro"] < usable and step < total:
            rows = batches[state["micro"]]
            batch = task.collate(train, rows, pad_id)
            syncs = (state["micro"] + 1) % config.gradient_accumulation == 0
            with contextlib.nullcontext() if syncs or world == 1 else forward.no_sync():
                hidden = {"output_hidden_states": True} if distiller and distiller.wants_hidden_states else {}
                outputs = forward(**task.model_inputs(batch), **hidden)
                loss = task.loss(outputs.logits, batch["labels"], loss_fn)
                if distiller is not None:
                    loss = distiller.loss(outputs, batch, loss, IGNORE)
                if not torch.isfinite(loss):
                    raise TrainingDivergedError(
                        f"the loss became {loss.item()} at step {step + 1}; the last good checkpoint is kept in "
                        f"{folder}", hint="lower --learning-rate, or set --max-grad-norm 1.0, then run again with "
                                          "--resume")
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
            if zeros:
                with torch.no_grad():
                    for parameter, kept in zeros:
                        parameter.mul_(kept)
            step += 1
            running_loss, running_count = distributed.all_sum(running_loss, running_count)
            state["samples"] += int(running_count)
            rate = state["samples"] / max(1e-9, training_seconds())
            train_metrics = {"loss": running_loss / running_count, "learning_rate": lr, "samples_per_second": rate}
            running_loss, running_count = 0.0, 0
            if on_metrics:
                on_metrics(step, step / steps_per_epoch, train_metrics)
            if on_step:
                on_step(step, total, train_metrics["loss"], rate)
            if config.eval_steps and step % config.eval_steps == 0:
                stopped_early = evaluate_now()
                if config.load_best_at_end and not (config.save_steps and step % config.save_steps == 0):
                    save()  # any evaluated step may turn out the best, to come back to at the end
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
    seconds = training_seconds()
    if not stopped_early and state.get("evaluated_at") != step:
        evaluate_now()  # ended by --max-steps inside an epoch: the reported metrics are of the final weights
    final: dict[str, float] = {}
    if state["history"]:
        final = {k: v for k, v in state["history"][-1].items() if k.startswith("eval_")}
    weights_step = step
    best = state["best_step"]
    if config.load_best_at_end and best is not None and best != step:
        load_checkpoint(checkpoint_path(folder, best), model)  # the weights of the best evaluation, not the last
        weights_step = best
        final = {k: v for k, v in next(h for h in state["history"] if h["step"] == best).items()
                 if k.startswith("eval_")}
    in_sync = None
    if world > 1:  # identical weights give bit-identical checksums on every rank
        checksum = float(sum(p.detach().double().sum().item() for p in model.parameters()))
        in_sync = distributed.all_sum(checksum)[0] == checksum * world
    return TrainResult(step, step / steps_per_epoch, final, state["best_step"], state["samples"] / max(seconds, 1e-9),
                       stopped_early, state["history"], ranks_in_sync=in_sync, weights_step=weights_step)


def _no_decay(name: str) -> bool:
    return name.endswith("bias") or "LayerNorm" in name or "layer_norm" in name or "norm.weight" in name
