"""``fmhub optimize auto``: the fastest variant of a model that loses at most ``--max-drop`` points of accuracy.

The search builds candidates — chains of the methods of :mod:`fmhub.optimize._methods`: ONNX fp32; int8 (ONNX
dynamic, per channel and per tensor; static with calibration; PyTorch); students of fewer layers, alone and then
int8; attention-head and FFN-neuron pruning with a recovery fine-tune, alone and then int8 — and measures each
on the validation split at every ``--max-lengths`` value (text models): accuracy, batch-1 latency (p50), batch-32
throughput and the size of its weights. Then:

1. the Pareto front over (accuracy, objective) is kept — ``--objective latency`` (batch-1 p50, the default) or
   ``throughput`` (batch-32 rows/s);
2. the pick is the candidate with the best objective whose validation accuracy is within ``--max-drop`` points
   of the parent's (at the parent's own length);
3. only the pick is evaluated on the test split: it is committed to ``--output`` (its weights, its card with the
   whole lineage and the length it reads at, ``auto/search.json`` with every candidate and the front,
   ``auto/search.png``) and its report card against the parent is pushed.

Every step a candidate is made of is an ordinary variant committed to its own repo (``<output>-auto-<name>``),
with its lineage (``fmhub.lineage.chain``), loadable by :func:`fmhub.load` and ``fmhub serve``. A step already
built — same parent commit, method and options — is reused from the hub's step records, as a pipeline's cached
steps are, so a second search (another ``--max-drop``, a killed one) only measures. ``--budget-minutes`` bounds
the search: a candidate whose expected build time no longer fits (with the pick's evaluation) is skipped and
listed as such.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fmhub import formats, options
from fmhub.cards import fmhub_section, parse_card, render_card
from fmhub.client import Hub, UploadFile
from fmhub.data import load as load_dataset
from fmhub.errors import FmhubError, InvalidInputError
from fmhub.evaluate import SECTIONS
from fmhub.evaluate._plots import search_plot
from fmhub.optimize._methods import run_method
from fmhub.optimize._variant import VariantOutcome, open_parent, parents_report, report_against_parent
from fmhub.options import option
from fmhub.refs import split_ref
from fmhub.runs import PipelineStepRecord, environment
from fmhub.store.paths import validate_repo_id

__all__ = ["AutoOptions", "AutoOutcome", "Candidate", "FAMILIES", "OBJECTIVES", "plan", "pareto_front", "pick",
           "auto_optimize", "resolution_note"]

#: The kinds of candidate the search can build (``--skip`` leaves some out).
FAMILIES = ("onnx", "int8", "int8-per-tensor", "static-int8", "torch-int8", "distill", "prune-heads",
            "prune-neurons")
OBJECTIVES = ("latency", "throughput")
_RECIPE = 1  # bumped when a candidate built from the same options would differ
_WEIGHT_SUFFIXES = (".safetensors", ".onnx", ".onnx_data")


def _ints(value: Any) -> tuple[int, ...]:
    values = value.split(",") if isinstance(value, str) else list(value)
    return tuple(int(s) for v in values for s in str(v).split(",") if str(s).strip())


def _names(value: Any) -> tuple[str, ...]:
    values = value.split(",") if isinstance(value, str) else list(value)
    return tuple(s.strip() for v in values for s in str(v).split(",") if s.strip())


@dataclass(frozen=True)
class AutoOptions:
    """What ``fmhub optimize auto`` searches, against what, and within which limits."""

    data: str | None = option(None, help="Dataset whose validation split measures the candidates and whose test "
                                         "split evaluates the pick [default: the parent's training dataset].",
                              show_default=False)
    max_drop: float = option(0.5, help="Most accuracy points (of 100) the pick may lose against the parent on the "
                                       "validation split.", check=lambda v: 0 <= v <= 100, rule="in [0, 100]")
    objective: str = option("latency", help="What the pick is best at: latency (batch-1 p50) or throughput "
                                            "(batch-32 rows/s).", choices=OBJECTIVES)
    budget_minutes: float | None = option(None, help="Stop building candidates when the next one would not finish "
                                                     "(with the pick's evaluation) within this many minutes "
                                                     "[default: no limit].", show_default=False,
                                          check=lambda v: v > 0, rule="positive")
    max_lengths: tuple[int, ...] = option((), help="Text models: token lengths every candidate is measured at "
                                                   "(repeat, or comma-separated) [default: the parent's length, "
                                                   "its half and its quarter, at least 32].", show_default=False,
                                          cli_type=list[str], normalize=_ints,
                                          check=lambda v: all(n >= 8 for n in v), rule="lengths of at least 8")
    student_layers: tuple[int, ...] = option((), help="Layers of the distilled students (repeat, or "
                                                      "comma-separated) [default: about 2/3, 1/2 and 1/3 of the "
                                                      "parent's].", show_default=False, cli_type=list[str],
                                             normalize=_ints, check=lambda v: all(n >= 1 for n in v),
                                             rule="positive")
    distill_epochs: float = option(3.0, help="Passes over the training split of each distillation.",
                                   check=lambda v: v > 0, rule="positive")
    distill_learning_rate: float = option(1e-4, help="Peak learning rate of the distillations.",
                                          check=lambda v: v > 0, rule="positive")
    prune_sparsity: float = option(0.5, help="Share of heads or FFN neurons the pruned candidates remove.",
                                   check=lambda v: 0 < v < 1, rule="between 0 and 1 (exclusive)")
    prune_finetune_steps: int = option(100, help="Recovery fine-tune steps of the pruned candidates.",
                                       check=lambda v: v >= 0, rule="0 (none) or more")
    skip: tuple[str, ...] = option((), help="Candidate families to leave out (repeat, or comma-separated).",
                                   cli_type=list[str], normalize=_names, check=lambda v: set(v) <= set(FAMILIES),
                                   rule=f"among {', '.join(FAMILIES)}")
    split: str = option("validation", help="Split the candidates are measured on.")
    test_split: str = option("test", help="Split the pick's report card is computed on.")
    latency_rows: int = option(32, help="Rows timed one at a time for the batch-1 latency.",
                               check=lambda v: v >= 1, rule="positive")
    threads: int | None = option(None, help="CPU threads of the measurements and trainings [default: the cores "
                                            "available].", show_default=False, check=lambda v: v > 0,
                                 rule="positive")
    eval_skip: tuple[str, ...] = option((), help="Report card sections to leave out (repeat, or comma-separated).",
                                        cli_type=list[str], normalize=_names,
                                        check=lambda v: set(v) <= set(SECTIONS), rule=f"among {', '.join(SECTIONS)}")
    private: bool = option(False, help="Create the output repo (and the candidates' repos) private.")


@dataclass(frozen=True)
class Candidate:
    """A chain of optimization steps from the parent: ``(method, options)`` each, in order."""

    name: str
    family: str
    steps: tuple[tuple[str, dict[str, Any]], ...]


@dataclass
class AutoOutcome(VariantOutcome):
    """The committed pick (a variant of the parent) with the whole search."""

    search: dict[str, Any] = field(default_factory=dict)


def _students(layers: int, asked: tuple[int, ...]) -> list[int]:
    if asked:
        return [k for k in dict.fromkeys(asked) if k < layers]
    return sorted({k for k in (round(layers * 2 / 3), layers // 2, round(layers / 3)) if 1 <= k < layers},
                  reverse=True)


def plan(layers: int | None, trainable: bool, config: AutoOptions, length: int) -> list[Candidate]:
    """The candidates of a parent with ``layers`` layers (``trainable``: torch weights, so it can be distilled,
    pruned and exported), cheapest first; a chain's prefix comes before it (its built steps are reused)."""
    int8: dict[str, Any] = {"min_agreement": 0.0}  # accuracy on the validation split decides, not parity
    found: list[Candidate] = []

    def add(name: str, family: str, *steps: tuple[str, dict[str, Any]]) -> None:
        if family not in config.skip:
            found.append(Candidate(name, family, tuple(steps)))

    if trainable:
        add("onnx-fp32", "onnx", ("export-onnx", {"max_length": length}))
    add("int8", "int8", ("quantize", {**int8, "max_length": length}))
    add("int8-per-tensor", "int8-per-tensor", ("quantize", {**int8, "per_channel": False, "max_length": length}))
    if trainable:
        add("torch-int8", "torch-int8", ("quantize", {**int8, "backend": "torch", "max_length": length}))
    add("static-int8", "static-int8", ("quantize", {**int8, "quantization": "static-int8", "max_length": length}))
    if not trainable:
        return found
    for k in _students(layers or 0, config.student_layers):
        student = ("distill", {"student_layers": k, "epochs": config.distill_epochs, "max_length": length,
                               "learning_rate": config.distill_learning_rate, "eval_split": "none",
                               "threads": config.threads})
        add(f"distill-l{k}", "distill", student)
        add(f"distill-l{k}+int8", "distill", student, ("quantize", {**int8, "max_length": length}))
    for structure in ("heads", "neurons"):
        pruned = ("prune", {"structured": structure, "sparsity": config.prune_sparsity,
                            "finetune_steps": config.prune_finetune_steps, "max_length": length})
        name = f"prune-{structure}-{config.prune_sparsity:g}"
        add(name, f"prune-{structure}", pruned)
        add(f"{name}+int8", f"prune-{structure}", pruned, ("quantize", {**int8, "max_length": length}))
    return found


