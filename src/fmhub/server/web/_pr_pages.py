"""Pull requests and discussions on the repo page (the Hub's URL shapes: ``/{repo}/discussions``,
``/{repo}/discussions/{num}``): the list, and a pull request's files, conflicts, report-card metrics against
its base, line diff and timeline. A view over the same store functions the API uses."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from fmhub.evaluations import Evaluations, metric_changes
from fmhub.server.web._render import render
from fmhub.server.web._repo import diff_files, open_repo, store_of
from fmhub.server.web._routing import PageRoute
from fmhub.store import discussions as d

__all__ = ["router"]

router = APIRouter(route_class=PageRoute, include_in_schema=False)
_STATUSES = ("open", "merged", "closed", "all")


def _list_page(request: Request, repo_type: str, repo_id: str) -> HTMLResponse:
    view = open_repo(request, repo_type, repo_id, tab="discussions")
    status = request.query_params.get("status", "open")
    status = status if status in _STATUSES else "open"
    found = d.list_discussions(store_of(request), view.repo.repo_id, repo_type=repo_type,
                               status=None if status == "all" else status)
    return render(request, "repo_discussions.html", view=view, discussions=found, status=status,
                  statuses=_STATUSES)


def _metrics(request: Request, pr: d.Discussion) -> list[Any]:
    if pr.repo_type != "model" or not pr.base_commit or not pr.head_commit:
        return []
    store = store_of(request)
    cards = Evaluations(store.db).list(model=pr.repo_id, limit=1000)
    if not cards:
        return []
    proposed = []
    for commit in store.list_commits(pr.repo_id, pr.head_commit, repo_type=pr.repo_type, limit=500):
        if commit.oid == pr.base_commit:
            break
        proposed.append(commit.oid)
    base = [c.oid for c in store.list_commits(pr.repo_id, pr.base_commit, repo_type=pr.repo_type, limit=500)]
    return metric_changes(cards, proposed, base)


def _detail_page(request: Request, repo_type: str, repo_id: str, num: int) -> HTMLResponse:
    store = store_of(request)
    view = open_repo(request, repo_type, repo_id, tab="discussions")
    pr = d.get_discussion(store, view.repo.repo_id, num, repo_type=repo_type)
    changes, conflicts, diff, metrics = [], [], "", []
    if pr.is_pull_request and pr.base_commit and pr.head_commit:
        files, conflicts = d.pull_request_changes(store, pr)
        diff = d.unified_diff(store, files)
        changes = diff_files(store.list_files(view.repo.repo_id, pr.base_commit, repo_type=repo_type),
                             store.list_files(view.repo.repo_id, pr.head_commit, repo_type=repo_type))
        metrics = _metrics(request, pr)
    return render(request, "repo_discussion.html", view=view, pr=pr, changes=changes, conflicts=conflicts,
                  diff=diff, metrics=metrics)


def _register() -> None:
    for repo_type, prefix in (("dataset", "/datasets"), ("model", "")):
        base = prefix + "/{namespace}/{name}/discussions"

        def listing(request: Request, namespace: str, name: str, _t: str = repo_type) -> HTMLResponse:
            return _list_page(request, _t, f"{namespace}/{name}")

        def detail(request: Request, namespace: str, name: str, num: int, _t: str = repo_type) -> HTMLResponse:
            return _detail_page(request, _t, f"{namespace}/{name}", num)

        router.add_api_route(base, listing, methods=["GET"], name=f"discussions_{repo_type}")
        router.add_api_route(base + "/{num}", detail, methods=["GET"], name=f"discussion_{repo_type}")


_register()
