"""Hub-wide pages: home and search, model and dataset lists, leaderboards, runs, and account profiles.

fmhub's own pages live under ``/-/`` (``/-/runs``, ``/-/leaderboards``...): no account name can start
with ``-``, so they never collide with a user's repos (GitLab uses the same separator).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from fmhub.errors import AccountNotFoundError, InvalidInputError
from fmhub.server._auth import can_see
from fmhub.server.web._records import RUN_STATUSES, run_metrics, visible_run, visible_runs
from fmhub.server.web._render import render
from fmhub.server.web._repo import store_of
from fmhub.server.web._routing import PageRoute, int_param
from fmhub.server.web._search import SORTS, card_summary, leaderboard, leaderboards, search_repos
from fmhub.server.web._session import viewer

__all__ = ["router", "profile_router"]

router = APIRouter(route_class=PageRoute, include_in_schema=False)
#: ``/{account}``: included after every other page router, since it takes any single path segment left.
profile_router = APIRouter(route_class=PageRoute, include_in_schema=False)

PER_PAGE = 20


def _search(request: Request, repo_type: str | None, template: str, **extra: Any) -> HTMLResponse:
    store = store_of(request)
    caller = viewer(request)
    query = request.query_params.get("q", "")
    kind = request.query_params.get("type") or repo_type
    if kind not in (None, "model", "dataset"):
        raise InvalidInputError(f"type={kind[:20]!r} is not model or dataset")
    sort = request.query_params.get("sort") or "updated"
    page = int_param(request, "p", 1, low=1)
    results = search_repos(store, caller, query=query, repo_type=kind, sort=sort, page=page, per_page=PER_PAGE,
                           dataset=request.query_params.get("dataset") or None,
                           split=request.query_params.get("split") or None)
    metric_sorts = ("metric:accuracy", "metric:f1_macro", "metric:f1", "metric:perplexity", "metric:latency_p50_ms")
    return render(request, template, results=results, q=query, kind=kind, sort=sort, sorts=SORTS,
                  metric_sorts=metric_sorts, fixed_type=repo_type, **extra)


@router.get("/")
def home(request: Request) -> HTMLResponse:
    boards = leaderboards(store_of(request), viewer(request), rows=5)
    return _search(request, None, "home.html", boards=boards[:6], more_boards=len(boards) > 6)


@router.get("/models")
def models(request: Request) -> HTMLResponse:
    return _search(request, "model", "search.html", boards=[], more_boards=False)


@router.get("/datasets")
def datasets(request: Request) -> HTMLResponse:
    return _search(request, "dataset", "search.html", boards=[], more_boards=False)


@router.get("/-/leaderboards")
def all_leaderboards(request: Request) -> HTMLResponse:
    store = store_of(request)
    caller = viewer(request)
    dataset = request.query_params.get("dataset")
    split = request.query_params.get("split")
    if dataset and split:
        board = leaderboard(store, caller, dataset, split, request.query_params.get("metric") or None)
        if board is None:
            raise InvalidInputError(f"no report card on {dataset[:100]} {split[:40]} is visible to you")
        if board.metric not in board.metrics:
            raise InvalidInputError(f"metric={board.metric[:60]!r} is on none of these cards",
                                    hint=", ".join(board.metrics))
        return render(request, "leaderboard.html", board=board)
    return render(request, "leaderboards.html", boards=leaderboards(store, caller, rows=10))


# -- runs ---------------------------------------------------------------------------------------------


@router.get("/-/runs")
def runs(request: Request) -> HTMLResponse:
    status = request.query_params.get("status") or None
    if status is not None and status not in RUN_STATUSES:
        raise InvalidInputError(f"status={status[:20]!r} is not one of {', '.join(RUN_STATUSES)}")
    limit = int_param(request, "limit", 100, low=1, high=1000)
    found = visible_runs(store_of(request), viewer(request), limit=limit, status=status)
    return render(request, "runs.html", runs=found, status=status, statuses=RUN_STATUSES)


def _series(points: list[Any]) -> dict[str, dict[str, list[Any]]]:
    """Metric points as plot series: per metric, steps, epochs and values."""
    out: dict[str, dict[str, list[Any]]] = {}
    for p in points:
        series = out.setdefault(p.key, {"step": [], "epoch": [], "value": []})
        series["step"].append(p.step)
        series["epoch"].append(p.epoch)
        series["value"].append(p.value)
    return out


@router.get("/-/runs/compare")
def compare_runs(request: Request) -> HTMLResponse:
    store = store_of(request)
    caller = viewer(request)
    ids = [i for i in request.query_params.getlist("run") if i]
    if not 2 <= len(ids) <= 8:
        raise InvalidInputError("compare 2 to 8 runs: ?run=ID&run=ID (tick them in the runs list)")
    chosen = [visible_run(store, caller, run_id) for run_id in ids]
    keys = sorted({k for r in chosen for k in r.config})
    config = [(k, [r.config.get(k) for r in chosen]) for k in keys]
    config.sort(key=lambda row: (len({repr(v) for v in row[1]}) == 1, row[0]))  # differences first
    summary_keys = sorted({k for r in chosen for k in (r.summary or {})})
    data = {"runs": [{"id": r.id, "name": r.name, "series": _series(run_metrics(store, r))} for r in chosen]}
    return render(request, "runs_compare.html", runs=chosen, config=config, summary_keys=summary_keys, data=data)


@router.get("/-/runs/{run_id}")
def run_page(request: Request, run_id: str) -> HTMLResponse:
    store = store_of(request)
    run = visible_run(store, viewer(request), run_id)
    points = run_metrics(store, run)
    return render(request, "run.html", run=run, data={"runs": [{"id": run.id, "name": run.name,
                                                                "series": _series(points)}]},
                  points=len(points))


# -- profiles -----------------------------------------------------------------------------------------


@profile_router.get("/{account}")
def profile(request: Request, account: str) -> HTMLResponse:
    """A user's or organization's page: their repos the viewer may see (and an org's members, to members)."""
    store = store_of(request)
    caller = viewer(request)
    accounts = request.app.state.accounts
    try:
        info = accounts.get(account)
    except (AccountNotFoundError, InvalidInputError):
        repos = [r for r in store.list_repos(author=account) if can_see(caller, r)] if account.isprintable() else []
        if not repos:
            raise AccountNotFoundError("account", account) from None
        info = None
    repos = sorted((r for r in store.list_repos(author=account) if can_see(caller, r)),
                   key=lambda r: r.updated_at, reverse=True)
    members = None
    if info is not None and info.kind == "org" and caller is not None and (
            caller.is_admin or caller.orgs.get(info.name.lower())):
        members = accounts.members(info.name)
    return render(request, "profile.html", account=info, name=info.name if info else account, members=members,
                  models=[(r, card_summary(store, r)) for r in repos if r.repo_type == "model"],
                  datasets=[(r, card_summary(store, r)) for r in repos if r.repo_type == "dataset"])
