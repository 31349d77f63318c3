"""Report cards as the files they are: ``eval/<dataset>/<split>/report.json`` and ``predictions.parquet``.

The web UI reads the JSON (shape: ``fmhub/evaluate/report.schema.json``) and the predictions table
from the model repo at a revision, as any client could, without importing the evaluation code. The
error browser joins the misclassified predictions with the evaluated dataset rows (the dataset commit
and split the card's provenance names), showing texts only to those who may see that dataset.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow.compute as pc

from fmhub.accounts import Principal
from fmhub.errors import EntryNotFoundError, FmhubError, InvalidInputError
from fmhub.server._auth import can_see
from fmhub.server.web._parquet import open_parquet, read_rows, split_shards, viewable
from fmhub.store import Repo, Store, TreeEntry
from fmhub.store.paths import validate_path

__all__ = ["CardRef", "report_cards", "read_report", "headline", "ErrorPage", "misclassified", "MAX_REPORT_BYTES"]

MAX_REPORT_BYTES = 16 * 1024 * 1024
#: The metrics a card's headline shows first, when the report has them (the rest follow in the table).
_HEADLINE = ("accuracy", "f1_macro", "f1", "precision", "recall", "perplexity", "bits_per_token", "loss")
_REPORTS: OrderedDict[str, dict[str, Any]] = OrderedDict()  # blob sha256 -> parsed report
_REPORTS_SIZE = 256


@dataclass(frozen=True)
class CardRef:
    """Where a report card is in a model repo: ``eval/<dataset ns>/<dataset name>/<split>/report.json``."""

    dataset: str
    split: str

    @property
    def folder(self) -> str:
        return f"eval/{self.dataset}/{self.split}"

    @property
    def path(self) -> str:
        return f"{self.folder}/report.json"

    @property
    def url_tail(self) -> str:
        return f"{self.dataset}/{self.split}"


def report_cards(files: list[TreeEntry]) -> list[CardRef]:
    """The report cards a revision holds, by dataset then split."""
    out = []
    for entry in files:
        parts = entry.path.split("/")
        if len(parts) == 5 and parts[0] == "eval" and parts[4] == "report.json":
            out.append(CardRef(f"{parts[1]}/{parts[2]}", parts[3]))
    return sorted(out, key=lambda c: (c.dataset.lower(), c.split))


def card_ref(tail: str) -> CardRef:
    """``<dataset ns>/<dataset name>/<split>`` from a URL, validated as a repo path."""
    checked = validate_path(tail.strip("/"))
    parts = checked.split("/")
    if len(parts) != 3:
        raise EntryNotFoundError("", "", f"eval/{checked}/report.json")
    return CardRef(f"{parts[0]}/{parts[1]}", parts[2])


def read_report(store: Store, repo: Repo, revision: str, ref: CardRef) -> tuple[dict[str, Any], TreeEntry]:
    """The parsed report.json of ``ref`` at ``revision`` (cached by blob); EntryNotFoundError if absent."""
    _, entry = store.get_entry(repo.repo_id, ref.path, revision, repo_type=repo.repo_type)
    if entry.blob_sha256 in _REPORTS:
        return _REPORTS[entry.blob_sha256], entry
    if entry.size > MAX_REPORT_BYTES:
        raise InvalidInputError(f"{ref.path} is {entry.size} bytes, more than a report card may be")
    try:
        report = json.loads(b"".join(store.iter_file(entry)))
        if not isinstance(report, dict) or not isinstance(report.get("metrics"), dict):
            raise ValueError
    except ValueError:
        raise InvalidInputError(f"{ref.path} is not an fmhub report card (not JSON of that shape)") from None
    _REPORTS[entry.blob_sha256] = report
    if len(_REPORTS) > _REPORTS_SIZE:
        _REPORTS.popitem(last=False)
    return report, entry


def headline(report: dict[str, Any], count: int = 3) -> list[tuple[str, Any]]:
    """The report's first metrics in headline order (e.g. accuracy, f1_macro), for side panels and lists."""
    metrics = report.get("metrics", {})
    names = [m for m in _HEADLINE if m in metrics] + [m for m in metrics if m not in _HEADLINE]
    return [(m, metrics[m]) for m in names[:count]]