# -- measuring ------------------------------------------------------------------------------------------------


@dataclass
class _Rows:
    values: list[Any]
    gold: np.ndarray
    texts: bool
    train_rows: int  # of the training split: what a distillation's time scales with


def _rows(hub: Hub, data: str, split: str, loaded: Any) -> _Rows:
    repo, revision = split_ref(data, "--data")
    dataset = load_dataset(repo, revision=revision, hub=hub)
    if split not in dataset:
        raise InvalidInputError(f"{repo} has no {split!r} split to measure candidates on (its splits: "
                                f"{', '.join(dataset)})", hint="name one with --split")
    rows = dataset[split]
    train = len(dataset["train"]) if "train" in dataset else len(rows)
    task = loaded.task
    if len(rows) == 0:
        raise InvalidInputError(f"split {split!r} of {repo} is empty", hint="name another with --split")
    for column in (task.input_column, task.label_column):
        if column not in rows.features:
            raise InvalidInputError(f"{repo} has no column {column!r} (its columns: {', '.join(rows.features)})")
    values = task.read_inputs(rows, task.input_column)
    gold = np.asarray(task.gold(rows, task.label_column, loaded.labels))
    return _Rows(values, gold, isinstance(values[0], str), train)


def _weights_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and p.name.endswith(_WEIGHT_SUFFIXES)) / 1e6


