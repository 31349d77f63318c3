"""Querying the search index: the Hugging Face Hub's list conventions, plus filters by report-card metric."""

from __future__ import annotations

import json
import math
import operator
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, column, exists, false, func, or_, select, table

from fmhub.errors import InvalidInputError
from fmhub.search import _tables as t
from fmhub.search._index import has_fts
from fmhub.store import Database, validate_repo_type

__all__ = ["SearchQuery", "SearchHit", "SearchResult", "MetricFilter", "Search", "SORTS", "lower_is_better"]

#: Sort keys of the Hub's list routes (``huggingface_hub`` sends these), and fmhub's ``metric:<name>``.
#: fmhub counts no downloads or likes: those sorts keep every repo (all at 0), newest first.
SORTS = ("lastModified", "createdAt", "id", "downloads", "likes", "trendingScore")
_SORT_ALIASES = {"last_modified": "lastModified", "updated": "lastModified", "created_at": "createdAt",
                 "created": "createdAt", "name": "id", "modelId": "id", "trending_score": "trendingScore"}
#: Metrics where smaller is better, as the report card defines them (losses, perplexity, calibration error,
#: latency, size): a metric sort puts the smallest first and a repo's best value is its smallest.
_LOWER = ("loss", "perplexity", "bits_per_token", "ece", "latency_p50_ms", "latency_p95_ms", "weights_bytes",
          "parameters", "peak_rss_bytes")
_MAX_TERMS = 8
#: The most rows a condition's index is counted to (see :meth:`Search._plan`); a tenth of it always drives.
DRIVE_LIMIT = 2000
_fts = table(t.FTS_TABLE, column("rowid"), column("name"), column("text"))
_OPS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt, "==": operator.eq,
        "=": operator.eq}
_METRIC = re.compile(r"^\s*([A-Za-z0-9_.\-]{1,128})\s*(>=|<=|==|=|>|<)\s*([-+0-9.eE]+|nan|inf)\s*$")


def lower_is_better(metric: str) -> bool:
    return metric in _LOWER or metric.endswith("_loss")


@dataclass(frozen=True)
class _Condition:
    """A WHERE term, as a check on a document's row (``probe``) and, where an index answers it, as the set of
    repos matching it (``matching``: a SELECT of repo pks) that can drive the query."""

    probe: ColumnElement[bool]
    matching: Any = None


@dataclass(frozen=True)
class MetricFilter:
    """``accuracy>=0.95``: a model qualifies when a report card it holds has that value (on ``dataset``/``split``
    when given)."""

    metric: str
    op: str
    value: float
    dataset: str | None = None
    split: str | None = None

    @classmethod
    def parse(cls, expression: str, on: str | None = None) -> MetricFilter:
        """``"accuracy>=0.95"`` and an optional ``"acme/bbc-news[:test]"``."""
        found = _METRIC.match(expression or "")
        if not found:
            raise InvalidInputError(f"invalid metric filter {expression!r}",
                                    hint="write <metric><op><number>, e.g. accuracy>=0.95 (ops: >= <= > < ==)")
        value = float(found.group(3)) if found.group(3) not in ("nan", "inf") else math.nan
        if not math.isfinite(value):
            raise InvalidInputError(f"invalid metric filter {expression!r}: the value must be a finite number")
        dataset = split = None
        if on:
            dataset, _, split = on.partition(":")
            if dataset.count("/") != 1 or not all(dataset.split("/")):
                raise InvalidInputError(f"invalid dataset {on!r} for a metric filter",
                                        hint="name a dataset repo, optionally with a split: acme/bbc-news:test")
        return cls(found.group(1), "==" if found.group(2) == "=" else found.group(2), value,
                   dataset.lower() if dataset else None, split or None)

    def __str__(self) -> str:
        where = f" on {self.dataset}" + (f":{self.split}" if self.split else "") if self.dataset else ""
        return f"{self.metric}{self.op}{self.value:g}{where}"


