"""``fmhub data import``: a source → Parquet shards + dataset card + quality report, in one commit.

Two passes over the source, both streaming Arrow tables: the first reads only the label and split
columns to decide the stratified split of every row (kept as one byte per row; a multi-label row is
stratified by its rarest label); the second reads the rest, redacts PII if asked, feeds the quality
report and writes each split's rows to its shards, a batch at a time. Nothing reaches the hub unless
the whole import succeeded.

Sources are texts (:mod:`._sources`: text + label, tokens + tags) or images (:mod:`._image_sources`: the
images checked, measured and stored by :mod:`._image_import`, whose quality report is :mod:`._image_quality`).
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from fmhub.cards import render_card
from fmhub.client import Hub, UploadFile
from fmhub.data._image_import import ImageContent, image_features, image_schema
from fmhub.data._image_quality import ImageQualityReport
from fmhub.data._image_sources import ImageSource, open_image_source
from fmhub.data._parquet import ShardWriter, SplitFiles, arrow_schema, hf_features
from fmhub.data._pii import Redactor
from fmhub.data._quality import _MAX_SPLITS, QualityAccumulator, QualityReport, quality_markdown
from fmhub.data._sources import Source, open_source
from fmhub.data._texts import as_string_array
from fmhub.data._splits import DEFAULT_SPLIT, assign_split_codes, parse_split_spec
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
    label_separator: str | None = None  # multi-label: split each label cell on it ("sport|politics")
    conll_token_col: int = 0
    conll_tag_col: int = -1
    redact_pii: bool = False
    minhash: float | None = None  # threshold for MinHash similar-text detection across splits (None: off)
    image_column: str | None = None  # a table's column of image paths, or a Parquet column of image bytes
    max_image_pixels: int | None = None  # images over it stop the import (default: Pillow's bomb threshold)
    similar_images: int | None = None  # also report images across splits within N bits of perceptual hash
    license: str | None = None
    private: bool = False
    message: str | None = None
    source_name: str | None = None  # the card's ``source`` (default: the source's file or folder name)


@dataclass(frozen=True)
class ImportResult:
    commit: Commit
    splits: dict[str, int]
    label_names: list[str] | None
    quality: QualityReport | ImageQualityReport
    pii_counts: dict[str, int]
    content_hash: str


@dataclass(frozen=True)
class _Plan:
    """What the first pass decides: label and tag names, and each row's split (an index into ``names``)."""

    label_names: list[str] | None
    tag_names: list[str] | None
    split_names: list[str]
    split_of: np.ndarray


def _plan(source: Source | ImageSource, ratios: dict[str, float], seed: int) -> _Plan:
    """First pass: read the labels (or tags) and given splits, and decide each row's split."""
    wanted = tuple(c for c in ("label", "tags", "split") if c in source.columns) or source.columns[:1]
    labels: list[pa.ChunkedArray] = []
    splits: list[pa.ChunkedArray] = []
    tags: set[str] = set()
    rows = 0
    for table in source.batches(wanted):
        rows += table.num_rows
        if "label" in table.column_names:
            labels.append(table.column("label"))
        if "split" in table.column_names:
            splits.append(table.column("split"))
        if "tags" in table.column_names:
            tags.update(pc.unique(pc.list_flatten(table.column("tags"))).to_pylist())
    if not rows:
        raise InvalidInputError(f"{source.path}: the source is empty (no rows)")
    label_names = tag_names = None
    codes = np.full(rows, -1, dtype=np.int64)
    if source.task == "token-classification":
        tag_names = sorted(tags)
    elif source.multi_label:
        chunks = [c for chunk in labels for c in chunk.chunks]
        label_names = sorted(set().union(*(pc.unique(pc.list_flatten(c)).to_pylist() for c in chunks)))
        codes = _rarest_label_codes(chunks, label_names, rows)
    elif source.has_labels:
        column = pa.chunked_array([c for chunk in labels for c in chunk.chunks], pa.string())
        label_names = sorted(pc.unique(column).drop_null().to_pylist())
        codes = pc.index_in(column, value_set=pa.array(label_names, pa.string())).fill_null(-1).to_numpy()
    if not source.has_splits:
        return _Plan(label_names, tag_names, list(ratios), assign_split_codes(codes, label_names or [], ratios, seed))
    column = pa.chunked_array([c for chunk in splits for c in chunk.chunks], pa.string())
    if column.null_count:
        row = pc.index(pc.is_null(column), True).as_py()
        raise InvalidInputError(f"{source.locate(row)}: the row names no split",
                                hint="fill the split column, or drop it and use --split")
    present = set(pc.unique(column).to_pylist())
    split_names = [n for n in ("train", "validation", "test") if n in present] + \
        sorted(present - {"train", "validation", "test"})
    split_of = pc.index_in(column, value_set=pa.array(split_names, pa.string())).to_numpy().astype(np.uint8)
    return _Plan(label_names, tag_names, split_names, split_of)