def _measure(loaded: Any, rows: _Rows, lengths: list[int], latency_rows: int,
             advance: Callable[[int], None] | None = None,
             parent: np.ndarray | None = None) -> list[dict[str, Any]]:
    """Accuracy, batch-1 latency p50 and batch-32 throughput of ``loaded`` on ``rows`` at each length; with the
    ``parent``'s predictions, also the rows it gets wrong that the parent gets right (``lost``) and the reverse
    (``won``): the accuracy moves only through them. ``predicted`` holds the predictions (the caller drops it)."""
    task, preprocessor = loaded.task, loaded.preprocessor
    out = []
    for length in lengths:
        logits, began = [], time.perf_counter()
        for i in range(0, len(rows.values), 32):
            logits.append(loaded.logits(task.encode_batch(preprocessor, rows.values[i:i + 32], length)))
            if advance:
                advance(min(32, len(rows.values) - i))
        seconds = time.perf_counter() - began
        predicted = np.concatenate(logits).argmax(-1)
        singles = [task.encode_batch(preprocessor, [v], length) for v in rows.values[:latency_rows]]
        for batch in singles[:2]:  # warm-up: first-call allocations and kernel selection
            loaded.logits(batch)
        times = []
        for batch in singles:
            start = time.perf_counter()
            loaded.logits(batch)
            times.append((time.perf_counter() - start) * 1000)
        if advance:
            advance(len(singles))
        right = predicted == rows.gold
        paired = {} if parent is None else {"lost": int((~right & (parent == rows.gold)).sum()),
                                            "won": int((right & (parent != rows.gold)).sum())}
        out.append({"max_length": length if rows.texts else None, "predicted": predicted,
                    "accuracy": float(right.mean()), **paired,
                    "latency_ms": float(np.median(times)), "throughput": len(rows.values) / seconds,
                    "size_mb": _weights_mb(loaded.folder)})
    return out


# -- the front and the pick -----------------------------------------------------------------------------------


def _better(objective: str) -> Callable[[dict[str, Any]], float]:
    """A key whose larger values are better for ``objective``."""
    return (lambda r: -r["latency_ms"]) if objective == "latency" else (lambda r: r["throughput"])


def pareto_front(rows: list[dict[str, Any]], objective: str) -> list[dict[str, Any]]:
    """The rows no other row beats on both accuracy and the objective (ties kept once)."""
    speed = _better(objective)
    front = []
    for row in rows:
        dominated = any(o is not row and o["accuracy"] >= row["accuracy"] and speed(o) >= speed(row)
                        and (o["accuracy"] > row["accuracy"] or speed(o) > speed(row)) for o in rows)
        if not dominated:
            front.append(row)
    return front