@dataclass
class SearchQuery:
    """What to list. Every field narrows the result (AND), as the Hub's list routes do.

    Args:
        repo_type: ``model`` or ``dataset`` (None: both).
        search: substrings of the repo id (each must occur; case-insensitive), the Hub's ``search=``.
        text: words matched anywhere in the id, task, tags, library, license, datasets (the web UI's box).
        author: the namespace, exactly (case-insensitive).
        filters: tags every result has (``text-classification``, ``license:mit``, ``dataset:acme/x``...).
        task: the card's ``pipeline_tag`` (a dataset's ``task_categories``).
        metrics: report-card metric filters.
        sort: one of :data:`SORTS` or ``metric:<name>``; ``direction`` -1 (descending) or 1.
        readable: the namespaces whose private repos the caller may list (lower case); None: every repo.
    """

    repo_type: str | None = "model"
    search: Sequence[str] = ()
    text: str | None = None
    author: str | None = None
    filters: Sequence[str] = ()
    task: str | None = None
    metrics: Sequence[MetricFilter] = ()
    sort: str = "lastModified"
    direction: int | None = None
    offset: int = 0
    limit: int = 20
    readable: frozenset[str] | None = frozenset()
    metric_on: str | None = None  # dataset[:split] a metric sort ranks by

    def checked(self) -> SearchQuery:
        if self.repo_type is not None:
            self.repo_type = validate_repo_type(self.repo_type)
        sort = _SORT_ALIASES.get(self.sort, self.sort)
        if sort.startswith("metric:"):
            if not _METRIC.match(sort[7:] + ">=0"):
                raise InvalidInputError(f"invalid sort {self.sort!r}", hint="e.g. sort=metric:accuracy")
        elif sort not in SORTS:
            raise InvalidInputError(f"unknown sort {self.sort!r}",
                                    hint=f"use one of {', '.join(SORTS)} or metric:<name>")
        self.sort = sort
        if self.direction not in (None, -1, 1):
            raise InvalidInputError("direction must be -1 (descending) or 1 (ascending)")
        if self.offset < 0 or not 1 <= self.limit <= 10_000:
            raise InvalidInputError("the cursor must be ≥ 0 and limit 1-10000")
        if len(self.search) + len(self.filters) + len(self.metrics) > 4 * _MAX_TERMS:
            raise InvalidInputError("too many search terms and filters")
        return self


@dataclass(frozen=True)
class SearchHit:
    repo_type: str
    repo_id: str
    private: bool
    sha: str | None
    task: str | None
    library: str | None
    license: str | None
    tags: list[str]
    card_data: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime
    metric: float | None = None  # the sorted-by metric's (best) value

    @property
    def author(self) -> str:
        return self.repo_id.split("/")[0]

    def to_json(self) -> dict[str, Any]:
        return {"repo_type": self.repo_type, "repo_id": self.repo_id, "private": self.private, "sha": self.sha,
                "task": self.task, "library": self.library, "license": self.license, "tags": self.tags,
                "card_data": self.card_data,
                "created_at": self.created_at.isoformat(), "updated_at": self.updated_at.isoformat(),
                "metric": self.metric}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SearchHit:
        return cls(data["repo_type"], data["repo_id"], bool(data["private"]), data.get("sha"), data.get("task"),
                   data.get("library"), data.get("license"), list(data.get("tags") or []), data.get("card_data"),
                   datetime.fromisoformat(data["created_at"]), datetime.fromisoformat(data["updated_at"]),
                   data.get("metric"))


@dataclass
class SearchResult:
    hits: list[SearchHit]
    total: int | None = None  # with ``count=True``
    more: bool = False  # another page follows
    query: SearchQuery | None = field(default=None, repr=False)


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _like(value: str) -> str:
    return "%" + value.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


