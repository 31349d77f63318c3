"""``fmhub eval``: one standard report card for a model version on a dataset version.

The report (``report.json``, schema :data:`SCHEMA_ID`, documented in ``report.schema.json``) holds
provenance, task metrics, calibration, robustness under seeded perturbations, slices, efficiency and a
cheap baseline; every prediction is kept in ``predictions.parquet`` beside it, so each metric can be
recomputed independently. Everything is checked (model head, labels, split, columns) before the
model runs, and nothing is pushed unless the whole card was built.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from fmhub import options, tasks
from fmhub.client import Hub
from fmhub.constants import settings
from fmhub.data import load as load_dataset
from fmhub.errors import InvalidInputError
from fmhub.evaluate import _plots
from fmhub.evaluate._efficiency import measure_efficiency
from fmhub.evaluate._publish import push_report
from fmhub.explain import ExplainOptions, SectionArgs, explained_rows, explanations_section
from fmhub.formats import load_folder, variant_of
from fmhub.refs import split_ref
from fmhub.runs import environment
from fmhub.tasks import Scored, Task, _metrics

__all__ = ["EvalConfig", "EvalOutcome", "evaluate", "parent_comparison", "SCHEMA_ID", "SECTIONS", "report_folder",
           "task_of_model"]

SCHEMA_ID = "https://fmhub.dev/schemas/eval-report/v1"
#: The optional sections ``--skip`` can leave out (each then records ``{"skipped": reason}``).
SECTIONS = ("robustness", "slices", "efficiency", "baseline", "explanations")
_MAX_SLICES = 50
_MAX_POSITIONS = 512


@dataclass(frozen=True)
class EvalConfig:
    """What to evaluate on what (each field is an ``fmhub eval`` option of the same name)."""

    model: str  # REPO[@REV]
    data: str  # REPO[@REV] of the dataset
    split: str = "test"
    train_split: str = "train"  # the baseline's training rows
    text_column: str | None = None  # default: text (token classification: tokens)
    label_column: str | None = None  # default: label (token classification: tags)
    slice_by: str | None = None  # a dataset column; length buckets are always reported
    max_length: int | None = None  # default: the model's training max length, else its positions (≤ 512)
    batch_size: int = 32
    seed: int = 0  # perturbations and masked-LM positions
    latency_runs: int = 20
    skip: tuple[str, ...] = ()
    threads: int | None = None
    explain: ExplainOptions = field(default_factory=ExplainOptions)  # --explain-rows, --explain-steps, --explain-max-steps

    def validate(self) -> None:
        split_ref(self.model, "MODEL")
        split_ref(self.data, "--data")
        unknown = sorted(set(self.skip) - set(SECTIONS))
        if unknown:
            raise InvalidInputError(f"--skip {', '.join(unknown)}: no such section",
                                    hint=f"choose from {', '.join(SECTIONS)}")
        for name, value, low in (("max_length", self.max_length, 8), ("batch_size", self.batch_size, 1),
                                 ("latency_runs", self.latency_runs, 1), ("threads", self.threads, 1)):
            if value is not None and value < low:
                raise InvalidInputError(f"--{name.replace('_', '-')} {value} must be at least {low}")
        options.check(self.explain)

    def to_dict(self) -> dict[str, Any]:
        return options.to_flat(self)


@dataclass
class EvalOutcome:
    report: dict[str, Any]
    folder: Path  # holds eval/<dataset>/<split>/ (report.json, predictions.parquet, plots/)
    commit: str | None = None  # the model repo commit holding the card, when pushed
    files: list[str] = field(default_factory=list)  # repo paths written under ``folder``


Progress = Callable[[str, int], None]  # (stage description, rows in the stage); then advance(rows)


def report_folder(data_repo: str, split: str) -> str:
    """Where a dataset split's card lives in the model repo: ``eval/<dataset repo>/<split>``."""
    return f"eval/{data_repo}/{split}"


