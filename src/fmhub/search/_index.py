"""Keeping the search index: one document per repo, written in the transaction of every write to the repo.

A document describes the default branch's head: the card's metadata (``cardData``), the tags the Hub derives
from it, and the headline metrics of every report card the repo holds there. Other branches are not listed,
as on the Hugging Face Hub.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from sqlalchemy import Connection, delete, text, update

from fmhub.cards import card_tags, parse_card
from fmhub.errors import FmhubError
from fmhub.evaluations import flat_metrics
from fmhub.search import _tables as t
from fmhub.store.hooks import RepoRow, WriteContext, WriteHook, bulk_insert

__all__ = ["Document", "MetricRow", "SearchHook", "document_for", "report_metrics", "write_documents", "has_fts",
           "REPORT_PATH"]

#: Report cards a model repo holds: eval/<dataset ns>/<dataset name>/<split>/report.json
REPORT_PATH = re.compile(r"^eval/([^/]+/[^/]+)/([^/]+)/report\.json$")
#: At most this many report cards of one repo are indexed (the newest paths beyond it are ignored).
MAX_REPORTS = 256
_WORD = re.compile(r"[^\w:./-]+")
_FTS: dict[int, bool] = {}


@dataclass(frozen=True)
class MetricRow:
    model_commit: str
    dataset: str
    split: str
    metric: str
    value: float


@dataclass
class Document:
    """What the index holds of one repo."""

    repo: RepoRow
    sha: str | None
    metadata: dict[str, Any] = field(default_factory=dict)
    metrics: list[MetricRow] = field(default_factory=list)

    @cached_property
    def tags(self) -> list[str]:
        return card_tags(self.metadata, self.repo.repo_type) if self.metadata else []

    def _first(self, key: str) -> str | None:
        value = self.metadata.get(key)
        if isinstance(value, list):
            value = next((v for v in value if isinstance(v, str) and v), None)
        return value[:128] if isinstance(value, str) and value else None

    @property
    def task(self) -> str | None:
        return self._first("pipeline_tag") or (self._first("task_categories")
                                               if self.repo.repo_type == "dataset" else None)

    def text(self) -> str:
        """The words search matches: the id, the task, every tag (library, license, datasets, base model...)."""
        words = [self.repo.repo_id, self.task or "", *self.tags]
        return " ".join(w for w in (_WORD.sub(" ", word).strip() for word in words) if w).lower()

    def row(self) -> dict[str, Any]:
        card = json.dumps(self.metadata, sort_keys=True, default=str) if self.metadata else None
        return {"repo_pk": self.repo.pk, "repo_type": self.repo.repo_type, "repo_id": self.repo.repo_id,
                "name": self.repo.repo_id.lower(), "author": self.repo.repo_id.split("/")[0].lower(),
                "private": self.repo.private, "sha": self.sha, "task": self.task,
                "library": self._first("library_name"), "license": self._first("license"),
                "tags": json.dumps(self.tags), "card_data": card, "text": self.text(),
                "created_at": self.repo.created_at, "updated_at": self.repo.updated_at}


def _metadata(data: bytes | None) -> dict[str, Any]:
    if not data:
        return {}
    try:
        return parse_card(data.decode("utf-8", "replace")).metadata
    except FmhubError:  # a broken card is listed without metadata, as the Hub does
        return {}


def report_metrics(data: bytes | None, dataset: str, split: str) -> list[MetricRow]:
    """The headline metrics of a report card's bytes ([] when it is not a readable report)."""
    if not data:
        return []
    try:
        report = json.loads(data)
        commit = str(report["provenance"]["model"]["commit"])
        values = flat_metrics(report)
    except (ValueError, KeyError, TypeError, AttributeError):
        return []
    if not re.fullmatch(r"[0-9a-f]{40}", commit):
        return []
    return [MetricRow(commit, dataset.lower(), split, name[:128], value) for name, value in sorted(values.items())]


