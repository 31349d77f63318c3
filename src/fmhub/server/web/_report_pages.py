"""Report card pages (``/{repo}/eval/{rev}/{dataset}/{split}``), their comparison, and the dataset viewer.

The report card page draws the card's sections with plotly.js (confusion matrix as a clickable
heatmap, reliability curve, robustness deltas, slices, per-class scores) from a JSON data island,
and lists the misclassified rows: a click on a confusion-matrix cell (or a link in the class-pair
list, which works without script) filters them to that cell; a row the card explained shows its attribution
heat map (the explanations section's ``explanations.parquet``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from fmhub.errors import EntryNotFoundError, InvalidInputError
from fmhub.server._auth import visible_repo
from fmhub.server.web._parquet import read_range, split_names, split_shards, viewable
from fmhub.server.web._records import evaluations
from fmhub.server.web._render import render, repo_path, rev_part
from fmhub.server.web._repo import open_repo, store_of
from fmhub.server.web._repo_pages import repo_segments
from fmhub.server.web._reports import (
    CardRef,
    card_ref,
    confusion_pairs,
    headline,
    misclassified,
    read_report,
    report_cards,
    section,
    skipped,
)
from fmhub.server.web._routing import PageRoute, int_param
from fmhub.server.web._session import viewer

__all__ = ["router"]

router = APIRouter(route_class=PageRoute, include_in_schema=False)

VIEWER_ROWS = 50
ERRORS_PER_PAGE = 20


def _label_param(request: Request, name: str, labels: list[str]) -> int | None:
    value = request.query_params.get(name)
    if value in (None, ""):
        return None
    if value in labels:
        return labels.index(value)
    raise InvalidInputError(f"{name}={value[:60]!r} is not one of the card's labels", hint=", ".join(labels[:20]))


def _chart_data(report: dict[str, Any]) -> dict[str, Any]:
    """What the charts draw, taken from the report as it is (see report.schema.json)."""
    data: dict[str, Any] = {"task": report.get("task"), "labels": report.get("labels", [])}
    if report.get("confusion_matrix"):
        data["confusion_matrix"] = report["confusion_matrix"]
    if report.get("per_class"):
        data["per_class"] = report["per_class"]
    if report.get("per_type"):
        data["per_type"] = report["per_type"]
    if calibration := section(report, "calibration"):
        data["calibration"] = {"bins": calibration.get("bins", []), "ece": calibration.get("ece")}
    if robustness := section(report, "robustness"):
        data["robustness"] = robustness.get("perturbations", [])
    if isinstance(report.get("slices"), list):
        data["slices"] = report["slices"]
    return data


def _report_page(request: Request, repo_id: str, revision: str, tail: str) -> HTMLResponse:
    store = store_of(request)
    view = open_repo(request, "model", repo_id, revision, tab="eval")
    ref = card_ref(tail)
    report, entry = read_report(store, view.repo, view.commit.oid, ref)
    labels = [str(x) for x in report.get("labels", [])]
    gold = _label_param(request, "gold", labels)
    predicted = _label_param(request, "pred", labels)
    page = int_param(request, "p", 1, low=1)
    errors = misclassified(store, view.caller, view.repo, view.commit.oid, report, ref, gold=gold, predicted=predicted,
                           page=page, per_page=ERRORS_PER_PAGE)
    page_url = f"{view.base}/eval/{view.rev}/{ref.url_tail}"
    context = {"view": view, "ref": ref, "report": report, "entry": entry, "errors": errors, "gold": gold,
               "pred": predicted, "labels": labels, "page_url": page_url, "pairs": confusion_pairs(report),
               "headline": headline(report, 8), "charts": _chart_data(report),
               "skipped": {s: skipped(report, s) for s in ("calibration", "robustness", "slices", "efficiency",
                                                             "baseline")},
               "efficiency": section(report, "efficiency"), "baseline": section(report, "baseline"),
               "explanations": section(report, "explanations"),
               "parent": report.get("parent"), "provenance": report.get("provenance") or {},
               "others": _other_cards(request, view, ref, report)}
    if request.query_params.get("partial") == "errors":  # the error browser alone, for the page's script
        return render(request, "partials/errors.html", **context)
    return render(request, "report.html", **context)


def _other_cards(request: Request, view: Any, ref: CardRef, report: dict[str, Any]) -> list[dict[str, Any]]:
    """Other model versions with a card on the same dataset split (newest per model), to compare with."""
    store = store_of(request)
    split = (report.get("provenance") or {}).get("dataset", {}).get("split") or ref.split
    out, seen = [], set()
    here = f"{view.repo.repo_id}@{view.commit.oid}"
    for info in evaluations(store, view.caller, dataset=ref.dataset, split=split, limit=40):  # the newest only
        key = f"{info.model}@{info.card_commit}"
        if key == here or key in seen:
            continue
        seen.add(key)
        out.append({"model": info.model, "commit": info.card_commit, "metrics": info.metrics,
                    "compare": f"/-/compare/reports?card={quote(here)}:{quote(ref.url_tail)}"
                               f"&card={quote(key)}:{quote(ref.url_tail)}"})
        if len(out) == 12:
            break
    return out


def _eval_list(request: Request, repo_id: str, revision: str) -> HTMLResponse:
    store = store_of(request)
    view = open_repo(request, "model", repo_id, revision, tab="eval")
    cards = []
    for ref in report_cards(view.files):
        try:
            report, _ = read_report(store, view.repo, view.commit.oid, ref)
        except (InvalidInputError, EntryNotFoundError):
            continue
        cards.append({"ref": ref, "report": report, "headline": headline(report, 4),
                      "url": f"{view.base}/eval/{view.rev}/{ref.url_tail}"})
    return render(request, "repo_eval.html", view=view, cards=cards)


@router.get("/{namespace}/{name}/eval/{rest:path}")
def eval_page(request: Request, namespace: str, name: str, rest: str) -> HTMLResponse:
    repo_id, parts = repo_segments(request, "model")
    parts = parts[1:]
    if len(parts) == 1 or (len(parts) == 2 and parts[1] == ""):
        return _eval_list(request, repo_id, parts[0])
    if len(parts) < 2:
        raise EntryNotFoundError(repo_id, "", "eval/")
    return _report_page(request, repo_id, parts[0], "/".join(parts[1:]))


@router.get("/{namespace}/{name}/eval")
def eval_default(request: Request, namespace: str, name: str) -> HTMLResponse:
    return _eval_list(request, f"{namespace}/{name}", None)  # type: ignore[arg-type]


# -- compare model versions ---------------------------------------------------------------------------


def _parse_card_param(value: str) -> tuple[str, str, CardRef]:
    """``ns/name@rev:dataset-ns/dataset-name/split``."""
    target, _, tail = value.partition(":")
    repo_id, _, revision = target.partition("@")
    if not repo_id or not revision or not tail:
        raise InvalidInputError(f"card={value[:80]!r} should look like ns/name@revision:dataset-ns/dataset/split")
    return repo_id, revision, card_ref(tail)


@router.get("/-/compare/reports")
def compare_reports(request: Request) -> HTMLResponse:
    """Report cards side by side, with each metric's delta from the first card."""
    store = store_of(request)
    caller = viewer(request)
    specs = request.query_params.getlist("card")
    if not 2 <= len(specs) <= 6:
        raise InvalidInputError("compare 2 to 6 cards: ?card=ns/name@rev:dataset-ns/dataset/split&card=...")
    cards = []
    for spec in specs:
        repo_id, revision, ref = _parse_card_param(spec)
        repo = visible_repo(store, caller, "model", repo_id)
        commit = store.resolve_revision(repo.repo_id, revision)
        report, _ = read_report(store, repo, commit.oid, ref)
        cards.append({"repo": repo, "commit": commit, "ref": ref, "report": report,
                      "url": f"{repo_path('model', repo.repo_id)}/eval/{rev_part(revision)}/{ref.url_tail}"})
    names: list[str] = []
    for card in cards:
        names += [m for m in card["report"].get("metrics", {}) if m not in names]
    rows = []
    for metric in names:
        first = cards[0]["report"]["metrics"].get(metric)
        values = []
        for card in cards:
            value = card["report"]["metrics"].get(metric)
            delta = value - first if isinstance(value, (int, float)) and isinstance(first, (int, float)) else None
            values.append((value, delta))
        rows.append((metric, values))
    efficiency = []
    for key, label in (("latency_ms.p50", "latency p50 (ms)"), ("latency_ms.p95", "latency p95 (ms)"),
                       ("throughput.samples_per_second", "throughput (samples/s)"), ("weights_bytes", "weights (bytes)"),
                       ("parameters", "parameters")):
        values = []
        for card in cards:
            value: Any = section(card["report"], "efficiency") or {}
            for part in key.split("."):
                value = value.get(part) if isinstance(value, dict) else None
            values.append(value)
        if any(v is not None for v in values):
            efficiency.append((label, values))
    return render(request, "compare_reports.html", cards=cards, rows=rows, efficiency=efficiency)