def section(report: dict[str, Any], name: str) -> Any:
    """A report section, or None when it was skipped (``{"skipped": reason}``) or absent."""
    value = report.get(name)
    if isinstance(value, dict) and "skipped" in value:
        return None
    return value


def skipped(report: dict[str, Any], name: str) -> str | None:
    value = report.get(name)
    return value.get("skipped") if isinstance(value, dict) else None


@dataclass
class ErrorPage:
    """One page of the error browser."""

    rows: list[dict[str, Any]] = field(default_factory=list)  # row, gold, predicted, confidence, text (an input)
    total: int = 0  # misclassified rows matching the filter
    page: int = 1
    per_page: int = 20
    texts_hidden: bool = False  # the dataset is not visible to the viewer
    texts_missing: bool = False  # the dataset (or that commit) is not in this hub

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def _predictions_entry(store: Store, repo: Repo, revision: str, report: dict[str, Any], ref: CardRef) -> TreeEntry:
    path = (report.get("files") or {}).get("predictions") or f"{ref.folder}/predictions.parquet"
    path = validate_path(path)
    if not path.startswith(ref.folder + "/"):
        raise InvalidInputError(f"the card's predictions file {path!r} is outside its folder")
    return store.get_entry(repo.repo_id, path, revision, repo_type=repo.repo_type)[1]


def misclassified(store: Store, caller: Principal | None, repo: Repo, revision: str, report: dict[str, Any],
                  ref: CardRef, *, gold: int | None = None, predicted: int | None = None, page: int = 1,
                  per_page: int = 20) -> ErrorPage:
    """Misclassified rows of a single-label classifier's card (it has a confusion matrix: texts, images...), most
    confident mistakes first, each with its input (a text, or an image made viewable).

    ``gold``/``predicted`` (label ids) filter to one confusion-matrix cell; with both equal, the cell's
    rows are the correct ones of that class.
    """
    if not report.get("confusion_matrix"):
        return ErrorPage(page=page, per_page=per_page)
    table = open_parquet(store, _predictions_entry(store, repo, revision, report, ref)).read(
        columns=["row", "label", "prediction", "scores"])
    labels = table.column("label").to_numpy()
    predictions = table.column("prediction").to_numpy()
    if gold is not None and predicted is not None:
        keep = (labels == gold) & (predictions == predicted)
    else:
        keep = labels != predictions
        if gold is not None:
            keep &= labels == gold
        if predicted is not None:
            keep &= predictions == predicted
    chosen = np.flatnonzero(keep)
    scores = table.column("scores").combine_chunks()
    width = len(report.get("labels", [])) or 1
    flat = pc.list_flatten(scores).to_numpy(zero_copy_only=False).reshape(-1, width) if len(scores) else \
        np.zeros((0, width))
    confidence = flat[np.arange(len(flat)), predictions] if len(flat) else np.zeros(0)
    order = chosen[np.argsort(-confidence[chosen], kind="stable")]
    out = ErrorPage(total=int(len(order)), page=page, per_page=per_page)
    shown = order[(page - 1) * per_page: page * per_page]
    rows = table.column("row").to_numpy()
    names = report.get("labels", [])
    for i in shown:
        out.rows.append({"row": int(rows[i]), "gold": int(labels[i]), "predicted": int(predictions[i]),
                         "gold_name": names[labels[i]] if labels[i] < len(names) else str(labels[i]),
                         "predicted_name": names[predictions[i]] if predictions[i] < len(names) else str(predictions[i]),
                         "confidence": float(confidence[i]), "gold_score": float(flat[i, labels[i]]), "text": None})
    _attach_texts(store, caller, report, out)
    _attach_attributions(store, repo, revision, report, ref, out)
    return out


