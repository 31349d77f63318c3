"""Pipeline step records: which version a pipeline step produced for a key (``fmhub run``'s cache).

A step's key is the sha256 of its kind, its resolved options (inputs as ``repo@commit``) and an imported
source's content, so the same key means the same work; ``fmhub run`` skips a step whose key has a record
whose output commit still exists. A record is a kind of run record: it lives beside the training runs, and
a hub server shows it to exactly those who may read its output repo.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select

from fmhub.errors import InvalidInputError
from fmhub.runs import _tables as t
from fmhub.store import Database, validate_repo_id

__all__ = ["PipelineStepRecord", "PipelineSteps"]

_KEY = re.compile(r"^[0-9a-f]{64}$")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
_MAX_DETAIL = 1000


@dataclass(frozen=True)
class PipelineStepRecord:
    """What one pipeline step produced.

    Attributes:
        key: sha256 (hex) of the step's kind, resolved options and inputs.
        output: ``repo@commit`` of the version the step produced (or published).
        metrics: the step's headline numbers (accuracy, rows, speedup...).
        created_at: when it was recorded (set by the store).
    """

    key: str
    pipeline: str
    step: str
    kind: str
    output: str
    metrics: dict[str, float] = field(default_factory=dict)
    detail: str = ""
    created_at: datetime | None = None

    @property
    def output_repo(self) -> str:
        """The repo id of :attr:`output` (the repo whose readers may read this record)."""
        return self.output.rpartition("@")[0]

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "pipeline": self.pipeline, "step": self.step, "kind": self.kind,
                "output": self.output, "metrics": dict(self.metrics), "detail": self.detail,
                "created_at": None if self.created_at is None else self.created_at.isoformat()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PipelineStepRecord:
        created = data.get("created_at")
        return cls(data["key"], data["pipeline"], data["step"], data["kind"], data["output"],
                   {str(k): float(v) for k, v in (data.get("metrics") or {}).items()}, data.get("detail") or "",
                   None if created is None else _aware(datetime.fromisoformat(created)))


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def check_step_key(key: object) -> str:
    """A step key: 64 lower-case hex digits (a sha256)."""
    if not isinstance(key, str) or not _KEY.match(key):
        raise InvalidInputError(f"invalid pipeline step key {key!r}", hint="a key is a sha256: 64 hex digits")
    return key


def _checked(record: PipelineStepRecord) -> PipelineStepRecord:
    """The record with every field in the table's bounds (a bad one is a 400 on a hub server, never a 500)."""
    check_step_key(record.key)
    for name, value, most in (("pipeline", record.pipeline, 200), ("step", record.step, 200),
                              ("kind", record.kind, 32)):
        if not isinstance(value, str) or not value or len(value) > most:
            raise InvalidInputError(f"invalid pipeline step {name} {value!r}", hint=f"use 1-{most} characters")
    repo, _, commit = str(record.output).rpartition("@")
    if not _COMMIT.match(commit):
        raise InvalidInputError(f"invalid pipeline step output {record.output!r}",
                                hint="an output is repo@commit, with the commit's 40 hex digits")
    validate_repo_id(repo)
    metrics: dict[str, float] = {}
    for key, value in dict(record.metrics).items():
        if not isinstance(key, str) or not key or len(key) > 255 or isinstance(value, bool):
            raise InvalidInputError(f"invalid pipeline step metric {key!r}")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise InvalidInputError(f"pipeline step metric {key!r} is not a number: {value!r}") from None
        if math.isfinite(number):
            metrics[key] = number
    return PipelineStepRecord(record.key, record.pipeline, record.step, record.kind, f"{repo}@{commit}", metrics,
                              str(record.detail or "")[:_MAX_DETAIL])


class PipelineSteps:
    """Record and find pipeline step outputs by key, in the metadata database.

    Example:
        >>> steps = PipelineSteps(store.db)
        >>> steps.save(PipelineStepRecord(key, "tiny", "data", "import-data", f"tiny/topics@{oid}"))
        >>> steps.find(key).output
        'tiny/topics@…'
    """

    def __init__(self, db: Database) -> None:
        self.db = db

    def find(self, key: str) -> PipelineStepRecord | None:
        """The record of ``key``, or None."""
        check_step_key(key)
        with self.db.read() as conn:
            row = conn.execute(select(t.pipeline_steps).where(t.pipeline_steps.c.key == key)).first()
        if row is None:
            return None
        return PipelineStepRecord(row.key, row.pipeline, row.step, row.kind, row.output, json.loads(row.metrics),
                                  row.detail, _aware(row.created_at))

    def save(self, record: PipelineStepRecord) -> PipelineStepRecord:
        """Record what a step produced for its key (replacing an older record of the same key)."""
        record = _checked(record)
        now = datetime.now(UTC)
        with self.db.write() as conn:
            conn.execute(t.pipeline_steps.delete().where(t.pipeline_steps.c.key == record.key))
            conn.execute(insert(t.pipeline_steps).values(
                key=record.key, pipeline=record.pipeline, step=record.step, kind=record.kind, output=record.output,
                metrics=json.dumps(record.metrics, sort_keys=True), detail=record.detail, created_at=now))
        return PipelineStepRecord(record.key, record.pipeline, record.step, record.kind, record.output,
                                  record.metrics, record.detail, now)