def document_for(repo: RepoRow, sha: str | None, files: dict[str, tuple[str, int]],
                 read: Callable[[str, int], bytes | None]) -> Document:
    """The document of ``repo`` at commit ``sha`` whose files are ``files`` (path → (sha256, size))."""
    doc = Document(repo, sha)
    if "README.md" in files:
        doc.metadata = _metadata(read(*files["README.md"]))
    if repo.repo_type == "model":
        reports = sorted(p for p in files if p.startswith("eval/") and REPORT_PATH.match(p))[:MAX_REPORTS]
        for path in reports:
            dataset, split = REPORT_PATH.match(path).groups()  # type: ignore[union-attr]
            doc.metrics.extend(report_metrics(read(*files[path]), dataset, split))
    return doc


def has_fts(conn: Connection) -> bool:
    """Whether this SQLite database has the FTS5 trigram table (created by migration 0007 where available)."""
    if conn.dialect.name != "sqlite":
        return False
    key = id(conn.engine)
    if key not in _FTS:
        _FTS[key] = conn.execute(text("SELECT 1 FROM sqlite_master WHERE name = :n"),
                                 {"n": t.FTS_TABLE}).first() is not None
    return _FTS[key]


def write_documents(conn: Connection, docs: Sequence[Document], *, replace: bool = True) -> None:
    """Insert (with ``replace``: first delete) the documents, their tags, metrics and text index, in batches."""
    if not docs:
        return
    pks = [d.repo.pk for d in docs]
    fts = has_fts(conn)
    if replace:
        for chunk in _chunks(pks, 500):
            conn.execute(delete(t.search_tags).where(t.search_tags.c.repo_pk.in_(chunk)))
            conn.execute(delete(t.search_metrics).where(t.search_metrics.c.repo_pk.in_(chunk)))
            conn.execute(delete(t.search_docs).where(t.search_docs.c.repo_pk.in_(chunk)))
            if fts:
                conn.execute(text(f"DELETE FROM {t.FTS_TABLE} WHERE rowid IN ({','.join(map(str, chunk))})"))
    rows = [d.row() for d in docs]
    bulk_insert(conn, t.search_docs, rows)
    bulk_insert(conn, t.search_tags, [{"tag": tag, "repo_pk": d.repo.pk} for d in docs
                                      for tag in dict.fromkeys(x.lower()[:255] for x in d.tags)])
    bulk_insert(conn, t.search_metrics, [
        {"repo_pk": d.repo.pk, "model_commit": m.model_commit, "dataset": m.dataset[:200], "split": m.split[:255],
         "metric": m.metric, "value": m.value} for d in docs for m in d.metrics])
    if fts:
        conn.exec_driver_sql(f"INSERT INTO {t.FTS_TABLE} (rowid, name, text) VALUES (?, ?, ?)",
                             [(r["repo_pk"], r["name"], r["text"]) for r in rows])


def _chunks(items: Sequence[int], size: int) -> Iterable[Sequence[int]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _touch(conn: Connection, repo: RepoRow) -> None:
    conn.execute(update(t.search_docs).where(t.search_docs.c.repo_pk == repo.pk).values(
        private=repo.private, updated_at=repo.updated_at))


class SearchHook(WriteHook):
    """Re-index a repo when its default branch moves; follow its visibility and update time otherwise."""

    name = "search"

    def after_write(self, context: WriteContext) -> None:
        if context.action == "repo.delete":  # documents, tags and metrics went with the repo (ON DELETE CASCADE)
            if has_fts(context.conn):
                context.conn.execute(text(f"DELETE FROM {t.FTS_TABLE} WHERE rowid NOT IN "
                                          f"(SELECT repo_pk FROM search_docs)"))
            return
        repo = context.repo()
        if repo is None:
            return
        head = context.head()
        moved = context.action == "repo.create" or (context.action == "commit" and context.ref == repo.default_branch) \
            or (context.action == "index" and context.commit_oid == head)
        if not moved:
            if context.action != "index":
                _touch(context.conn, repo)
            return
        files = context.files(head) if head else {}
        write_documents(context.conn, [document_for(repo, head, files, context.read)])

