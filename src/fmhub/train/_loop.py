"""The training loop: plain PyTorch over a transformers model, no Trainer.

:func:`prepare` resolves the base model and dataset to commits, loads them and checks every input
against the other (labels vs the model head, max length vs the model's positions, splits present)
before any training starts. :class:`Trainer` trains with AdamW and a warmup + linear/cosine schedule,
gradient accumulation and clipping, evaluates under ``inference_mode``, checkpoints, stops early,
and resumes from the newest checkpoint to the same weights an uninterrupted run reaches. Its state
(:class:`LoopState`) is what a checkpoint saves.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fmhub.client import Hub
from fmhub.constants import settings
from fmhub.data import load as load_dataset
from fmhub.errors import FmhubError, InvalidInputError
from fmhub.formats import require_trainable
from fmhub.refs import split_ref
from fmhub.tasks import IGNORE, Task, TokenizedSplit, batch_order
from fmhub.train import _distributed as distributed
from fmhub.train._checkpoint import checkpoint_path, latest_checkpoint, load_checkpoint, save_checkpoint
from fmhub.train._compute import Precision, compiled, resolve_precision
from fmhub.train._config import TrainConfig
from fmhub.train._data import tokenize_split, tokenizer_digest
from fmhub.train._distill import Distiller, keep_layers, load_teacher
from fmhub.train._first_token import first_token_forward
from fmhub.train._heap import kept_heap

__all__ = ["Prepared", "TrainResult", "TrainingDivergedError", "Trainer", "LoopState", "prepare", "run",
           "checkpoint_dir", "ResumePoint", "resume_point"]

MetricsHook = Callable[[int, float, dict[str, float]], None]  # (step, epoch, metrics)
StepHook = Callable[[int, int, float, float], None]  # (step, total steps, loss, samples/s)


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
    tokenizer: Any  # the preprocessor: a tokenizer, or an image processor
    model: Any
    task: Task
    label_names: list[str]
    train: TokenizedSplit
    eval: TokenizedSplit | None
    distiller: Distiller | None = None  # --teacher
    teacher_repo: str | None = None
    teacher_commit: str | None = None
    layers_from: list[int] | None = None  # --student-layers: the model's layers the student kept
    precision: str = "fp32"  # the --precision used (``auto`` resolved for this hardware)
    seconds: float = 0.0  # what preparing took (resolving, loading, tokenizing or reading the token cache)


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
    checkpoint: Path | None = None  # interrupted by Ctrl-C: the checkpoint saved at the step it stopped at
    timings: dict[str, float] = field(default_factory=dict)  # where the time went (:meth:`Trainer.timings`)
    attention: str | None = None  # bf16 on a CPU: the attention form timed faster here ("sdpa" or "eager")


@dataclass(frozen=True)
class ResumePoint:
    """Where ``--resume`` continues: the newest checkpoint of a configuration, and the run it belongs to."""

    step: int
    checkpoint: Path
    run_id: str | None  # None: a checkpoint written before runs were recorded in it


def resume_point(config: TrainConfig) -> ResumePoint | None:
    """The checkpoint ``--resume`` would continue from (None: there is none, training starts at step 0)."""
    found = latest_checkpoint(checkpoint_dir(config))
    if found is None:
        return None
    saved = json.loads((found / "state.json").read_text())
    return ResumePoint(int(saved["step"]), found, saved.get("run_id"))


def checkpoint_dir(config: TrainConfig) -> Path:
    """Where this configuration's checkpoints live: one folder per output repo and recipe."""
    recipe = {k: v for k, v in config.to_dict().items() if k not in ("threads", "license", "private", "compile")}
    digest = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]
    return settings().home / "checkpoints" / config.output.replace("/", "--") / digest


