"""Recording lineage: the edges a commit's card and report cards declare, written in the commit's transaction.

What each stage writes, and the edges it becomes (``parent → child``):

- a trained model's card (``fmhub.lineage``: ``dataset``/``dataset_commit``, ``base_model``/``base_model_commit``,
  ``run_id``): dataset commit → run (``data``), base model commit → run (``base``), run → model commit
  (``trained``); without a run, the inputs point at the model commit directly;
- a distilled student (``fmhub.variant.method: distill``): as trained, plus teacher commit → run (``teacher``);
- an optimized variant (``fmhub.lineage.parent``/``parent_commit``, ``fmhub.variant``): parent model commit →
  variant commit (``variant``; the variant's other lineage fields are its parent's, inherited);
- a card naming only a Hugging Face ``base_model``: base model → model commit (``base``);
- an input named without its commit is pinned to its repo's default-branch head at the time of the write
  (the version the hub held then), when the hub has that repo;
- a dataset card with ``fmhub.lineage`` naming a parent or source dataset: that dataset → this commit (``derived``);
- a report card (``eval/<dataset>/<split>/report.json``): evaluated model commit → evaluation (``evaluated``),
  dataset commit → evaluation (``test data``);
- a later commit of a version in the graph whose card says nothing new: previous commit → this one
  (``revision``), so what was built from a version reaches its later commits too.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, func, select

from fmhub.cards import fmhub_section, parse_card
from fmhub.errors import FmhubError
from fmhub.lineage import _tables as t
from fmhub.store.hooks import WriteContext, WriteHook, bulk_insert

__all__ = ["NodeRef", "Edge", "LineageHook", "card_edges", "report_edges", "record_edges", "node_ident", "REPORT_PATH"]

REPORT_PATH = re.compile(r"^eval/([^/]+/[^/]+)/([^/]+)/report\.json$")
_SHA1 = re.compile(r"^[0-9a-f]{40}$")
_RUN = re.compile(r"^r-[0-9a-f]{6,32}$")
_REPO = re.compile(r"^[A-Za-z0-9][\w.-]{0,95}/[A-Za-z0-9][\w.-]{0,95}$")
_KINDS = {"model": "model", "dataset": "dataset"}
#: Headline metrics an evaluation node carries for listings (the report has them all).
_HEADLINE = 6


@dataclass(frozen=True)
class NodeRef:
    """A node by what it is: kind (model | dataset | run | evaluation), repo id (a run's id), commit, path."""

    kind: str
    repo: str
    commit: str = ""
    path: str = ""
    info: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def repo_key(self) -> str | None:
        """The repo whose access rules apply: the node's own; for a run, the model it trained (``info.output``)."""
        if self.kind == "run":
            output = self.info.get("output")
            return output if isinstance(output, str) else None
        return f"{'dataset' if self.kind == 'dataset' else 'model'}/{self.repo.lower()}"

    @property
    def ident(self) -> str:
        return f"{self.kind}:{self.repo.lower()}@{self.commit}:{self.path}"


def node_ident(kind: str, repo: str, commit: str = "", path: str = "") -> str:
    return f"{kind}:{repo.lower()}@{commit}:{path}"


@dataclass(frozen=True)
class Edge:
    parent: NodeRef
    child: NodeRef
    relation: str


def _repo(value: Any) -> str | None:
    return value if isinstance(value, str) and _REPO.match(value) else None


def _commit(value: Any) -> str:
    return value.lower() if isinstance(value, str) and _SHA1.match(value.lower()) else ""


def card_edges(repo_type: str, repo_id: str, commit: str, metadata: dict[str, Any]) -> list[Edge]:
    """The edges a card's metadata declares for the version ``repo_id@commit`` (see the module's table)."""
    me = NodeRef(repo_type, repo_id, commit)
    lineage = fmhub_section(metadata, "lineage")
    variant = fmhub_section(metadata, "variant")
    edges: list[Edge] = []
    if repo_type == "dataset":
        for key in ("parent", "source", "dataset"):
            if source := _repo(lineage.get(key)):
                edges.append(Edge(NodeRef("dataset", source, _commit(lineage.get(f"{key}_commit"))), me, "derived"))
        return edges
    parent = _repo(lineage.get("parent"))
    method = str(variant.get("method", "")) if variant else ""
    if parent and method != "distill":
        info = {"method": method} if method else {}
        if variant.get("format"):
            info["format"] = str(variant["format"])[:64]
        return [Edge(NodeRef("model", parent, _commit(lineage.get("parent_commit"))),
                     NodeRef("model", repo_id, commit, info=info), "variant")]
    target = me
    run = lineage.get("run_id")
    if isinstance(run, str) and _RUN.match(run):
        target = NodeRef("run", run, info={"output": f"model/{repo_id.lower()}"})
        edges.append(Edge(target, me, "trained"))
    if dataset := _repo(lineage.get("dataset")):
        edges.append(Edge(NodeRef("dataset", dataset, _commit(lineage.get("dataset_commit"))), target, "data"))
    base = _repo(lineage.get("base_model"))
    if base is None and not lineage and isinstance(metadata.get("base_model"), str):
        base = _repo(metadata["base_model"])
    if base:
        edges.append(Edge(NodeRef("model", base, _commit(lineage.get("base_model_commit"))), target, "base"))
    if parent:  # a distilled student: the teacher taught the run
        edges.append(Edge(NodeRef("model", parent, _commit(lineage.get("parent_commit"))), target, "teacher"))
    return edges


def report_edges(repo_id: str, commit: str, path: str, data: bytes | None) -> list[Edge]:
    """The edges of the report card at ``path`` in model ``repo_id@commit`` ([] when it is not a readable card)."""
    if not data:
        return []
    try:
        report = json.loads(data)
        prov = report["provenance"]
        model, dataset = prov["model"], prov["dataset"]
        model_repo, model_commit = _repo(model["repo"]), _commit(model["commit"])
        data_repo, data_commit = _repo(dataset["repo"]), _commit(dataset["commit"])
        metrics = report.get("metrics") if isinstance(report.get("metrics"), dict) else {}
        info = {"dataset": data_repo, "split": str(dataset.get("split", ""))[:255], "task": str(report.get("task", ""))[:64],
                "metrics": {k: float(v) for k, v in list(metrics.items())[:_HEADLINE]
                            if isinstance(v, (int, float)) and not isinstance(v, bool)}}
    except (ValueError, KeyError, TypeError, AttributeError):
        return []
    if model_repo is None or model_repo.lower() != repo_id.lower() or not model_commit:
        return []  # a card describing another model is not this repo's evaluation
    node = NodeRef("evaluation", repo_id, commit, path, info=info)
    edges = [Edge(NodeRef("model", repo_id, model_commit), node, "evaluated")]
    if data_repo:
        edges.append(Edge(NodeRef("dataset", data_repo, data_commit), node, "test data"))
    return edges


def _node_pks(conn: Connection, nodes: Sequence[NodeRef], now: datetime) -> dict[str, int]:
    """ident → pk for ``nodes``, inserting the missing ones (in batches; concurrent inserts are tolerated)."""
    n = t.lineage_nodes
    unique = {node.ident: node for node in nodes}
    idents = sorted(unique)
    pks: dict[str, int] = {}
    for start in range(0, len(idents), 500):
        chunk = idents[start:start + 500]
        pks.update(conn.execute(select(n.c.ident, n.c.pk).where(n.c.ident.in_(chunk))).all())
    missing = [(i, unique[i]) for i in idents if i not in pks]
    if missing and conn.dialect.name == "sqlite":
        # SQLite's write transaction holds the database's one write lock (BEGIN IMMEDIATE): no one else inserts
        # nodes meanwhile, so the new rows' keys are known here and need no second look-up
        first = conn.execute(select(func.coalesce(func.max(n.c.pk), 0))).scalar_one() + 1
        bulk_insert(conn, n, [
            {"pk": pk, "ident": i, "kind": m.kind, "repo": m.repo[:200], "repo_key": m.repo_key, "commit": m.commit,
             "path": m.path, "info": json.dumps(m.info, sort_keys=True) if m.info else None, "created_at": now}
            for pk, (i, m) in enumerate(missing, first)])
        pks.update((i, pk) for pk, (i, _) in enumerate(missing, first))
    elif missing:
        bulk_insert(conn, n, [
            {"ident": i, "kind": m.kind, "repo": m.repo[:200], "repo_key": m.repo_key, "commit": m.commit,
             "path": m.path, "info": json.dumps(m.info, sort_keys=True) if m.info else None, "created_at": now}
            for i, m in missing], skip_conflicts=["ident"])
        for start in range(0, len(missing), 500):
            chunk = [i for i, _ in missing[start:start + 500]]
            pks.update(conn.execute(select(n.c.ident, n.c.pk).where(n.c.ident.in_(chunk))).all())
    return pks


def record_edges(conn: Connection, edges: Sequence[Edge]) -> int:
    """Write ``edges`` (and their nodes), skipping those already recorded; returns how many were given."""
    if not edges:
        return 0
    now = datetime.now(UTC)
    pks = _node_pks(conn, [node for e in edges for node in (e.parent, e.child)], now)
    rows: dict[tuple[int, int], str] = {}
    for e in edges:
        pair = (pks[e.parent.ident], pks[e.child.ident])
        if pair[0] != pair[1]:
            rows.setdefault(pair, e.relation)
    bulk_insert(conn, t.lineage_edges, [{"parent": p, "child": c, "relation": r} for (p, c), r in rows.items()],
                skip_conflicts=["parent", "child"])
    return len(edges)


def _has_node(conn: Connection, ident: str) -> bool:
    n = t.lineage_nodes
    return conn.execute(select(n.c.pk).where(n.c.ident == ident)).first() is not None


class LineageHook(WriteHook):
    """Record the edges each commit declares (on any branch): its card's lineage and its new report cards."""

    name = "lineage"

    def __init__(self) -> None:
        self._cards: dict[str, dict[str, Any]] = {}  # README sha256 → metadata (blobs are immutable)

    def _metadata(self, sha: str, size: int, read: Callable[[str, int], bytes | None]) -> dict[str, Any]:
        if sha not in self._cards:
            data = read(sha, size)
            try:
                metadata = parse_card(data.decode("utf-8", "replace")).metadata if data else {}
            except FmhubError:
                metadata = {}
            if len(self._cards) > 4096:
                self._cards.pop(next(iter(self._cards)))
            self._cards[sha] = metadata
        return self._cards[sha]

    def after_write(self, context: WriteContext) -> None:
        if context.action not in ("commit", "index") or not context.commit_oid or context.repo_type not in _KINDS:
            return
        repo_id, oid = context.repo_id or "", context.commit_oid
        found = context.commit(oid)
        if found is None:
            return
        files = context.files(oid)
        parents = found[1]
        before = context.files(parents[0]) if parents else {}
        edges: list[Edge] = []
        card_changed = files.get("README.md") != before.get("README.md")
        if card_changed and "README.md" in files:
            metadata = self._metadata(*files["README.md"], context.read)
            declared = card_edges(context.repo_type, repo_id, oid, metadata)  # type: ignore[arg-type]
            if "README.md" in before and parents:  # a card edit that keeps the lineage (an evaluation section...)
                previous = self._metadata(*before["README.md"], context.read)
                old = card_edges(context.repo_type, repo_id, parents[0], previous)  # type: ignore[arg-type]
                if {(e.parent.ident, e.relation) for e in old} == {(e.parent.ident, e.relation) for e in declared}:
                    declared = []  # same inputs: this commit is a revision of the previous one (below)
            edges += declared
        if context.repo_type == "model":
            for path, entry in files.items():
                if path.startswith("eval/") and before.get(path) != entry and REPORT_PATH.match(path):
                    edges += report_edges(repo_id, oid, path, context.read(*entry))
        if not any(e.child.ident == node_ident(context.repo_type, repo_id, oid) for e in edges) and parents \
                and _has_node(context.conn, node_ident(context.repo_type, repo_id, parents[0])):
            edges.append(Edge(NodeRef(context.repo_type, repo_id, parents[0]),  # type: ignore[arg-type]
                              NodeRef(context.repo_type, repo_id, oid), "revision"))  # type: ignore[arg-type]
        record_edges(context.conn, [self._pinned(context, e) for e in edges])

    @staticmethod
    def _pinned(context: WriteContext, edge: Edge) -> Edge:
        """A card naming an input without its commit (the Hub's plain ``base_model: X``) used the version the hub
        held then: pin it to that repo's default-branch head at this write, when the hub has the repo."""
        parent = edge.parent
        if parent.commit or parent.kind not in _KINDS:
            return edge
        head = context.head_of(parent.kind, parent.repo)
        return edge if head is None else Edge(NodeRef(parent.kind, parent.repo, head, parent.path, parent.info),
                                              edge.child, edge.relation)
