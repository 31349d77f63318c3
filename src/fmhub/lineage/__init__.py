"""Lineage as data: which versions were made from which, queryable both ways.

Every stage records its inputs in the card it writes (``fmhub.lineage``) and report cards name the model
and data they measured; the store calls this domain's write hook on every commit, which turns those into
edges of a graph (dataset commit → run → model commit → variant commit, model and dataset → evaluation) in
the commit's own transaction. A serve check's step record adds a node under the model version it served
(``model → serve-check``) when it is saved. Queries walk the graph in the database (recursive SQL): ancestors, descendants
to a depth, and impact (everything descending from a version, the question a data-deletion request asks).

Example:
    >>> from fmhub.lineage import Lineage
    >>> lineage = Lineage(store.db)
    >>> impact = lineage.impact(lineage.find("dataset", "acme/news"))
    >>> sorted(n.id for n in impact.nodes.values() if n.kind == "model")
"""

from fmhub.lineage._describe import describe
from fmhub.lineage._graph import MAX_DEPTH, MAX_NODES, Graph, GraphEdge, Lineage, Node
from fmhub.lineage._record import Edge, LineageHook, NodeRef, card_edges, record_edges, report_edges
from fmhub.lineage._serving import SERVING_KINDS, record_serving, rerecord_serving, serving_edges
from fmhub.store.hooks import register_write_hook

__all__ = ["describe", "Lineage", "Graph", "Node", "GraphEdge", "Edge", "NodeRef", "LineageHook", "card_edges", "report_edges",
           "record_edges", "MAX_DEPTH", "MAX_NODES", "SERVING_KINDS", "serving_edges", "record_serving",
           "rerecord_serving"]

register_write_hook(LineageHook())
