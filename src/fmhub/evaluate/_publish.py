"""Push a report card: its files, the model card's evaluation section and ``model-index``, one commit.

The card goes onto the model repo's default branch (or, for a model evaluated at a pull request's ref
``refs/pr/N``, onto that pull request, so reviewers compare it with the base's card), and only when that ref
holds the very weights that were evaluated (every file outside ``eval/`` and ``README.md`` unchanged since
the evaluated commit): a card must never describe other weights. The commit is made against the head it checked
(``parent_commit``), so a concurrent push fails instead of mixing.
"""

from __future__ import annotations

import re
from typing import Any

from fmhub import tasks
from fmhub.cards import parse_card, render_card, validate_metadata
from fmhub.client import Hub, UploadFile, is_pull_request_ref
from fmhub.errors import EmptyCommitError, EntryNotFoundError, InvalidInputError

__all__ = ["push_report", "update_card", "METRIC_NAMES"]

#: metric key → (model-index type, display name, args)
METRIC_NAMES: dict[str, tuple[str, str, dict[str, Any] | None]] = {
    "accuracy": ("accuracy", "Accuracy", None),
    "f1_macro": ("f1", "Macro F1", {"average": "macro"}),
    "f1_micro": ("f1", "Micro F1", {"average": "micro"}),
    "f1_weighted": ("f1", "Weighted F1", {"average": "weighted"}),
    "precision_macro": ("precision", "Macro precision", {"average": "macro"}),
    "recall_macro": ("recall", "Macro recall", {"average": "macro"}),
    "roc_auc_ovr": ("roc_auc", "ROC-AUC (one-vs-rest, macro)", {"multi_class": "ovr"}),
    "f1": ("f1", "Entity F1", None),
    "precision": ("precision", "Entity precision", None),
    "recall": ("recall", "Entity recall", None),
    "perplexity": ("perplexity", "Perplexity", None),
    "bits_per_token": ("bits_per_token", "Bits per token", None),
    "loss": ("loss", "Loss", None),
}


def _model_index_result(report: dict[str, Any]) -> dict[str, Any]:
    dataset = report["provenance"]["dataset"]
    metrics = []
    for key, value in report["metrics"].items():
        if key in METRIC_NAMES and value is not None:
            kind, name, args = METRIC_NAMES[key]
            metrics.append({"type": kind, "value": round(float(value), 6), "name": name, **({"args": args} if args
                                                                                               else {})})
    task = tasks.get(report["task"])
    return {"task": {"type": task.pipeline_tag, "name": task.title},
            "dataset": {"name": dataset["repo"], "type": dataset["repo"], "split": dataset["split"],
                        "revision": dataset["commit"]},
            "metrics": metrics,
            "source": {"name": "fmhub eval", "url": report["files"]["predictions"].rsplit("/", 1)[0] + "/report.json"}}


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _delta(value: Any) -> str:
    return "–" if value is None else f"{value:+.4f}"


