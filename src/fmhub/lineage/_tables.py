"""The lineage domain's tables (migration 0007): the nodes of the lineage graph and the edges between them.

Declared on the store's shared :data:`fmhub.store.metadata`; only :mod:`fmhub.lineage` reads and writes them.
Nodes name repos by id (copied, not referenced, as the audit log does), so the graph outlives a deleted repo
and a query can still say that something came from it.
"""

from __future__ import annotations

from sqlalchemy import Column, DateTime, ForeignKey, Index, Integer, String, Table, Text

from fmhub.store import metadata

__all__ = ["lineage_nodes", "lineage_edges"]

# A version something was made from or made into: a model or dataset commit, a training run, an
# evaluation report card (in a model repo, at the commit that added it).
lineage_nodes = Table(
    "lineage_nodes",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("ident", String(1400), nullable=False, unique=True),  # kind:repo_key@commit:path — the node's identity
    Column("kind", String(16), nullable=False),  # model | dataset | run | evaluation
    Column("repo", String(200), nullable=False),  # repo id as written (a run's id for runs)
    # "<type>/<lower(repo id)>", as repos.key: the repo whose access rules apply (a run's: the model it trained)
    Column("repo_key", String(210), nullable=True),
    Column("commit", String(40), nullable=False),  # "" for runs
    Column("path", String(1000), nullable=False),  # an evaluation's report.json; "" otherwise
    Column("info", Text, nullable=True),  # JSON object: what a listing shows (variant method, metrics, ...)
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index(None, "repo_key", "commit"),
)

# "child was made from parent": relation says how (trained, base, data, variant, distilled, evaluated, ...).
lineage_edges = Table(
    "lineage_edges",
    metadata,
    Column("parent", Integer, ForeignKey("lineage_nodes.pk", ondelete="CASCADE"), primary_key=True),
    Column("child", Integer, ForeignKey("lineage_nodes.pk", ondelete="CASCADE"), primary_key=True),
    Column("relation", String(32), nullable=False),
    Index(None, "child", "parent"),
)
