"""Readers for the sources ``fmhub data import`` accepts, streamed as batches of uniform rows.

Every source becomes rows of ``{"text", "label"}`` (classification) or ``{"tokens", "tags"}`` (token
classification), plus ``"split"`` when the source already names splits (a split column, or files named
``train.*``/``validation.*``/``test.*`` in a folder). Rows stream in batches so a large file never sits
in memory whole. Errors name the file and line and say how to fix the input.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from fmhub.errors import InvalidInputError

__all__ = ["Source", "open_source", "detect_encoding", "SOURCE_KINDS", "SPLIT_NAMES", "BATCH_ROWS"]

SOURCE_KINDS = ("csv", "tsv", "jsonl", "parquet", "folder", "conll")
#: File stems that name a split (``train.csv``, ``dev.conll``...), mapped to the Hugging Face split name.
SPLIT_NAMES = {"train": "train", "training": "train", "validation": "validation", "valid": "validation",
               "val": "validation", "dev": "validation", "test": "test", "testing": "test"}
BATCH_ROWS = 10_000
_SUFFIX_KIND = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl",
                ".json": "jsonl", ".parquet": "parquet", ".conll": "conll", ".conllu": "conll", ".bio": "conll",
                ".iob": "conll"}
_TEXT_SUFFIXES = {".txt", ".text", ""}
_SNIFF_BYTES = 1024 * 1024
_csv_limit_set = False


def detect_encoding(path: Path, override: str | None = None) -> str:
    """The text encoding of ``path``: ``override`` if given (checked), else detected from its first MB."""
    if override:
        try:
            "".encode(override)
        except LookupError:
            raise InvalidInputError(f"unknown encoding {override!r}", hint="use e.g. --encoding utf-8, latin-1, "
                                    "cp1252 or utf-16") from None
        return override
    with open(path, "rb") as f:
        head = f.read(_SNIFF_BYTES)
    if head.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    try:
        head.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError as exc:
        if exc.start >= len(head) - 4:  # cut inside a multi-byte character at the sniff boundary
            return "utf-8"
    from charset_normalizer import from_bytes

    best = from_bytes(head).best()
    if best is None:
        raise InvalidInputError(f"{path}: cannot tell the text encoding", hint="pass --encoding (e.g. latin-1)")
    return best.encoding


@dataclass(frozen=True)
class Source:
    """An opened source: what it holds and how to stream it.

    Attributes:
        kind: one of :data:`SOURCE_KINDS`.
        task: ``text-classification`` (text + optional label) or ``token-classification`` (tokens + tags).
        files: the files read, in order.
        has_splits: rows carry a ``split`` taken from the source (split column or split-named files).
        label_names: for folders, the class names (sorted); otherwise found while reading.
    """

    kind: str
    task: str
    path: Path
    files: tuple[Path, ...]
    has_labels: bool
    has_splits: bool
    label_names: tuple[str, ...] | None
    options: dict

    def batches(self) -> Iterator[list[dict]]:
        """Rows in batches of up to :data:`BATCH_ROWS`."""
        reader = {"csv": _read_delimited, "tsv": _read_delimited, "jsonl": _read_jsonl, "parquet": _read_parquet,
                  "folder": _read_folder, "conll": _read_conll}[self.kind]
        batch: list[dict] = []
        for row in reader(self):
            batch.append(row)
            if len(batch) >= BATCH_ROWS:
                yield batch
                batch = []
        if batch:
            yield batch


def open_source(path: Path | str, *, kind: str | None = None, encoding: str | None = None,
                text_column: str | None = None, label_column: str | None = None, tokens_column: str | None = None,
                tags_column: str | None = None, split_column: str | None = None,
                conll_token_col: int = 0, conll_tag_col: int = -1) -> Source:
    """Inspect ``path`` and return a :class:`Source` to stream; raises InvalidInputError with the fix.

    Args:
        kind: force a kind (default: from the suffix; a folder of ``<label>/*.txt`` is ``folder``).
        text_column / label_column: column names for tabular sources (defaults: ``text`` / ``label``).
        tokens_column / tags_column: for token classification from JSON Lines or Parquet (lists).
        split_column: a column naming each row's split (default: ``split`` if present).
        conll_token_col / conll_tag_col: CoNLL columns (whitespace separated) of the token and its tag.
    """
    path = Path(path)
    if not path.exists():
        raise InvalidInputError(f"{path}: no such file or folder")
    files = _files(path)
    kind = kind or (_folder_kind(path, files) if path.is_dir() else _SUFFIX_KIND.get(path.suffix.lower()))
    if kind not in SOURCE_KINDS:
        raise InvalidInputError(f"{path}: cannot tell what kind of source this is",
                                hint=f"name it .csv/.tsv/.jsonl/.parquet/.conll or pass --format ({', '.join(SOURCE_KINDS)})")
    if not files:
        raise InvalidInputError(f"{path}: the source is empty (no data files)")
    options = {"encoding": encoding, "text_column": text_column, "label_column": label_column,
               "tokens_column": tokens_column, "tags_column": tags_column, "split_column": split_column,
               "conll_token_col": conll_token_col, "conll_tag_col": conll_tag_col}
    if kind == "folder":
        labels = tuple(sorted({f.parent.name for f in files}))
        return Source(kind, "text-classification", path, tuple(files), True, False, labels, options)
    if kind == "conll":
        return Source(kind, "token-classification", path, tuple(files), True, _split_named(files), None, options)
    columns = _columns(kind, files[0], options)
    token_task = tokens_column is not None or ("tokens" in columns and text_column is None and "text" not in columns)
    if token_task:
        tokens_column = tokens_column or "tokens"
        tags_column = tags_column or ("tags" if "tags" in columns else "ner_tags")
        _require(files[0], columns, [tokens_column, tags_column], "--tokens-column/--tags-column")
        options.update(tokens_column=tokens_column, tags_column=tags_column)
        has_labels = True
    else:
        text_column = text_column or "text"
        _require(files[0], columns, [text_column], "--text-column")
        if label_column is not None:
            _require(files[0], columns, [label_column], "--label-column")
        label_column = label_column or ("label" if "label" in columns else None)
        options.update(text_column=text_column, label_column=label_column)
        has_labels = label_column is not None
    if split_column is not None:
        _require(files[0], columns, [split_column], "--split-column")
    split_column = split_column or ("split" if "split" in columns else None)
    options["split_column"] = split_column
    task = "token-classification" if token_task else "text-classification"
    has_splits = split_column is not None or _split_named(files)
    return Source(kind, task, path, tuple(files), has_labels, has_splits, None, options)


# -- inspection ------------------------------------------------------------------------------------


def _files(path: Path) -> list[Path]:
    if path.is_file():
        return [path] if path.stat().st_size > 0 else []
    found = sorted(p for p in path.rglob("*") if p.is_file() and not any(part.startswith(".") for part in
                                                                           p.relative_to(path).parts))
    return [p for p in found if p.stat().st_size > 0]


def _folder_kind(path: Path, files: list[Path]) -> str | None:
    suffixes = {f.suffix.lower() for f in files}
    data_kinds = {_SUFFIX_KIND[s] for s in suffixes if s in _SUFFIX_KIND}
    if len(data_kinds) == 1:
        return data_kinds.pop()
    if suffixes <= _TEXT_SUFFIXES and files and all(f.parent != path for f in files):
        return "folder"  # <root>/<label>/<doc>.txt (the BBC News layout: data/<label>/*.txt)
    return None


def _split_named(files: list[Path] | tuple[Path, ...]) -> bool:
    return len(files) > 1 and all(f.stem.lower() in SPLIT_NAMES for f in files)


def _split_of(file: Path) -> str | None:
    return SPLIT_NAMES.get(file.stem.lower())


def _require(file: Path, columns: list[str], wanted: list[str], flag: str) -> None:
    missing = [c for c in wanted if c not in columns]
    if missing:
        raise InvalidInputError(f"{file}: no column {', '.join(map(repr, missing))}; the columns are: "
                                f"{', '.join(columns) or '(none)'}", hint=f"name the right one with {flag}")


def _columns(kind: str, file: Path, options: dict) -> list[str]:
    if kind == "parquet":
        import pyarrow.parquet as pq

        try:
            return list(pq.read_schema(file).names)
        except Exception as exc:  # pyarrow raises several types for a bad file
            raise InvalidInputError(f"{file}: not a readable Parquet file ({exc})") from None
    if kind == "jsonl":
        for number, row in _jsonl_rows(file, options):
            return list(row)
        raise InvalidInputError(f"{file}: the source is empty (no rows)")
    encoding = detect_encoding(file, options["encoding"])
    try:
        with _open_text(file, encoding) as f:
            header = next(csv.reader(f, delimiter="\t" if kind == "tsv" else ","), None)
    except UnicodeDecodeError as exc:
        raise _decode_error(file, encoding, exc) from None
    if not header:
        raise InvalidInputError(f"{file}: the source is empty (no header row)")
    return header


def _open_text(file: Path, encoding: str):
    return open(file, encoding=encoding, newline="", errors="strict")


def _decode_error(file: Path, encoding: str, exc: UnicodeDecodeError) -> InvalidInputError:
    return InvalidInputError(f"{file}: bytes at offset ~{exc.start} are not valid {encoding}",
                             hint="pass the file's encoding with --encoding (e.g. latin-1, cp1252)")


# -- readers ---------------------------------------------------------------------------------------


def _row(source: Source, values: dict, file: Path, where: str) -> dict:
    o = source.options
    row: dict = {}
    if source.task == "token-classification":
        tokens, tags = values.get(o["tokens_column"]), values.get(o["tags_column"])
        if not isinstance(tokens, list) or not isinstance(tags, list) or len(tokens) != len(tags):
            raise InvalidInputError(f"{file}:{where}: tokens and tags must be lists of the same length")
        row["tokens"], row["tags"] = [str(t) for t in tokens], [str(t) for t in tags]
    else:
        text = values.get(o["text_column"])
        row["text"] = "" if text is None else str(text)
        if o["label_column"]:
            label = values.get(o["label_column"])
            row["label"] = None if label is None or label == "" else str(label)
    split = values.get(o["split_column"]) if o["split_column"] else _split_of(file)
    if split is not None:
        row["split"] = SPLIT_NAMES.get(str(split).strip().lower(), str(split).strip())
    return row


def _read_delimited(source: Source) -> Iterator[dict]:
    global _csv_limit_set
    if not _csv_limit_set:  # long documents in one cell are normal for text datasets
        csv.field_size_limit(64 * 1024 * 1024)
        _csv_limit_set = True
    for file in source.files:
        encoding = detect_encoding(file, source.options["encoding"])
        with _open_text(file, encoding) as f:
            reader = csv.reader(f, delimiter="\t" if source.kind == "tsv" else ",", strict=True)
            try:
                header = next(reader)
                for values in reader:
                    if not values:
                        continue
                    if len(values) != len(header):
                        raise InvalidInputError(
                            f"{file}:{reader.line_num}: {len(values)} fields where the header has {len(header)}",
                            hint="quote fields that contain the delimiter or line breaks")
                    yield _row(source, dict(zip(header, values)), file, str(reader.line_num))
            except csv.Error as exc:
                raise InvalidInputError(f"{file}:{reader.line_num}: malformed row ({exc})",
                                        hint="check the quoting on that line") from None
            except UnicodeDecodeError as exc:
                raise _decode_error(file, encoding, exc) from None


def _jsonl_rows(file: Path, options: dict) -> Iterator[tuple[int, dict]]:
    encoding = detect_encoding(file, options["encoding"])
    try:
        with _open_text(file, encoding) as f:
            for number, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except ValueError as exc:
                    raise InvalidInputError(f"{file}:{number}: not a JSON object ({exc})") from None
                if not isinstance(row, dict):
                    raise InvalidInputError(f"{file}:{number}: each line must be a JSON object")
                yield number, row
    except UnicodeDecodeError as exc:
        raise _decode_error(file, encoding, exc) from None


def _read_jsonl(source: Source) -> Iterator[dict]:
    for file in source.files:
        for number, values in _jsonl_rows(file, source.options):
            yield _row(source, values, file, str(number))


def _read_parquet(source: Source) -> Iterator[dict]:
    import pyarrow.parquet as pq

    for file in source.files:
        parquet = pq.ParquetFile(file)
        offset = 0
        for batch in parquet.iter_batches(batch_size=BATCH_ROWS):
            for index, values in enumerate(batch.to_pylist()):
                yield _row(source, values, file, f"row {offset + index}")
            offset += batch.num_rows


def _read_folder(source: Source) -> Iterator[dict]:
    for file in source.files:
        encoding = detect_encoding(file, source.options["encoding"])
        try:
            text = file.read_text(encoding=encoding)
        except UnicodeDecodeError as exc:
            raise _decode_error(file, encoding, exc) from None
        yield {"text": text, "label": file.parent.name}


def _read_conll(source: Source) -> Iterator[dict]:
    token_col, tag_col = source.options["conll_token_col"], source.options["conll_tag_col"]
    for file in source.files:
        encoding = detect_encoding(file, source.options["encoding"])
        tokens: list[str] = []
        tags: list[str] = []
        split = _split_of(file) if _split_named(source.files) else None
        try:
            with _open_text(file, encoding) as f:
                for number, line in enumerate(f, 1):
                    stripped = line.strip()
                    if not stripped or stripped.startswith("-DOCSTART-"):
                        if tokens:
                            yield {"tokens": tokens, "tags": tags, **({"split": split} if split else {})}
                            tokens, tags = [], []
                        continue
                    if stripped.startswith("#"):
                        continue
                    fields = stripped.split()
                    try:
                        tokens.append(fields[token_col])
                        tags.append(fields[tag_col])
                    except IndexError:
                        raise InvalidInputError(f"{file}:{number}: expected columns {token_col} (token) and "
                                                f"{tag_col} (tag), found {len(fields)} field(s)",
                                                hint="set --conll-token-col / --conll-tag-col") from None
        except UnicodeDecodeError as exc:
            raise _decode_error(file, encoding, exc) from None
        if tokens:
            yield {"tokens": tokens, "tags": tags, **({"split": split} if split else {})}