def prepare(config: TrainConfig, hub: Hub, model: Any = None) -> Prepared:
    """Resolve, download, load and check the base model and dataset (raises InvalidInputError early).

    ``model``: train this in-memory model (e.g. a pruned copy of ``config.model``) instead of loading
    ``config.model``'s weights; its tokenizer, checks and lineage still come from ``config.model``.
    """
    from transformers import AutoConfig

    began = time.perf_counter()
    task = config.task_spec
    labelled = task.label_column is not None
    input_column = config.inputs.text_column or task.input_column
    label_column = (config.inputs.label_column or task.label_column) if labelled else None
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
    dataset = load_dataset(data_repo, revision=data_commit, hub=hub)
    splits = [config.inputs.train_split] + ([config.inputs.eval_split] if config.inputs.eval_split else [])
    for name in splits:
        if name not in dataset:
            raise InvalidInputError(f"dataset {data_repo} has no {name!r} split (it has {', '.join(dataset)})",
                                    hint="name one with --train-split / --eval-split" +
                                         (", or pass --eval-split none" if name == config.inputs.eval_split else ""))
    features = dataset[config.inputs.train_split].features
    for column in (input_column, label_column) if labelled else (input_column,):
        if column not in features:
            raise InvalidInputError(f"dataset {data_repo} has no column {column!r}; its columns are: "
                                    f"{', '.join(features)}", hint="name it with --text-column / --label-column")
    label_names = task.label_names(features, label_column)
    cache = settings().home / "cache"
    if folder is None:  # from scratch: the task's preprocessor (a tokenizer trained on the corpus...), a new model
        preprocessor_folder = task.scratch_preprocessor(
            config.to_dict(), dataset[config.inputs.train_split], input_column, cache,
            {"dataset": data_commit, "split": config.inputs.train_split, "column": input_column})
        tokenizer = task.load_preprocessor(preprocessor_folder)
        built = task.scratch_config(config.to_dict(), tokenizer)
        for name, value in _attention_dropout(built, config).items():
            setattr(built, name, value)
        if labelled:
            built.num_labels = len(label_names)
            built.id2label = dict(enumerate(label_names))
            built.label2id = {name: i for i, name in enumerate(label_names)}
            for name, value in task.model_options().items():
                setattr(built, name, value)
        model = task.model_class().from_config(built)
    else:
        preprocessor_folder = folder
        base = AutoConfig.from_pretrained(folder)
        if labelled:
            _check_head(base, task, label_names, config)
        positions = getattr(base, "max_position_embeddings", None) or getattr(base, "n_positions", None)
        if positions is not None and config.inputs.max_length > positions:
            raise InvalidInputError(f"--max-length {config.inputs.max_length} is beyond the model's {positions} positions",
                                    hint=f"use --max-length {positions} or less")
        tokenizer = task.load_preprocessor(folder)
        dropout = _attention_dropout(base, config)
        if given is not None:
            _set_attention_dropout(given, dropout)
            model = given
        elif not labelled:
            model = task.model_class().from_pretrained(folder, use_safetensors=True, **dropout)
        else:
            model = task.model_class().from_pretrained(
                folder, use_safetensors=True, num_labels=len(label_names), id2label=dict(enumerate(label_names)),
                label2id={name: i for i, name in enumerate(label_names)},
                ignore_mismatched_sizes=config.tuning.ignore_mismatched_sizes, **dropout, **task.model_options())
    layers_from = keep_layers(model, config.distill.student_layers) if config.distill.student_layers else None
    distiller = teacher_repo = teacher_commit = None
    if config.distill.teacher is not None:
        distiller, teacher_repo, teacher_commit = load_teacher(config.distill, hub, model, tokenizer, label_names,
                                                               task.model_class())
    task = task.bind(tokenizer, num_labels=len(label_names), options=config.to_dict())
    if getattr(tokenizer, "pad_token_id", 0) is None and getattr(tokenizer, "eos_token_id", None) is not None:
        tokenizer.pad_token = tokenizer.eos_token  # GPT-2 style tokenizers have none; padding is masked out anyway
    key = {"dataset": data_commit, "tokenizer": tokenizer_digest(preprocessor_folder, task.preprocessor_files)}
    tokenized = {name: tokenize_split(dataset[name], task, tokenizer, input_column=input_column,
                                      label_column=label_column, max_length=config.inputs.max_length,
                                      cache_dir=cache / "tokenized", cache_key={**key, "split": name})
                 for name in splits}
    device = next(model.parameters()).device.type
    return Prepared(config, model_repo, model_commit, data_repo, data_commit, folder, tokenizer, model, task,
                    label_names, tokenized[config.inputs.train_split],
                    tokenized.get(config.inputs.eval_split) if config.inputs.eval_split else None, distiller, teacher_repo,
                    teacher_commit, layers_from, resolve_precision(config.compute.precision, device),
                    time.perf_counter() - began)


