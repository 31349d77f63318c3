"""The index of pushed report cards in the hub's metadata: list model versions by metric."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select

from fmhub.store import _schema as t
from fmhub.store._db import Database

__all__ = ["Evaluations", "EvaluationInfo", "flat_metrics"]


@dataclass(frozen=True)
class EvaluationInfo:
    model: str
    model_commit: str
    card_commit: str
    dataset: str
    dataset_commit: str
    split: str
    task: str
    report_path: str
    metrics: dict[str, float]
    created_at: datetime


def flat_metrics(report: dict[str, Any]) -> dict[str, float]:
    """The numbers versions are compared by: task metrics, ECE, efficiency, baseline (finite values only)."""
    out: dict[str, Any] = dict(report.get("metrics", {}))
    calibration = report.get("calibration", {})
    out["ece"] = calibration.get("ece")
    efficiency = report.get("efficiency", {})
    if "latency_ms" in efficiency:
        out["latency_p50_ms"] = efficiency["latency_ms"]["p50"]
        out["latency_p95_ms"] = efficiency["latency_ms"]["p95"]
        out["throughput_samples_per_second"] = efficiency["throughput"]["samples_per_second"]
        out["parameters"] = efficiency["parameters"]
        out["weights_bytes"] = efficiency["weights_bytes"]
    for perturbation in report.get("robustness", {}).get("perturbations", []):
        for key, value in perturbation["delta"].items():
            out[f"robustness_{perturbation['name']}_{key}_delta"] = value
    for key, value in report.get("baseline", {}).get("metrics", {}).items():
        out[f"baseline_{key}"] = value
    return {k: float(v) for k, v in out.items() if isinstance(v, (int, float)) and math.isfinite(v)}


def _row(row: Any) -> EvaluationInfo:
    created = row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=UTC)
    return EvaluationInfo(row.model, row.model_commit, row.card_commit, row.dataset, row.dataset_commit, row.split,
                          row.task, row.report_path, json.loads(row.metrics), created.astimezone(UTC))


class Evaluations:
    """Record and query pushed evaluations (one row per report card commit)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def record(self, *, model: str, model_commit: str, card_commit: str, report: dict[str, Any],
               report_path: str) -> None:
        dataset = report["provenance"]["dataset"]
        with self.db.write() as conn:
            conn.execute(insert(t.evaluations).values(
                model=model, model_commit=model_commit, card_commit=card_commit, dataset=dataset["repo"],
                dataset_commit=dataset["commit"], split=dataset["split"], task=report["task"],
                report_path=report_path, metrics=json.dumps(flat_metrics(report), sort_keys=True),
                created_at=datetime.now(UTC)))

    def list(self, *, model: str | None = None, dataset: str | None = None, split: str | None = None,
             limit: int = 100) -> list[EvaluationInfo]:
        """Newest first."""
        query = select(t.evaluations).order_by(t.evaluations.c.created_at.desc(), t.evaluations.c.pk.desc())
        for column, value in (("model", model), ("dataset", dataset), ("split", split)):
            if value is not None:
                query = query.where(t.evaluations.c[column] == value)
        with self.db.read() as conn:
            return [_row(r) for r in conn.execute(query.limit(limit))]

    def find(self, model: str, model_commit: str, dataset_commit: str, split: str) -> EvaluationInfo | None:
        """The newest card of exactly this model version on this dataset version and split."""
        query = (select(t.evaluations)
                 .where(t.evaluations.c.model == model, t.evaluations.c.model_commit == model_commit,
                        t.evaluations.c.dataset_commit == dataset_commit, t.evaluations.c.split == split)
                 .order_by(t.evaluations.c.created_at.desc(), t.evaluations.c.pk.desc()).limit(1))
        with self.db.read() as conn:
            row = conn.execute(query).first()
        return _row(row) if row is not None else None
