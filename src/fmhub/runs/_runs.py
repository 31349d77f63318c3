"""Training runs as records in the hub's metadata database: inputs, environment, status, metrics."""

from __future__ import annotations

import json
import math
import operator
import os
import platform
import re
import secrets
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from fmhub._version import __version__
from fmhub.errors import AmbiguousRunError, InvalidInputError, RunNotFoundError
from fmhub.runs import _tables as t
from fmhub.store import Database

__all__ = ["Runs", "RunInfo", "MetricPoint", "StepMetrics", "Environment", "environment", "RUN_STATUSES",
           "FINAL_STATUSES", "RUN_ID_PREFIX"]

#: Every status a run can have; a run starts ``running`` and ends in one of :data:`FINAL_STATUSES`.
RUN_STATUSES = ("running", "completed", "failed", "stopped")
FINAL_STATUSES = ("completed", "failed", "stopped")
#: Run ids are this prefix and 12 hex digits (48 random bits), e.g. ``r-1a2b3c4d5e6f``.
RUN_ID_PREFIX = "r-"
_ID_HEX = 12
_MIN_PREFIX = 4  # hex digits a prefix needs, as short commit ids need 7
_HEX = re.compile(r"^[0-9a-f]+$")
_MAX_KEY = 255
_MAX_STEP = 2**31 - 1  # the column is a 32-bit INTEGER on PostgreSQL
_CANDIDATES = 50  # rows a prefix is resolved among (before the caller's visibility filter)
#: The libraries whose versions decide what a training run computes (read from package metadata, not
#: imported, so recording them costs nothing).
_LIBRARIES = ("torch", "transformers", "datasets", "tokenizers", "numpy")


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime | None) -> datetime | None:
    """Everything fmhub stores is UTC: SQLite hands back naive datetimes, PostgreSQL the session's zone."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# -- environment ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Environment:
    """Where a run ran: fmhub's version, the ML libraries' versions, the machine."""

    code_version: str
    libraries: dict[str, str]  # name -> version; "python" included; libraries not installed are absent
    hardware: dict[str, Any]  # cpu, cores, ram_gib, gpus (names; [] for none), os; unknown fields absent

    def to_json(self) -> dict[str, Any]:
        return {"code_version": self.code_version, "libraries": dict(self.libraries), "hardware": dict(self.hardware)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Environment:
        return cls(str(data["code_version"]), dict(data.get("libraries") or {}), dict(data.get("hardware") or {}))


def environment() -> Environment:
    """Describe this process's code, libraries and machine. Never fails: what cannot be read is left out."""
    libraries = {"python": platform.python_version()}
    for name in _LIBRARIES:
        try:
            libraries[name] = importlib_metadata.version(name)
        except Exception:  # not installed, or broken metadata: absent
            pass
    hardware: dict[str, Any] = {}
    for name, probe in (("cpu", _cpu_model), ("cores", os.cpu_count), ("ram_gib", _ram_gib), ("gpus", _gpus),
                        ("os", platform.platform)):
        try:
            value = probe()
        except Exception:  # a probe that fails leaves its field out, never the run
            continue
        if value is not None:
            hardware[name] = value
    return Environment(__version__, libraries, hardware)


def _cpu_model() -> str | None:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")) and ":" in line:
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or None


def _ram_gib() -> float | None:
    if not hasattr(os, "sysconf"):
        return None
    return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)


def _gpus() -> list[str]:
    """GPU names. Asks torch only if the caller already imported it (importing it here costs seconds)."""
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    names = []
    for info in sorted(Path("/proc/driver/nvidia/gpus").glob("*/information")):  # NVIDIA's driver, no CUDA needed
        for line in info.read_text(errors="replace").splitlines():
            if line.startswith("Model:"):
                names.append(line.split(":", 1)[1].strip())
    return names


# -- records ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunInfo:
    """One training run as recorded. Repos are ``namespace/name`` ids, commits full oids."""

    id: str
    name: str
    task: str
    status: str  # one of RUN_STATUSES
    config: dict[str, Any]
    command: str
    base_model: str | None
    base_commit: str | None
    dataset: str | None
    dataset_commit: str | None
    output: str | None
    output_commit: str | None
    code_version: str
    libraries: dict[str, str]
    hardware: dict[str, Any]
    created_by: str | None
    started_at: datetime
    ended_at: datetime | None
    summary: dict[str, Any] | None  # final metrics, once finished

    @property
    def duration(self) -> timedelta:
        """How long it ran (so far, for a running run)."""
        return (self.ended_at or _now()) - self.started_at

    def to_json(self) -> dict[str, Any]:
        data = {f: getattr(self, f) for f in self.__dataclass_fields__}
        data["started_at"] = self.started_at.isoformat()
        data["ended_at"] = None if self.ended_at is None else self.ended_at.isoformat()
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunInfo:
        values = {f: data.get(f) for f in cls.__dataclass_fields__}
        values["started_at"] = _parse_time(data["started_at"])
        values["ended_at"] = None if data.get("ended_at") is None else _parse_time(data["ended_at"])
        return cls(**values)


