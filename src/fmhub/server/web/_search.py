"""The home page's search and leaderboards, behind one seam: :func:`search_repos` and :func:`leaderboards`.

Search reads the hub's search index (:mod:`fmhub.search`, the same index ``/api/models`` and
``/api/fmhub/search`` answer from): words in the box match repo ids, tasks, tags, libraries, licenses and
datasets, sorted by update or creation time, name, or a report-card metric, one indexed page at a time.
Leaderboards are built from the evaluations index. The pages only see :class:`SearchPage` and :class:`Leaderboard`.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from fmhub.accounts import Principal
from fmhub.errors import FmhubError, InvalidInputError
from fmhub.server._hf import card_metadata
from fmhub.search import Search, SearchHit, SearchQuery, lower_is_better
from fmhub.server._search import readable_namespaces
from fmhub.server.web._listing import visible_ids
from fmhub.server.web._records import EvaluationInfo, evaluations
from fmhub.store import DEFAULT_BRANCH, Repo, Store

__all__ = ["search_repos", "leaderboards", "leaderboard", "card_summary", "SearchPage", "RepoHit", "Leaderboard",
           "SORTS", "PRIMARY_METRIC", "lower_is_better"]

#: Sort orders besides ``metric:<name>``.
SORTS = ("updated", "name", "created")
#: The metric each task's leaderboard ranks by (the report card's first headline metric; the hub runs without the
#: task registry, so it is repeated here for each task).
PRIMARY_METRIC = {"text-classification": "accuracy", "token-classification": "f1", "masked-lm": "perplexity",
                  "causal-lm": "perplexity", "image-classification": "accuracy"}


@dataclass(frozen=True)
class CardSummary:
    """What a result line shows of a repo's card (default branch)."""

    task: str | None = None
    license: str | None = None
    library: str | None = None
    datasets: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class RepoHit:
    repo: Repo
    card: CardSummary
    metric: float | None = None  # the sort metric's value, when sorting by one
    evaluation: MetricSource | None = None  # the report card the value comes from


@dataclass(frozen=True)
class SearchPage:
    hits: list[RepoHit]
    total: int
    page: int
    per_page: int
    sort: str

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.per_page))


@dataclass
class Leaderboard:
    dataset: str
    split: str
    task: str
    metric: str
    rows: list[EvaluationInfo] = field(default_factory=list)  # best first, one (newest) card per model
    metrics: tuple[str, ...] = ()  # every metric the cards have, for the board's metric picker


_CARDS: OrderedDict[tuple[str, str, str], CardSummary] = OrderedDict()
_CARDS_SIZE = 4096


def card_summary(store: Store, repo: Repo) -> CardSummary:
    """The card's task, license, library, datasets and tags; cached until the repo changes (``updated_at``)."""
    key = (repo.repo_type, repo.repo_id, repo.updated_at.isoformat())
    if key in _CARDS:
        _CARDS.move_to_end(key)
        return _CARDS[key]
    try:
        files = store.list_files(repo.repo_id, repo.default_branch, repo_type=repo.repo_type)
        metadata = card_metadata(store, files) or {}
    except FmhubError:
        metadata = {}

    def strings(value: Any) -> tuple[str, ...]:
        items = value if isinstance(value, list) else [value] if value else []
        return tuple(str(v) for v in items if isinstance(v, (str, int, float)))[:8]

    task = metadata.get("pipeline_tag") or next(iter(strings(metadata.get("task_categories"))), None)
    summary = CardSummary(task=str(task) if task else None,
                          license=str(metadata["license"]) if metadata.get("license") else None,
                          library=str(metadata["library_name"]) if metadata.get("library_name") else None,
                          datasets=strings(metadata.get("datasets")), tags=strings(metadata.get("tags")))
    _CARDS[key] = summary
    if len(_CARDS) > _CARDS_SIZE:
        _CARDS.popitem(last=False)
    return summary


@dataclass(frozen=True)
class MetricSource:
    """Which report card a metric sort's value comes from."""

    dataset: str
    split: str
    model_commit: str


_SORT_KEYS = {"updated": "lastModified", "created": "createdAt", "name": "id"}


def _hit(hit: SearchHit, metric: str | None, sources: dict[str, list[tuple[str, str, str, float]]]) -> RepoHit:
    repo = Repo(hit.repo_type, hit.repo_id, hit.private, DEFAULT_BRANCH, hit.created_at, hit.updated_at)
    card = hit.card_data or {}

    def strings(value: Any) -> tuple[str, ...]:
        items = value if isinstance(value, list) else [value] if value else []
        return tuple(str(v) for v in items if isinstance(v, (str, int, float)))[:8]

    summary = CardSummary(task=hit.task, license=hit.license, library=hit.library,
                          datasets=strings(card.get("datasets")), tags=strings(card.get("tags")))
    source = None
    if metric is not None and hit.metric is not None:
        for commit, dataset, split, value in sources.get(hit.repo_id.lower(), []):
            if value == hit.metric:
                source = MetricSource(dataset, split, commit)
                break
    return RepoHit(repo, summary, hit.metric, source)


