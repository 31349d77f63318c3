"""The repos the web UI lists, and which of them a viewer may see: one listing, read again after a write.

Home, search and leaderboards each need every repo a viewer may see; reading 10,000 rows on every page
view is what this module avoids (see :func:`all_repos`).
"""

from __future__ import annotations

import time
from typing import Any

from fmhub.accounts import Principal
from fmhub.server._auth import can_see
from fmhub.store import Repo, Store

__all__ = ["all_repos", "visible_repos", "visible_ids", "max_age", "MAX_LISTING_AGE"]

_LISTING: dict[str, tuple[Any, list[Repo]]] = {}
#: Seconds a listing is reused at most on PostgreSQL, even when no newer write was seen: there, a write
#: may commit after a later-numbered one was already seen (SQLite commits one writer at a time, in order).
MAX_LISTING_AGE = 5.0


def max_age(store: Store) -> float:
    return float("inf") if store.db.engine.dialect.name == "sqlite" else MAX_LISTING_AGE


def all_repos(store: Store) -> list[Repo]:
    """Every repo (``Store.list_repos()``), read again only after a write.

    Every change to a repo (create, commit, ref, settings, delete) is recorded in the audit log in the
    same transaction, so the newest audit event is a one-row probe that says whether the last listing
    is still current: a hub with 10,000 repos lists them once per write, not once per page view.
    """
    newest = store.audit_events(limit=1)
    probe = (newest[0].at, newest[0].action, newest[0].repo_id, newest[0].commit_oid, newest[0].ref) if newest else None
    key = store.db.safe_url
    cached = _LISTING.get(key)
    now = time.monotonic()
    if cached is None or cached[0][0] != probe or now - cached[0][1] > max_age(store):
        cached = ((probe, now), store.list_repos())
        _LISTING.clear()  # one store per server: keep one listing
        _LISTING[key] = cached
    return cached[1]


def visible_repos(store: Store, caller: Principal | None, repo_type: str | None, query: str) -> list[Repo]:
    """Repos of ``repo_type`` (None: both) the caller may see whose id contains ``query`` (case-insensitive),
    as ``Store.list_repos(search=...)`` matches them."""
    needle = query.lower()
    return [r for r in all_repos(store) if (repo_type is None or r.repo_type == repo_type)
            and (not needle or needle in r.repo_id.lower()) and can_see(caller, r)]


_IDS: dict[tuple[Any, ...], set[str]] = {}


def visible_ids(store: Store, caller: Principal | None, repo_type: str | None = None) -> set[str]:
    """Lower-case ids of the repos (of ``repo_type``) the caller may see; one set per listing and caller."""
    all_repos(store)
    version = _LISTING[store.db.safe_url][0]  # (probe, time read): a new value for every new listing
    who = None if caller is None else (caller.user, caller.is_admin, tuple(sorted(caller.orgs.items())))
    key = (version, who, repo_type)
    found = _IDS.get(key)
    if found is None:
        if len(_IDS) > 256 or any(k[0] != version for k in _IDS):
            _IDS.clear()  # a new listing: the sets of the old one are stale
        found = _IDS[key] = {r.repo_id.lower() for r in visible_repos(store, caller, repo_type, "")}
    return found