@dataclass(frozen=True)
class MetricPoint:
    step: int
    epoch: float | None
    key: str
    value: float
    at: datetime

    def to_json(self) -> dict[str, Any]:
        return {"step": self.step, "epoch": self.epoch, "key": self.key, "value": self.value,
                "at": self.at.isoformat()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MetricPoint:
        epoch = data.get("epoch")
        return cls(int(data["step"]), None if epoch is None else float(epoch), str(data["key"]), float(data["value"]),
                   _parse_time(data["at"]))


@dataclass(frozen=True)
class StepMetrics:
    """Metric values logged at one training step: what :meth:`Runs.log_many` (and a hub) takes in a batch."""

    step: int
    metrics: dict[str, float]
    epoch: float | None = None

    def to_json(self) -> dict[str, Any]:
        """JSON-safe: non-finite values (which are never stored) are left out, as JSON has no spelling for them."""
        metrics = {k: float(v) for k, v in self.metrics.items() if _finite_number(v)}
        epoch = None if self.epoch is None or not math.isfinite(float(self.epoch)) else float(self.epoch)
        return {"step": int(self.step), "epoch": epoch, "metrics": metrics}


def _finite_number(value: Any) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return True  # not a number at all: kept, so the hub refuses it by name (InvalidInputError)


def _parse_time(value: str) -> datetime:
    return _aware(datetime.fromisoformat(value))  # type: ignore[return-value]


def _json(value: Any) -> str:
    # default=str: configs carry paths and enums; the record is for people and diffs, not for round trips.
    return json.dumps(_finite(value), sort_keys=True, default=str, allow_nan=False)


def _finite(value: Any) -> Any:
    """NaN and ±inf become null: JSON has no spelling for them."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _check_status(status: str, allowed: tuple[str, ...]) -> str:
    if status not in allowed:
        raise InvalidInputError(f"invalid run status {status!r}", hint=f"use one of: {', '.join(allowed)}")
    return status


def _metric_value(key: object, value: object) -> float:
    if not isinstance(key, str) or not key or len(key) > _MAX_KEY:
        raise InvalidInputError(f"invalid metric name {key!r}", hint=f"use 1-{_MAX_KEY} characters, e.g. eval_loss")
    try:
        return float(value)  # type: ignore[arg-type]  # int, numpy and 0-d torch scalars too
    except (TypeError, ValueError):
        raise InvalidInputError(f"metric {key!r} is not a number: {value!r}") from None


def _checked_step(step: object) -> int:
    try:
        checked = -1 if isinstance(step, bool) else operator.index(step)  # ints and numpy integers
    except TypeError:
        checked = -1
    if not 0 <= checked <= _MAX_STEP:
        raise InvalidInputError(f"invalid step {step!r}", hint=f"steps are integers from 0 to {_MAX_STEP}")
    return checked


def _checked_epoch(epoch: object) -> float | None:
    try:
        value = float(epoch)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InvalidInputError(f"epoch {epoch!r} is not a number") from None
    return value if math.isfinite(value) else None


class Runs:
    """Training runs, stored beside the repos (same database, same transaction discipline).

    Example:
        >>> runs = Runs(store.db)
        >>> run = runs.start(task="text-classification", config={"lr": 5e-5}, command="fmhub train ...",
        ...                  base_model="acme/minilm", base_commit=oid, dataset="acme/bbc-news",
        ...                  dataset_commit=data_oid, output="acme/minilm-bbc")
        >>> runs.log(run.id, step=100, metrics={"loss": 0.41}, epoch=0.5)
        >>> runs.finish(run.id, "completed", summary={"eval_accuracy": 0.97}, output_commit=out_oid)
        >>> runs.latest_metrics(run.id[:6])
        {'loss': 0.41}
    """

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- writing --------------------------------------------------------------------------------

    def start(self, *, task: str, config: dict[str, Any], command: str, base_model: str | None,
              base_commit: str | None, dataset: str | None, dataset_commit: str | None, output: str | None,
              name: str | None = None, created_by: str | None = None, env: Environment | None = None) -> RunInfo:
        """Record a new ``running`` run with the environment it runs in.

        Args:
            task: what is trained, e.g. ``text-classification``.
            config: the resolved config (JSON-able; other values are stored as their ``str``).
            command: the command line that started it.
            name: a label for people (default: ``<task>-<YYYYmmdd-HHMMSS>``).
            env: where it runs (default: this process, see :func:`environment`); a hub server records the
                training machine's, which the client sends.
        """
        if not isinstance(task, str) or not task or len(task) > 64:
            raise InvalidInputError(f"invalid task {task!r}", hint="use 1-64 characters, e.g. text-classification")
        if name is not None and (not name.strip() or len(name) > 255):
            raise InvalidInputError(f"invalid run name {name!r}", hint="use 1-255 characters")
        env = env or environment()
        now = _now()
        values = dict(
            name=name or f"{task}-{now:%Y%m%d-%H%M%S}", task=task, status="running", config=_json(config),
            command=command, base_model=base_model, base_commit=base_commit, dataset=dataset,
            dataset_commit=dataset_commit, output=output, output_commit=None, code_version=env.code_version,
            libraries=_json(env.libraries), hardware=_json(env.hardware), created_by=created_by, started_at=now,
            ended_at=None, summary=None,
        )
        with self.db.write() as conn:
            while True:  # 48 random bits: a collision is all but impossible, and retried if it happens
                run_id = RUN_ID_PREFIX + secrets.token_hex(_ID_HEX // 2)
                if conn.execute(select(t.runs.c.id).where(t.runs.c.id == run_id)).first() is None:
                    break
            conn.execute(insert(t.runs).values(id=run_id, **values))
            return self._info(self._row(conn, run_id))

    def log(self, run_id: str, step: int, metrics: dict[str, float], epoch: float | None = None) -> int:
        """Record metric values at a training step, all in one transaction.

        Non-finite values (NaN, ±inf) are skipped without error: a diverging loss must not stop training,
        and "no value at this step" is what they mean for curves and comparisons. Returns how many values
        were stored.

        Raises:
            RunNotFoundError: unknown run.
            InvalidInputError: a metric name that is not a string of 1-255 characters, or a value that is not
                a number.
        """
        return self.log_many(run_id, [StepMetrics(step, metrics, epoch)])

    def log_many(self, run_id: str, entries: Iterable[StepMetrics]) -> int:
        """:meth:`log` for several steps at once (a batch a client buffered), in one transaction.

        Every entry is checked before anything is stored: a bad one stores none of the batch.
        """
        now = _now()
        rows = []
        for entry in entries:
            step, epoch = _checked_step(entry.step), entry.epoch
            if epoch is not None:
                epoch = _checked_epoch(epoch)
            if not isinstance(entry.metrics, dict):
                raise InvalidInputError(f"metrics at step {step} are not a mapping of names to numbers")
            for key, value in entry.metrics.items():
                number = _metric_value(key, value)
                if math.isfinite(number):
                    rows.append({"step": step, "epoch": epoch, "key": key, "value": number, "at": now})
        with self.db.write() as conn:
            row = self._row(conn, run_id)
            if rows:
                conn.execute(insert(t.run_metrics), [{"run_id": row.id, **r} for r in rows])
        return len(rows)

    def finish(self, run_id: str, status: str, summary: dict[str, Any] | None = None,
               output_commit: str | None = None) -> RunInfo:
        """End a running run as ``completed``, ``failed`` or ``stopped``, with its final metrics.

        Raises:
            RunNotFoundError: unknown run.
            InvalidInputError: a status that is not final, or a run that has already ended.
        """
        _check_status(status, FINAL_STATUSES)
        with self.db.write() as conn:
            row = self._row(conn, run_id)
            if row.status != "running":
                raise InvalidInputError(f"run {row.id} has already ended ({row.status})",
                                        hint=f"see it with: fmhub runs show {row.id}")
            values: dict[str, Any] = {"status": status, "ended_at": _now()}
            if summary is not None:
                values["summary"] = _json(summary)
            if output_commit is not None:
                values["output_commit"] = output_commit
            conn.execute(update(t.runs).where(t.runs.c.id == row.id).values(**values))
            return self._info(self._row(conn, row.id))

    def resume(self, run_id: str, from_step: int) -> RunInfo:
        """Continue an ended (``stopped`` or ``failed``) run from a checkpoint at ``from_step``: the run is
        ``running`` again under the same id, and the metric values it logged after ``from_step`` (steps a
        resumed run trains again) are removed, so its curves continue without a doubled stretch.

        Raises:
            RunNotFoundError: unknown run.
            InvalidInputError: the run is still running, or completed (its model is published).
        """
        step = _checked_step(from_step)
        with self.db.write() as conn:
            row = self._row(conn, run_id)
            if row.status not in ("stopped", "failed"):
                raise InvalidInputError(f"run {row.id} is {row.status}: only a stopped or failed run can be resumed",
                                        hint=f"see it with: fmhub runs show {row.id}")
            conn.execute(delete(t.run_metrics).where(t.run_metrics.c.run_id == row.id, t.run_metrics.c.step > step))
            conn.execute(update(t.runs).where(t.runs.c.id == row.id).values(status="running", ended_at=None,
                                                                             summary=None))
            return self._info(self._row(conn, row.id))

    # -- reading --------------------------------------------------------------------------------

    def get(self, run_id: str, visible: Callable[[RunInfo], bool] | None = None) -> RunInfo:
        """A run by id or unique id prefix (≥ 4 hex digits, with or without ``r-``).

        Args:
            visible: the runs the caller may see (a hub server's access rule); the others are not found,
                exactly as missing runs are, and do not make a prefix ambiguous.
        """
        with self.db.read() as conn:
            return self._info(self._row(conn, run_id, visible))

    def resolve(self, run_id: str, visible: Callable[[RunInfo], bool] | None = None) -> str:
        """The full id of a run given by id or unique prefix."""
        with self.db.read() as conn:
            return self._row(conn, run_id, visible).id

    def list(self, limit: int = 50, status: str | None = None, task: str | None = None,
             offset: int = 0) -> list[RunInfo]:
        """Runs, newest first (``offset`` skips that many, for pages)."""
        query = (select(t.runs).order_by(t.runs.c.started_at.desc(), t.runs.c.id.desc())
                 .limit(max(0, limit)).offset(max(0, offset)))
        if status is not None:
            query = query.where(t.runs.c.status == _check_status(status, RUN_STATUSES))
        if task is not None:
            query = query.where(t.runs.c.task == task)
        with self.db.read() as conn:
            return [self._info(row) for row in conn.execute(query)]

    def metrics(self, run_id: str, key: str | None = None) -> list[MetricPoint]:
        """A run's metric values ordered by step (then by when they were logged)."""
        with self.db.read() as conn:
            row = self._row(conn, run_id)
            query = (select(t.run_metrics).where(t.run_metrics.c.run_id == row.id)
                     .order_by(t.run_metrics.c.step, t.run_metrics.c.pk))
            if key is not None:
                query = query.where(t.run_metrics.c.key == key)
            return [MetricPoint(r.step, r.epoch, r.key, r.value, _aware(r.at)) for r in conn.execute(query)]

    def latest_metrics(self, run_id: str) -> dict[str, float]:
        """Each metric's value at the last step it was logged (the last logged, within one step)."""
        with self.db.read() as conn:
            row = self._row(conn, run_id)
            query = (select(t.run_metrics.c.key, t.run_metrics.c.value).where(t.run_metrics.c.run_id == row.id)
                     .order_by(t.run_metrics.c.step, t.run_metrics.c.pk))
            return {r.key: r.value for r in conn.execute(query)}  # later rows overwrite earlier ones

    # -- rows -----------------------------------------------------------------------------------

    @classmethod
    def _row(cls, conn: Connection, run_id: str, visible: Callable[[RunInfo], bool] | None = None):
        """The row of a full run id or a unique prefix of one (among the ``visible`` runs, if given)."""
        if not isinstance(run_id, str):
            raise InvalidInputError(f"invalid run id {run_id!r}", hint="e.g. r-1a2b3c4d5e6f or its first digits")
        given = run_id.strip().lower()
        digits = given[len(RUN_ID_PREFIX):] if given.startswith(RUN_ID_PREFIX) else given
        if not _HEX.match(digits) or len(digits) > _ID_HEX:
            raise RunNotFoundError(run_id)
        if len(digits) == _ID_HEX:
            row = conn.execute(select(t.runs).where(t.runs.c.id == RUN_ID_PREFIX + digits)).one_or_none()
            if row is None or (visible is not None and not visible(cls._info(row))):
                raise RunNotFoundError(run_id)
            return row
        if len(digits) < _MIN_PREFIX:
            raise InvalidInputError(f"run id prefix {run_id!r} is too short",
                                    hint=f"give at least {_MIN_PREFIX} hex digits of the id (see: fmhub runs list)")
        # Hex digits only (checked above), so the prefix has no LIKE wildcards to escape.
        rows = conn.execute(select(t.runs).where(t.runs.c.id.like(RUN_ID_PREFIX + digits + "%"))
                            .order_by(t.runs.c.id).limit(_CANDIDATES)).all()
        if visible is not None:
            rows = [row for row in rows if visible(cls._info(row))]
        if not rows:
            raise RunNotFoundError(run_id)
        if len(rows) > 1:
            raise AmbiguousRunError(run_id, [r.id for r in rows[:10]])
        return rows[0]

    @staticmethod
    def _info(row) -> RunInfo:
        return RunInfo(
            row.id, row.name, row.task, row.status, json.loads(row.config), row.command, row.base_model,
            row.base_commit, row.dataset, row.dataset_commit, row.output, row.output_commit, row.code_version,
            json.loads(row.libraries), json.loads(row.hardware), row.created_by, _aware(row.started_at),
            _aware(row.ended_at), None if row.summary is None else json.loads(row.summary),
        )
