"""Run a pipeline: each step's key is the hash of its resolved options and its inputs' commits; a key that
already produced a version is not run again (cached), so a failed or killed run resumes at the first
unfinished step, and a second run of an unchanged pipeline only checks its keys.

The records are kept by the hub the pipeline runs against (``hub.find_pipeline_step`` /
``hub.save_pipeline_step``: the embedded store, or a hub server with ``FMHUB_ENDPOINT``), beside the runs
and evaluations, so a second machine running the same pipeline against the same hub finds it cached; a
cached output whose commit is gone from the hub runs again.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fmhub.client import Hub
from fmhub.errors import FmhubError, InvalidInputError
from fmhub.pipeline._spec import Pipeline, Step, substitute
from fmhub.pipeline._steps import RUNNERS, source_digest
from fmhub.refs import split_ref
from fmhub.runs import PipelineStepRecord

__all__ = ["StepOutcome", "run_pipeline", "step_key"]

_RECIPE_VERSION = 2  # bump when a kind's behaviour changes so old keys no longer match


@dataclass
class StepOutcome:
    name: str
    kind: str
    status: str  # ran | cached | failed | not run
    seconds: float = 0.0
    output: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    detail: str = ""
    needs: list[str] = field(default_factory=list)


def step_key(step: Step, resolved: dict[str, Any]) -> str:
    """sha256 of the kind, the resolved options (inputs as repo@commit) and an imported source's content.

    An imported source counts by its content and name, not by where this machine keeps it: another machine
    (or checkout) running the same pipeline against the same hub finds the step cached.
    """
    recipe: dict[str, Any] = {"kind": step.kind, "options": dict(resolved), "version": _RECIPE_VERSION}
    if step.kind in ("import-data", "import-model"):
        source = Path(str(resolved["source"])).expanduser()
        if not source.exists():
            raise InvalidInputError(f"step {step.name!r}: source {str(source)!r} does not exist")
        recipe["source_sha256"] = source_digest(source)
        recipe["options"]["source"] = source.name
    return hashlib.sha256(json.dumps(recipe, sort_keys=True, default=str).encode()).hexdigest()


def _exists(hub: Hub, output: str) -> bool:
    repo, commit = split_ref(output, "output")
    for repo_type in ("model", "dataset"):
        try:
            hub.repo_info(repo, repo_type=repo_type, revision=commit)
            return True
        except FmhubError:
            continue
    return False


def run_pipeline(pipeline: Pipeline, hub: Hub, *, start: str | None = None, only: str | None = None,
                 force: bool = False, progress: Any = None,
                 on_step: Callable[[StepOutcome], None] | None = None) -> list[StepOutcome]:
    """Run ``pipeline`` in dependency order; return every step's outcome (raises after a failed step, the
    outcomes so far on the exception as ``outcomes``).

    Args:
        start: run this step and every later one even if cached (earlier ones must be cached).
        only: run only this step (even if cached); the steps it needs must be cached.
        force: run every step.
    """
    names = [s.name for s in pipeline.steps]
    for flag, value in (("--from", start), ("--only", only)):
        if value is not None and value not in names:
            raise InvalidInputError(f"{flag} {value!r}: no such step", hint=f"steps: {', '.join(names)}")
    outputs: dict[str, str] = {}
    outcomes = [StepOutcome(s.name, s.kind, "not run", needs=list(s.needs)) for s in pipeline.steps]
    forced = set(names) if force else set()
    if start is not None:
        forced |= set(names[names.index(start):])
    if only is not None:
        forced = {only}
    try:
        for step, outcome in zip(pipeline.steps, outcomes, strict=True):
            if only is not None and names.index(step.name) > names.index(only):
                break
            resolved = substitute(step.options, outputs)
            if step.kind in ("import-data", "import-model"):  # a relative source is beside the pipeline file
                resolved["source"] = str((pipeline.path.parent / str(resolved["source"])).resolve())
            key = step_key(step, resolved)
            cached = None if step.name in forced else hub.find_pipeline_step(key)
            if cached is not None and _exists(hub, cached.output):
                outcome.status, outcome.output = "cached", cached.output
                outcome.metrics, outcome.detail = dict(cached.metrics), cached.detail
                outputs[step.name] = cached.output
                if on_step:
                    on_step(outcome)
                continue
            if (only is not None and step.name != only) or (start is not None and step.name not in forced):
                raise InvalidInputError(f"step {step.name!r} has no cached output for its current options",
                                        hint="run the pipeline from the start first (no --from/--only)")
            began = time.perf_counter()
            try:
                result = RUNNERS[step.kind](hub, dict(resolved), progress)
            except BaseException:
                outcome.status, outcome.seconds = "failed", time.perf_counter() - began
                if on_step:
                    on_step(outcome)
                raise
            outcome.status, outcome.seconds = "ran", time.perf_counter() - began
            outcome.output, outcome.metrics, outcome.detail = result.output, result.metrics, result.detail
            hub.save_pipeline_step(PipelineStepRecord(key, pipeline.name, step.name, step.kind, result.output,
                                                      result.metrics, result.detail))
            outputs[step.name] = result.output
            if on_step:
                on_step(outcome)
    except BaseException as exc:
        exc.outcomes = outcomes  # type: ignore[attr-defined]
        raise
    return outcomes


def lineage_lines(outcomes: list[StepOutcome]) -> list[str]:
    """The lineage as text: each output with the outputs it was made from."""
    by_name = {o.name: o for o in outcomes}
    lines = []
    for o in outcomes:
        if o.output is None:
            continue
        made_from = [f"{n} ({by_name[n].output.split('@')[0]})" for n in o.needs if by_name[n].output]
        arrow = f" ← {', '.join(made_from)}" if made_from else ""
        repo, _, commit = o.output.partition("@")
        lines.append(f"{o.name}: {repo}@{commit[:12]} [{o.kind}{', ' + o.detail if o.detail else ''}]{arrow}")
    return lines