def pick(rows: list[dict[str, Any]], baseline: float, max_drop: float, objective: str) -> dict[str, Any] | None:
    """The row with the best objective whose accuracy is at least ``baseline - max_drop / 100`` (then the most
    accurate, then the smallest); None when no row is."""
    least = baseline - max_drop / 100 - 1e-9
    allowed = [r for r in rows if r["accuracy"] >= least]
    speed = _better(objective)
    return max(allowed, key=lambda r: (speed(r), r["accuracy"], -r["size_mb"]), default=None)


# -- building -------------------------------------------------------------------------------------------------


def _step_key(parent: str, method: str, values: dict[str, Any], data: str) -> str:
    recipe = {"kind": "optimize-auto", "parent": parent, "method": method, "options": values, "data": data,
              "version": _RECIPE}
    return hashlib.sha256(json.dumps(recipe, sort_keys=True, default=str).encode()).hexdigest()


def _exists(hub: Hub, ref: str) -> bool:
    repo, commit = split_ref(ref, "output")
    try:
        hub.repo_info(repo, revision=commit)
        return True
    except FmhubError:
        return False


def _slug(name: str) -> str:
    return name.replace("+", "-").replace(".", "")


class _Search:
    """One search: builds steps (reusing built ones), measures, keeps every row."""

    def __init__(self, hub: Hub, output: str, config: AutoOptions, data: str, progress: Any, hooks: dict[str, Any],
                 deadline: float | None) -> None:
        self.hub, self.output, self.config, self.data = hub, output, config, data
        self.progress, self.hooks, self.deadline = progress, hooks, deadline
        self.built: dict[tuple[Any, ...], tuple[str, bool]] = {}  # chain prefix → (repo@commit, reused)
        self.cost: dict[str, float] = {}  # method → seconds its last build took
        self.reserve = 0.0  # seconds kept for the pick's evaluation and commit
        self.measuring = 0.0  # seconds the last candidate's measurement took
        self.seconds_per_row = 0.0  # the parent's batch-32 time per validation row
        # its own fine-tune on this hardware: seconds per row (forward and backward), and fixed seconds per run
        self.trained: tuple[float, float] | None = None
        self.train_rows = 0
        self.layers = 1

    def fits(self, method: str, values: dict[str, Any]) -> bool:
        if self.deadline is None:
            return True
        expected = self.cost.get(method, 0.0) or self.estimate(method, values)
        return time.monotonic() + expected + self.measuring + self.reserve <= self.deadline

    def estimate(self, method: str, values: dict[str, Any]) -> float:
        """Seconds a training step is expected to take before one was timed. From the parent's own fine-tune when
        its run is on record from this hardware (time per row of a forward and backward pass): a distillation
        runs the teacher forward (a third of that) and the student forward and backward (its share of the
        layers); a recovery fine-tune, the pruned model forward and backward (at most the parent's). Otherwise
        from the parent's measured batch-32 inference rate, a backward pass counted as two forwards."""
        per_row, fixed = self.trained or (3 * self.seconds_per_row, 0.0)
        if method == "distill":
            share = values["student_layers"] / max(1, self.layers)
            return fixed + values["epochs"] * self.train_rows * per_row * (1 / 3 + share)
        if method == "prune":
            return fixed + values.get("finetune_steps", 0) * 16 * per_row
        return 0.0

    def build(self, parent_ref: str, candidate: Candidate) -> tuple[str, bool, float]:
        """``(repo@commit, every step reused, seconds)`` of the candidate's last step."""
        ref, reused, seconds = parent_ref, True, 0.0
        for depth, (method, values) in enumerate(candidate.steps):
            prefix = tuple((m, json.dumps(v, sort_keys=True)) for m, v in candidate.steps[:depth + 1])
            if prefix in self.built:
                ref, again = self.built[prefix]
                reused = reused and again
                continue
            values = {**values, "data": self.data, "private": self.config.private}
            key = _step_key(ref, method, values, self.data)
            cached = self.hub.find_pipeline_step(key)
            if cached is not None and _exists(self.hub, cached.output):
                ref = cached.output
            else:
                if not self.fits(method, values):
                    raise _OverBudget(method)
                began = time.monotonic()
                repo = f"{self.output}-auto-{_slug('+'.join(n for n in _prefix_names(candidate, depth)))}"
                outcome = run_method(method, ref, repo, {**values, "eval": False}, hub=self.hub,
                                     progress=self.progress, source=f"optimize auto ({candidate.name})",
                                     **self.hooks)
                took = time.monotonic() - began
                self.cost[method] = took
                seconds += took
                ref, reused = f"{repo}@{outcome.commit}", False
                self.hub.save_pipeline_step(PipelineStepRecord(
                    key, f"optimize-auto:{self.output}", candidate.name, "optimize", ref,
                    {"seconds": took}, outcome.variant.get("description", method)))
            self.built[prefix] = (ref, cached is not None)
            reused = reused and cached is not None
        return ref, reused, seconds