# -- dataset viewer -----------------------------------------------------------------------------------


def _viewer(request: Request, repo_id: str, split: str | None) -> HTMLResponse:
    store = store_of(request)
    revision = request.query_params.get("revision") or None
    view = open_repo(request, "dataset", repo_id, revision, tab="viewer")
    splits = split_names(view.files)
    if not splits:
        return render(request, "dataset_viewer.html", view=view, splits=[], split=None, rows=[], columns=[],
                      shards=None, page=1, pages=1, quality=None, label_names=[], distribution=None)
    split = split or splits[0]
    if split not in splits:
        raise EntryNotFoundError(view.repo.repo_id, view.revision, f"data/{split}-*.parquet")
    shards = split_shards(store, view.files, split)
    page = int_param(request, "p", 1, low=1)
    pages = max(1, -(-shards.rows // VIEWER_ROWS))
    if page > pages:
        raise InvalidInputError(f"page {page} is past the last page ({pages})")
    rows = [{c: viewable(v) for c, v in row.items()} for row in read_range(store, shards, (page - 1) * VIEWER_ROWS, VIEWER_ROWS)]
    columns = list(shards.schema.names) if shards.schema is not None else []
    label_names = _label_names(shards.schema)
    quality = _quality(store, view)
    distribution = None
    if quality:
        for key in ("leakage", "near_duplicates"):  # rows found again across splits
            found = quality.get(key) if isinstance(quality.get(key), list) else []
            quality[f"{key}_rows"] = sum(int(item.get("count", 0)) for item in found if isinstance(item, dict))
        for item in quality.get("splits", []):
            if item.get("name") == split and item.get("labels"):
                distribution = item["labels"]
    return render(request, "dataset_viewer.html", view=view, splits=splits, split=split, rows=rows, columns=columns,
                  shards=shards, page=page, pages=pages, quality=quality, label_names=label_names,
                  distribution=distribution, first_row=(page - 1) * VIEWER_ROWS)


def _label_names(schema: Any) -> dict[str, list[str]]:
    """ClassLabel names per column, from the ``huggingface`` features in the Parquet schema metadata."""
    import json

    try:
        features = json.loads((schema.metadata or {}).get(b"huggingface", b"{}")).get("info", {}).get("features", {})
    except (ValueError, AttributeError):
        return {}
    out = {}
    for column, spec in features.items():
        inner = spec.get("feature", spec) if isinstance(spec, dict) else {}
        if isinstance(inner, dict) and inner.get("_type") == "ClassLabel":
            out[column] = [str(n) for n in inner.get("names", [])]
    return out


def _quality(store: Any, view: Any) -> dict[str, Any] | None:
    import json

    entry = next((e for e in view.files if e.path == "quality.json"), None)
    if entry is None or entry.size > 8 * 1024 * 1024:
        return None
    try:
        data = json.loads(b"".join(store.iter_file(entry)))
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


@router.get("/datasets/{namespace}/{name}/viewer")
def viewer_default(request: Request, namespace: str, name: str) -> HTMLResponse:
    return _viewer(request, f"{namespace}/{name}", None)


@router.get("/datasets/{namespace}/{name}/viewer/{config}/{split}")
def viewer_split(request: Request, namespace: str, name: str, config: str, split: str) -> HTMLResponse:
    if config != "default":
        raise EntryNotFoundError(f"{namespace}/{name}", "", f"config {config}")
    return _viewer(request, f"{namespace}/{name}", split)
