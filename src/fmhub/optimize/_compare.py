"""A variant's report card against its parent's: what the optimization cost and bought.

The variant is evaluated on a dataset split (default: the test split of the dataset its parent was
trained on, at that commit) and its card is pushed with a ``parent`` section; the parent's card on the
same split is reused when the hub has one for exactly that commit, else computed now (not pushed). Both
cards read the texts at the same length: the parent's.
"""

from __future__ import annotations

from typing import Any

from fmhub.optimize._variant import Parent, VariantOutcome

__all__ = ["report_against_parent"]


def report_against_parent(hub: Any, parent: Parent, outcome: VariantOutcome, *, data: str | None, split: str,
                          skip: tuple[str, ...] = (), progress: Any = None) -> dict[str, Any]:
    """Push the variant's card (with its ``parent`` comparison) and return it."""
    from fmhub.evaluate import EvalConfig, evaluate, stored_report
    from fmhub.refs import split_ref

    data = data or parent.training_data("--eval-data")
    data_repo, data_rev = split_ref(data, "--eval-data")
    data_commit = hub.repo_info(data_repo, repo_type="dataset", revision=data_rev).commit.oid
    dataset = f"{data_repo}@{data_commit}"
    theirs = stored_report(hub, parent.repo, parent.commit, data_commit, split)
    if theirs is None:
        theirs = evaluate(EvalConfig(model=f"{parent.repo}@{parent.commit}", data=dataset, split=split, skip=skip),
                          hub, progress=progress).report
    # Like for like: the variant reads texts at the length its parent's card did (a variant carries no
    # training_args.json, so on its own it would read up to its positions, and compare slower).
    config = EvalConfig(model=f"{outcome.repo}@{outcome.commit}", data=dataset, split=split, skip=skip,
                        max_length=theirs.get("max_length"))
    mine = evaluate(config, hub, push=True, progress=progress, parent_report=theirs)
    outcome.card_commit = mine.commit
    outcome.report = mine.report
    return mine.report
