"""The evaluations domain's table: the index of pushed report cards (migration 0004).

Declared on the store's shared :data:`fmhub.store.metadata`, so the one Alembic history creates it beside
the repos; only :mod:`fmhub.evaluations` reads and writes it.
"""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Index, Integer, String, Table, Text

from fmhub.store import metadata

__all__ = ["evaluations"]

# A pushed evaluation report card: which model version was evaluated on which dataset version and split,
# the commit holding the card (eval/<dataset>/<split>/report.json) and its headline metrics, so versions
# can be listed and compared by metric without reading every report.
evaluations = Table(
    "evaluations",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("model", String(200), nullable=False),
    Column("model_commit", String(40), nullable=False),  # the evaluated weights
    Column("card_commit", String(40), nullable=False),  # the commit holding the report
    Column("dataset", String(200), nullable=False),
    Column("dataset_commit", String(40), nullable=False),
    Column("split", String(255), nullable=False),
    Column("task", String(64), nullable=False),
    Column("report_path", String(1000), nullable=False),
    Column("metrics", Text, nullable=False),  # JSON object: flat name -> number
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index(None, "model", "created_at"),
)