def _rarest_label_codes(chunks: list[pa.Array], label_names: list[str], rows: int) -> np.ndarray:
    """Each multi-label row's stratification group: the index of its rarest label (-1: no labels).

    Rarest = carried by the fewest rows of the whole source; ties go to the first name. So the rows of a
    rare label are spread over the splits by the ratios, like the rows of a single-label class.
    """
    value_set = pa.array(label_names, pa.string())
    ids, parents = [], []
    start = 0
    for chunk in chunks:
        ids.append(pc.index_in(pc.list_flatten(chunk), value_set=value_set).to_numpy(zero_copy_only=False))
        parents.append(pc.list_parent_indices(chunk).to_numpy(zero_copy_only=False).astype(np.int64) + start)
        start += len(chunk)
    codes = np.full(rows, -1, dtype=np.int64)
    if not label_names:
        return codes
    label_ids = np.concatenate(ids).astype(np.int64)
    row_of = np.concatenate(parents)
    rows_per_label = np.bincount(label_ids, minlength=len(label_names))  # lists hold distinct names
    key = rows_per_label[label_ids] * len(label_names) + label_ids  # fewest rows first, then first name
    best = np.full(rows, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(best, row_of, key)
    labeled = best != np.iinfo(np.int64).max
    codes[labeled] = best[labeled] % len(label_names)
    return codes


def import_dataset(hub: Hub, source_path: Path | str, repo_id: str, options: ImportOptions = ImportOptions(), *,
                   on_progress: Callable[[int], None] | None = None) -> ImportResult:
    """Import ``source_path`` as a new version of the dataset repo ``repo_id`` (created if missing).

    Example:
        >>> from fmhub.client import Hub
        >>> with Hub.open() as hub:
        ...     result = import_dataset(hub, "bbc/data", "acme/bbc-news", ImportOptions(license="cc-by-4.0"))
    """
    repo_id = validate_repo_id(repo_id)  # before reading anything: a bad id fails at once
    source: Source | ImageSource | None = open_image_source(
        source_path, kind=options.format, image_column=options.image_column, label_column=options.label_column,
        split_column=options.split_column, encoding=options.encoding)
    if source is None:
        if options.image_column is not None:
            raise InvalidInputError(f"{source_path}: --image-column {options.image_column!r} given, but this is not "
                                    "a table of image paths or a Parquet file of images",
                                    hint="import a CSV/JSON Lines table of paths, a Parquet file with image bytes, or "
                                         "a folder of <label>/<image> files")
        source = open_source(source_path, kind=options.format, encoding=options.encoding,
                             text_column=options.text_column, label_column=options.label_column,
                             tokens_column=options.tokens_column, tags_column=options.tags_column,
                             split_column=options.split_column, conll_token_col=options.conll_token_col,
                             conll_tag_col=options.conll_tag_col, label_separator=options.label_separator)
    ratios = parse_split_spec(options.split)
    if len(ratios) > _MAX_SPLITS:
        raise InvalidInputError(f"--split names {len(ratios)} splits; at most {_MAX_SPLITS}")
    plan = _plan(source, ratios, options.seed)
    if len(plan.split_names) > _MAX_SPLITS:
        raise InvalidInputError(f"{source.path}: the split column names {len(plan.split_names)} splits; at most "
                                f"{_MAX_SPLITS}", hint="check --split-column")
    label_names, tag_names = plan.label_names, plan.tag_names
    images = ImageContent(plan.split_names, max_pixels=options.max_image_pixels,
                          similar_bits=options.similar_images) if isinstance(source, ImageSource) else None
    if images is None and (options.max_image_pixels is not None or options.similar_images is not None):
        raise InvalidInputError(f"{source_path}: --max-image-pixels and --similar-images apply to image sources",
                                hint="drop them for a text source")
    redactor = Redactor() if options.redact_pii else None
    if images is not None and redactor is not None:
        raise InvalidInputError("--redact-pii applies to texts, not images", hint="drop --redact-pii")
    quality: Any = images.quality if images is not None else \
        QualityAccumulator(splits=plan.split_names, minhash=options.minhash)
    digests = {name: hashlib.sha256() for name in plan.split_names}
    if images is not None:
        content: tuple[str, ...] = ("image", "label") if label_names is not None else ("image",)
        schema = image_schema(label_names)
    else:
        content = ("tokens", "tags") if tag_names is not None else ("text", "label") if label_names is not None \
            else ("text",)
        schema = arrow_schema(source.task, label_names, tag_names, multi_label=source.multi_label)
    with tempfile.TemporaryDirectory(prefix="fmhub-import-") as tmp:
        writer = ShardWriter(Path(tmp), schema)
        position = 0
        for table in source.batches(content):
            split_of = plan.split_of[position:position + table.num_rows]
            if label_names is not None and not source.multi_label:  # multi-label: [] is no labels
                missing = table.column("label").is_null()
                if pc.any(missing).as_py():
                    row = position + pc.index(missing, True).as_py()
                    raise InvalidInputError(f"{source.locate(row)}: the row has no label",
                                            hint="fill the label column, or import without --label-column")
            position += table.num_rows
            for split_id in np.unique(split_of).tolist():
                split = plan.split_names[split_id]
                part = table.filter(pa.array(split_of == split_id))
                if images is not None:
                    columns = images.store(split, part, label_names)
                else:
                    columns = _stored_columns(part, label_names, tag_names, redactor, source.multi_label)
                writer.write(split, columns)
                _update_digest(digests[split], columns)
                if images is not None:  # measured while stored
                    continue
                if tag_names is not None:
                    quality.add_batch(split, pc.binary_join(columns["tokens"], " "))
                else:
                    quality.add_batch(split, columns["text"], part.column("label") if label_names is not None else None)
            if on_progress:
                on_progress(table.num_rows)
        if images is not None and not images.stored:
            problems = "; ".join(f"{u.path}: {u.reason}" for s in images.quality.report().splits
                                 for u in s.unreadable_examples[:3])
            raise InvalidInputError(f"{source.path}: no readable image ({problems})",
                                    hint="check the files are images Pillow can read")
        splits = writer.close()
        report = quality.report()
        content_hash = _content_hash(digests, splits)
        (Path(tmp) / "quality.json").write_text(json.dumps(report.to_dict(), indent=2, sort_keys=True) + "\n")
        pii = dict(redactor.counts) if redactor else {}
        card = _card(repo_id, source, options, ratios, splits, label_names, tag_names, report, pii, content_hash,
                     source_files(source.path, source.files))
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
    hub.attest_import(repo_id, commit.oid)  # the hub vouches for the version: its files, source and recipe
    return ImportResult(commit, {n: f.num_examples for n, f in splits.items()}, label_names, report, pii, content_hash)


def _stored_columns(part: pa.Table, label_names: list[str] | None, tag_names: list[str] | None,
                    redactor: Redactor | None, multi_label: bool = False) -> dict[str, pa.Array]:
    """The columns written for one split's rows of a batch: texts (redacted if asked) and label/tag ids.

    Multi-label: ``label`` is each row's list of label ids (ascending, as the names are sorted).
    """
    if tag_names is not None:
        tokens = as_string_array(part.column("tokens"))
        if redactor:
            tokens = pa.array([[redactor.redact(t) for t in row] for row in tokens.to_pylist()], pa.list_(pa.string()))
        tags = as_string_array(part.column("tags"))
        tag_ids = pc.index_in(pc.list_flatten(tags), value_set=pa.array(tag_names, pa.string())).cast(pa.int64())
        return {"tokens": tokens, "tags": pa.ListArray.from_arrays(_list_offsets(tags), tag_ids)}
    text = as_string_array(part.column("text"))
    if redactor:
        text = pa.array([redactor.redact(t) for t in text.to_pylist()], pa.string())
    columns = {"text": text}
    if label_names is not None and multi_label:
        labels = as_string_array(part.column("label"))
        ids = pc.index_in(pc.list_flatten(labels), value_set=pa.array(label_names, pa.string())).cast(pa.int64())
        columns["label"] = pa.ListArray.from_arrays(_list_offsets(labels), ids)
    elif label_names is not None:
        columns["label"] = pc.index_in(part.column("label"), value_set=pa.array(label_names, pa.string())
                                       ).combine_chunks().cast(pa.int64())
    return columns


def _list_offsets(lists: pa.ListArray) -> pa.Array:
    """Offsets of ``lists`` starting at 0 (``lists.offsets`` keeps a slice's absolute positions)."""
    offsets = lists.offsets
    return pc.subtract(offsets, offsets[0])


def _update_digest(digest: Any, columns: dict[str, pa.Array]) -> None:
    """Hash rows as the stored values: per column, each row's value length then the values' bytes (a struct: each
    field in turn; a null counts as length -1)."""
    for name in sorted(columns):
        _digest_values(digest, columns[name])


def _digest_values(digest: Any, values: pa.Array) -> None:
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if pa.types.is_struct(values.type):
        for index in range(values.type.num_fields):
            _digest_values(digest, pc.struct_field(values, index))
        return
    if pa.types.is_binary(values.type):
        lengths = pc.fill_null(pc.binary_length(values), -1).to_numpy(zero_copy_only=False).astype("<i8")
        digest.update(lengths.tobytes())
        for chunk in values.to_pylist():
            if chunk:
                digest.update(chunk)
        return
    if pa.types.is_string(values.type) and values.null_count:
        values = values.fill_null("\x00")  # a null path is not an empty one
    _digest_flat(digest, values)


def _digest_flat(digest: Any, values: pa.Array) -> None:
    if pa.types.is_list(values.type):
        digest.update(pc.list_value_length(values).to_numpy().astype("<i8").tobytes())
        values = pc.list_flatten(values)
    if pa.types.is_string(values.type):
        offsets = np.frombuffer(values.buffers()[1], dtype=np.int32)[values.offset:values.offset + len(values) + 1]
        digest.update(np.diff(offsets).astype("<i8").tobytes())
        if len(values) and offsets[-1] > offsets[0]:
            digest.update(values.buffers()[2].slice(int(offsets[0]), int(offsets[-1] - offsets[0])))
    else:
        digest.update(values.to_numpy().astype("<i8").tobytes())


def _content_hash(digests: dict[str, Any], splits: dict[str, SplitFiles]) -> str:
    combined = hashlib.sha256()
    for name in splits:
        combined.update(f"{name}\0{digests[name].hexdigest()}\n".encode())
    return combined.hexdigest()


def source_files(root: Path, files: tuple[Path, ...] | list[Path]) -> dict[str, Any]:
    """What the import read, for the card and the hub's attestation: how many files and bytes, and the sha256 of
    their manifest (``sha256sum``'s lines, ``<sha256>  <path>`` sorted by path, paths relative to the source
    folder), so anyone holding the source can check it is the one imported."""
    root = Path(root)
    lines, size = [], 0
    for file in files:
        digest = hashlib.sha256()
        with open(file, "rb", buffering=0) as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
                size += len(chunk)
        name = Path(file).relative_to(root).as_posix() if root.is_dir() else Path(file).name
        lines.append(f"{digest.hexdigest()}  {name}\n")
    manifest = "".join(sorted(lines, key=lambda line: line[66:]))
    return {"sha256": hashlib.sha256(manifest.encode()).hexdigest(), "files": len(lines), "bytes": size}


def _card(repo_id: str, source: Source | ImageSource, options: ImportOptions, ratios: dict[str, float],
          splits: dict[str, SplitFiles], label_names: list[str] | None, tag_names: list[str] | None,
          report: QualityReport | ImageQualityReport, pii: dict[str, int], content_hash: str,
          read: dict[str, Any]) -> str:
    task = source.task
    multi = source.multi_label
    features = image_features(label_names) if isinstance(source, ImageSource) else \
        hf_features(task, label_names, tag_names, multi_label=multi)
    metadata: dict[str, Any] = {
        "license": options.license or "unknown",
        "task_categories": [task],
        **({"task_ids": ["multi-label-classification"]} if multi else {}),
        "pretty_name": repo_id.split("/", 1)[1],
        "source": options.source_name or Path(source.path).name,
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
                  "pii_redacted": options.redact_pii, "pii_counts": pii, "minhash_threshold": options.minhash,
                  "source_files": read},
    }
    if multi:
        metadata["fmhub"]["multi_label"] = True
        metadata["fmhub"]["split_recipe"]["stratified_by"] = "rarest_label"
    origin = f"{options.source_name} (`{Path(source.path).name}`)" if options.source_name else \
        f"`{Path(source.path).name}`"
    body = [f"# {repo_id}\n", f"Imported by fmhub from {origin} ({source.kind}, {task}).\n",
            "## Splits\n", "| split | rows |", "|---|---:|"]
    body += [f"| {n} | {f.num_examples} |" for n, f in splits.items()]
    recipe = "taken from the source" if source.has_splits else \
        f"`{options.split}`, seed {options.seed}" + (
            "" if not label_names else ", stratified by label" if not multi else
            ", stratified by each row's rarest label (the one fewest rows carry; rows without labels form "
            "their own group)")
    body += ["", f"Split recipe: {recipe}.", ""]
    if label_names:
        body += [f"Labels{' (multi-label: each row has zero or more)' if multi else ''}: {', '.join(label_names)}.",
                 ""]
    if options.redact_pii:
        body += ["PII redacted: " + (", ".join(f"{k} {v}" for k, v in sorted(pii.items()) if v) or "none found") + ".", ""]
    body += [quality_markdown(report, heading="## Quality")]
    return render_card(metadata, "\n".join(body) + "\n")


def _card_feature(name: str, spec: dict) -> dict:
    """A ``datasets`` feature spec as the card's YAML writes it (``dtype: string``, ``class_label``...)."""
    if spec["_type"] == "Sequence":
        return {"name": name, "sequence": _card_type(spec["feature"])}
    return {"name": name, "dtype": _card_type(spec)}


def _card_type(spec: dict) -> Any:
    if spec["_type"] == "Image":
        return "image"
    if spec["_type"] == "ClassLabel":
        return {"class_label": {"names": {str(i): n for i, n in enumerate(spec["names"])}}}
    return spec["dtype"]