def _section(report: dict[str, Any]) -> str:
    """The markdown of one dataset split's results."""
    prov = report["provenance"]
    dataset, model = prov["dataset"], prov["model"]
    folder = report["files"]["predictions"].rsplit("/", 1)[0]
    lines = [f"### `{dataset['repo']}` · {dataset['split']}\n",
             f"{dataset['rows']} rows of `{dataset['repo']}` at `{dataset['commit'][:12]}`, weights at "
             f"`{model['commit'][:12]}`, by `fmhub eval` {prov['fmhub_version']} on {prov['created_at']} "
             f"([report]({folder}/report.json), [predictions]({folder}/predictions.parquet)).\n",
             "| metric | value |", "|---|---:|"]
    lines += [f"| {METRIC_NAMES.get(k, (k, k, None))[1]} | {_fmt(v)} |" for k, v in report["metrics"].items()]
    calibration = report["calibration"]
    if calibration.get("ece") is not None:
        lines.append(f"| Expected calibration error ({calibration['bins_count']} bins) | {calibration['ece']:.4f} |")
    baseline = report["baseline"]
    if "metrics" in baseline:
        lines += ["", f"**Baseline** ({baseline['name']}, trained on `{baseline['train_split']}`): " + ", ".join(
            f"{k} {_fmt(v)} (model {_delta(baseline['model_minus_baseline'][k])})"
            for k, v in baseline["metrics"].items())]
    robustness = report["robustness"]
    if "perturbations" in robustness:
        keys = list(robustness["perturbations"][0]["delta"]) if robustness["perturbations"] else []
        lines += ["", f"**Robustness** (seed {robustness['seed']}; change from the clean inputs):\n",
                  "| perturbation | " + " | ".join(f"Δ {k}" for k in keys) + " |",
                  "|---|" + "---:|" * len(keys)]
        lines += [f"| {p['name']} | " + (" | ".join(_delta(p["delta"][k]) for k in keys) if p.get("applicable", True)
                                         else " | ".join(["n/a"] * len(keys))) + " |"
                  for p in robustness["perturbations"]]
        lines += [f"\n{p['name']}: not applicable, {p['note']}." for p in robustness["perturbations"]
                  if not p.get("applicable", True)]
    if isinstance(report["slices"], list):
        for grouping in report["slices"]:
            gap = grouping["largest_gap"]
            if gap:
                lines += ["", f"**Slices by {grouping['by'].removeprefix('column:')}**: largest {gap['metric']} gap "
                              f"{gap['gap']:.4f} ({gap['best']} vs {gap['worst']})."]
    efficiency = report["efficiency"]
    if "latency_ms" in efficiency:
        measured = efficiency.get("measured_on") or f"{efficiency.get('sequence_length')} tokens"
        lines += ["", f"**Efficiency** ({efficiency['threads']} CPU threads, {measured}): "
                      f"{efficiency['parameters']:,} parameters, {efficiency['weights_bytes'] / 1e6:.1f} MB of "
                      "weights, "
                      f"batch-1 latency p50 {efficiency['latency_ms']['p50']:.1f} ms / p95 "
                      f"{efficiency['latency_ms']['p95']:.1f} ms, batch-{efficiency['throughput']['batch_size']} "
                      f"throughput {efficiency['throughput']['samples_per_second']:.1f} samples/s."]
    parent = report.get("parent")
    if parent:
        shown = {k: v for k, v in parent["delta"].items() if v is not None}
        lines += ["", f"**Against the parent** `{parent['repo']}` at `{parent['commit'][:12]}`: " + ", ".join(
            [f"Δ {k} {v:+.4f}" for k, v in shown.items()] +
            [f"{name} {parent[key]:.2f}×" for key, name in (("size_ratio", "size"), ("speedup", "batch-1 speed-up"),
                                                            ("throughput_ratio", "throughput"))
             if parent.get(key) is not None]) + "."]
    explained = report.get("explanations") or {}
    faithfulness = explained.get("faithfulness") or {}
    if explained.get("method") in faithfulness:
        main = explained["method"]
        others = [f"{m} {v['comprehensiveness']:.3f}" for m, v in faithfulness.items() if m != main]
        lines += ["", f"**Explanations** ({explained['rows']['total']} rows, {main}): comprehensiveness "
                      f"{faithfulness[main]['comprehensiveness']:.3f}" + (f" (vs {', '.join(others)})" if others else "")
                  + f", deletion AUC {faithfulness[main]['deletion_auc']:.3f}."
                  + (f" {explained['parent']['summary']}." if (explained.get("parent") or {}).get("summary") else "")]
    pngs = [p for p in report["files"]["plots"] if p.endswith(".png")]
    if pngs:
        lines += [""] + [f"![{p.rsplit('/', 1)[-1][:-4].replace('_', ' ')}]({p})" for p in pngs]
    return "\n".join(lines) + "\n"


