"""The search domain's tables (migration 0007): one document per repo, its tags and its report-card metrics.

Declared on the store's shared :data:`fmhub.store.metadata`; only :mod:`fmhub.search` reads and writes them.
Rows reference ``repos.pk`` with ``ON DELETE CASCADE``, so a deleted repo leaves nothing behind.

Text search is accelerated per database, outside the declared tables (the migration creates it where the
database offers it): on SQLite an FTS5 table with the trigram tokenizer (:data:`FTS_TABLE`), whose ``LIKE``
is answered from the index; on PostgreSQL a ``pg_trgm`` GIN index on ``search_docs.text`` (:data:`TRGM_INDEX`).
Without either, the same ``LIKE`` scans ``search_docs``.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, DateTime, Double, ForeignKey, Index, Integer, String, Table, Text

from fmhub.store import metadata

__all__ = ["search_docs", "search_tags", "search_metrics", "FTS_TABLE", "TRGM_INDEX"]

#: SQLite: ``CREATE VIRTUAL TABLE search_fts USING fts5(name, text, tokenize='trigram')``, rowid = repo pk.
FTS_TABLE = "search_fts"
#: PostgreSQL: ``CREATE INDEX … USING gin (text gin_trgm_ops)`` when the pg_trgm extension is available.
TRGM_INDEX = "ix_search_docs_text_trgm"

# What a listing shows of a repo at its default branch's head, and what search matches: the id (``name``:
# lower case), and ``text``, the lower-cased words of the id, task, tags, library, license and datasets.
search_docs = Table(
    "search_docs",
    metadata,
    Column("repo_pk", Integer, ForeignKey("repos.pk", ondelete="CASCADE"), primary_key=True),
    Column("repo_type", String(16), nullable=False),
    Column("repo_id", String(200), nullable=False),
    Column("name", String(200), nullable=False),  # lower(repo_id): sorting and id search
    Column("author", String(96), nullable=False),  # lower(namespace)
    Column("private", Boolean, nullable=False),
    Column("sha", String(40), nullable=True),  # the default branch's head
    Column("task", String(128), nullable=True),  # pipeline_tag, or a dataset's first task_categories
    Column("library", String(128), nullable=True),
    Column("license", String(128), nullable=True),
    Column("tags", Text, nullable=False),  # JSON list, as the Hub lists them
    Column("card_data", Text, nullable=True),  # JSON object: the card's YAML metadata (cardData)
    Column("text", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index(None, "repo_type", "updated_at"),
    Index(None, "repo_type", "created_at"),
    Index(None, "repo_type", "name"),
    Index(None, "repo_type", "task"),
)

# One row per (tag, repo), lower case: ``filter=`` is an intersection of index lookups.
search_tags = Table(
    "search_tags",
    metadata,
    Column("tag", String(255), primary_key=True),
    Column("repo_pk", Integer, ForeignKey("repos.pk", ondelete="CASCADE"), primary_key=True),
    Index(None, "repo_pk"),
)

# The headline metrics of every report card a model repo holds at its default branch's head
# (eval/<dataset>/<split>/report.json): ``accuracy>=0.95 on dataset:split`` and metric sorts read this.
search_metrics = Table(
    "search_metrics",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("repo_pk", Integer, ForeignKey("repos.pk", ondelete="CASCADE"), nullable=False),
    Column("model_commit", String(40), nullable=False),  # the evaluated weights
    Column("dataset", String(200), nullable=False),  # lower case
    Column("split", String(255), nullable=False),
    Column("metric", String(128), nullable=False),
    Column("value", Double, nullable=False),
    Index(None, "metric", "dataset", "split", "value"),
    Index(None, "repo_pk"),
)