def _colour(score: float, scale: float) -> str:
    """The CSS background of one attribution: white through green (supports the label) or red (against it)."""
    t = min(1.0, abs(score) / scale) if scale > 0 else 0.0
    full = (22, 163, 74) if score >= 0 else (220, 38, 38)
    r, g, b = (int(round(255 + (c - 255) * t)) for c in full)
    return f"rgb({r},{g},{b})"


def _attach_attributions(store: Store, repo: Repo, revision: str, report: dict[str, Any], ref: CardRef,
                         out: ErrorPage) -> None:
    """Each shown row the card explained gets its heat map (``explanations.parquet``, the card's main method):
    the text cut into coloured spans, or an image's grid of coloured regions."""
    explained = section(report, "explanations")
    if not explained or not explained.get("file") or not out.rows:
        return
    try:
        path = validate_path(str(explained["file"]))
        if not path.startswith(ref.folder + "/"):
            return
        entry = store.get_entry(repo.repo_id, path, revision, repo_type=repo.repo_type)[1]
        table = open_parquet(store, entry).read(columns=["row", "method", "units", "scores", "spans", "grid"])
    except (FmhubError, OSError, KeyError, ValueError):
        return
    wanted = {r["row"] for r in out.rows}
    found: dict[int, dict[str, Any]] = {}
    for record in table.to_pylist():
        if record["method"] == explained.get("method") and record["row"] in wanted:
            found[record["row"]] = record
    for row in out.rows:
        record = found.get(row["row"])
        if record is None:
            continue
        scores = [float(x) for x in record["scores"] or []]
        scale = max((abs(x) for x in scores), default=0.0) or 1.0
        top = sorted(range(len(scores)), key=lambda i: -scores[i])[:3]
        attribution: dict[str, Any] = {"method": record["method"],
                                       "top": [(record["units"][i], scores[i]) for i in top]}
        if record["grid"]:
            rows, columns = record["grid"]
            attribution["cells"] = [[{"bg": _colour(scores[r * columns + c], scale),
                                      "score": scores[r * columns + c]} for c in range(columns)]
                                    for r in range(rows)]
        elif isinstance(row.get("text"), str) and record["spans"]:
            text, at, segments = row["text"], 0, []
            for (start, end), score, unit in zip(record["spans"], scores, record["units"], strict=False):
                if start < at or end > len(text):
                    continue
                if start > at:
                    segments.append({"text": text[at:start]})
                segments.append({"text": text[start:end], "bg": _colour(score, scale), "title": f"{unit}: {score:+.4f}"})
                at = end
            segments.append({"text": text[at:]})
            attribution["segments"] = segments
        row["attribution"] = attribution


def _attach_texts(store: Store, caller: Principal | None, report: dict[str, Any], out: ErrorPage) -> None:
    dataset = (report.get("provenance") or {}).get("dataset") or {}
    # The card names its input column (older cards: the --text-column option, else "text").
    column = report.get("input_column") or ((report.get("provenance") or {}).get("options") or {}).get(
        "text_column") or "text"
    try:
        repo = store.get_repo(str(dataset.get("repo")), repo_type="dataset")
        if not can_see(caller, repo):
            out.texts_hidden = True
            return
        files = store.list_files(repo.repo_id, str(dataset.get("commit")), repo_type="dataset", folder="data")
        shards = split_shards(store, files, str(dataset.get("split")))
        if shards.schema is None or column not in shards.schema.names:
            out.texts_missing = True
            return
        texts = read_rows(store, shards, [r["row"] for r in out.rows], columns=[column])
    except FmhubError:
        out.texts_missing = True
        return
    for row in out.rows:
        row["text"] = viewable((texts.get(row["row"]) or {}).get(column))


def confusion_pairs(report: dict[str, Any]) -> list[tuple[int, int, int]]:
    """Off-diagonal cells of the confusion matrix with rows, largest first: (gold, predicted, count)."""
    matrix = report.get("confusion_matrix") or []
    pairs = [(g, p, n) for g, row in enumerate(matrix) for p, n in enumerate(row) if g != p and n]
    return sorted(pairs, key=lambda t: -t[2])
