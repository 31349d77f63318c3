"""What each step kind does, through the stage it names; each returns the version it produced.

- ``import-data``: ``fmhub data import`` of ``source`` into dataset ``repo``; ``import-model``: a model
  folder into model ``repo`` (pickle weights converted to safetensors).
- ``train``, ``eval`` (pushed by default), ``optimize`` (``method``: export-onnx, quantize, prune,
  distill; the variant's report card pushed unless ``eval: false``).
- ``optimize-auto``: ``fmhub optimize auto`` — the fastest variant within ``max_drop`` accuracy points, committed
  to ``output`` with its report card and the search (candidates built before are reused).
- ``publish``: move branch (or create tag) ``ref`` of the model's repo to its commit, once the report
  card of that commit passes every ``require`` check (``{accuracy: ">= 0.97", latency_p95_ms: "<= 50"}``)
  and, with ``require_signature: true``, its model.sig holds (a key the namespace trusts, or one of the
  ``trust`` public key files).
- ``serve-check``: start ``fmhub serve`` on the version (loopback, ephemeral port), send the first
  ``rows`` inputs of the split (texts; images base64-encoded) as the task asks (``Task.check_request``), and
  require the answers to match offline predictions.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fmhub import formats
from fmhub.client import Hub
from fmhub.data import load as load_dataset
from fmhub.data._import import ImportOptions, import_dataset
from fmhub.errors import EmptyCommitError, InvalidInputError, RevisionNotFoundError
from fmhub.evaluate import EvalConfig, evaluate
from fmhub.explain import ExplainOptions
from fmhub.importing import import_model
from fmhub.optimize._auto import auto_optimize
from fmhub.optimize._methods import run_method
from fmhub.options import flat_names, from_flat
from fmhub.refs import split_ref
from fmhub.serve import ServeConfig, app_for, prepare
from fmhub.serve._live import running
from fmhub.signing import TrustedKey
from fmhub.train import TrainConfig, train

__all__ = ["StepResult", "RUNNERS", "source_digest", "GateError"]


@dataclass
class StepResult:
    output: str  # repo@commit of what the step produced (or published)
    metrics: dict[str, float] = field(default_factory=dict)
    detail: str = ""


class GateError(InvalidInputError):
    """``publish`` refused: the report card fails a ``require`` check."""

    def __init__(self, ref: str, failures: list[str]) -> None:
        super().__init__(f"{ref} not published: {'; '.join(failures)}",
                         hint="improve the model, or change the require: checks")
        self.failures = failures


_KEY_METRIC = ("accuracy", "f1", "perplexity")


def _key_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: float(metrics[k]) for k in _KEY_METRIC if isinstance(metrics.get(k), (int, float))}


def source_digest(path: Path) -> str:
    """sha256 over a file or a folder's files (relative path + bytes), so a changed source re-imports."""
    digest = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for file in files:
        digest.update(str(file.relative_to(path) if file != path else file.name).encode() + b"\0")
        with open(file, "rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()


def _import_data(hub: Hub, options: dict[str, Any], progress: Any) -> StepResult:
    source, repo = Path(options.pop("source")), options.pop("repo")
    result = import_dataset(hub, source, repo, ImportOptions(**options))
    return StepResult(f"{repo}@{result.commit.oid}", {"rows": float(sum(result.splits.values()))},
                      ", ".join(f"{k} {v}" for k, v in result.splits.items()))


def _import_model(hub: Hub, options: dict[str, Any], progress: Any) -> StepResult:
    try:  # converted to safetensors here; the hub (embedded or a server) receives no pickle weights
        oid = import_model(hub, options["source"], options["repo"], private=bool(options.get("private")),
                           exist_ok=True).oid
    except EmptyCommitError:  # run again (--force, --only) on the same folder: the repo already holds it
        oid = hub.repo_info(options["repo"]).commit.oid
    return StepResult(f"{options['repo']}@{oid}")


def _train(hub: Hub, options: dict[str, Any], progress: Any) -> StepResult:
    config = TrainConfig.from_dict(options, source="train step")
    outcome = train(config, hub, command="fmhub run", on_step=getattr(progress, "update", None),
                    on_metrics=getattr(progress, "metrics", None))
    assert outcome is not None and outcome.commit is not None
    return StepResult(f"{config.output}@{outcome.commit}", _key_metrics(
        {k.removeprefix("eval_"): v for k, v in outcome.result.metrics.items()}), f"run {outcome.run_id}")


def _eval(hub: Hub, options: dict[str, Any], progress: Any) -> StepResult:
    push = options.pop("push", True)
    if isinstance(options.get("skip"), (list, str)):
        skip = options["skip"]
        options["skip"] = tuple(s.strip() for s in (skip.split(",") if isinstance(skip, str) else skip))
    explain = {k: options.pop(k) for k in flat_names(ExplainOptions) if k in options}
    config = EvalConfig(**options, explain=from_flat(ExplainOptions, explain, source="eval step"))
    config.validate()
    outcome = evaluate(config, hub, push=push, progress=progress)
    repo = config.model.partition("@")[0]
    commit = outcome.commit or outcome.report["provenance"]["model"]["commit"]
    return StepResult(f"{repo}@{commit}", _key_metrics(outcome.report["metrics"]), "card pushed" if push else "")


def _optimize(hub: Hub, options: dict[str, Any], progress: Any) -> StepResult:
    method, model, output = options.pop("method"), options.pop("model"), options.pop("output")
    outcome = run_method(method, model, output, options, hub=hub, progress=progress,
                         source=f"optimize {method} step", on_step=getattr(progress, "update", None),
                         on_metrics=getattr(progress, "metrics", None), command="fmhub run")
    commit = outcome.card_commit or outcome.commit
    metrics = _key_metrics((outcome.report or {}).get("metrics", {}))
    parent = (outcome.report or {}).get("parent") or {}
    if parent.get("speedup") is not None:
        metrics["speedup"] = float(parent["speedup"])
    return StepResult(f"{output}@{commit}", metrics, outcome.variant.get("description", method))


def _optimize_auto(hub: Hub, options: dict[str, Any], progress: Any) -> StepResult:
    model, output = options.pop("model"), options.pop("output")
    outcome = auto_optimize(model, output, hub=hub, progress=progress, on_step=getattr(progress, "update", None),
                            on_metrics=getattr(progress, "metrics", None), command="fmhub run", **options)
    metrics = _key_metrics((outcome.report or {}).get("metrics", {}))
    parent = (outcome.report or {}).get("parent") or {}
    if parent.get("speedup") is not None:
        metrics["speedup"] = float(parent["speedup"])
    chosen = outcome.search["pick"]
    return StepResult(f"{output}@{outcome.card_commit or outcome.commit}", metrics,
                      f"picked {chosen['name']} of {len(outcome.search['candidates'])} candidates")


_COMPARE = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt, "==": operator.eq}


