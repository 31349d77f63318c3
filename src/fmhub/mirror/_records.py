"""The records that travel with a version, beside its commits: runs, report-card index rows, lineage edges and
hub attestations. Each domain's own serializer is used (``RunInfo``, ``MetricPoint``, ``EvaluationInfo``,
``AttestationRecord``, lineage's ``Edge``/``NodeRef``); rows are written in the import's one transaction, and a
record already present on the receiving hub is left as it is (imports are idempotent).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, func, insert, or_, select

from fmhub.errors import InvalidInputError
from fmhub.evaluations import EvaluationInfo, Evaluations
from fmhub.evaluations import _tables as evaluation_tables
from fmhub.lineage import Edge, NodeRef, record_edges
from fmhub.lineage import _tables as lineage_tables
from fmhub.runs import MetricPoint, RunInfo, Runs
from fmhub.runs import _tables as run_tables
from fmhub.signing import AttestationRecord
from fmhub.signing import _tables as signing_tables
from fmhub.store import Store

__all__ = ["collect_records", "apply_records", "RECORD_KINDS"]

RECORD_KINDS = ("runs", "evaluations", "lineage", "attestations")


def collect_records(store: Store, repo_type: str, repo_id: str, commits: Iterable[str]) -> dict[str, list[Any]]:
    """The runs, report-card index rows, lineage edges and attestations of these commits of a repo."""
    oids = set(commits)
    key = f"{repo_type}/{repo_id.lower()}"
    out: dict[str, list[Any]] = {kind: [] for kind in RECORD_KINDS}
    runs = Runs(store.db)
    r, n, e, a = run_tables.runs, lineage_tables.lineage_nodes, lineage_tables.lineage_edges, signing_tables.attestations
    with store.db.read() as conn:
        run_ids = list(conn.execute(select(r.c.id).where(func.lower(r.c.output) == repo_id.lower())
                                    .order_by(r.c.started_at, r.c.id)).scalars()) if repo_type == "model" else []
        node_rows = conn.execute(select(n.c.pk).where(n.c.repo_key == key, or_(n.c.commit.in_(oids), n.c.kind == "run"))
                                 if oids else select(n.c.pk).where(n.c.repo_key == key, n.c.kind == "run")).scalars()
        node_pks = set(node_rows)
        edges: list[tuple[int, int, str]] = []
        pks = sorted(node_pks)
        for start in range(0, len(pks), 500):
            chunk = pks[start:start + 500]
            edges += conn.execute(select(e.c.parent, e.c.child, e.c.relation)
                                  .where(or_(e.c.parent.in_(chunk), e.c.child.in_(chunk)))).all()
        edges = sorted(set(edges))
        ends = sorted({p for p, _, _ in edges} | {c for _, c, _ in edges})
        nodes: dict[int, dict[str, Any]] = {}
        for start in range(0, len(ends), 500):
            for row in conn.execute(select(n).where(n.c.pk.in_(ends[start:start + 500]))):
                nodes[row.pk] = {"kind": row.kind, "repo": row.repo, "commit": row.commit, "path": row.path,
                                 "info": json.loads(row.info) if row.info else {}}
        attestation_rows = conn.execute(select(a).where(a.c.repo_type == repo_type, a.c.repo_id == repo_id)
                                        .order_by(a.c.pk)).all()
    for run_id in run_ids:
        info = runs.get(run_id)
        out["runs"].append({**info.to_json(), "metrics": [m.to_json() for m in runs.metrics(run_id)]})
    if repo_type == "model":
        out["evaluations"] = [info.to_json() for info in Evaluations(store.db).list(model=repo_id, limit=10**9)
                              if info.card_commit in oids][::-1]
    out["lineage"] = [{"parent": nodes[p], "child": nodes[c], "relation": rel} for p, c, rel in edges]
    # The envelope's exact text travels too: the parsed form is for readers, the text is what was stored.
    out["attestations"] = [{**AttestationRecord(row.repo_type, row.repo_id, row.commit, row.kind, row.subject_path,
                                                row.envelope, row.created_at).to_json(), "envelope_text": row.envelope}
                           for row in attestation_rows if row.commit in oids]
    return out


def _node(data: dict[str, Any]) -> NodeRef:
    return NodeRef(str(data["kind"]), str(data["repo"]), str(data.get("commit") or ""), str(data.get("path") or ""),
                   dict(data.get("info") or {}))


def _refuse(what: str, repo_type: str, repo_id: str) -> InvalidInputError:
    return InvalidInputError(f"the bundle's record of {repo_type} {repo_id} carries {what} of another repo",
                             hint="a bundle's records travel only with their own repo; export it again")


def apply_records(conn: Connection, records: dict[str, Any], repo_type: str, repo_id: str) -> dict[str, int]:
    """Write the records a bundle carries for one repo into ``conn``'s transaction; returns what was added.

    Each record must belong to that repo (a run's output, a card's model, an attestation's subject, one end of
    each lineage edge): a bundle cannot write records about repos it does not carry.
    """
    added = {kind: 0 for kind in RECORD_KINDS}
    key = f"{repo_type}/{repo_id.lower()}"
    try:
        runs = records.get("runs") or []
        if any(str(item.get("output") or "").lower() != repo_id.lower() for item in runs):
            raise _refuse("a run", repo_type, repo_id)
        evaluations = records.get("evaluations") or []
        if any(item.get("model") != repo_id for item in evaluations):
            raise _refuse("a report card", repo_type, repo_id)
        if any(item.get("repo_id") != repo_id or item.get("repo_type") != repo_type
               for item in records.get("attestations") or []):
            raise _refuse("an attestation", repo_type, repo_id)
        _apply_runs(conn, runs, added)
        _apply_evaluations(conn, evaluations, added)
        edges = [Edge(_node(item["parent"]), _node(item["child"]), str(item["relation"]))
                 for item in records.get("lineage") or []]
        if any(key not in (edge.parent.repo_key, edge.child.repo_key) for edge in edges):
            raise _refuse("a lineage edge", repo_type, repo_id)
        before = conn.execute(select(func.count()).select_from(lineage_tables.lineage_edges)).scalar_one()
        record_edges(conn, edges)
        added["lineage"] = conn.execute(select(func.count()).select_from(lineage_tables.lineage_edges)).scalar_one() \
            - before
        _apply_attestations(conn, records.get("attestations") or [], added)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InvalidInputError(f"malformed record in the bundle: {exc!r}") from None
    return added


def _apply_runs(conn: Connection, items: list[dict[str, Any]], added: dict[str, int]) -> None:
    r, m = run_tables.runs, run_tables.run_metrics
    for item in items:
        info = RunInfo.from_json(item)
        if conn.execute(select(r.c.id).where(r.c.id == info.id)).first() is not None:
            continue
        values = {f: getattr(info, f) for f in RunInfo.__dataclass_fields__}
        for field in ("config", "libraries", "hardware"):
            values[field] = json.dumps(values[field], sort_keys=True)
        values["summary"] = None if info.summary is None else json.dumps(info.summary, sort_keys=True)
        conn.execute(insert(r).values(**values))
        points = [MetricPoint.from_json(p) for p in item.get("metrics") or []]
        if points:
            conn.execute(insert(m), [{"run_id": info.id, "step": p.step, "epoch": p.epoch, "key": p.key,
                                      "value": p.value, "at": p.at} for p in points])
        added["runs"] += 1


def _apply_evaluations(conn: Connection, items: list[dict[str, Any]], added: dict[str, int]) -> None:
    ev = evaluation_tables.evaluations
    for item in items:
        info = EvaluationInfo.from_json(item)
        if conn.execute(select(ev.c.pk).where(ev.c.model == info.model, ev.c.card_commit == info.card_commit,
                                              ev.c.report_path == info.report_path)).first() is not None:
            continue
        conn.execute(insert(ev).values(
            model=info.model, model_commit=info.model_commit, card_commit=info.card_commit, dataset=info.dataset,
            dataset_commit=info.dataset_commit, split=info.split, task=info.task, report_path=info.report_path,
            metrics=json.dumps(info.metrics, sort_keys=True), created_at=info.created_at))
        added["evaluations"] += 1


def _apply_attestations(conn: Connection, items: list[dict[str, Any]], added: dict[str, int]) -> None:
    a = signing_tables.attestations
    for item in items:
        record = AttestationRecord.from_json(item)
        if conn.execute(select(a.c.pk).where(a.c.repo_type == record.repo_type, a.c.repo_id == record.repo_id,
                                             a.c.commit == record.commit, a.c.kind == record.kind,
                                             a.c.subject_path == record.subject_path)).first() is not None:
            continue
        conn.execute(insert(a).values(repo_type=record.repo_type, repo_id=record.repo_id, commit=record.commit,
                                      kind=record.kind, subject_path=record.subject_path,
                                      envelope=str(item.get("envelope_text") or record.envelope),
                                      created_at=record.created_at))
        added["attestations"] += 1
