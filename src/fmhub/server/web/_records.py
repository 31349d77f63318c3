"""Every read the web UI makes of training runs and of the evaluations index, in one place.

Runs and indexed report cards live in the server's metadata database (``fmhub.runs.Runs`` and
``fmhub.evaluations.Evaluations`` over ``store.db``, the tables those packages own), read here as the
native API's routes read them.
Pages import only the functions below, so that move re-points this module and nothing else.

Visibility is the API's: a run follows its output repo (:func:`fmhub.server._auth.can_read_output`), a
report card its model.
"""

from __future__ import annotations

import time
from typing import Any

from fmhub.accounts import Principal

from fmhub.evaluations import EvaluationInfo, Evaluations
from fmhub.runs import RUN_STATUSES, MetricPoint, RunInfo, Runs
from fmhub.server._auth import can_read_output
from fmhub.server.web._listing import max_age, visible_ids
from fmhub.store import Store

__all__ = ["visible_runs", "visible_run", "run_metrics", "runs_of_repo", "evaluations", "EvaluationInfo",
           "RunInfo", "MetricPoint", "main_metric", "all_cards", "RUN_STATUSES"]


def _readable(store: Store, caller: Principal | None):
    """The API's rule for records (:func:`fmhub.server._auth.can_read_output`), each output looked up once."""
    seen: dict[str | None, bool] = {}

    def check(run: RunInfo) -> bool:
        if run.output not in seen:
            seen[run.output] = can_read_output(store, caller, run.output)
        return seen[run.output]

    return check


def visible_runs(store: Store, caller: Principal | None, *, limit: int = 50, status: str | None = None,
                 task: str | None = None) -> list[RunInfo]:
    """Newest first, only runs the caller may see."""
    check = _readable(store, caller)
    return [r for r in Runs(store.db).list(limit=max(limit * 4, 200), status=status, task=task) if check(r)][:limit]


def visible_run(store: Store, caller: Principal | None, run_id: str) -> RunInfo:
    """A run by id or prefix; RunNotFoundError, the same as for a missing run, when the caller may not see it."""
    return Runs(store.db).get(run_id, visible=_readable(store, caller))


def run_metrics(store: Store, run: RunInfo) -> list[MetricPoint]:
    """The metric points of a run the caller was shown (by :func:`visible_run`)."""
    return Runs(store.db).metrics(run.id)


def runs_of_repo(store: Store, caller: Principal | None, repo_id: str, *, limit: int = 20) -> list[RunInfo]:
    """Runs whose output is ``repo_id`` (the runs that made its versions), newest first."""
    check = _readable(store, caller)
    found = [r for r in Runs(store.db).list(limit=1000) if r.output and r.output.lower() == repo_id.lower()]
    return [r for r in found if check(r)][:limit]


def evaluations(store: Store, caller: Principal | None, *, model: str | None = None, dataset: str | None = None,
                split: str | None = None, limit: int = 10_000,
                visible_models: set[str] | None = None) -> list[EvaluationInfo]:
    """Indexed report cards of models the caller may see, newest first (as ``GET /api/fmhub/evaluations``).

    ``visible_models`` (lower-case ids), when the page already listed what the caller may see, saves
    listing them again.
    """
    if visible_models is None:
        visible_models = visible_ids(store, caller, "model")
    out = []
    for info in all_cards(store):  # the whole index, cached until a card is indexed; filtered here
        if (model is None or info.model == model) and (dataset is None or info.dataset == dataset) \
                and (split is None or info.split == split) and info.model.lower() in visible_models:
            out.append(info)
            if len(out) == limit:
                break
    return out


_ALL: dict[tuple[str, int], tuple[Any, list[EvaluationInfo]]] = {}


def all_cards(store: Store) -> list[EvaluationInfo]:
    """Every indexed card, newest first, before visibility (the same list object until the index changes)."""
    return _all_cards(store, 100_000)


#: Seconds between two checks of the index for a newer card (the check sorts the index: ~10 ms at 10,000 cards).
RECHECK_SECONDS = 1.0


def _all_cards(store: Store, limit: int) -> list[EvaluationInfo]:
    """Every indexed card, newest first, read again only when a newer card was indexed.

    Home and leaderboards read the whole index on each view; the newest card (one indexed row) tells
    whether the last read is still current, which turns a 10,000-row read into a one-row probe, made at
    most once a second: a card pushed now shows within a second.
    """
    key = (store.db.safe_url, limit)
    cached = _ALL.get(key)
    now = time.monotonic()
    if cached is not None and now - cached[0][2] < RECHECK_SECONDS:
        return cached[1]
    index = Evaluations(store.db)
    newest = index.list(limit=1)
    probe = (newest[0].model, newest[0].card_commit, newest[0].report_path, newest[0].created_at) if newest else None
    if cached is None or cached[0][0] != probe or now - cached[0][1] > max_age(store):
        cached = ((probe, now, now), index.list(limit=limit))
    else:
        cached = ((probe, cached[0][1], now), cached[1])
    _ALL.clear()  # one store per server: keep one entry
    _ALL[key] = cached
    return cached[1]


#: The final metric a runs list shows, the first one a run's summary has.
_MAIN = ("eval_accuracy", "eval_f1", "eval_f1_macro", "eval_perplexity", "eval_loss", "train_loss", "loss")


def main_metric(run: RunInfo) -> tuple[str, Any] | None:
    summary = run.summary or {}
    for key in _MAIN:
        if isinstance(summary.get(key), (int, float)):
            return key, summary[key]
    return None
