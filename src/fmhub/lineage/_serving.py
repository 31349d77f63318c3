"""Serving in the lineage graph: a serve check (a pipeline's ``serve-check`` step) is a node under the model
version it served (``model → serve-check``, relation ``served``), recorded when its step record is saved; so is
a deployment (``model → deployment``, relation ``deployed``): each ``fmhub serve`` process records one when it
starts serving a version and again when it stops (the same key: the node shows the newest state).

A serve check's record says which version answered over HTTP like it predicts offline (``agreement`` over
``rows`` inputs); as a node it shows in ``fmhub lineage`` (the version's descendants), in impact answers (a data
deletion reaches what was checked for serving too) and on the web Lineage tab. Its node is identified by the
step's key (the same key is the same check: a re-run updates the node's info), and follows the model repo's
access rules. ``fmhub lineage reindex`` re-records every serve check from the step records.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from sqlalchemy import Connection, select, update

from fmhub.lineage import _tables as t
from fmhub.lineage._record import Edge, NodeRef, record_edges
from fmhub.runs import PipelineStepRecord
from fmhub.runs import _tables as rt
from fmhub.store import Database

__all__ = ["SERVING_KINDS", "serving_edges", "record_serving", "rerecord_serving"]

#: Node kinds that record serving (the step kinds that make them), with the relation of their edge.
SERVING_RELATIONS = {"serve-check": "served", "deployment": "deployed"}
SERVING_KINDS = tuple(SERVING_RELATIONS)


def serving_edges(record: PipelineStepRecord) -> list[Edge]:
    """The edge a step record makes: ``model@commit → serve-check`` (or ``→ deployment``), else none."""
    if record.kind not in SERVING_KINDS:
        return []
    repo, _, commit = record.output.rpartition("@")
    metrics = dict(record.metrics)
    info: dict[str, object] = {"pipeline": record.pipeline[:200], "step": record.step[:200]}
    for name in ("agreement", "rows"):
        if isinstance(metrics.get(name), (int, float)):
            info[name] = float(metrics[name])
    if record.detail:
        info["detail"] = record.detail[:200]
    if record.created_at is not None:
        info["at"] = record.created_at.isoformat()
    check = NodeRef(record.kind, repo, commit, record.key, info=info)
    return [Edge(NodeRef("model", repo, commit), check, SERVING_RELATIONS[record.kind])]


def _write(conn: Connection, records: Iterable[PipelineStepRecord]) -> int:
    edges = [edge for record in records for edge in serving_edges(record)]
    record_edges(conn, edges)
    n = t.lineage_nodes
    for edge in edges:  # a re-run of the same check (same key): the node shows the newest result
        conn.execute(update(n).where(n.c.ident == edge.child.ident)
                     .values(info=json.dumps(edge.child.info, sort_keys=True)))
    return len(edges)


def record_serving(db: Database, record: PipelineStepRecord) -> int:
    """Record the serving node of a saved step record (none for other kinds); returns the edges written."""
    if record.kind not in SERVING_KINDS:
        return 0
    with db.write() as conn:
        return _write(conn, [record])


def rerecord_serving(db: Database) -> int:
    """Record the serving nodes of every step record kept (after the graph was emptied for a rebuild)."""
    steps = rt.pipeline_steps
    with db.read() as conn:
        rows = conn.execute(select(steps).where(steps.c.kind.in_(SERVING_KINDS)).order_by(steps.c.created_at)).all()
    records = [PipelineStepRecord(r.key, r.pipeline, r.step, r.kind, r.output, json.loads(r.metrics or "{}"),
                                  r.detail or "", r.created_at) for r in rows]
    with db.write() as conn:
        return _write(conn, records)