def task_of_model(model_config: Any, repo: str) -> Task:
    """The task a model's head does; a model no report card can score yet is an input error (see the hint)."""
    task = tasks.for_model(model_config, repo)
    if task.report_card is not None:
        raise InvalidInputError(f"{repo} is {task.report_card}",
                                hint="its validation metrics from fmhub train are in its card's model-index")
    return task


# -- preparation: everything checked before the model runs --------------------------------------------


@dataclass
class _Inputs:
    config: EvalConfig
    task: Task
    model_repo: str
    model_commit: str
    folder: Path
    data_repo: str
    data_commit: str
    content_hash: str
    rows: Any  # the evaluated datasets.Dataset
    train_rows: Any | None
    input_column: str
    label_column: str | None
    label_names: list[str]  # the model's, in id order
    gold: Any  # the task's gold labels in the model's ids (None for tasks without labels)
    max_length: int
    loaded: Any = None  # fmhub.formats.LoadedModel
    tokenizer: Any = None  # the preprocessor (a tokenizer, an image processor)
    _values: list[Any] | None = None

    @property
    def values(self) -> list[Any]:
        """The input column's values as the task reads them (texts; images undecoded), read once."""
        if self._values is None:
            self._values = self.task.read_inputs(self.rows, self.input_column)
        return self._values


def _prepare(config: EvalConfig, hub: Hub) -> _Inputs:
    from transformers import AutoConfig

    model_repo, model_rev = split_ref(config.model, "MODEL")
    data_repo, data_rev = split_ref(config.data, "--data")
    model_commit = hub.repo_info(model_repo, revision=model_rev).commit.oid
    data_commit = hub.repo_info(data_repo, repo_type="dataset", revision=data_rev).commit.oid
    folder = hub.download(model_repo, revision=model_commit, exclude=["eval/*"])
    model_config = AutoConfig.from_pretrained(folder)
    task = task_of_model(model_config, model_repo)
    dataset = load_dataset(data_repo, revision=data_commit, hub=hub)
    if config.split not in dataset:
        raise InvalidInputError(f"dataset {data_repo} has no {config.split!r} split; its splits are: "
                                f"{', '.join(dataset)}", hint="name one with --split")
    rows = dataset[config.split]
    if len(rows) == 0:
        raise InvalidInputError(f"split {config.split!r} of {data_repo} is empty: nothing to evaluate",
                                hint="evaluate another --split")
    input_column = config.text_column or task.input_column
    label_column = (config.label_column or task.label_column) if task.label_column is not None else None
    for column in (input_column, label_column):
        if column is not None and column not in rows.features:
            raise InvalidInputError(f"dataset {data_repo} has no column {column!r}; its columns are: "
                                    f"{', '.join(rows.features)}", hint="name it with --text-column / --label-column")
    if config.slice_by is not None and config.slice_by not in rows.features:
        raise InvalidInputError(f"--slice-by {config.slice_by!r}: no such column; the columns are: "
                                f"{', '.join(rows.features)}")
    label_names = task.labels_of(model_config)
    gold = task.gold(rows, label_column, label_names)
    max_length = config.max_length or _trained_length(folder) or min(
        _positions(model_config) or _MAX_POSITIONS, _MAX_POSITIONS)
    positions = _positions(model_config)
    if positions is not None and max_length > positions:
        raise InvalidInputError(f"--max-length {max_length} is beyond the model's {positions} positions",
                                hint=f"use --max-length {positions} or less")
    train_rows = dataset[config.train_split] if config.train_split in dataset else None
    return _Inputs(config, task, model_repo, model_commit, folder, data_repo, data_commit,
                   _content_hash(hub, data_repo, data_commit, config.split), rows, train_rows, input_column,
                   label_column, label_names, gold, max_length)


def _positions(model_config: Any) -> int | None:
    return getattr(model_config, "max_position_embeddings", None) or getattr(model_config, "n_positions", None)


