"""Bulk loads keep PostgreSQL's planner statistics current, so their batched look-ups stay index look-ups."""
from __future__ import annotations

from sqlalchemy import text

from fmhub.lineage import Edge, NodeRef, record_edges
from fmhub.store._db import Database


def _edges(start: int, count: int) -> list[Edge]:
    return [Edge(NodeRef("dataset", f"org/data-{i}", f"{i:040x}"), NodeRef("model", f"org/model-{i}", f"{i:040x}"),
                 "trained-on") for i in range(start, start + count)]


def _planned_rows(conn) -> float:
    return conn.execute(text("SELECT reltuples FROM pg_class WHERE oid = 'lineage_nodes'::regclass")).scalar()


def test_a_bulk_load_analyzes_the_tables_it_grows_inside_its_transaction(pg_url: str) -> None:
    db = Database(pg_url)
    db.upgrade()
    try:
        with db.write() as conn:
            before = _planned_rows(conn)
            record_edges(conn, _edges(0, 1000))
            assert _planned_rows(conn) == before  # below the first threshold: no analyze for a small write
            record_edges(conn, _edges(1000, 3000))  # 8,000 nodes now, still in the load's own transaction
            assert _planned_rows(conn) >= 5000
            plan = "\n".join(row[0] for row in conn.execute(text(
                "EXPLAIN SELECT ident, pk FROM lineage_nodes WHERE ident IN ('model:org/model-1', 'model:org/x')")))
            assert "Seq Scan" not in plan, plan
            record_edges(conn, _edges(4000, 2000))  # 4,000 more: under the doubled threshold (the table's size)
            assert _planned_rows(conn) < 10_000
            record_edges(conn, _edges(6000, 3000))
            assert _planned_rows(conn) >= 17_000
    finally:
        db.dispose()
