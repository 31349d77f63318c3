"""``fmhub data import``: a source → Parquet shards + dataset card + quality report, in one commit.

Two passes over the source, both streaming: the first reads labels (and existing splits) to decide
the stratified split of every row; the second redacts PII if asked, feeds the quality report and
writes each row to its split's shards. Nothing reaches the hub unless the whole import succeeded.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fmhub.cards import render_card
from fmhub.client import Hub, UploadFile
from fmhub.data._parquet import ShardWriter, SplitFiles, arrow_schema, hf_features
from fmhub.data._pii import Redactor
from fmhub.data._quality import QualityAccumulator, QualityReport, quality_markdown
from fmhub.data._sources import Source, open_source
from fmhub.data._splits import DEFAULT_SPLIT, assign_splits, parse_split_spec
from fmhub.errors import EmptyCommitError, InvalidInputError
from fmhub.store import Commit, DeleteFile, validate_repo_id

__all__ = ["ImportOptions", "ImportResult", "import_dataset"]


@dataclass(frozen=True)
class ImportOptions:
    """What ``fmhub data import`` takes (each field is a CLI option of the same name)."""

    split: str = DEFAULT_SPLIT
    seed: int = 0
    encoding: str | None = None
    format: str | None = None
    text_column: str | None = None
    label_column: str | None = None
    tokens_column: str | None = None
    tags_column: str | None = None
    split_column: str | None = None
    redact_pii: bool = False
    license: str | None = None
    private: bool = False
    message: str | None = None


@dataclass(frozen=True)
class ImportResult:
    commit: Commit
    splits: dict[str, int]
    label_names: list[str] | None
    quality: QualityReport
    pii_counts: dict[str, int]
    content_hash: str


def _labels_pass(source: Source) -> tuple[list[str | None], list[str | None], set[str]]:
    """Each row's label (for stratifying) and given split, and the set of tags (token classification)."""
    labels: list[str | None] = []
    splits: list[str | None] = []
    tags: set[str] = set()
    for batch in source.batches():
        for row in batch:
            labels.append(row.get("label"))
            splits.append(row.get("split"))
            tags.update(row.get("tags", ()))
    if not labels:
        raise InvalidInputError(f"{source.path}: the source is empty (no rows)")
    return labels, splits, tags


def import_dataset(hub: Hub, source_path: Path | str, repo_id: str, options: ImportOptions = ImportOptions(), *,
                   on_progress: Callable[[int], None] | None = None) -> ImportResult:
    """Import ``source_path`` as a new version of the dataset repo ``repo_id`` (created if missing).

    Example:
        >>> from fmhub.client import Hub
        >>> with Hub.open() as hub:
        ...     result = import_dataset(hub, "bbc/data", "acme/bbc-news", ImportOptions(license="cc-by-4.0"))
    """
    repo_id = validate_repo_id(repo_id)  # before reading anything: a bad id fails at once
    source = open_source(source_path, kind=options.format, encoding=options.encoding,
                         text_column=options.text_column, label_column=options.label_column,
                         tokens_column=options.tokens_column, tags_column=options.tags_column,
                         split_column=options.split_column)
    ratios = parse_split_spec(options.split)
    labels, given_splits, tag_set = _labels_pass(source)
    if source.has_splits and any(s is None for s in given_splits):
        raise InvalidInputError(f"{source.path}: some rows name no split", hint="fill the split column, or drop it "
                                "and use --split")
    label_names = sorted({label for label in labels if label is not None}) if source.has_labels and \
        source.task == "text-classification" else None
    tag_names = sorted(tag_set) if source.task == "token-classification" else None
    stratify = labels if label_names else [None] * len(labels)
    split_of = list(given_splits) if source.has_splits else assign_splits(stratify, ratios, options.seed)
    label_index = {name: i for i, name in enumerate(label_names or [])}
    tag_index = {name: i for i, name in enumerate(tag_names or [])}
    redactor = Redactor() if options.redact_pii else None
    quality = QualityAccumulator()
    digest = hashlib.sha256()
    with tempfile.TemporaryDirectory(prefix="fmhub-import-") as tmp:
        writer = ShardWriter(Path(tmp), arrow_schema(source.task, label_names, tag_names))
        position = 0
        for batch in source.batches():
            columns: dict[str, dict[str, list]] = {}
            for row in batch:
                split = split_of[position]
                position += 1
                out = columns.setdefault(split, {"tokens": [], "tags": []} if tag_names is not None else
                                         {"text": [], **({"label": []} if label_names is not None else {})})
                if tag_names is not None:
                    tokens = [redactor.redact(t) for t in row["tokens"]] if redactor else row["tokens"]
                    out["tokens"].append(tokens)
                    out["tags"].append([tag_index[t] for t in row["tags"]])
                    quality.add(split, " ".join(tokens))
                    digest.update(json.dumps([split, tokens, row["tags"]]).encode())
                else:
                    text = redactor.redact(row["text"]) if redactor else row["text"]
                    out["text"].append(text)
                    label = row.get("label")
                    if label_names is not None:
                        if label is None:
                            raise InvalidInputError(f"{source.path}: row {position} has no label",
                                                    hint="fill the label column, or import without --label-column")
                        out["label"].append(label_index[label])
                    quality.add(split, text, label)
                    digest.update(json.dumps([split, text, label]).encode())
            for split, cols in columns.items():
                writer.write(split, cols)
            if on_progress:
                on_progress(len(batch))
        splits = writer.close()
        report = quality.report()
        content_hash = digest.hexdigest()
        (Path(tmp) / "quality.json").write_text(json.dumps(report.to_dict(), indent=2, sort_keys=True) + "\n")
        pii = dict(redactor.counts) if redactor else {}
        card = _card(repo_id, source, options, ratios, splits, label_names, tag_names, report, pii, content_hash)
        (Path(tmp) / "README.md").write_text(card)
        hub.create_repo(repo_id, repo_type="dataset", private=options.private, exist_ok=True)
        existing = [e.path for e in hub.list_files(repo_id, repo_type="dataset") if e.path.startswith("data/")]
        ops: list[Any] = [DeleteFile(path) for path in existing]  # a new version replaces the old shards
        for files in splits.values():
            ops += [UploadFile(f"data/{p.name}", p) for p in files.paths]
        ops += [UploadFile("quality.json", Path(tmp) / "quality.json"), UploadFile("README.md", Path(tmp) / "README.md")]
        try:
            commit = hub.commit(repo_id, ops, repo_type="dataset",
                                title=options.message or f"Import {Path(source_path).name}",
                                message=f"source: {Path(source_path).name}\nsplit: {options.split} "
                                        f"seed {options.seed}\ncontent sha256: {content_hash}")
        except EmptyCommitError:  # the same source and recipe again: the repo already holds this version
            commit = hub.repo_info(repo_id, repo_type="dataset").commit
    return ImportResult(commit, {n: f.num_examples for n, f in splits.items()}, label_names, report, pii, content_hash)


