"""fmhub's native admin API: the audit log of writes, for site administrators."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query

from fmhub.hub._auth import AdminDep, StoreDep
from fmhub.hub._hf import iso

__all__ = ["router"]

router = APIRouter(tags=["fmhub admin"])


@router.get("/api/fmhub/audit", summary="Writes, newest first (site administrators only)")
def audit(store: StoreDep, caller: AdminDep, repo: str | None = None, repo_type: str | None = None,
          actor: str | None = None, action: str | None = None, since: datetime | None = None,
          limit: Annotated[int, Query(ge=1, le=10_000)] = 100) -> list[dict[str, Any]]:
    events = store.audit_events(repo_id=repo, repo_type=repo_type, actor=actor, action=action, since=since,
                                limit=limit)
    return [{"at": iso(e.at), "actor": e.actor, "action": e.action, "repoType": e.repo_type, "repoId": e.repo_id,
             "ref": e.ref, "commit": e.commit_oid, "detail": e.detail} for e in events]
