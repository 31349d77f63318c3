"""Finding repos: the Hub's list routes (``/api/models``, ``/api/datasets``) and fmhub's ``/api/fmhub/search``.

Both read the search index (:mod:`fmhub.search`), which the store keeps in the transaction of every write.
The list routes follow the Hugging Face Hub's query conventions as ``huggingface_hub`` sends them (``search``,
``author``, ``filter``, ``pipeline_tag``, ``sort``, ``direction``, ``limit``, ``full``, ``cardData``, ``expand``,
pages linked with ``Link: <…>; rel="next"``); a parameter fmhub does not support is a 400 naming it, never
silently ignored. Private repos are listed only to callers who may read them.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from fmhub.accounts import Principal
from fmhub.errors import InvalidInputError
from fmhub.search import MetricFilter, Search, SearchHit, SearchQuery
from fmhub.server._auth import ReaderDep, StoreDep
from fmhub.server._gitfiles import security_statuses
from fmhub.server._hf import iso, repo_type_of
from fmhub.store import Store

__all__ = ["router", "readable_namespaces"]

router = APIRouter()

#: Items per page of the list routes when the client names no smaller limit (the Hub pages by 1000 too).
LIST_PAGE = 1000
_LIST_PARAMS = {"search", "author", "filter", "pipeline_tag", "sort", "direction", "limit", "full", "cardData",
                "expand", "cursor", "gated"}
_EXPAND = {
    "model": {"author", "cardData", "createdAt", "disabled", "downloads", "downloadsAllTime", "gated", "lastModified",
              "library_name", "likes", "pipeline_tag", "private", "sha", "siblings", "tags", "trendingScore",
              "usedStorage"},
    "dataset": {"author", "cardData", "createdAt", "disabled", "downloads", "downloadsAllTime", "gated",
                "lastModified", "likes", "private", "sha", "siblings", "tags", "trendingScore", "usedStorage"},
}


def readable_namespaces(caller: Principal | None) -> frozenset[str] | None:
    """The namespaces whose private repos the caller may list (lower case); None: every one (an administrator)."""
    if caller is None:
        return frozenset()
    if caller.is_admin:
        return None
    return frozenset({caller.user.lower(), *caller.orgs})


def _bool(value: str | None, name: str) -> bool:
    if value is None:
        return False
    lowered = value.lower()
    if lowered in ("1", "true", "yes", ""):
        return True
    if lowered in ("0", "false", "no"):
        return False
    raise InvalidInputError(f"{name} must be true or false, got {value!r}")


def _int(value: str | None, name: str, default: int | None) -> int | None:
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise InvalidInputError(f"{name} must be an integer, got {value!r}") from None


def _item(store: Store, hit: SearchHit, fields: set[str]) -> dict[str, Any]:
    """A list entry in the Hub's shape, with the ``fields`` asked for (``full``/``cardData``/``expand``)."""
    values: dict[str, Any] = {
        "author": hit.author, "private": hit.private, "createdAt": iso(hit.created_at),
        "lastModified": iso(hit.updated_at), "tags": hit.tags, "downloads": 0, "likes": 0, "gated": False,
        "disabled": False, "sha": hit.sha, "downloadsAllTime": 0, "trendingScore": 0,
    }
    if hit.repo_type == "model":
        values["library_name"] = hit.library
        values["pipeline_tag"] = hit.task
    if "cardData" in fields:
        values["cardData"] = hit.card_data
    if "siblings" in fields or "usedStorage" in fields:
        files = store.list_files(hit.repo_id, hit.sha, repo_type=hit.repo_type) if hit.sha else []
        statuses = security_statuses(store, files)
        values["siblings"] = [{"rfilename": e.path, "size": e.size, "blobId": e.blob_sha256,
                               **({"securityFileStatus": statuses[e.path]} if e.path in statuses else {})}
                              for e in files]
        values["usedStorage"] = sum(e.size for e in files)
    item = {"_id": f"{hit.repo_type}/{hit.repo_id}", "id": hit.repo_id}
    if hit.repo_type == "model":
        item["modelId"] = hit.repo_id
    item.update({k: v for k, v in values.items() if k in fields})
    return item


@router.get("/api/{plural}", tags=["huggingface"],
            summary="List the repos the caller may see (the Hub's search, filter, sort and pagination)")