# How transformers configs name the dropout on attention probabilities (BERT/RoBERTa, GPT-2, DistilBERT/Llama).
_ATTENTION_DROPOUT = ("attention_probs_dropout_prob", "attn_pdrop", "attention_dropout")


def _attention_dropout(model_config: Any, config: TrainConfig) -> dict[str, float]:
    """Config overrides setting the attention dropout to ``--attention-dropout`` (none: keep the model's)."""
    value = config.attention_dropout
    if value is None:
        return {}
    return {name: value for name in _ATTENTION_DROPOUT if hasattr(model_config, name)}


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
    if not task.recognizes(base) or config.tuning.ignore_mismatched_sizes:
        return
    current = [base.id2label[i] for i in sorted(base.id2label)] if base.id2label else []
    if current != label_names:
        raise InvalidInputError(f"the model's classifier has labels {current}, the dataset {label_names}",
                                hint="pass --ignore-mismatched-sizes to replace the head with a new one "
                                     "for the dataset's labels")


#: --schedule → the transformers scheduler of that shape (each warms up linearly over --warmup-ratio first).
_SCHEDULERS = {"linear": "linear", "cosine": "cosine", "constant": "constant_with_warmup"}


def _schedule(config: TrainConfig, total: int, optimizer: Any) -> Callable[[int], float]:
    """The learning-rate factor of each optimizer step, from ``transformers.get_scheduler`` (the schedules the
    ``Trainer`` uses). Only its factor function is kept: the loop sets the rate from the step it is at, so a
    resumed run needs no scheduler state."""
    from transformers import get_scheduler

    initial = [group["lr"] for group in optimizer.param_groups]
    scheduler = get_scheduler(_SCHEDULERS[config.optimizer.schedule], optimizer,
                              num_warmup_steps=int(config.optimizer.warmup_ratio * total), num_training_steps=total)
    for group, lr in zip(optimizer.param_groups, initial, strict=True):  # the scheduler set factor(0): undo
        group["lr"] = lr
    return scheduler.lr_lambdas[0]


def _freeze(model: Any, config: TrainConfig) -> None:
    base = getattr(model, model.base_model_prefix, model)
    tuning = config.tuning
    if tuning.freeze_embeddings and hasattr(base, "embeddings"):
        for p in base.embeddings.parameters():
            p.requires_grad_(False)
    if tuning.freeze_layers:
        layers = getattr(getattr(base, "encoder", None), "layer", None)
        if layers is None:
            raise InvalidInputError("--freeze-layers: this model has no encoder.layer list to freeze")
        if tuning.freeze_layers > len(layers):
            raise InvalidInputError(f"--freeze-layers {tuning.freeze_layers}: the model has {len(layers)} layers")
        for layer in layers[:tuning.freeze_layers]:
            for p in layer.parameters():
                p.requires_grad_(False)


def _no_decay(name: str) -> bool:
    return name.endswith("bias") or "LayerNorm" in name or "layer_norm" in name or "norm.weight" in name


@dataclass
class LoopState:
    """Where a run is: what a checkpoint saves (``state.json``) and a resumed run starts from."""

    step: int = 0  # optimizer steps done
    epoch: int = 0
    micro: int = 0  # forward passes done in this epoch (of this rank)
    best: float | None = None  # the best value of --metric so far (higher is better: losses negated)
    best_step: int | None = None
    bad_evals: int = 0  # evaluations since the best
    history: list[dict[str, Any]] = field(default_factory=list)  # every evaluation
    samples: int = 0  # training rows seen (all ranks)
    seconds: float = 0.0  # training time: evaluation and checkpointing are left out
    evaluated_at: int | None = None  # the step of the latest evaluation
    run_id: str | None = None  # the run record this training belongs to (a resumed run continues it)

    def to_json(self) -> dict[str, Any]:
        """``state.json`` without ``step`` (the checkpoint names it)."""
        return {k: v for k, v in dataclasses.asdict(self).items() if k != "step"}

    @classmethod
    def from_checkpoint(cls, saved: dict[str, Any]) -> LoopState:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in saved.items() if k in known})