def _trained_length(folder: Path) -> int | None:
    """The length the model reads texts at: its card's ``fmhub.variant.max_length`` (a variant picked at a shorter
    length, ``fmhub optimize auto``), else the training run's."""
    declared = variant_of(folder).get("max_length")
    if isinstance(declared, int) and not isinstance(declared, bool) and declared > 0:
        return declared
    try:
        value = json.loads((folder / "training_args.json").read_text()).get("max_length")
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, int) and value > 0 else None


def _content_hash(hub: Hub, repo: str, commit: str, split: str) -> str:
    """sha256 over the split's Parquet files (path and blob sha256): the rows, independent of the commit."""
    digest = hashlib.sha256()
    for entry in hub.list_files(repo, commit, repo_type="dataset", folder="data"):
        name = entry.path.rsplit("/", 1)[-1]
        if name.startswith(f"{split}-") or name.startswith(f"{split}."):
            digest.update(f"{entry.path}\t{entry.blob_sha256}\n".encode())
    return "sha256:" + digest.hexdigest()


# -- the report's sections ----------------------------------------------------------------------------


def _run(inputs: _Inputs, values: list[Any], gold: Any, progress: Progress | None, stage: str) -> Scored:
    on_rows = progress(stage, len(values)) if progress is not None else None
    return inputs.task.score(inputs.loaded.logits, inputs.tokenizer, values, gold, labels=inputs.label_names,
                             max_length=inputs.max_length, batch_size=inputs.config.batch_size,
                             seed=inputs.config.seed, on_rows=on_rows)


def _calibration(inputs: _Inputs, scored: Scored) -> dict[str, Any]:
    found = inputs.task.calibration_inputs(scored)
    if found is None:
        return {"skipped": "calibration applies to classifiers"}
    confidence, correct, basis = found
    return {"bins_count": 15, "basis": basis, **_metrics.calibration(confidence, correct, bins=15)}


def _robustness(inputs: _Inputs, clean: Scored, progress: Progress | None) -> dict[str, Any]:
    task = inputs.task
    base = task.headline(clean.metrics)
    out = []
    for name, description in task.perturbations.items():
        changed, gold = task.perturb(name, inputs.values, inputs.gold, inputs.config.seed)
        same = task.unchanged_for_model(inputs.tokenizer, inputs.values, changed, inputs.max_length)
        if same.all():  # e.g. truncating texts the --max-length cut already shortens more: no result, not a Δ of 0
            out.append({"name": name, "description": description, "applicable": False, "rows_changed": 0,
                        "note": f"no input changes as the model sees it (after the {inputs.max_length}-token cut)",
                        "metrics": {k: None for k in base}, "delta": {k: None for k in base}})
            continue
        metrics = task.headline(_run(inputs, changed, gold, progress, f"robustness: {name}").metrics)
        out.append({"name": name, "description": description, "applicable": True,
                    "rows_changed": int((~same).sum()), "metrics": metrics,
                    "delta": {k: (None if v is None or base[k] is None else v - base[k]) for k, v in metrics.items()}})
    return {"seed": inputs.config.seed, "perturbations": out}


