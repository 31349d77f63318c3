"""The lineage of a repo version as one JSON answer: what the API route, the Hub client and the web page share."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fmhub.lineage._graph import MAX_DEPTH, Lineage, Node
from fmhub.errors import InvalidInputError
from fmhub.store import Store, validate_repo_id, validate_repo_type

__all__ = ["describe", "IMPACT_KINDS"]

#: What an impact answer lists: versions (and their published refs), runs, serving records (serve checks and
#: deployments) and, when asked, the report cards measured on them.
IMPACT_KINDS = ("model", "dataset", "run", "serve-check", "deployment", "evaluation")


def describe(store: Store, repo_type: str, repo_id: str, revision: str | None = None, *, up: bool = True,
             down: bool = True, depth: int = 5, impact: bool = False, evaluations: bool = True,
             limit: int | None = None, cursor: str | None = None,
             may_read: Callable[[Node], bool] = lambda node: True) -> dict[str, Any]:
    """The lineage graph around ``repo_id@revision`` (or, for ``impact``, everything descending from it).

    The version is the revision's commit, or its newest ancestor the graph knows (a commit that only added
    files to a trained model has the lineage of the model's card). ``impact`` without a revision starts from
    every version of the repo the graph knows, and lists report cards only with ``evaluations``; it is paged:
    ``limit`` descendants after ``cursor`` (the previous page's ``next_cursor``; every descendant without a limit),
    with ``total`` counting them all. Nodes the caller may not read (``may_read``) are hidden.

    Raises:
        RepoNotFoundError, RevisionNotFoundError, InvalidInputError (a depth out of range).
    """
    repo_type = validate_repo_type(repo_type)
    repo_id = validate_repo_id(repo_id)
    if not 1 <= depth <= MAX_DEPTH:
        raise InvalidInputError(f"--depth must be 1-{MAX_DEPTH}, got {depth}")
    after = _cursor(cursor)
    repo = store.get_repo(repo_id, repo_type=repo_type)
    lineage = Lineage(store.db)
    commit = None
    if impact and revision is None:
        starts = lineage.find(repo_type, repo.repo_id)
    else:
        commit = store.resolve_revision(repo.repo_id, revision, repo_type=repo_type).oid
        history = [c.oid for c in store.list_commits(repo.repo_id, commit, repo_type=repo_type, limit=1000)]
        starts = lineage.find(repo_type, repo.repo_id, history)
    if impact:
        graph = lineage.impact(starts, evaluations=evaluations, limit=limit, after=after)
    else:
        graph = lineage.graph(starts, up=depth if up else 0, down=depth if down else 0)
    answer = graph.redacted(may_read)
    return {"repo_type": repo_type, "repo_id": repo.repo_id, "revision": revision, "commit": commit,
            "direction": "impact" if impact else ("both" if up and down else "up" if up else "down"),
            "depth": None if impact else depth, **answer}


def _cursor(cursor: str | None) -> int:
    """A page cursor (the ``next_cursor`` of an impact answer: a node number) as the walk's ``after``."""
    if cursor is None or cursor == "":
        return 0
    if not cursor.isdigit() or len(cursor) > 18:
        raise InvalidInputError(f"cursor {cursor[:40]!r} is not a page cursor",
                                hint="pass the next_cursor of the previous page (or none for the first page)")
    return int(cursor)
