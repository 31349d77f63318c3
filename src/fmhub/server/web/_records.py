"""Every read the web UI makes of training runs and of the evaluations index, in one place.

Runs and indexed report cards live in the server's metadata database today (``fmhub.runs.Runs`` and
``fmhub.evaluate._index.Evaluations`` over ``store.db``); they are moving behind the Hub interface.
Pages import only the functions below, so that move re-points this module and nothing else.

Visibility follows the repos a record names (:func:`fmhub.server._auth.can_see`): a run is shown only
to those who may see every existing repo it names (its output, dataset and base model), a report
card only to those who may see its model.
"""

from __future__ import annotations

import time
from typing import Any

from fmhub.accounts import Principal
from fmhub.errors import FmhubError, RepoNotFoundError, RunNotFoundError
from fmhub.evaluate._index import EvaluationInfo, Evaluations
from fmhub.runs import RUN_STATUSES, MetricPoint, RunInfo, Runs
from fmhub.server._auth import can_see
from fmhub.server.web._listing import max_age, visible_ids
from fmhub.store import Store

__all__ = ["visible_runs", "visible_run", "run_metrics", "runs_of_repo", "evaluations", "EvaluationInfo",
           "RunInfo", "MetricPoint", "main_metric", "all_cards", "RUN_STATUSES"]


class _Visibility:  # for runs: a few repos per page, each looked up once
    """``can_see`` over repos by id, each looked up once per page."""

    def __init__(self, store: Store, caller: Principal | None) -> None:
        self.store, self.caller, self.seen = store, caller, {}

    def __call__(self, repo_id: str | None, repo_type: str = "model") -> bool:
        if not repo_id:
            return True
        key = (repo_type, repo_id)
        if key not in self.seen:
            try:
                self.seen[key] = can_see(self.caller, self.store.get_repo(repo_id, repo_type=repo_type))
            except RepoNotFoundError:
                self.seen[key] = None  # deleted since: it hides nothing
            except FmhubError:  # an id that is not valid any more: treat as gone
                self.seen[key] = None
        return self.seen[key] is not False


def _run_visible(check: _Visibility, run: RunInfo) -> bool:
    return check(run.output) and check(run.dataset, "dataset") and check(run.base_model)


def visible_runs(store: Store, caller: Principal | None, *, limit: int = 50, status: str | None = None,
                 task: str | None = None) -> list[RunInfo]:
    """Newest first, only runs the caller may see."""
    check = _Visibility(store, caller)
    return [r for r in Runs(store.db).list(limit=max(limit * 4, 200), status=status, task=task)
            if _run_visible(check, r)][:limit]


def visible_run(store: Store, caller: Principal | None, run_id: str) -> RunInfo:
    """A run by id or prefix; RunNotFoundError, the same as for a missing run, when the caller may not see it."""
    run = Runs(store.db).get(run_id)
    if not _run_visible(_Visibility(store, caller), run):
        raise RunNotFoundError(run_id)
    return run


def run_metrics(store: Store, run: RunInfo) -> list[MetricPoint]:
    """The metric points of a run the caller was shown (by :func:`visible_run`)."""
    return Runs(store.db).metrics(run.id)


def runs_of_repo(store: Store, caller: Principal | None, repo_id: str, *, limit: int = 20) -> list[RunInfo]:
    """Runs whose output is ``repo_id`` (the runs that made its versions), newest first."""
    check = _Visibility(store, caller)
    found = [r for r in Runs(store.db).list(limit=1000) if r.output and r.output.lower() == repo_id.lower()]
    return [r for r in found if _run_visible(check, r)][:limit]


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
