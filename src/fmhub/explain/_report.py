"""The report card's ``explanations`` section: attributions on a fixed sample of rows plus the misclassified ones,
their faithfulness against baselines, a global view per class, and — for a variant — agreement with its parent.

What is measured (see ``docs/explain.md``):

- the explained rows: at most ``rows`` (:class:`ExplainOptions`, ``--explain-rows``; 16 by default, 0 leaves the
  section out): misclassified rows drawn with the seed, up to half of them (the error browser shows their
  attributions), the rest sampled with the seed; each explained for its *predicted* label;
- methods: the model's main method (integrated gradients where the format has gradients, else occlusion),
  attention rollout where the model has attention, and a seeded random attribution; each with comprehensiveness,
  sufficiency and deletion AUC per row and their means (the section's ``faithfulness``);
- integrated gradients' completeness per row: the path starts from ``--explain-steps`` uniform points and its
  worst intervals are halved until the attributions sum to f(x) − f(baseline) within the tolerance, up to
  ``--explain-max-steps`` points (every earlier point reused, see ``_integrate``); the steps used and the error are
  reported per row, and rows where it did not hold by then are listed, not hidden; per row also one attention
  pass and three faithfulness batches;
- a global view per predicted class: the tokens with the largest summed attribution (texts), the mean
  attribution per region (images);
- for a variant (``parent`` given): the same rows explained by the same gradient-free or gradient method on the
  parent, Spearman's rank correlation per row, and the share of rows where it is at least
  :data:`KEEPS_REASONS` ("keeps the parent's reasons").

Attributions are kept per row and method in ``explanations.parquet`` beside ``predictions.parquet``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fmhub.explain._base import MAX_STEPS, TOLERANCE, MethodUnavailableError, default_method
from fmhub.explain._faithfulness import BINS, faithfulness, spearman
from fmhub.explain._registry import for_task
from fmhub.options import option

__all__ = ["ExplainOptions", "SectionArgs", "explanations_section", "explained_rows", "KEEPS_REASONS", "RANDOM",
           "SECTION_ROWS", "SECTION_STEPS", "SECTION_MAX_STEPS"]

SECTION_ROWS = 16  # rows a report card explains by default
SECTION_STEPS = 4  # integrated-gradients points per row to start from in a report card
SECTION_MAX_STEPS = 64  # ... raised (the worst intervals halved) up to this until completeness holds

KEEPS_REASONS = 0.7  # a variant keeps its parent's reasons on a row when the rank correlation is at least this
RANDOM = "random"
_TOP_UNITS = 10


@dataclass(frozen=True)
class ExplainOptions:
    """The report card's explanations section: how much of it to compute (``fmhub eval``, a pipeline ``eval`` step,
    the cards of ``fmhub optimize``). The defaults bound the work to a few seconds of a small model's time."""

    explain_rows: int = option(SECTION_ROWS, help="Explanations section: rows explained (misclassified ones drawn "
                                                  "first, up to half; the rest sampled with the seed); 0 leaves the "
                                                  "section out.", check=lambda v: v >= 0, rule="0 (off) or more")
    explain_steps: int = option(SECTION_STEPS, help="Explanations section: integrated-gradients points per row to "
                                                    "start from (raised where the path needs them until "
                                                    "completeness holds, up to --explain-max-steps).",
                                check=lambda v: 2 <= v <= MAX_STEPS, rule=f"between 2 and {MAX_STEPS}")
    explain_max_steps: int = option(SECTION_MAX_STEPS, help="Explanations section: the most integrated-gradients "
                                                            "points per row (rows where completeness does not hold "
                                                            "by then are reported as such; equal to --explain-steps:"
                                                            " fixed steps).", check=lambda v: 2 <= v <= MAX_STEPS,
                                    rule=f"between 2 and {MAX_STEPS}")


@dataclass(frozen=True)
class SectionArgs:
    rows: int = SECTION_ROWS  # rows explained at most: misclassified ones (up to half), the rest sampled
    seed: int = 0
    steps: int = SECTION_STEPS  # integrated-gradients points to start from
    max_steps: int | None = SECTION_MAX_STEPS  # the most points completeness may raise them to (None: ``steps``)
    tolerance: float = TOLERANCE

    @classmethod
    def of(cls, explain: ExplainOptions, seed: int = 0) -> SectionArgs:
        return cls(rows=explain.explain_rows, seed=seed, steps=explain.explain_steps,
                   max_steps=explain.explain_max_steps)

    @property
    def step_limit(self) -> int:
        return max(self.steps, self.max_steps or self.steps)