def _slices(inputs: _Inputs, scored: Scored) -> list[dict[str, Any]]:
    primary = inputs.task.primary_metric
    unit = inputs.task.size_unit  # words, pixels...
    sizes = inputs.task.sizes(inputs.values)
    edges = sorted({int(e) for e in np.quantile(sizes, [0.25, 0.5, 0.75])}) if len(sizes) else []
    bucket = np.searchsorted(np.asarray(edges), sizes, side="left")

    def bucket_name(b: int) -> str:
        if b == len(edges):
            return f"> {edges[-1]} {unit}" if edges else "all"
        return f"≤ {edges[0]} {unit}" if b == 0 else f"{edges[b - 1] + 1}–{edges[b]} {unit}"

    groupings = [("length", [(bucket_name(b), np.flatnonzero(bucket == b)) for b in range(len(edges) + 1)])]
    if inputs.config.slice_by is not None:
        column = inputs.config.slice_by
        feature = inputs.rows.features[column]
        values = inputs.rows[column]
        if any(isinstance(v, (list, dict)) for v in values[:100]):
            raise InvalidInputError(f"--slice-by {column!r} holds lists, not one value per row",
                                    hint="slice by a column with one value per row (a label, a source, a language)")
        names = getattr(feature, "names", None)
        shown = np.asarray([str(names[v]) if names is not None and v is not None and v >= 0 else str(v)
                            for v in values], dtype=object)
        distinct = sorted(set(shown.tolist()))
        if len(distinct) > _MAX_SLICES:
            raise InvalidInputError(f"--slice-by {column!r} has {len(distinct)} distinct values; slices need at most "
                                    f"{_MAX_SLICES}", hint="slice by a column with few values (a label, a source)")
        groupings.append((f"column:{column}", [(value, np.flatnonzero(shown == value)) for value in distinct]))
    out = []
    for by, members in groupings:
        groups = [{"value": value, "rows": int(len(rows)),
                   "metrics": inputs.task.group_metrics(scored, rows, inputs.label_names)}
                  for value, rows in members if len(rows)]
        out.append({"by": by, "metric": primary, "groups": groups,
                    "largest_gap": _metrics.largest_gap(groups, primary)})
    return out


def _efficiency(inputs: _Inputs) -> dict[str, Any]:
    example = inputs.task.efficiency_input(inputs.tokenizer, inputs.values, inputs.max_length)
    return {**measure_efficiency(inputs.loaded, example, inputs.config.latency_runs),
            "measured_on": inputs.task.describe_input(example)}


def _baseline(inputs: _Inputs, scored: Scored) -> dict[str, Any]:
    config = inputs.config
    if inputs.train_rows is None or len(inputs.train_rows) == 0:
        return {"skipped": f"the dataset has no {config.train_split!r} split to train a baseline on"}
    train = inputs.train_rows
    task = inputs.task
    name, metrics = task.baseline(train, inputs.input_column, inputs.label_column, inputs.values, inputs.gold,
                                  scored, labels=inputs.label_names, preprocessor=inputs.tokenizer,
                                  max_length=inputs.max_length, seed=config.seed)
    headline = task.headline(metrics)
    model = task.headline(scored.metrics)
    return {"name": name, "train_split": config.train_split, "train_rows": len(train),
            "trained_on_evaluated_split": config.train_split == config.split, "metrics": headline,
            "model_minus_baseline": {k: (None if v is None or headline[k] is None else v - headline[k])
                                     for k, v in model.items()}}


def _explanations(inputs: _Inputs, clean: Scored, folder: Path, relative: str, hub: Hub,
                  parent_report: dict[str, Any] | None, progress: Progress | None) -> dict[str, Any]:
    """Attributions on a sample plus the misclassified rows, their faithfulness, and (variants) agreement with
    the parent (``fmhub.explain``)."""
    if inputs.task.explains is None or clean.predicted is None or clean.probabilities is None:
        return {"skipped": f"fmhub explain does not explain {inputs.task.name} models"}
    if inputs.config.explain.explain_rows == 0:
        return {"skipped": "--explain-rows 0"}
    parent = None
    if parent_report is not None:
        model = parent_report["provenance"]["model"]
        parent_folder = hub.download(model["repo"], revision=model["commit"], exclude=["eval/*"])
        parent = load_folder(parent_folder, model["repo"], model["commit"], inputs.config.threads)
    args = SectionArgs.of(inputs.config.explain, seed=inputs.config.seed)
    gold, predicted = np.asarray(clean.gold), np.asarray(clean.predicted)
    on_row = progress("explanations", explained_rows(predicted, gold, args)) if progress is not None else None
    return explanations_section(inputs.loaded, inputs.values, gold, predicted, np.asarray(clean.probabilities),
                                max_length=inputs.max_length, folder=folder, relative=relative, args=args,
                                parent=parent, on_row=on_row)


# -- the report ---------------------------------------------------------------------------------------