def search_repos(store: Store, caller: Principal | None, *, query: str = "", repo_type: str | None = None,
                 sort: str = "updated", dataset: str | None = None, split: str | None = None, page: int = 1,
                 per_page: int = 20) -> SearchPage:
    """Repos the caller may see matching the words of ``query``, sorted, one page of them (from the search index).

    Args:
        query: words, each found in the id, task, tags, library, license or datasets (case-insensitive).
        repo_type: ``model``, ``dataset`` or None for both.
        sort: ``updated`` (newest first), ``name``, ``created`` or ``metric:<name>`` (models holding a report card
            with that metric, best value first; on ``dataset``/``split`` when given).
        page: 1-based.

    Raises:
        InvalidInputError: an unknown sort or a page below 1.
    """
    if page < 1 or not 1 <= per_page <= 100:
        raise InvalidInputError("page must be ≥ 1 and per_page 1-100")
    query = query.strip()[:200]
    metric = None
    if sort.startswith("metric:"):
        metric = sort.split(":", 1)[1]
        if not metric:
            raise InvalidInputError("sort=metric: needs a metric name, e.g. sort=metric:accuracy")
        repo_type = "model"
    elif sort not in SORTS:
        raise InvalidInputError(f"unknown sort {sort!r}", hint="use updated, name, created or metric:<name>")
    on = f"{dataset}:{split}" if dataset and split else dataset or None
    found = Search(store.db).query(SearchQuery(
        repo_type=repo_type, text=query, sort=_SORT_KEYS.get(sort, sort), offset=(page - 1) * per_page,
        limit=per_page, readable=readable_namespaces(caller), metric_on=on), count=True)
    sources = Search(store.db).metric_values([h.repo_id for h in found.hits], metric) if metric else {}
    return SearchPage([_hit(h, metric, sources) for h in found.hits], found.total or 0, page, per_page, sort)


_BOARDS: dict[str, tuple[Any, list[Leaderboard]]] = {}


def _all_boards(store: Store) -> list[Leaderboard]:
    """Every board, each model's newest card ranked, before visibility; rebuilt when the index changes."""
    from fmhub.server.web._records import all_cards

    cards = all_cards(store)
    key = store.db.safe_url
    cached = _BOARDS.get(key)
    if cached is not None and cached[0] is cards:
        return cached[1]
    boards: dict[tuple[str, str, str], Leaderboard] = {}
    seen: set[tuple[str, str, str, str]] = set()
    for info in cards:
        group = (info.dataset, info.split, info.task)
        board = boards.get(group)
        if board is None:
            board = boards[group] = Leaderboard(info.dataset, info.split, info.task, PRIMARY_METRIC.get(info.task, ""))
        if (*group, info.model) not in seen:  # the newest card of each model only
            seen.add((*group, info.model))
            board.rows.append(info)
    out = []
    for board in boards.values():
        board.metrics = tuple(sorted({m for r in board.rows for m in r.metrics}))
        _rank(board)
        out.append(board)
    out.sort(key=lambda b: (b.dataset, b.split))
    _BOARDS.clear()
    _BOARDS[key] = (cards, out)
    return out


def leaderboards(store: Store, caller: Principal | None, *, rows: int = 5) -> list[Leaderboard]:
    """One board per (dataset, split, task) of the evaluations index, ranked by the task's primary metric;
    only models the caller may see, the best ``rows`` of each."""
    visible = visible_ids(store, caller, "model")
    out = []
    for board in _all_boards(store):
        shown = []
        for info in board.rows:
            if info.model.lower() in visible:
                shown.append(info)
                if len(shown) == rows:
                    break
        if shown:
            out.append(Leaderboard(board.dataset, board.split, board.task, board.metric, shown, board.metrics))
    return out


def _rank(board: Leaderboard) -> None:
    metric = board.metric
    ranked = [r for r in board.rows if metric in r.metrics]
    ranked.sort(key=lambda r: r.metrics[metric], reverse=not lower_is_better(metric))
    board.rows = ranked


def leaderboard(store: Store, caller: Principal | None, dataset: str, split: str, metric: str | None = None
                ) -> Leaderboard | None:
    """The full board of one dataset split (every model's newest card), ranked by ``metric`` (default: primary)."""
    cards = evaluations(store, caller, dataset=dataset, split=split)
    if not cards:
        return None
    board = Leaderboard(dataset, split, cards[0].task, metric or PRIMARY_METRIC.get(cards[0].task, ""))
    models: set[str] = set()
    for info in cards:
        if info.model not in models:
            models.add(info.model)
            board.rows.append(info)
    board.metrics = tuple(sorted({m for r in board.rows for m in r.metrics}))
    _rank(board)
    return board
