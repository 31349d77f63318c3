"""fmhub's lineage API: the graph around a repo version, and what was built from it (impact).

Both answer exactly like a missing repo for a repo the caller may not see, and inside an answer every node
the caller may not read (a private repo of another namespace, a deleted repo) is ``hidden``: counted and
linked, never named.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from fmhub.accounts import Principal
from fmhub.lineage import MAX_DEPTH, Node, describe
from fmhub.server._auth import ReaderDep, StoreDep, visible_repo
from fmhub.server._hf import repo_type_of
from fmhub.store import Store

__all__ = ["router", "may_read", "lineage_of", "IMPACT_PAGE"]

#: Descendants per page of an impact answer when the caller gives no ``limit`` (the next page is linked).
IMPACT_PAGE = 100
#: The largest page a caller may ask for.
MAX_IMPACT_PAGE = 10_000

router = APIRouter(prefix="/api/fmhub/lineage", tags=["fmhub"])


def may_read(caller: Principal | None) -> Callable[[Node], bool]:
    """The caller's view of lineage nodes: a node of an existing repo that is public or theirs to read."""

    def readable(node: Node) -> bool:
        if caller is not None and caller.is_admin:
            return True
        if not node.exists:
            return False
        return not node.private or (caller is not None and node.namespace is not None
                                    and caller.can_read_namespace(node.namespace))

    return readable


def lineage_of(store: Store, caller: Principal | None, repo_type: str, repo_id: str, revision: str | None, *,
               up: bool = True, down: bool = True, depth: int = 5, impact: bool = False,
               evaluations: bool = True, limit: int | None = None, cursor: str | None = None) -> dict[str, Any]:
    """The lineage answer for a repo the caller may see (RepoNotFoundError alike for missing and hidden repos)."""
    repo = visible_repo(store, caller, repo_type, repo_id)
    return describe(store, repo.repo_type, repo.repo_id, revision, up=up, down=down, depth=depth, impact=impact,
                    evaluations=evaluations, limit=limit, cursor=cursor, may_read=may_read(caller))


@router.get("/{plural}/{namespace}/{name}", summary="The lineage graph around a repo version")
def lineage(store: StoreDep, caller: ReaderDep, plural: str, namespace: str, name: str,
            revision: Annotated[str | None, Query(description="A branch, tag or commit (default: the default "
                                                  "branch).")] = None,
            direction: Annotated[str, Query(pattern="^(both|up|down)$", description="up: what it came from; down: "
                                            "what was made from it; both.")] = "both",
            depth: Annotated[int, Query(ge=1, le=MAX_DEPTH)] = 5) -> JSONResponse:
    return JSONResponse(lineage_of(store, caller, repo_type_of(plural), f"{namespace}/{name}", revision,
                                   up=direction != "down", down=direction != "up", depth=depth))


@router.get("/{plural}/{namespace}/{name}/impact",
            summary="Every version, variant, evaluation, serving record and published ref descending from a repo "
                    "(version), one page at a time")
def impact(store: StoreDep, caller: ReaderDep, request: Request, plural: str, namespace: str, name: str,
           revision: Annotated[str | None, Query(description="A branch, tag or commit (default: every version).")]
           = None,
           evaluations: Annotated[bool, Query(description="Also list the report cards made on what descends.")]
           = False,
           limit: Annotated[int, Query(ge=1, le=MAX_IMPACT_PAGE, description="Descendants per page (the roots come "
                                       "with every page); `total` counts them all.")] = IMPACT_PAGE,
           cursor: Annotated[str | None, Query(max_length=20, description="The `next_cursor` of the previous page "
                                               "(also in its `Link: <…>; rel=\"next\"` header).")] = None,
           ) -> JSONResponse:
    # answered as is (plain JSON types): no response-model encoding pass over thousands of nodes
    answer = lineage_of(store, caller, repo_type_of(plural), f"{namespace}/{name}", revision, impact=True,
                        evaluations=evaluations, limit=limit, cursor=cursor)
    headers = {}
    if answer.get("next_cursor"):  # the Hub's paging: huggingface_hub follows rel="next"
        query = [(k, v) for k, v in request.query_params.multi_items() if k != "cursor"]
        query.append(("cursor", answer["next_cursor"]))
        headers["Link"] = f'<{request.url.replace(query=urlencode(query))}>; rel="next"'
    return JSONResponse(answer, headers=headers)