def _prefix_names(candidate: Candidate, depth: int) -> list[str]:
    """Names of the chain's steps up to ``depth`` (``distill-l3``, ``int8``): the candidate repo's name."""
    parts = candidate.name.split("+")
    return parts[:depth + 1] if len(parts) == len(candidate.steps) else [candidate.name]


class _OverBudget(Exception):
    def __init__(self, method: str) -> None:
        super().__init__(method)
        self.method = method


# -- the whole search -----------------------------------------------------------------------------------------


def _parent_length(parent: Any) -> int:
    try:
        value = json.loads((parent.loaded.folder / "training_args.json").read_text()).get("max_length")
    except (OSError, ValueError, AttributeError):
        value = None
    declared = parent.loaded.variant.get("max_length")
    positions = getattr(parent.loaded.config, "max_position_embeddings", None) or 512
    for length in (declared, value):
        if isinstance(length, int) and not isinstance(length, bool) and length > 0:
            return min(length, positions)
    return min(positions, 512)


def _trained_rate(hub: Hub, parent: Any) -> tuple[float, float] | None:
    """Seconds per row (forward and backward) and fixed seconds (loading, tokenizing, saving) of the parent's own
    fine-tune, when its run is on record and ran on this hardware: a far better guess of a distillation's time than
    inference, which runs without the training engine's savings."""
    run_id = parent.lineage.get("run_id")
    if not isinstance(run_id, str):
        return None
    try:
        run = hub.get_run(run_id)
    except FmhubError:
        return None
    here = environment().hardware
    summary = run.summary or {}
    per_step, fixed, batch = summary.get("seconds_per_step"), summary.get("fixed_seconds", 0.0), \
        (run.config or {}).get("batch_size")
    same = all(run.hardware.get(k) == here.get(k) for k in ("cpu", "cores", "gpus"))
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (per_step, fixed, batch))
    if not same or not numbers or per_step <= 0 or batch <= 0 or fixed < 0:
        return None
    return float(per_step) / batch, float(fixed)


def auto_optimize(model: str, output: str, *, hub: Hub | None = None, progress: Any = None,
                  on_candidate: Callable[[dict[str, Any]], None] | None = None, **values: Any) -> AutoOutcome:
    """Search the variants of ``model`` (REPO[@REV]) and commit the fastest within ``max_drop`` to ``output``.

    ``values`` are :class:`AutoOptions` fields (flat, checked here); ``on_candidate`` gets each candidate's row as it
    is measured (or skipped, or failed); ``on_step`` / ``on_metrics`` / ``command`` go to the trainings.

    Example:
        >>> outcome = auto_optimize("acme/bbc-minilm@v1", "acme/bbc-minilm-fast", max_drop=0.5)
        >>> outcome.search["pick"]["name"], outcome.report["parent"]["speedup"]
    """
    hooks = {k: values.pop(k) for k in ("on_step", "on_metrics", "command") if k in values}
    config = options.from_flat(AutoOptions, {k: v for k, v in values.items() if v is not None},
                               source="optimize auto")
    options.check(config)
    validate_repo_id(output)
    owned = hub is None
    hub = hub or Hub.open()
    try:
        return _auto(hub, model, output, config, progress, on_candidate, hooks)
    finally:
        if owned:
            hub.close()