def update_card(text: str | None, report: dict[str, Any], repo_id: str) -> str:
    """``README.md`` with this report's section and ``model-index`` entry (replacing the same dataset split's)."""
    card = parse_card(text or "")
    metadata = dict(card.metadata)
    dataset = report["provenance"]["dataset"]
    result = _model_index_result(report)
    index = metadata.get("model-index")
    if not isinstance(index, list) or not index or not isinstance(index[0], dict):
        index = [{"name": repo_id.split("/", 1)[1], "results": []}]
    entry = dict(index[0])
    kept = [r for r in entry.get("results") or [] if not (
        isinstance(r, dict) and isinstance(r.get("dataset"), dict) and r["dataset"].get("type") == dataset["repo"]
        and r["dataset"].get("split") == dataset["split"])]
    entry["results"] = [*kept, result]
    metadata["model-index"] = [entry, *index[1:]]
    datasets = metadata.get("datasets") if isinstance(metadata.get("datasets"), list) else []
    if dataset["repo"] not in datasets:
        metadata["datasets"] = [*datasets, dataset["repo"]]
    problems = validate_metadata(metadata, "model")
    if not problems.ok:
        raise InvalidInputError(f"the model card would be invalid: {'; '.join(problems.errors)}",
                                hint="fix the card's YAML (fmhub card validate) and push again")
    start = f"<!-- fmhub-eval {dataset['repo']} {dataset['split']} -->"
    end = "<!-- /fmhub-eval -->"
    block = f"{start}\n{_section(report)}\n{end}\n"  # a blank line ends the section's last table first
    body = card.body
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end) + r"\n?", re.S)
    if pattern.search(body):
        body = pattern.sub(lambda _: block, body, count=1)
    else:
        if "\n## Evaluation\n" not in f"\n{body}":
            body = body.rstrip("\n") + ("\n\n" if body.strip() else "") + "## Evaluation\n\n"
        head, _, tail = f"\n{body}".partition("\n## Evaluation\n")
        next_heading = tail.find("\n## ")
        insert_at = len(tail) if next_heading < 0 else next_heading + 1
        before = tail[:insert_at].rstrip("\n")
        tail = (before + "\n\n" if before.strip() else "\n") + block + \
            ("\n" + tail[insert_at:] if next_heading >= 0 else "")
        body = (head + "\n## Evaluation\n" + tail)[1:]
    return render_card(metadata, body)


def _weights(files: list[Any]) -> dict[str, str]:
    return {e.path: e.blob_sha256 for e in files if not e.path.startswith("eval/") and e.path != "README.md"}


def push_report(hub: Hub, repo_id: str, evaluated_commit: str, outcome: Any, *, revision: str | None = None) -> str:
    """Commit the card's files and updated README to the default branch (to the pull request when ``revision``
    is ``refs/pr/N``); have the hub index the card.

    Returns the commit.
    """
    target = revision if is_pull_request_ref(revision) else None
    head = hub.repo_info(repo_id, revision=target)
    if head.commit.oid != evaluated_commit and _weights(head.files) != _weights(hub.list_files(repo_id,
                                                                                                evaluated_commit)):
        raise InvalidInputError(f"{repo_id}'s {head.repo.default_branch} branch no longer holds the evaluated "
                                f"weights ({evaluated_commit[:12]}); a card there would describe other weights",
                                hint=f"evaluate {repo_id} (its head) to push, or keep this report unpushed")
    try:
        readme = hub.read_bytes(repo_id, "README.md", head.commit.oid).decode("utf-8", errors="replace")
    except EntryNotFoundError:
        readme = None
    report = outcome.report
    card = update_card(readme, report, repo_id)
    dataset = report["provenance"]["dataset"]
    operations = [UploadFile(path, outcome.folder / path) for path in outcome.files]
    operations.append(UploadFile("README.md", card.encode()))
    try:
        commit = hub.commit(repo_id, operations, title=f"Evaluate on {dataset['repo']} ({dataset['split']})",
                            message=f"model: {repo_id}@{evaluated_commit}\n"
                                    f"dataset: {dataset['repo']}@{dataset['commit']} split {dataset['split']}",
                            parent_commit=head.commit.oid, revision=target).oid
    except EmptyCommitError:
        commit = head.commit.oid
    hub.record_evaluation(repo_id, commit, outcome.files[0])  # the hub indexes the card it now holds
    return commit