def _provenance(inputs: _Inputs, started: datetime, seconds: float) -> dict[str, Any]:
    import torch

    env = environment()
    return {"model": {"repo": inputs.model_repo, "commit": inputs.model_commit, "requested": inputs.config.model},
            "dataset": {"repo": inputs.data_repo, "commit": inputs.data_commit, "split": inputs.config.split,
                        "rows": len(inputs.rows), "content_hash": inputs.content_hash,
                        "requested": inputs.config.data},
            "fmhub_version": env.code_version, "libraries": env.libraries, "hardware": env.hardware,
            "torch_threads": torch.get_num_threads(), "seed": inputs.config.seed,
            "created_at": started.isoformat(timespec="seconds"), "seconds": round(seconds, 3),
            "options": inputs.config.to_dict()}


def _write_predictions(inputs: _Inputs, scored: Scored, path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns: dict[str, Any] = {"row": pa.array(np.arange(len(inputs.rows), dtype=np.int64)),
                               **inputs.task.prediction_columns(scored, inputs.label_names)}
    table = pa.table(columns).replace_schema_metadata({
        "fmhub.task": inputs.task.name, "fmhub.labels": json.dumps(inputs.label_names),
        "fmhub.model": f"{inputs.model_repo}@{inputs.model_commit}",
        "fmhub.dataset": f"{inputs.data_repo}@{inputs.data_commit}:{inputs.config.split}"})
    pq.write_table(table, path, compression="zstd")


def _write_plots(inputs: _Inputs, report: dict[str, Any], folder: Path) -> list[Path]:
    """The plots the report's sections call for (a confusion matrix where there is one, ...)."""
    plots = folder / "plots"
    written: list[Path] = []
    if "confusion_matrix" in report:
        written += _plots.confusion_matrix_plot(report["confusion_matrix"], inputs.label_names,
                                                plots / "confusion_matrix")
    if "per_class" in report:
        written += _plots.per_class_f1_plot(report["per_class"], plots / "per_class_f1")
    if "per_type" in report:
        written += _plots.per_class_f1_plot(report["per_type"], plots / "per_type_f1", key="type")
    if "ece" in report["calibration"]:
        written += _plots.reliability_plot(report["calibration"]["bins"], report["calibration"]["ece"],
                                           plots / "reliability")
    primary = inputs.task.primary_metric
    if "perturbations" in report["robustness"]:
        written += _plots.robustness_plot(report["robustness"]["perturbations"], primary, plots / "robustness")
    if isinstance(report["slices"], list):
        for grouping in report["slices"]:
            stem = "slices_" + "".join(c if c.isalnum() else "_" for c in grouping["by"])
            written += _plots.slices_plot(grouping["groups"], primary, plots / stem,
                                          f"{primary} by {grouping['by'].removeprefix('column:')}")
    return written


def parent_comparison(report: dict[str, Any], parent: dict[str, Any]) -> dict[str, Any]:
    """A variant's card against its parent's (same dataset split): metric deltas, size, latency, throughput ratios."""
    def ratio(a: Any, b: Any) -> float | None:
        return float(a) / float(b) if isinstance(a, (int, float)) and isinstance(b, (int, float)) and b else None

    mine, theirs = report.get("efficiency", {}), parent.get("efficiency", {})
    latency = (mine.get("latency_ms", {}).get("p50"), theirs.get("latency_ms", {}).get("p50"))
    speed = (mine.get("throughput", {}).get("samples_per_second"),
             theirs.get("throughput", {}).get("samples_per_second"))
    return {"repo": parent["provenance"]["model"]["repo"], "commit": parent["provenance"]["model"]["commit"],
            "metrics": {k: parent["metrics"].get(k) for k in report["metrics"]},
            "delta": {k: (None if v is None or parent["metrics"].get(k) is None else v - parent["metrics"][k])
                      for k, v in report["metrics"].items()},
            "size_ratio": ratio(mine.get("weights_bytes"), theirs.get("weights_bytes")),
            "latency_ratio": ratio(latency[0], latency[1]),  # < 1: faster than the parent
            "speedup": ratio(latency[1], latency[0]),
            "throughput_ratio": ratio(speed[0], speed[1])}


def evaluate(config: EvalConfig, hub: Hub | None = None, *, output_dir: Path | str | None = None, push: bool = False,
             progress: Progress | None = None, parent_report: dict[str, Any] | None = None) -> EvalOutcome:
    """Build the report card of ``config.model`` on ``config.data``; write it under ``output_dir``; push it.

    ``output_dir`` (default: a folder under ``$FMHUB_HOME/evals``) receives ``eval/<dataset>/<split>/``;
    ``push`` commits those files and the updated model card to the model repo and indexes the report.
    ``parent_report`` (an optimized variant's parent, on the same split) adds the ``parent`` section:
    metric deltas and size, latency and throughput ratios.
    """
    import torch

    config.validate()
    owned = hub is None
    hub = hub or Hub.open()
    try:
        started, clock = datetime.now(UTC), time.perf_counter()
        inputs = _prepare(config, hub)
        torch.set_num_threads(config.threads or int(os.environ.get("OMP_NUM_THREADS", "0"))
                              or max(1, len(os.sched_getaffinity(0))))
        torch.manual_seed(config.seed)
        inputs.loaded = load_folder(inputs.folder, inputs.model_repo, inputs.model_commit, config.threads)
        inputs.tokenizer = inputs.loaded.tokenizer
        clean = _run(inputs, inputs.values, inputs.gold, progress, "predictions")
        report: dict[str, Any] = {"$schema": SCHEMA_ID, "schema_version": 1, "task": inputs.task.name,
                                  "labels": inputs.label_names, "input_column": inputs.input_column,
                                  "max_length": inputs.max_length,
                                  **clean.sections}
        report["calibration"] = _calibration(inputs, clean)
        skipped = {"skipped": "--skip"}
        report["robustness"] = skipped if "robustness" in config.skip else _robustness(inputs, clean, progress)
        report["slices"] = skipped if "slices" in config.skip else _slices(inputs, clean)
        if progress is not None and not {"efficiency", "baseline"} <= set(config.skip):
            progress("efficiency and baseline", 0)
        report["efficiency"] = skipped if "efficiency" in config.skip else _efficiency(inputs)
        report["baseline"] = skipped if "baseline" in config.skip else _baseline(inputs, clean)
        root = Path(output_dir) if output_dir is not None else \
            settings().home / "evals" / f"{inputs.model_repo.replace('/', '--')}--{inputs.model_commit[:12]}"
        relative = report_folder(inputs.data_repo, config.split)
        folder = root / relative
        folder.mkdir(parents=True, exist_ok=True)
        report["explanations"] = skipped if "explanations" in config.skip else \
            _explanations(inputs, clean, folder, relative, hub, parent_report, progress)
        _write_predictions(inputs, clean, folder / "predictions.parquet")
        plots = _write_plots(inputs, report, folder)
        report["files"] = {"predictions": f"{relative}/predictions.parquet",
                           "plots": sorted(f"{relative}/{p.relative_to(folder).as_posix()}" for p in plots)}
        if "file" in report["explanations"]:
            report["files"]["explanations"] = report["explanations"]["file"]
        if parent_report is not None:
            report["parent"] = parent_comparison(report, parent_report)
        report["provenance"] = _provenance(inputs, started, time.perf_counter() - clock)
        (folder / "report.json").write_text(json.dumps(report, indent=2, sort_keys=False) + "\n")
        outcome = EvalOutcome(report, root, files=[f"{relative}/report.json", report["files"]["predictions"],
                                                   *report["files"]["plots"],
                                                   *([report["files"]["explanations"]]
                                                     if "explanations" in report["files"] else [])])
        if push:
            outcome.commit = push_report(hub, inputs.model_repo, inputs.model_commit, outcome,
                                         revision=split_ref(config.model, "MODEL")[1])
        return outcome
    finally:
        if owned:
            hub.close()