class Search:
    """Query the search index (kept by the store's write hook; ``fmhub lineage reindex`` rebuilds it).

    Example:
        >>> Search(store.db).query(SearchQuery(search=["bert"], filters=["text-classification"],
        ...                                     sort="lastModified", limit=10)).hits
    """

    def __init__(self, db: Database) -> None:
        self.db = db

    @staticmethod
    def _substring(conn: Connection, field_name: str, value: str) -> _Condition:
        d = t.search_docs
        pattern = _like(value)
        probe = d.c[field_name].like(pattern, escape="\\")
        if len(value) >= 3 and has_fts(conn):  # the trigram index answers LIKE for 3+ characters
            return _Condition(probe, select(_fts.c.rowid).where(_fts.c[field_name].like(pattern, escape="\\")))
        return _Condition(probe, None)

    def _conditions(self, conn: Connection, q: SearchQuery) -> list[_Condition]:
        d, tags, m = t.search_docs, t.search_tags, t.search_metrics
        where: list[_Condition] = []
        if q.repo_type is not None:
            where.append(_Condition(d.c.repo_type == q.repo_type))
        if q.readable is not None:
            where.append(_Condition(or_(d.c.private == false(), d.c.author.in_(sorted(q.readable))) if q.readable
                                    else d.c.private == false()))
        if q.author:
            where.append(_Condition(d.c.author == q.author.lower()))
        for term in q.search:
            if term.strip():
                where.append(self._substring(conn, "name", term.strip()[:200]))
        for word in (q.text or "").split()[:_MAX_TERMS]:
            where.append(self._substring(conn, "text", word[:200]))
        if q.task:
            where.append(_Condition(d.c.task == q.task))
        for tag in q.filters:
            if tag.strip():
                matching = select(tags.c.repo_pk).where(tags.c.tag == tag.strip().lower())
                where.append(_Condition(exists(matching.where(tags.c.repo_pk == d.c.repo_pk)), matching))
        for f in q.metrics:
            cond = [m.c.metric == f.metric, _OPS[f.op](m.c.value, f.value)]
            if f.dataset:
                cond.append(m.c.dataset == f.dataset)
            if f.split:
                cond.append(m.c.split == f.split)
            matching = select(m.c.repo_pk).where(*cond)
            where.append(_Condition(exists(matching.where(m.c.repo_pk == d.c.repo_pk)), matching))
        return where

    @staticmethod
    def _plan(conn: Connection, conditions: list[_Condition], *, rows: int, ranked: bool
              ) -> list[ColumnElement[bool]]:
        """The WHERE terms, with at most one condition driving the query from its index.

        Reading the documents in the sort's index order and checking each until ``rows`` are found reads about
        ``rows × N / m`` documents for a condition matching ``m`` of ``N``; driving from that condition's index reads
        (and sorts) ``m``. So a condition is read first when ``m² < rows × N`` (``m`` counted on its index, stopping
        there), and every other one is checked on its rows: no query reads more than about ``√(rows × N)`` rows
        (≈ 1,500 for a page of 20 among 100,000 repos), whatever the words and filters.
        """
        best: tuple[int, int] | None = None
        candidates = [i for i, c in enumerate(conditions) if c.matching is not None]
        if candidates and not ranked:
            size = conn.execute(select(func.max(t.search_docs.c.repo_pk))).scalar() or 0
            limit = max(DRIVE_LIMIT // 10, math.isqrt(rows * size))
            for i in candidates:
                matching = conditions[i].matching
                found = conn.execute(select(func.count()).select_from(matching.limit(limit + 1).subquery())
                                     ).scalar_one()
                if found * found <= rows * size or found <= DRIVE_LIMIT // 10:
                    if best is None or found < best[1]:
                        best = (i, found)
        d = t.search_docs
        return [d.c.repo_pk.in_(c.matching) if best is not None and i == best[0] and c.matching is not None
                else c.probe for i, c in enumerate(conditions)]

    def query(self, q: SearchQuery, *, count: bool = False) -> SearchResult:
        """One page of repos matching ``q`` (and the number of all matches with ``count``)."""
        q = q.checked()
        d, m = t.search_docs, t.search_metrics
        with self.db.read() as conn:
            where = self._plan(conn, self._conditions(conn, q), rows=q.offset + q.limit + 1,
                               ranked=q.sort.startswith("metric:"))
            columns = [d.c.repo_type, d.c.repo_id, d.c.private, d.c.sha, d.c.task, d.c.library, d.c.license,
                       d.c.tags, d.c.card_data, d.c.created_at, d.c.updated_at]
            if q.sort.startswith("metric:"):
                metric = q.sort[7:]
                lower = lower_is_better(metric)
                best = (func.min if lower else func.max)(m.c.value).label("best")
                cond = [m.c.metric == metric]
                if q.metric_on:
                    dataset, _, split = q.metric_on.partition(":")
                    cond.append(m.c.dataset == dataset.lower())
                    if split:
                        cond.append(m.c.split == split)
                ranked = select(m.c.repo_pk, best).where(*cond).group_by(m.c.repo_pk).subquery()
                base = select(*columns, ranked.c.best).join_from(d, ranked, ranked.c.repo_pk == d.c.repo_pk)
                ascending = lower if q.direction is None else q.direction == 1
                order = [ranked.c.best.asc() if ascending else ranked.c.best.desc(), d.c.repo_pk]
            else:
                base = select(*columns)
                key = {"lastModified": d.c.updated_at, "createdAt": d.c.created_at, "id": d.c.name}.get(
                    q.sort, d.c.updated_at)
                ascending = (q.sort == "id") if q.direction is None else q.direction == 1
                # ties by primary key in the same direction: the (repo_type, key) index gives the order as it is
                order = [key.asc(), d.c.repo_pk.asc()] if ascending else [key.desc(), d.c.repo_pk.desc()]
            stmt = base.where(and_(*where)) if where else base
            rows = conn.execute(stmt.order_by(*order).offset(q.offset).limit(q.limit + 1)).all()
            total = None
            if count:
                counted = select(func.count()).select_from(stmt.subquery())
                total = conn.execute(counted).scalar_one()
        hits = [SearchHit(r.repo_type, r.repo_id, bool(r.private), r.sha, r.task, r.library, r.license,
                          json.loads(r.tags), json.loads(r.card_data) if r.card_data else None,
                          _aware(r.created_at), _aware(r.updated_at),
                          float(r.best) if q.sort.startswith("metric:") else None) for r in rows[:q.limit]]
        return SearchResult(hits, total, len(rows) > q.limit, q)

    def metric_values(self, repo_ids: Sequence[str], metric: str) -> dict[str, list[tuple[str, str, str, float]]]:
        """Per model repo (lower-case id): every (model commit, dataset, split, value) of ``metric`` indexed."""
        d, m = t.search_docs, t.search_metrics
        out: dict[str, list[tuple[str, str, str, float]]] = {}
        if not repo_ids:
            return out
        with self.db.read() as conn:
            rows = conn.execute(select(d.c.name, m.c.model_commit, m.c.dataset, m.c.split, m.c.value)
                                .join_from(m, d, d.c.repo_pk == m.c.repo_pk)
                                .where(d.c.repo_type == "model", d.c.name.in_([r.lower() for r in repo_ids]),
                                       m.c.metric == metric))
            for r in rows:
                out.setdefault(r.name, []).append((r.model_commit, r.dataset, r.split, float(r.value)))
        return out