class _Clock:
    """Training time: a running clock that pauses while evaluating or checkpointing."""

    def __init__(self, already: float) -> None:
        self._started = time.perf_counter() - already

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self._started

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        began = time.perf_counter()
        try:
            yield
        finally:
            self._started += time.perf_counter() - began


class Trainer:
    """One run of the loop over ``prepared`` (train the model in place).

    Args:
        resume: continue from the newest checkpoint of this configuration (:func:`checkpoint_dir`).
        on_metrics: called with (step, epoch, metrics) for train and eval metrics.
        on_step: called with (step, total steps, loss, samples/s) after each optimizer step.
        stop_after: stop (as if killed) after this many optimizer steps, after checkpointing; for tests.
        run_id: the run record this training belongs to, saved in every checkpoint so ``--resume`` continues it.
        on_interrupt: called with the current step on the first Ctrl-C (default: a line on stderr). The first
            Ctrl-C stops at the end of the running optimizer step with a checkpoint (the result is
            ``interrupted`` with its ``checkpoint``); a second one stops at once (KeyboardInterrupt).
            Only in the main thread of a single process (torchrun handles signals of DDP ranks).
    """

    def __init__(self, prepared: Prepared, *, resume: bool = False, on_metrics: MetricsHook | None = None,
                 on_step: StepHook | None = None, stop_after: int | None = None, run_id: str | None = None,
                 on_interrupt: Callable[[int], None] | None = None) -> None:
        import torch

        began = time.perf_counter()
        self.prepared = prepared
        self.config = config = prepared.config
        self.task = prepared.task
        self.model = prepared.model
        self.on_metrics, self.on_step, self.stop_after = on_metrics, on_step, stop_after
        torch.manual_seed(config.loop.seed)
        torch.set_num_threads(config.loop.threads or int(os.environ.get("OMP_NUM_THREADS", "0"))
                              or max(1, len(os.sched_getaffinity(0))))
        _freeze(self.model, config)
        self.model.train()
        self.world, self.main = distributed.world_size(), distributed.is_main()
        self.forward = self.model
        if self.world > 1:
            from torch.nn.parallel import DistributedDataParallel

            self.forward = DistributedDataParallel(self.model)
        elif not (prepared.distiller and prepared.distiller.wants_hidden_states):
            # A [CLS]-reading classifier: the last layer computed at the first token only, the same gradients.
            self.forward = first_token_forward(self.model) or self.model
        self.precision = Precision(prepared.precision, next(self.model.parameters()).device.type)
        if config.compute.compile:  # compiled at the first forward pass (the first step's time)
            self.forward = compiled(self.forward)
        pad = getattr(prepared.tokenizer, "pad_token_id", None)  # an image processor pads nothing
        self.pad_id = pad if pad is not None else 0
        loop = config.loop
        micro_per_epoch = math.ceil(len(prepared.train) / loop.batch_size) // self.world  # each rank's share
        self.steps_per_epoch = max(1, micro_per_epoch // loop.gradient_accumulation)
        self.total = loop.max_steps or max(1, math.ceil(loop.epochs * self.steps_per_epoch))
        named = [(n, p) for n, p in self.model.named_parameters() if p.requires_grad]
        self.trained = [p for _, p in named]
        # The fused kernel updates every tensor in one pass: on CPU 2-4x faster than the default per-tensor loop
        # (all-MiniLM-L6-v2's 22M parameters), the same arithmetic.
        fused = {"fused": True} if self.precision.device in ("cpu", "cuda") else {}
        self.optimizer = torch.optim.AdamW(
            [{"params": [p for n, p in named if not _no_decay(n)], "weight_decay": config.optimizer.weight_decay},
             {"params": [p for n, p in named if _no_decay(n)], "weight_decay": 0.0}],
            lr=config.optimizer.learning_rate, **fused)
        self.factor = _schedule(config, self.total, self.optimizer)
        weights = self.task.class_weights(prepared.train, len(prepared.label_names)) \
            if config.optimizer.class_weights else None
        self.loss_fn = self.task.loss_function(weights, config.optimizer.label_smoothing)
        self.folder = checkpoint_dir(config)
        self.state = LoopState()
        if resume and (found := latest_checkpoint(self.folder)) is not None:
            saved = load_checkpoint(found, self.model, self.optimizer, self.precision.scaler)
            self.state = LoopState.from_checkpoint(saved)
        if run_id is not None:
            self.state.run_id = run_id
        self.on_interrupt = on_interrupt
        self.interrupt_requested = False
        # --keep-zeros: the weight matrices' zeros (a pruned model's) are put back after every optimizer step.
        self.zeros = [(p, p != 0) for p in self.model.parameters()
                      if config.tuning.keep_zeros and p.requires_grad and p.ndim >= 2 and bool((p == 0).any())]
        self.clock = _Clock(self.state.seconds)
        self.stopped_early = False
        self._running_loss, self._running_count = 0.0, 0
        # Where the time goes, for the run summary: a step's cost apart from the fixed costs around the steps.
        self._spent = {"setup": time.perf_counter() - began, "evaluate": 0.0, "checkpoint": 0.0}
        self._first_step: tuple[int, float] | None = None  # (step, clock) when this session's first step ended
        self._session = (self.state.step, self.state.seconds)  # where this session started
        self._last_step = self.state.seconds  # the clock when the latest step ended

    # -- the loop ------------------------------------------------------------------------------------------

    def run(self) -> TrainResult:
        with self._first_interrupt_stops_gracefully(), kept_heap():  # each step reuses the last one's memory
            return self._run()

    @contextlib.contextmanager
    def _first_interrupt_stops_gracefully(self) -> Iterator[None]:
        """While training, the first SIGINT asks for a checkpoint and a stop at the next step boundary."""
        if self.world > 1 or threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = signal.getsignal(signal.SIGINT)

        def handler(signum: int, frame: Any) -> None:
            if self.interrupt_requested:  # the second Ctrl-C: stop at once
                signal.signal(signal.SIGINT, previous)
                raise KeyboardInterrupt
            self.interrupt_requested = True
            if self.on_interrupt is not None:
                self.on_interrupt(self.state.step)
            else:
                print(f"Ctrl-C ({self.state.step} steps done): finishing the current step, saving a checkpoint, then "
                      "stopping (press Ctrl-C again to stop at once)", file=sys.stderr, flush=True)

        signal.signal(signal.SIGINT, handler)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)

    def _interrupted(self, saved: bool) -> TrainResult:
        """Stop after Ctrl-C: checkpoint the step just finished (unless ``saved``) and report where it is."""
        state = self.state
        if not saved:
            self._save()
        return TrainResult(state.step, state.step / self.steps_per_epoch, {}, state.best_step, 0.0, False,
                           state.history, interrupted=True, checkpoint=checkpoint_path(self.folder, state.step))

    def _run(self) -> TrainResult:
        state, loop = self.state, self.config.loop
        self.optimizer.zero_grad(set_to_none=True)
        while state.step < self.total and not self.stopped_early:
            batches = self._epoch_batches()
            usable = len(batches) - len(batches) % loop.gradient_accumulation or len(batches)
            while state.micro < usable and state.step < self.total:
                self._forward_backward(batches[state.micro])
                state.micro += 1
                if state.micro % loop.gradient_accumulation:
                    continue
                self._optimizer_step()
                if self.stopped_early or self._cut_short() or self.interrupt_requested:
                    break
            if self.interrupt_requested and state.step < self.total and state.micro < usable:
                return self._interrupted(saved=bool(loop.save_steps and state.step % loop.save_steps == 0))
            if self._cut_short() and state.step < self.total:
                return TrainResult(state.step, state.step / self.steps_per_epoch, {}, state.best_step, 0.0, False,
                                   state.history, interrupted=True)
            if state.micro >= usable:  # the epoch is done: evaluate (unless just done) and checkpoint
                state.epoch += 1
                state.micro = 0
                if not self.stopped_early and not (loop.eval_steps and state.step % loop.eval_steps == 0):
                    self.stopped_early = self._evaluate()
                self._save()
                if self.interrupt_requested and state.step < self.total and not self.stopped_early:
                    return self._interrupted(saved=True)
        return self._finish()

    def _epoch_batches(self) -> list[Any]:
        """This rank's batches of the current epoch: a function of (seed, epoch), the same after a resume."""
        state, loop = self.state, self.config.loop
        batches = batch_order(self.prepared.train.lengths, loop.batch_size, loop.seed, state.epoch)
        share = len(batches) // self.world  # every rank takes every world-th batch, the same count each
        return batches[distributed.rank():share * self.world:self.world] if self.world > 1 else batches

    def _cut_short(self) -> bool:
        return self.stop_after is not None and self.state.step >= self.stop_after

    def _forward_backward(self, rows: Any) -> None:
        """One forward and backward pass of a micro-batch (gradients accumulate until the optimizer step)."""
        state, loop, distiller = self.state, self.config.loop, self.prepared.distiller
        batch = self.task.collate(self.prepared.train, rows, self.pad_id, train=True)
        syncs = (state.micro + 1) % loop.gradient_accumulation == 0
        with contextlib.nullcontext() if syncs or self.world == 1 else self.forward.no_sync():
            hidden = {"output_hidden_states": True} if distiller and distiller.wants_hidden_states else {}
            with self.precision.autocast():  # the teacher's forward pass too
                outputs = self.forward(**self.task.model_inputs(batch), **hidden)
                loss = self.task.loss(outputs.logits, batch["labels"], self.loss_fn)
                if distiller is not None:
                    loss = distiller.loss(outputs, batch, loss, IGNORE)
            value = loss.item()  # one read of the loss per micro-batch: the divergence check and the running mean
            if not math.isfinite(value):
                raise TrainingDivergedError(
                    f"the loss became {value} at step {state.step + 1}; the last good checkpoint is kept in "
                    f"{self.folder}", hint="lower --learning-rate, or set --max-grad-norm 1.0, then run again with "
                                           "--resume")
            self.precision.backward(loss / loop.gradient_accumulation)
        self._running_loss += value * len(rows)
        self._running_count += len(rows)

    def _optimizer_step(self) -> None:
        """Clip, step with the scheduled learning rate, keep zeros, report, and evaluate or checkpoint if due."""
        import torch

        state, config = self.state, self.config
        lr = config.optimizer.learning_rate * self.factor(state.step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        # Clipped inside the fused AdamW kernel; fp16: skipped (and the loss scale lowered) if gradients overflowed.
        self.precision.step(self.optimizer, self.trained, config.optimizer.max_grad_norm)
        self.optimizer.zero_grad(set_to_none=True)
        if self.zeros:
            with torch.no_grad():
                for parameter, kept in self.zeros:
                    parameter.mul_(kept)
        state.step += 1
        loss, count = distributed.all_sum(self._running_loss, self._running_count)
        self._running_loss, self._running_count = 0.0, 0
        state.samples += int(count)
        self._last_step = self.clock.seconds
        if self._first_step is None:
            self._first_step = (state.step, self._last_step)
        rate = state.samples / max(1e-9, self.clock.seconds)
        metrics = {"loss": loss / count, "learning_rate": lr, "samples_per_second": rate}
        if self.on_metrics:
            self.on_metrics(state.step, state.step / self.steps_per_epoch, metrics)
        if self.on_step:
            self.on_step(state.step, self.total, metrics["loss"], rate)
        loop = config.loop
        if loop.eval_steps and state.step % loop.eval_steps == 0:
            self.stopped_early = self._evaluate()
            if loop.load_best_at_end and not (loop.save_steps and state.step % loop.save_steps == 0):
                self._save()  # any evaluated step may turn out the best, to come back to at the end
        if loop.save_steps and state.step % loop.save_steps == 0:
            self._save()

    # -- evaluation and checkpoints ------------------------------------------------------------------------

    def _save(self) -> None:
        with self.clock.paused(), self._timed("checkpoint"):
            if self.main:
                self.state.seconds = self.clock.seconds
                save_checkpoint(self.folder, self.state.step, self.model, self.optimizer, self.state.to_json(),
                                scaler=self.precision.scaler)
            distributed.barrier()

    def _evaluate(self) -> bool:
        """Evaluate (rank 0), record, update early stopping; True on every rank if training should stop."""
        if self.prepared.eval is None:
            return False
        self.state.evaluated_at = self.state.step  # on every rank: all agree on whether a final evaluation is due
        with self.clock.paused(), self._timed("evaluate"):
            return distributed.broadcast_flag(self._evaluate_and_update() if self.main else False)

    def _evaluate_and_update(self) -> bool:
        state, loop = self.state, self.config.loop
        prepared = self.prepared
        metrics = self.task.validate(self.model, prepared.eval, loop.batch_size, self.pad_id, prepared.label_names)
        record = {f"eval_{k}": v for k, v in metrics.items()}
        epoch = state.step / self.steps_per_epoch
        state.history.append({"step": state.step, "epoch": round(epoch, 4), **record})
        if self.on_metrics:
            self.on_metrics(state.step, epoch, record)
        name = loop.metric or self.task.validation_metrics[0].short
        value = -metrics[name] if name in ("perplexity", "loss") else metrics[name]  # higher is better
        if state.best is None or value > state.best:
            state.best, state.best_step, state.bad_evals = value, state.step, 0
        else:
            state.bad_evals += 1
        return bool(loop.early_stopping_patience and state.bad_evals >= loop.early_stopping_patience)

    def _finish(self) -> TrainResult:
        """The final evaluation (if the last step was not evaluated), the best weights if asked, the result."""
        state = self.state
        seconds = self.clock.seconds
        if not self.stopped_early and state.evaluated_at != state.step:
            self._evaluate()  # ended by --max-steps inside an epoch: the reported metrics are of the final weights
        final: dict[str, float] = {}
        if state.history:
            final = {k: v for k, v in state.history[-1].items() if k.startswith("eval_")}
        weights_step = state.step
        best = state.best_step
        if self.config.loop.load_best_at_end and best is not None and best != state.step:
            load_checkpoint(checkpoint_path(self.folder, best), self.model)  # the best evaluation's weights
            weights_step = best
            final = {k: v for k, v in next(h for h in state.history if h["step"] == best).items()
                     if k.startswith("eval_")}
        in_sync = None
        if self.world > 1:  # identical weights give bit-identical checksums on every rank
            checksum = float(sum(p.detach().double().sum().item() for p in self.model.parameters()))
            in_sync = distributed.all_sum(checksum)[0] == checksum * self.world
        return TrainResult(state.step, state.step / self.steps_per_epoch, final, state.best_step,
                           state.samples / max(seconds, 1e-9), self.stopped_early, state.history,
                           ranks_in_sync=in_sync, weights_step=weights_step, timings=self.timings(),
                           attention=getattr(self.forward, "attention", None))

    @contextlib.contextmanager
    def _timed(self, what: str) -> Iterator[None]:
        began = time.perf_counter()
        try:
            yield
        finally:
            self._spent[what] += time.perf_counter() - began

    def timings(self) -> dict[str, float]:
        """This session's time, split into the cost of a step and the fixed costs around the steps.

        The first step carries one-off costs (memory allocation, oneDNN kernel selection, compilation with
        ``--compile``), so the cost of a step is the mean over the later ones; ``first_step_extra_seconds`` is what
        the first took beyond it (slightly negative when it had none and the machine's load varied).
        """
        start_step, start_seconds = self._session
        seconds = self._last_step
        steps, trained = self.state.step - start_step, seconds - start_seconds
        found: dict[str, float] = {"setup_seconds": self._spent["setup"], "train_seconds": trained,
                                   "evaluate_seconds": self._spent["evaluate"],
                                   "checkpoint_seconds": self._spent["checkpoint"]}
        if self._first_step is not None and steps > 1:
            first_step, first_clock = self._first_step
            per_step = (seconds - first_clock) / (self.state.step - first_step)
            found["seconds_per_step"] = per_step
            found["first_step_extra_seconds"] = first_clock - start_seconds - per_step  # < 0: noise, no warm-up
        elif steps == 1:
            found["first_step_seconds"] = trained
        return found


def run(prepared: Prepared, *, resume: bool = False, on_metrics: MetricsHook | None = None,
        on_step: StepHook | None = None, stop_after: int | None = None, run_id: str | None = None,
        on_interrupt: Callable[[int], None] | None = None) -> TrainResult:
    """Train ``prepared.model`` in place (see :class:`Trainer`)."""
    return Trainer(prepared, resume=resume, on_metrics=on_metrics, on_step=on_step, stop_after=stop_after,
                   run_id=run_id, on_interrupt=on_interrupt).run()