def _card(repo_id: str, source: Source, options: ImportOptions, ratios: dict[str, float],
          splits: dict[str, SplitFiles], label_names: list[str] | None, tag_names: list[str] | None,
          report: QualityReport, pii: dict[str, int], content_hash: str) -> str:
    task = source.task
    features = hf_features(task, label_names, tag_names)
    metadata: dict[str, Any] = {
        "license": options.license or "unknown",
        "task_categories": [task],
        "pretty_name": repo_id.split("/", 1)[1],
        "source": Path(source.path).name,
        "content_hash": f"sha256:{content_hash}",
        "dataset_info": {
            "features": [_card_feature(name, spec) for name, spec in features.items()],
            "splits": [{"name": n, "num_bytes": f.num_bytes, "num_examples": f.num_examples}
                       for n, f in splits.items()],
        },
        "configs": [{"config_name": "default",
                     "data_files": [{"split": n, "path": f"data/{n}-*"} for n in splits]}],
        "fmhub": {"split_recipe": {"ratios": ratios, "seed": options.seed, "stratified": label_names is not None,
                                   "from_source": source.has_splits},
                  "pii_redacted": options.redact_pii, "pii_counts": pii},
    }
    body = [f"# {repo_id}\n", f"Imported by fmhub from `{Path(source.path).name}` ({source.kind}, {task}).\n",
            "## Splits\n", "| split | rows |", "|---|---:|"]
    body += [f"| {n} | {f.num_examples} |" for n, f in splits.items()]
    recipe = "taken from the source" if source.has_splits else \
        f"`{options.split}`, seed {options.seed}" + (", stratified by label" if label_names else "")
    body += ["", f"Split recipe: {recipe}.", ""]
    if label_names:
        body += [f"Labels: {', '.join(label_names)}.", ""]
    if options.redact_pii:
        body += ["PII redacted: " + (", ".join(f"{k} {v}" for k, v in sorted(pii.items()) if v) or "none found") + ".", ""]
    body += [quality_markdown(report, heading="## Quality")]
    return render_card(metadata, "\n".join(body) + "\n")


def _card_feature(name: str, spec: dict) -> dict:
    """A ``datasets`` feature spec as the card's YAML writes it (``dtype: string``, ``class_label``...)."""
    if spec["_type"] == "ClassLabel":
        return {"name": name, "dtype": {"class_label": {"names": {str(i): n for i, n in enumerate(spec["names"])}}}}
    if spec["_type"] == "Sequence":
        inner = spec["feature"]
        if inner["_type"] == "ClassLabel":
            return {"name": name, "sequence": {"class_label": {"names": {str(i): n for i, n in
                                                                         enumerate(inner["names"])}}}}
        return {"name": name, "sequence": inner["dtype"]}
    return {"name": name, "dtype": spec["dtype"]}