def _auto(hub: Hub, model: str, output: str, config: AutoOptions, progress: Any,
          on_candidate: Callable[[dict[str, Any]], None] | None, hooks: dict[str, Any]) -> AutoOutcome:
    began = time.monotonic()
    deadline = None if config.budget_minutes is None else began + config.budget_minutes * 60
    if config.threads is not None:  # torch's own pool too (its format loads with the process's threads), as serve
        import torch

        torch.set_num_threads(config.threads)
    parent = open_parent(hub, model, config.threads)
    loaded = parent.loaded
    if not loaded.task.distillable:
        raise InvalidInputError(f"{parent.repo} is a {loaded.task.name} model; optimize auto compares accuracy, so "
                                "it searches single-label classifiers", hint="optimize it with one method instead")
    if loaded.variant.get("quantized"):
        raise InvalidInputError(f"{parent.repo} is already quantized",
                                hint=f"search from its parent {loaded.variant.get('parent', '')}")
    data_ref = config.data or parent.training_data("--data")
    data_repo, data_rev = split_ref(data_ref, "--data")
    data = f"{data_repo}@{hub.repo_info(data_repo, repo_type='dataset', revision=data_rev).commit.oid}"
    rows = _rows(hub, data, config.split, loaded)
    length = _parent_length(parent)
    lengths = [length]
    if rows.texts:
        asked = config.max_lengths or tuple(n for n in (length // 2, length // 4) if n >= 32)
        lengths = sorted({min(n, length) for n in asked} | {length}, reverse=True)
    candidates = plan(getattr(loaded.config, "num_hidden_layers", None), loaded.form.trainable, config, length)
    work = (len(candidates) + 1) * len(lengths)
    advance = progress(f"search ({len(candidates)} candidates)", work) if callable(progress) else None

    # The parent, measured exactly as the candidates are (at its own length: the accuracy to keep).
    began_parent = time.monotonic()
    parent_rows = _measure(loaded, rows, [length], config.latency_rows)
    parent_predicted = parent_rows[0].pop("predicted")
    base = {**parent_rows[0], "name": "parent", "family": "parent", "ref": f"{parent.repo}@{parent.commit}",
            "status": "parent", "build_seconds": 0.0}
    if advance:
        advance(len(lengths))
    search = _Search(hub, output, config, data, progress, hooks, deadline)
    parent_seconds = time.monotonic() - began_parent
    # The pick's report card compares it with the parent's on the test split: the parent's comes first (the stored
    # one, else evaluated now, within the budget), and the time it took bounds the pick's (a faster model, the same
    # sections); a stored one leaves a guess: several passes over the test split at the parent's speed.
    began_card = time.monotonic()
    parent_card, evaluated = parents_report(hub, parent, data=data, split=config.test_split, skip=config.eval_skip,
                                            progress=progress)
    search.reserve = max(30.0, time.monotonic() - began_card if evaluated else 6 * parent_seconds)
    # until a candidate is timed: the parent's time at each length, in proportion to its tokens (candidates are
    # rarely slower than their parent; the first measured one replaces this guess)
    search.measuring = parent_seconds * sum(lengths) / length
    search.seconds_per_row = 1 / base["throughput"]
    search.train_rows, search.layers = rows.train_rows, getattr(loaded.config, "num_hidden_layers", 1) or 1
    search.trained = _trained_rate(hub, parent)
    parent_ref = f"{parent.repo}@{parent.commit}"
    measured: list[dict[str, Any]] = []
    unmeasured: list[dict[str, Any]] = []  # skipped for the budget, or failed
    for candidate in candidates:
        row: dict[str, Any] = {"name": candidate.name, "family": candidate.family,
                               "steps": [{"method": m, **v} for m, v in candidate.steps]}
        try:
            if deadline is not None and time.monotonic() + search.measuring + search.reserve > deadline:
                raise _OverBudget("measuring")
            ref, reused, seconds = search.build(parent_ref, candidate)
            started = time.monotonic()
            variant = formats.load(ref, hub=hub, threads=config.threads)
            figures = _measure(variant, rows, lengths, config.latency_rows, parent=parent_predicted)
            del variant
            search.measuring = time.monotonic() - started
        except _OverBudget as over:
            row.update(status=f"skipped: --budget-minutes (next: {over.method})")
            unmeasured.append(row)
            _tell(on_candidate, row, base)
            if advance:
                advance(len(lengths))
            continue
        except FmhubError as exc:  # a method that refuses this parent, a failed check: the others go on
            row.update(status=f"failed: {exc}")
            unmeasured.append(row)
            _tell(on_candidate, row, base)
            if advance:
                advance(len(lengths))
            continue
        if advance:
            advance(len(lengths))
        for figure in figures:
            del figure["predicted"]
            entry = {**row, **figure, "ref": ref, "status": "reused" if reused else "built",
                     "build_seconds": round(seconds, 1)}
            if figure["max_length"] is not None and figure["max_length"] != length:
                entry["name"] = f"{candidate.name}@{figure['max_length']}"
            measured.append(entry)
            _tell(on_candidate, entry, base)

    front = pareto_front([base, *measured], config.objective)
    chosen = pick(measured, base["accuracy"], config.max_drop, config.objective)
    for entry in [base, *measured]:
        entry["front"] = any(entry is f for f in front)
        entry["picked"] = entry is chosen
    summary = {"parent": base, "candidates": measured, "objective": config.objective, "max_drop": config.max_drop,
               "least_accuracy": base["accuracy"] - config.max_drop / 100, "split": config.split, "data": data,
               "rows": len(rows.gold),
               "lengths": lengths, "front": [e["name"] for e in [base, *measured] if e["front"]],
               "unmeasured": unmeasured, "options": options.to_flat(config),
               "seconds": round(time.monotonic() - began, 1),
               "budget": {"minutes": config.budget_minutes, "parent_seconds": round(parent_seconds, 1),
                          "measuring_seconds": round(search.measuring, 1),
                          "reserve_seconds": round(search.reserve, 1)}}
    if chosen is None or _better(config.objective)(chosen) <= _better(config.objective)(base):
        summary["pick"] = None
        raise NoPickError(summary)
    summary["pick"] = chosen
    outcome = _commit_pick(hub, parent, output, chosen, summary, config)
    report_against_parent(hub, parent, outcome, data=data, split=config.test_split, skip=config.eval_skip,
                          progress=progress, parent_report=parent_card)
    outcome.search = summary
    summary["seconds"] = round(time.monotonic() - began, 1)
    return outcome


def resolution_note(summary: dict[str, Any]) -> str | None:
    """What the split's size means for ``--max-drop``, when one row is worth more than half of it."""
    rows, max_drop = summary.get("rows"), summary["max_drop"]
    if not rows or 100 / rows <= max_drop / 2:
        return None
    return (f"the {summary['split']} split has {rows} rows, so one row is {100 / rows:.2f} accuracy points against "
            f"--max-drop {max_drop:g}: the budget is checked to the nearest row, and a variant's accuracy on other "
            f"rows (the test split's, users') can differ from its {summary['split']} figure by more than the budget. "
            "The lost and won columns count the rows a candidate gets wrong that the parent gets right and the "
            "reverse; a larger --split measures the budget more finely")


def _tell(hook: Callable[[dict[str, Any]], None] | None, row: dict[str, Any], base: dict[str, Any]) -> None:
    if hook is not None:
        hook({**row, "parent": base})


class NoPickError(InvalidInputError):
    """No candidate within ``--max-drop`` is faster than the parent."""

    def __init__(self, summary: dict[str, Any]) -> None:
        budget = summary.get("budget") or {}
        skipped = [r for r in summary["unmeasured"] if str(r.get("status", "")).startswith("skipped: --budget")]
        if not summary["candidates"] and skipped and budget.get("minutes"):
            # the budget pre-empted the whole search: say so, with the figures it was planned from
            least = (budget["parent_seconds"] + budget["measuring_seconds"] + budget["reserve_seconds"]) / 60
            super().__init__(
                f"--budget-minutes {budget['minutes']:g} left no room for any of the {len(skipped)} candidates: "
                f"measuring the parent on the {summary['split']} split took {budget['parent_seconds']:.0f} s, so "
                f"each candidate's measurement was expected to take ~{budget['measuring_seconds']:.0f} s and the "
                f"pick's test evaluation ~{budget['reserve_seconds']:.0f} s",
                hint=f"allow at least {least + 1:.0f} --budget-minutes (more to build students or pruned models), "
                     f"measure at fewer --max-lengths, or time fewer --latency-rows; a busy machine measures slowly")
            self.summary = summary
            return
        best = max((c["accuracy"] for c in summary["candidates"]), default=None)
        found = f" (the most accurate candidate: {best:.2%})" if best is not None else ""
        super().__init__(f"no candidate within --max-drop {summary['max_drop']:g} points of the parent's "
                         f"{summary['parent']['accuracy']:.2%} {summary['split']} accuracy is faster than the "
                         f"parent{found}", hint="allow a larger --max-drop, or more --budget-minutes")
        self.summary = summary


# -- committing the pick --------------------------------------------------------------------------------------


def _table(summary: dict[str, Any]) -> list[str]:
    base = summary["parent"]
    lines = ["| candidate | max length | accuracy | Δ points | lost / won | batch-1 p50 ms | speed-up | "
             "batch-32 rows/s | weights MB | front | status |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|:-:|---|"]
    for r in [base, *sorted(summary["candidates"], key=lambda r: r["latency_ms"])]:
        mark = "★ pick" if r.get("picked") else ("●" if r.get("front") else "")
        lines.append(f"| {r['name']} | {r['max_length'] or ''} | {r['accuracy']:.2%} | "
                     f"{(r['accuracy'] - base['accuracy']) * 100:+.2f} | {_paired(r)} | {r['latency_ms']:.2f} | "
                     f"{base['latency_ms'] / r['latency_ms']:.2f}× | {r['throughput']:.1f} | {r['size_mb']:.1f} | "
                     f"{mark} | {r['status']} |")
    return lines


def _paired(row: dict[str, Any]) -> str:
    return f"{row['lost']} / {row['won']}" if "lost" in row else ""


def _commit_pick(hub: Hub, parent: Any, output: str, chosen: dict[str, Any], summary: dict[str, Any],
                 config: AutoOptions) -> AutoOutcome:
    """Commit the pick's files to ``output`` with a card naming the search, ``auto/search.json`` and the plot."""
    repo, commit = split_ref(chosen["ref"], "pick")
    source = hub.download(repo, revision=commit, exclude=["eval/*"])
    folder = Path(tempfile.mkdtemp(prefix="fmhub-auto-"))
    try:
        shutil.copytree(source, folder, dirs_exist_ok=True)
        card = parse_card((folder / "README.md").read_text(encoding="utf-8"))
        metadata = dict(card.metadata)
        section = dict(metadata.get("fmhub") or {})
        variant = dict(fmhub_section(metadata, "variant"))
        variant.setdefault("format", formats.DEFAULT)
        if chosen["max_length"] is not None:
            variant["max_length"] = chosen["max_length"]
        auto = {"candidate": chosen["ref"], "name": chosen["name"], "objective": config.objective,
                "max_drop": config.max_drop, "data": summary["data"], "split": config.split,
                "candidates": len(summary["candidates"]), "search": "auto/search.json",
                "validation": {k: chosen[k] for k in ("accuracy", "latency_ms", "throughput", "size_mb")},
                "parent_validation": {k: summary["parent"][k] for k in ("accuracy", "latency_ms", "throughput",
                                                                        "size_mb")}}
        variant["auto"] = auto
        variant["description"] = f"{variant.get('description', chosen['name'])} (picked by fmhub optimize auto)"
        section["variant"] = variant
        metadata["fmhub"] = section
        tags = list(metadata.get("tags") or [])
        metadata["tags"] = tags + ([] if "optimize-auto" in tags else ["optimize-auto"])
        body = [card.body.rstrip(), "", "## How it was picked", "",
                f"`fmhub optimize auto` built {len(summary['candidates'])} candidate measurements of "
                f"`{parent.repo}` (at `{parent.commit[:12]}`) and measured each on the `{config.split}` split of "
                f"`{summary['data']}`; the pick is the best by {config.objective} within {config.max_drop:g} "
                f"accuracy points of the parent. The whole search is in `auto/search.json`.", "",
                "![search](auto/search.png)", "", *_table(summary), ""]
        note = resolution_note(summary)
        if note:
            body[-1:-1] = ["", f"Note: {note}."]
        (folder / "README.md").write_text(render_card(metadata, "\n".join(body)))
        (folder / "auto").mkdir(exist_ok=True)
        (folder / "auto" / "search.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
        x = "latency_ms" if config.objective == "latency" else "throughput"
        points = [{"x": r[x], "accuracy": r["accuracy"], "name": r["name"], "front": r.get("front"),
                   "picked": r.get("picked"), "parent": r is summary["parent"]}
                  for r in [summary["parent"], *summary["candidates"]]]
        search_plot(points, summary["least_accuracy"], folder / "auto" / "search",
                    "batch-1 latency p50 (ms)" if x == "latency_ms" else "batch-32 throughput (rows/s)",
                    title=f"{parent.repo}: candidates on {config.split}")
        hub.create_repo(output, private=config.private, exist_ok=True)
        files = sorted(p for p in folder.rglob("*") if p.is_file())
        new = hub.commit(output, [UploadFile(p.relative_to(folder).as_posix(), p) for p in files],
                         title=f"optimize auto: {chosen['name']} of {parent.repo}",
                         message=f"parent: {parent.repo}@{parent.commit}\ncandidate: {chosen['ref']}").oid
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return AutoOutcome(output, new, variant)

