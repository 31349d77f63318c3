"""The lineage tab: a repo version's graph (what it came from, what was made from it) and its impact.

``/{ns}/{name}/lineage/{rev}`` and ``/datasets/{ns}/{name}/lineage/{rev}`` (``?direction=up|down|both``,
``?depth=N``). The page reads the same answer as ``GET /api/fmhub/lineage/…`` (:func:`fmhub.server._lineage.
lineage_of`): the repo answers like a missing one to whoever may not see it, and nodes the viewer may not read
are drawn as hidden, never named. The graph is drawn by plotly.js (layered left to right, each node a link);
the same nodes are listed as links below it, so the page works without script too.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from fmhub.errors import InvalidInputError
from fmhub.lineage import MAX_DEPTH
from fmhub.server._lineage import lineage_of
from fmhub.server.web._render import render, repo_path, rev_part
from fmhub.server.web._repo import open_repo, store_of
from fmhub.server.web._repo_pages import repo_segments
from fmhub.server.web._routing import PageRoute, int_param

__all__ = ["router", "node_url", "layered"]

router = APIRouter(route_class=PageRoute, include_in_schema=False)

_KIND_ORDER = {"dataset": 0, "model": 1, "run": 2, "serve-check": 3, "deployment": 3, "evaluation": 4, "hidden": 5}
#: Rows of the impact table per page (the next page is a link; the API and CLI list every one).
IMPACT_TAB_PAGE = 100


def node_url(node: dict[str, Any]) -> str | None:
    """Where a node's link goes: the version's files, a run's page, a report card's page."""
    if node.get("hidden") or not node.get("exists", True):
        return None
    kind, repo, commit = node["kind"], node["repo"], node.get("commit")
    if kind == "run":
        return f"/-/runs/{quote(repo, safe='')}"
    if kind in ("serve-check", "deployment"):  # a record, not a version: the version it served
        return f"{repo_path('model', repo)}/tree/{commit}" if commit else None
    if kind == "evaluation":
        tail = (node.get("path") or "").removeprefix("eval/").removesuffix("/report.json")
        return f"{repo_path('model', repo)}/eval/{commit}/{tail}" if tail and commit else None
    base = repo_path(kind, repo)
    return f"{base}/tree/{commit}" if commit else base


def lineage_url(node: dict[str, Any]) -> str | None:
    """The lineage page of a version node (to walk the graph)."""
    if node.get("hidden") or not node.get("exists", True) or node["kind"] not in ("model", "dataset"):
        return None
    base = repo_path(node["kind"], node["repo"])
    return f"{base}/lineage/{node['commit']}" if node.get("commit") else f"{base}/lineage"


def layered(answer: dict[str, Any]) -> dict[str, Any]:
    """Positions for drawing: x is the node's depth (ancestors left, descendants right), y spreads each layer."""
    layers: dict[int, list[dict[str, Any]]] = {}
    for node in answer["nodes"]:
        layers.setdefault(node["depth"], []).append(node)
    points = {}
    for depth, nodes in layers.items():
        nodes.sort(key=lambda n: (_KIND_ORDER.get(n.get("kind", "hidden"), 9), n["id"]))
        for i, node in enumerate(nodes):
            points[node["id"]] = (depth, (len(nodes) - 1) / 2 - i)
    return {
        "nodes": [{"id": n["id"], "x": points[n["id"]][0], "y": points[n["id"]][1], "kind": n.get("kind", "hidden"),
                   "label": _label(n), "url": node_url(n), "root": n["id"] in answer["roots"]}
                  for n in answer["nodes"]],
        "edges": [{"from": points[e["from"]], "to": points[e["to"]], "relation": e["relation"]}
                  for e in answer["edges"] if e["from"] in points and e["to"] in points],
    }


