"""The index of pushed report cards in the hub's metadata: list model versions by metric.

A card is indexed from the ``report.json`` the hub holds at the card's commit (never from what a client
says it contains): the embedded hub reads it from its store, a hub server from its own store when a
client asks it to index a commit (``POST /api/fmhub/evaluations``).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select

from fmhub.errors import InvalidInputError
from fmhub.evaluations import _tables as t
from fmhub.store import Database, validate_path

__all__ = ["Evaluations", "EvaluationInfo", "flat_metrics", "check_report_path", "stored_report", "same_weights"]

_SHA1 = re.compile(r"^[0-9a-f]{40}$")
_TASK = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")  # a task's name (the stages' task registry names them)


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

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "created_at": self.created_at.isoformat()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EvaluationInfo:
        return cls(**{**data, "created_at": datetime.fromisoformat(data["created_at"]).astimezone(UTC)})


def check_report_path(path: object) -> str:
    """A validated repo path of a card: ``eval/<dataset repo>/<split>/report.json``."""
    checked = validate_path(path)
    if not (checked.startswith("eval/") and checked.endswith("/report.json") and checked.count("/") >= 4):
        raise InvalidInputError(f"{checked!r} is not a report card path",
                                hint="cards live at eval/<dataset repo>/<split>/report.json")
    return checked


def _parsed(data: bytes, repo: str, path: str) -> tuple[dict[str, Any], dict[str, float]]:
    """The report's JSON, with the fields the index uses checked (a bad card is a 400, never a 500)."""
    try:
        report = json.loads(data)
        prov = report["provenance"]
        model, dataset = prov["model"], prov["dataset"]
        fields_ok = (_TASK.match(str(report["task"])) and isinstance(report.get("metrics"), dict)
                     and model["repo"] == repo and _SHA1.match(str(model["commit"]))
                     and isinstance(dataset["repo"], str) and _SHA1.match(str(dataset["commit"]))
                     and isinstance(dataset["split"], str))
        metrics = flat_metrics(report) if fields_ok else {}
    except (ValueError, KeyError, TypeError, AttributeError):
        fields_ok = False
    if not fields_ok:
        raise InvalidInputError(f"{path} in {repo} is not an fmhub report card of that model",
                                hint="push cards with fmhub eval --push")
    return report, metrics

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

    def record(self, model: str, card_commit: str, report_path: str, data: bytes) -> EvaluationInfo:
        """Index the card ``report_path`` holding ``data`` (the bytes at ``card_commit`` of ``model``)."""
        report, metrics = _parsed(data, model, report_path)
        dataset = report["provenance"]["dataset"]
        info = EvaluationInfo(model, report["provenance"]["model"]["commit"], card_commit, dataset["repo"],
                              dataset["commit"], dataset["split"], report["task"], report_path, metrics,
                              datetime.now(UTC))
        with self.db.write() as conn:
            conn.execute(insert(t.evaluations).values(
                model=info.model, model_commit=info.model_commit, card_commit=info.card_commit,
                dataset=info.dataset, dataset_commit=info.dataset_commit, split=info.split, task=info.task,
                report_path=info.report_path, metrics=json.dumps(info.metrics, sort_keys=True),
                created_at=info.created_at))
        return info

    def list(self, *, model: str | None = None, dataset: str | None = None, split: str | None = None,
             limit: int = 100) -> list[EvaluationInfo]:
        """Newest first."""
        query = select(t.evaluations).order_by(t.evaluations.c.created_at.desc(), t.evaluations.c.pk.desc())
        for column, value in (("model", model), ("dataset", dataset), ("split", split)):
            if value is not None:
                query = query.where(t.evaluations.c[column] == value)
        with self.db.read() as conn:
            return [_row(r) for r in conn.execute(query.limit(limit))]


def same_weights(infos: list[EvaluationInfo], commit: str) -> list[str]:
    """``commit`` and the commits holding the same weights that the index knows of: a card commit (which only
    adds ``eval/`` files and the card) stands for the model commit it scored, and so on back."""
    scored = {info.card_commit: info.model_commit for info in infos}
    chain = [commit]
    while chain[-1] in scored and scored[chain[-1]] not in chain:
        chain.append(scored[chain[-1]])
    return chain


def stored_report(hub: Any, repo: str, commit: str, data_commit: str, split: str) -> dict[str, Any] | None:
    """The newest pushed card of this model commit on this dataset commit and split, if the hub has one.

    ``commit`` may be the commit ``fmhub eval --push`` made (the repo's head right after it): its card is
    indexed under the weights commit it scored, which is the same model.
    """
    infos = hub.list_evaluations(model=repo, limit=10_000)
    weights = same_weights(infos, commit)
    for info in infos:
        if info.model_commit in weights and info.dataset_commit == data_commit and info.split == split:
            return json.loads(hub.read_bytes(repo, info.report_path, info.card_commit))
    return None