def check_requirements(metrics: dict[str, float], require: dict[str, Any]) -> list[str]:
    """Each failing ``require`` check, e.g. ``"accuracy 0.953 is not >= 0.97"`` (a missing metric fails)."""
    failures = []
    for name, rule in require.items():
        match = re.fullmatch(r"\s*(>=|<=|==|>|<)\s*([-+0-9.eE]+)\s*", str(rule))
        if match is None:
            raise InvalidInputError(f"require {name}: {rule!r} is not a check like '>= 0.97'",
                                    hint="use >=, <=, >, < or == and a number")
        op, bound = match.group(1), float(match.group(2))
        value = metrics.get(name)
        if value is None or not math.isfinite(value):
            failures.append(f"{name} is not on the report card")
        elif not _COMPARE[op](value, bound):
            failures.append(f"{name} {value:.4g} is not {op} {bound:g}")
    return failures


def _publish(hub: Hub, options: dict[str, Any], progress: Any) -> StepResult:
    repo, revision = split_ref(options["model"], "model")
    commit = hub.repo_info(repo, revision=revision).commit.oid
    ref, kind = str(options["ref"]), options.get("kind", "branch")
    if kind not in ("branch", "tag"):
        raise InvalidInputError(f"publish kind {kind!r} is not branch or tag")
    protected = any(p.matches(ref) for p in hub.list_signing_policies(repo.split("/")[0]))
    if options.get("require_signature") or protected:  # checked before the ref is touched
        trust = options.get("trust") or []
        if isinstance(trust, str):
            trust = [trust]
        keys = []
        for path in trust:
            try:
                keys.append(TrustedKey.from_pem(Path(str(path)).read_bytes(), name=Path(str(path)).stem))
            except OSError as exc:
                raise InvalidInputError(f"publish trust {path}: {exc.strerror}", hint="give a .pub file") from exc
        hub.verify(repo, commit, trust=keys)  # SignatureError names the file or key; the ref does not move
    elif options.get("trust"):
        raise InvalidInputError("publish option trust only applies with require_signature: true")
    metrics: dict[str, float] = {}
    require = options.get("require") or {}
    if require:
        cards = [c for c in hub.list_evaluations(model=repo, limit=1000)
                 if commit in (c.card_commit, c.model_commit)
                 and (options.get("data") is None or c.dataset == split_ref(options["data"], "data")[0])
                 and c.split == options.get("split", "test")]
        if not cards:
            raise GateError(f"{repo}@{commit[:12]}", [f"no report card on the {options.get('split', 'test')!r} "
                                                      "split for this commit (add an eval step before)"])
        metrics = cards[0].metrics
        failures = check_requirements(metrics, require)
        if failures:
            raise GateError(f"{repo}@{commit[:12]} → {ref}", failures)
    if kind == "branch":
        try:
            hub.delete_branch(repo, ref)
        except RevisionNotFoundError:
            pass
        hub.create_branch(repo, ref, revision=commit)
    else:
        hub.create_tag(repo, ref, revision=commit, exist_ok=True)
    return StepResult(f"{repo}@{commit}", {k: metrics[k] for k in require if k in metrics},
                      f"{kind} {ref} → {commit[:12]}")


