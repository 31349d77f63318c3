"""Rebuilding the search index and the lineage graph of an existing store (``fmhub lineage reindex``).

Both are kept current by the store's write hooks from migration 0007 on; a store with repos from before
(``hub_settings['index.backfill']`` is ``pending``) or an index suspected stale is rebuilt here: every
repo's commits replayed, oldest first, through the same hooks, one transaction per repo.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import delete, select, text

from fmhub.lineage import LineageHook, rerecord_serving
from fmhub.lineage import _tables as lt
from fmhub.search import SearchHook
from fmhub.search import _tables as st
from fmhub.store import Store
from fmhub.store._schema import hub_settings
from fmhub.store.hooks import replay

__all__ = ["reindex", "backfill_pending", "BACKFILL_KEY"]

#: Set to ``pending`` by migration 0007 when it finds repos the index does not describe yet.
BACKFILL_KEY = "index.backfill"


def backfill_pending(store: Store) -> bool:
    with store.db.read() as conn:
        return conn.execute(select(hub_settings.c.value).where(hub_settings.c.key == BACKFILL_KEY)).scalar() \
            == "pending"


def reindex(store: Store, *, progress: Callable[[int, int], None] | None = None) -> int:
    """Empty and rebuild the search documents and the lineage graph from every repo; returns the repos indexed."""
    with store.db.write() as conn:
        for table in (st.search_tags, st.search_metrics, st.search_docs, lt.lineage_edges, lt.lineage_nodes):
            conn.execute(delete(table))
        if conn.dialect.name == "sqlite" and conn.execute(
                text("SELECT 1 FROM sqlite_master WHERE name = :n"), {"n": st.FTS_TABLE}).first():
            conn.execute(text(f"DELETE FROM {st.FTS_TABLE}"))
    count = replay(store, [LineageHook(), SearchHook()], every_commit=True, progress=progress)
    rerecord_serving(store.db)  # serve checks live in step records, not in commits
    with store.db.write() as conn:
        conn.execute(delete(hub_settings).where(hub_settings.c.key == BACKFILL_KEY))
    return count