def _label(node: dict[str, Any]) -> str:
    if node.get("hidden"):
        return "hidden"
    kind, repo, commit = node["kind"], node["repo"], (node.get("commit") or "")[:7]
    if kind == "run":
        return repo
    if kind == "evaluation":
        info = node.get("info") or {}
        return f"eval {info.get('dataset')}:{info.get('split')}"
    if kind in ("serve-check", "deployment"):
        return f"{kind} @{commit}"
    refs = ",".join(r["name"] for r in node.get("refs", [])[:2])
    return f"{repo}@{commit}" + (f" ({refs})" if refs else "")


def _rows(answer: dict[str, Any], direction: str) -> list[dict[str, Any]]:
    """The nodes of one side (``up``: ancestors, ``down``: descendants), nearest first, with how they connect."""
    ids = {n["id"]: n for n in answer["nodes"]}
    sign = -1 if direction == "up" else 1
    rows = []
    for node in sorted(answer["nodes"], key=lambda n: (abs(n["depth"]), n["id"])):
        if node["depth"] * sign <= 0:
            continue
        if direction == "up":
            links = [(e["relation"], ids.get(e["to"])) for e in answer["edges"] if e["from"] == node["id"]]
        else:
            links = [(e["relation"], ids.get(e["from"])) for e in answer["edges"] if e["to"] == node["id"]]
        rows.append({"node": node, "url": node_url(node), "lineage_url": lineage_url(node),
                     "links": [(rel, other, node_url(other) if other else None) for rel, other in links if other]})
    return rows


def _lineage_page(request: Request, repo_type: str) -> Response:
    repo_id, rest = repo_segments(request, repo_type)
    revision = "/".join(rest[1:]) or None
    view = open_repo(request, repo_type, repo_id, revision, tab="lineage")
    direction = request.query_params.get("direction") or "both"
    if direction not in ("both", "up", "down"):
        raise InvalidInputError(f"direction={direction[:20]!r} is not up, down or both")
    depth = int_param(request, "depth", 5, low=1, high=MAX_DEPTH)
    store = store_of(request)
    answer = lineage_of(store, view.caller, repo_type, view.repo.repo_id, view.commit.oid,
                        up=direction != "down", down=direction != "up", depth=depth)
    cursor = request.query_params.get("impact_cursor") or None
    impact = lineage_of(store, view.caller, repo_type, view.repo.repo_id, view.commit.oid, impact=True,
                        limit=IMPACT_TAB_PAGE, cursor=cursor)
    roots = set(impact["roots"])
    built = [n for n in impact["nodes"] if n["id"] not in roots]
    built.sort(key=lambda n: (_KIND_ORDER.get(n.get("kind", "hidden"), 9), n["id"]))
    page_url = f"{view.base}/lineage/{rev_part(view.revision)}"
    keep = [(k, v) for k, v in request.query_params.multi_items() if k != "impact_cursor"]
    next_url = f"{page_url}?{urlencode([*keep, ('impact_cursor', impact['next_cursor'])])}#impact" \
        if impact.get("next_cursor") else None
    first_url = f"{page_url}?{urlencode(keep)}#impact" if cursor else None
    root = next((n for n in answer["nodes"] if n["id"] in answer["roots"]), None)
    return render(request, "repo_lineage.html", view=view, answer=answer, root=root, direction=direction,
                  depth=depth, graph=layered(answer), ancestors=_rows(answer, "up"), descendants=_rows(answer, "down"),
                  built=[{"node": n, "url": node_url(n), "lineage_url": lineage_url(n)} for n in built],
                  hidden_built=sum(1 for n in built if n.get("hidden")), max_depth=MAX_DEPTH, page_url=page_url,
                  impact_total=impact.get("total", len(built)), impact_next=next_url, impact_first=first_url)


def _register() -> None:
    for repo_type, prefix in (("dataset", "/datasets"), ("model", "")):
        base = prefix + "/{namespace}/{name}/lineage"

        def page(request: Request, _t: str = repo_type) -> HTMLResponse:
            return _lineage_page(request, _t)  # type: ignore[return-value]

        page.__name__ = f"lineage_{repo_type}"
        router.add_api_route(base, page, methods=["GET"])
        router.add_api_route(base + "/{rest:path}", page, methods=["GET"])


_register()