def _serve_check(hub: Hub, options: dict[str, Any], progress: Any) -> StepResult:
    import time

    import httpx
    import numpy as np

    rows = int(options.get("rows", 32))
    data_repo, data_rev = split_ref(options["data"], "data")
    split = load_dataset(data_repo, revision=data_rev, split=options.get("split", "test"), hub=hub)
    config = ServeConfig(model=options["model"], backend=options.get("backend", "auto"))
    config = dataclasses.replace(config, model=prepare(config, hub))
    offline = formats.load(config.model, hub=hub)
    task = offline.task
    column = options.get("text_column") or task.input_column
    if column not in split.column_names:
        raise InvalidInputError(f"serve-check: {data_repo} has no column {column!r}", hint="set text_column")
    values = task.read_inputs(split.select(range(min(rows, len(split)))), column)
    request = task.check_request(values)
    if request is None:
        raise InvalidInputError(f"serve-check compares classifications; {config.model} is {task.name}")
    endpoint, body = request
    labels = offline.labels
    positions = getattr(offline.config, "max_position_embeddings", None) or getattr(offline.config, "n_positions",
                                                                                      None) or 512
    limit = min(getattr(offline.preprocessor, "model_max_length", positions) or positions, positions)
    declared = offline.variant.get("max_length")  # a variant picked at a shorter length is served at it
    limit = declared if isinstance(declared, int) and 0 < declared < limit else limit
    expected = [labels[i] for i in offline.logits(task.encode_batch(offline.preprocessor, values, limit)).argmax(-1)]
    with running(app_for(config, hub)) as url:
        started = time.perf_counter()
        answers = httpx.post(f"{url}/v1/{endpoint}", json=body, timeout=300)
        seconds = time.perf_counter() - started
        served_commit = answers.headers.get("x-model-commit")
    if answers.status_code != 200:
        raise InvalidInputError(f"serve-check: the server answered {answers.status_code}: {answers.text[:500]}")
    served = [scores[0]["label"] for scores in answers.json()]
    agreement = float(np.mean([a == b for a, b in zip(served, expected, strict=True)]))
    least = float(options.get("min_agreement", 1.0))
    if agreement < least or served_commit != config.model.partition("@")[2]:
        raise InvalidInputError(f"serve-check: the server agreed with offline predictions on {agreement:.1%} of "
                                f"{len(values)} rows (least {least:.0%}), served commit {served_commit}")
    return StepResult(config.model, {"agreement": agreement, "rows": float(len(values))},
                      f"{len(values)} rows in {seconds:.2f} s, {agreement:.0%} as offline")


RUNNERS: dict[str, Callable[[Any, dict[str, Any], Any], StepResult]] = {
    "import-data": _import_data, "import-model": _import_model, "train": _train, "eval": _eval,
    "optimize": _optimize, "optimize-auto": _optimize_auto, "publish": _publish, "serve-check": _serve_check,
}