def list_repos(store: StoreDep, caller: ReaderDep, plural: str, request: Request,
               search: Annotated[list[str] | None, Query(description="Substrings of the repo id (all must occur).")]
               = None,
               author: Annotated[str | None, Query(description="The namespace.")] = None,
               filter: Annotated[list[str] | None, Query(description="Tags every result has: a task, a library, "
                                                         "license:<id>, dataset:<id>, language…")] = None,
               sort: Annotated[str | None, Query(description="lastModified, createdAt, id, downloads, likes, "
                                                 "trendingScore or metric:<name>.")] = None,
               ) -> JSONResponse:
    repo_type = repo_type_of(plural)
    params = request.query_params
    unknown = sorted(set(params) - _LIST_PARAMS)
    if unknown:
        raise InvalidInputError(f"fmhub does not support the list parameter(s) {', '.join(unknown)}",
                                hint=f"supported: {', '.join(sorted(_LIST_PARAMS))}")
    limit = _int(params.get("limit"), "limit", None)
    if limit is not None and limit < 1:
        raise InvalidInputError("limit must be ≥ 1")
    cursor = _int(params.get("cursor"), "cursor", 0) or 0
    direction = _int(params.get("direction"), "direction", None)
    expand = params.getlist("expand")
    allowed = _EXPAND[repo_type]
    if bad := sorted(set(expand) - allowed):
        raise InvalidInputError(f"fmhub cannot expand {', '.join(bad)}", hint=f"supported: {', '.join(sorted(allowed))}")
    if expand:
        fields = set(expand)
    else:
        fields = {"author", "private", "createdAt", "lastModified", "tags", "downloads", "likes", "gated",
                  "disabled", "library_name", "pipeline_tag", "sha"}
        if _bool(params.get("full"), "full"):
            fields |= {"cardData", "siblings"}
        if _bool(params.get("cardData"), "cardData"):
            fields.add("cardData")
    page = min(limit or LIST_PAGE, LIST_PAGE)
    if "gated" in params and _bool(params.get("gated"), "gated"):
        return JSONResponse([])  # fmhub has no gated repos
    query = SearchQuery(repo_type=repo_type, search=search or [], author=author, filters=filter or [],
                        task=params.get("pipeline_tag"), sort=sort or "lastModified", direction=direction,
                        offset=cursor, limit=page, readable=readable_namespaces(caller))
    result = Search(store.db).query(query)
    headers = {}
    if result.more and (limit is None or cursor + page < limit):
        query_params = list(params.multi_items())
        query_params = [(k, v) for k, v in query_params if k != "cursor"] + [("cursor", str(cursor + page))]
        headers["Link"] = f'<{request.url.replace(query=urlencode(query_params))}>; rel="next"'
    return JSONResponse([_item(store, hit, fields) for hit in result.hits], headers=headers)


@router.get("/api/fmhub/search", tags=["fmhub"], summary="Search repos by text, tags, task and report-card metric")
def search(store: StoreDep, caller: ReaderDep,
           q: Annotated[str | None, Query(max_length=400, description="Words matched in the id, task, tags, library, "
                                          "license and datasets.")] = None,
           repo_type: Annotated[str | None, Query(alias="type", description="model or dataset (default: both).")]
           = None,
           search: Annotated[list[str] | None, Query(description="Substrings of the repo id (all must occur).")]
           = None,
           author: str | None = None,
           filter: Annotated[list[str] | None, Query(description="Tags every result has.")] = None,
           task: Annotated[str | None, Query(description="The card's pipeline_tag / task_categories.")] = None,
           metric: Annotated[list[str] | None, Query(description="Report-card filters, e.g. accuracy>=0.95.")] = None,
           on: Annotated[str | None, Query(description="The dataset[:split] metric filters and sorts refer to.")]
           = None,
           sort: Annotated[str, Query(description="lastModified, createdAt, id, or metric:<name>.")] = "lastModified",
           direction: Annotated[int | None, Query(description="-1 descending, 1 ascending.")] = None,
           limit: Annotated[int, Query(ge=1, le=100)] = 20,
           cursor: Annotated[int, Query(ge=0)] = 0) -> dict[str, Any]:
    filters = [MetricFilter.parse(m, on) for m in metric or []]
    query = SearchQuery(repo_type=repo_type or None, search=search or [], text=q, author=author, filters=filter or [], task=task,
                        metrics=filters, sort=sort, direction=direction, offset=cursor, limit=limit,
                        readable=readable_namespaces(caller), metric_on=on)
    result = Search(store.db).query(query, count=True)
    return {"hits": [hit.to_json() for hit in result.hits], "total": result.total,
            "next": cursor + limit if result.more else None}