def _rows(predicted: np.ndarray, gold: np.ndarray, args: SectionArgs) -> tuple[np.ndarray, np.ndarray]:
    """(the sampled rows, the misclassified rows drawn first), both sorted, no row twice, ``args.rows`` at most."""
    n = len(predicted)
    rng = np.random.default_rng(args.seed)
    misclassified = np.flatnonzero(np.asarray(predicted) != np.asarray(gold))
    wrong = np.sort(rng.choice(misclassified, size=min(args.rows // 2, len(misclassified)), replace=False))
    rest = np.setdiff1d(np.arange(n), wrong)
    sampled = np.sort(rng.choice(rest, size=min(args.rows - len(wrong), len(rest)), replace=False))
    return sampled.astype(np.int64), wrong.astype(np.int64)


def explained_rows(predicted: np.ndarray, gold: np.ndarray, args: SectionArgs | None = None) -> int:
    """How many rows the section explains (for a progress bar)."""
    sampled, wrong = _rows(predicted, gold, args or SectionArgs())
    return len(sampled) + len(wrong)


def _unit_key(unit: str) -> str:
    return unit.removeprefix("##").removeprefix("Ġ").removeprefix("▁").lower()


def _global_view(kind: str, grouped: dict[int, list[tuple[list[str], np.ndarray]]], labels: list[str],
                 grid: tuple[int, int] | None) -> list[dict[str, Any]]:
    out = []
    for label in sorted(grouped):
        entries = grouped[label]
        if grid is not None and all(len(s) == grid[0] * grid[1] for _, s in entries):
            mean = np.mean([s for _, s in entries], axis=0)
            out.append({"label": labels[label], "rows": len(entries), "grid": list(grid),
                        "mean_region_attribution": [round(float(x), 6) for x in mean]})
            continue
        total: dict[str, float] = defaultdict(float)
        seen: dict[str, int] = defaultdict(int)
        for units, scores in entries:
            for unit, score in zip(units, scores, strict=True):
                key = _unit_key(unit)
                total[key] += float(score)
                seen[key] += 1
        best = sorted(total, key=lambda k: -total[k])[:_TOP_UNITS]
        out.append({"label": labels[label], "rows": len(entries),
                    "top_units": [{"unit": k, "total": round(total[k], 6), "mean": round(total[k] / seen[k], 6),
                                   "count": seen[k]} for k in best]})
    return out


def explanations_section(loaded: Any, values: list[Any], gold: np.ndarray, predicted: np.ndarray,
                         probabilities: np.ndarray, *, max_length: int, folder: Path, relative: str,
                         args: SectionArgs | None = None, parent: Any = None,
                         on_row: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Build the section (see the module docstring); write ``folder/explanations.parquet``."""
    args = args or SectionArgs()
    explainer = for_task(loaded.task, loaded.repo)
    labels = loaded.labels
    sampled, wrong = _rows(predicted, gold, args)
    rows = np.concatenate([sampled, wrong]).astype(np.int64)
    main = default_method(loaded)
    methods = [main, "attention-rollout", RANDOM]
    comparison_method = None
    if parent is not None:
        comparison_method = "integrated-gradients" if "gradients" in loaded.capabilities & parent.capabilities \
            else "occlusion"
    records: list[dict[str, Any]] = []
    unavailable: dict[str, str] = {}
    per_method: dict[str, list[dict[str, float]]] = defaultdict(list)
    grouped: dict[int, list[tuple[list[str], np.ndarray]]] = defaultdict(list)
    completeness: list[Any] = []
    completed: list[tuple[int, Any]] = []  # (row, its completeness)
    correlations: list[float | None] = []
    top_agree: list[bool] = []
    grid = None
    for row in rows:
        prepared = explainer.prepare(loaded, values[row], max_length=max_length)
        grid = prepared.grid
        target = int(predicted[row])
        original = float(probabilities[row, target])
        mine: dict[str, np.ndarray] = {}
        for method in methods:
            if method in unavailable:
                continue
            if method == RANDOM:
                scores = np.random.default_rng([args.seed, int(row)]).random(len(prepared.units))
                explanation = None
            else:
                try:
                    explanation = explainer.explain(loaded, prepared, method, label=target, steps=args.steps,
                                                    max_steps=args.step_limit, tolerance=args.tolerance,
                                                    probs=probabilities[row])
                except MethodUnavailableError as exc:
                    unavailable[method] = exc.message
                    continue
                scores = np.asarray(explanation.scores)
            mine[method] = scores
            measured = faithfulness(explainer, loaded, prepared, target, scores, original)
            per_method[method].append(measured)
            check = explanation.completeness if explanation is not None else None
            if check is not None and method == main:
                completeness.append(check)
                completed.append((int(row), check))
            if method == main:
                grouped[target].append((prepared.units, scores))
            records.append({"row": int(row), "method": method, "misclassified": bool(predicted[row] != gold[row]),
                            "label": target, "gold": int(gold[row]), "probability": original,
                            "units": list(prepared.units), "scores": [float(x) for x in scores],
                            "spans": [list(s) for s in prepared.spans] if prepared.spans is not None else None,
                            "grid": list(prepared.grid) if prepared.grid is not None else None,
                            "steps": check.steps if check is not None else None,
                            "completeness_error": check.error if check is not None else None,
                            "completeness_holds": check.holds if check is not None else None, **measured})
        if parent is not None:
            theirs = explainer.explain(parent, explainer.prepare(parent, values[row], max_length=max_length),
                                       comparison_method, label=target, steps=args.steps,
                                       max_steps=args.step_limit, tolerance=args.tolerance)
            ours = mine.get(comparison_method)
            if ours is None:
                ours = np.asarray(explainer.explain(loaded, prepared, comparison_method, label=target,
                                                    steps=args.steps, max_steps=args.step_limit,
                                                    tolerance=args.tolerance, probs=probabilities[row]).scores)
            parents = np.asarray(theirs.scores)
            if len(parents) == len(ours):
                correlations.append(spearman(ours, parents))
                top_agree.append(bool(len(ours) and np.argmax(ours) == np.argmax(parents)))
        if on_row is not None:
            on_row(1)
    _write(records, folder / "explanations.parquet", loaded)
    means = {m: {k: float(np.mean([r[k] for r in v])) for k in ("comprehensiveness", "sufficiency", "deletion_auc")}
             for m, v in per_method.items()}
    section: dict[str, Any] = {
        "kind": explainer.name, "unit": explainer.unit, "method": main, "seed": args.seed,
        "rows": {"sampled": len(sampled), "misclassified": len(wrong), "total": len(rows)},
        "explained_label": "predicted", "bins": list(BINS),
        "faithfulness": means,
        "comparison": _comparison(means, main),
        "unavailable": unavailable,
        "global": _global_view(explainer.name, grouped, labels, grid),
        "file": f"{relative}/explanations.parquet",
    }
    if completeness:
        errors = np.asarray([c.error for c in completeness])
        relative = np.asarray([c.error / max(abs(c.expected), 1e-12) for c in completeness])
        section["completeness"] = {"rows": len(completeness), "holds": int(sum(c.holds for c in completeness)),
                                   "tolerance": args.tolerance, "max_error": float(errors.max()),
                                   "median_error": float(np.median(errors)),
                                   "median_relative_error": float(np.median(relative)),
                                   "steps_fixed": args.step_limit <= args.steps, "start_steps": args.steps,
                                   "step_limit": args.step_limit,
                                   "median_steps": int(np.median([c.steps for c in completeness])),
                                   "max_steps": int(max(c.steps for c in completeness)),
                                   "per_row": [{"row": row, "steps": c.steps, "error": c.error,
                                                "relative_error": c.error / max(abs(c.expected), 1e-12),
                                                "holds": c.holds} for row, c in completed],
                                   "not_holding": [row for row, c in completed if not c.holds]}
    if parent is not None:
        known = [c for c in correlations if c is not None]
        keeps = float(np.mean([c >= KEEPS_REASONS for c in known])) if known else None
        section["parent"] = {"repo": parent.repo, "commit": parent.commit, "method": comparison_method,
                             "rows": len(correlations), "spearman_mean": float(np.mean(known)) if known else None,
                             "spearman_median": float(np.median(known)) if known else None,
                             "keeps_reasons_threshold": KEEPS_REASONS, "keeps_reasons": keeps,
                             "top_unit_agreement": float(np.mean(top_agree)) if top_agree else None,
                             "summary": None if keeps is None else
                             f"{loaded.format} keeps the parent's reasons on {keeps:.0%} of rows "
                             f"(Spearman ≥ {KEEPS_REASONS} of {comparison_method} attributions)"}
    return section


def _comparison(means: dict[str, dict[str, float]], main: str) -> dict[str, Any]:
    """The main method's comprehensiveness against each baseline's (ratio > 1: more faithful)."""
    if main not in means:
        return {}
    mine = means[main]["comprehensiveness"]
    out: dict[str, Any] = {}
    for other in (RANDOM, "attention-rollout"):
        if other in means:
            theirs = means[other]["comprehensiveness"]
            out[f"comprehensiveness_vs_{other.replace('-', '_')}"] = mine / theirs if theirs > 0 else None
            out[f"deletion_auc_minus_{other.replace('-', '_')}"] = means[main]["deletion_auc"] - means[other]["deletion_auc"]
    return out


def _write(records: list[dict[str, Any]], path: Path, loaded: Any) -> None:
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([("row", pa.int64()), ("method", pa.string()), ("misclassified", pa.bool_()),
                        ("label", pa.int64()), ("gold", pa.int64()), ("probability", pa.float32()),
                        ("units", pa.list_(pa.string())), ("scores", pa.list_(pa.float32())),
                        ("spans", pa.list_(pa.list_(pa.int32()))), ("grid", pa.list_(pa.int32())),
                        ("steps", pa.int32()), ("completeness_error", pa.float64()),
                        ("completeness_holds", pa.bool_()), ("comprehensiveness", pa.float64()),
                        ("sufficiency", pa.float64()), ("deletion_auc", pa.float64())])
    table = pa.Table.from_pylist(records, schema=schema).replace_schema_metadata({
        "fmhub.labels": json.dumps(loaded.labels), "fmhub.model": f"{loaded.repo}@{loaded.commit}"})
    pq.write_table(table, path, compression="zstd")
