"""fmhub's native API for evaluation report cards: index a pushed card, list cards by model and dataset.

``fmhub eval --push`` commits ``eval/<dataset>/<split>/report.json`` to a model repo through the
Hugging Face commit API, then asks the hub to index it. The hub reads the card from its own store at
that commit (a client cannot index numbers the repo does not hold); listing shows only cards of
models the caller may see.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from fmhub.errors import RepoNotFoundError
from fmhub.evaluations import Evaluations, check_report_path
from fmhub.server._signing import attestor
from fmhub.server._auth import ReaderDep, StoreDep, WriterDep, can_see, writable_repo

__all__ = ["router"]

router = APIRouter(prefix="/api/fmhub", tags=["fmhub"])


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    repo: str = Field(min_length=3, max_length=200)
    commit: str = Field(pattern=r"^[0-9a-f]{40}$")
    path: str = Field(min_length=1, max_length=1024)


@router.post("/evaluations", status_code=201, summary="Index the report card a model repo's commit holds")
def record(store: StoreDep, caller: WriterDep, body: _Record) -> dict[str, Any]:
    repo = writable_repo(store, caller, "model", body.repo)
    path = check_report_path(body.path)
    data = store.read_bytes(repo.repo_id, path, body.commit)
    info = Evaluations(store.db).record(repo.repo_id, body.commit, path, data)
    attestor(store).attest_evaluation(repo.repo_id, info.card_commit, path)  # the hub vouches for the card
    return info.to_json()


@router.get("/evaluations", summary="Indexed report cards of the models the caller may see, newest first")
def list_evaluations(store: StoreDep, caller: ReaderDep, model: str | None = None, dataset: str | None = None,
                     split: str | None = None,
                     limit: Annotated[int, Query(ge=1, le=10_000)] = 100) -> list[dict[str, Any]]:
    visible: dict[str, bool] = {}
    out = []
    for info in Evaluations(store.db).list(model=model, dataset=dataset, split=split, limit=10_000):
        if info.model not in visible:
            try:
                visible[info.model] = can_see(caller, store.get_repo(info.model))
            except RepoNotFoundError:  # deleted since: its cards went with it
                visible[info.model] = False
        if visible[info.model]:
            out.append(info.to_json())
            if len(out) == limit:
                break
    return out
