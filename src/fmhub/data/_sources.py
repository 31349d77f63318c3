"""Readers for the sources ``fmhub data import`` accepts, streamed as batches of uniform rows.

Every source becomes rows of ``{"text", "label"}`` (classification) or ``{"tokens", "tags"}`` (token
classification), plus ``"split"`` when the source already names splits (a split column, or files named
``train.*``/``validation.*``/``test.*`` in a folder). A multi-label source (a JSON Lines or Parquet label
column of lists, or a delimited label cell split on ``label_separator``) gives ``label`` as a sorted list
of distinct label names instead of one name. Rows stream in batches so a large file never sits
in memory whole. Errors name the file and line and say how to fix the input.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

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
_CSV_BLOCK_BYTES = 1024 * 1024  # Arrow's default; larger blocks raised peak RSS (16 MB: +165 MB) and were slower
_ARROW_BATCH_ROWS = 65_536  # Arrow batches are joined up to this many rows, so per-batch work is amortized
_csv_limit_set = False
_LAST = object()  # _csv_line's default: the last line


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
        multi_label: each row holds a list of labels (``label`` is a list of strings, possibly empty).
    """

    kind: str
    task: str
    path: Path
    files: tuple[Path, ...]
    has_labels: bool
    has_splits: bool
    label_names: tuple[str, ...] | None
    options: dict
    multi_label: bool = False

    @property
    def columns(self) -> tuple[str, ...]:
        """The columns :meth:`batches` yields: ``text`` [``label``] or ``tokens`` ``tags``, [``split``]."""
        base = ("tokens", "tags") if self.task == "token-classification" else \
            ("text", "label") if self.has_labels else ("text",)
        return base + (("split",) if self.has_splits else ())

    def batches(self, columns: tuple[str, ...] | None = None) -> Iterator[pa.Table]:
        """The rows as Arrow tables of :attr:`columns` (or the subset ``columns``), in source order.

        ``text``, ``label`` and ``split`` are strings (``label`` null when missing; ``split`` mapped to
        the Hugging Face name, ``dev`` → ``validation``); ``tokens`` and ``tags`` are lists of strings.
        With :attr:`multi_label`, ``label`` is a list of strings: distinct, sorted, ``[]`` for no labels.
        CSV, TSV and Parquet are read by Arrow's C++ readers, which read only the asked-for columns.
        """
        wanted = tuple(c for c in (columns or self.columns) if c in self.columns)
        if self.kind in ("csv", "tsv"):
            yield from _read_delimited(self, wanted)
        elif self.kind == "parquet":
            yield from _read_parquet(self, wanted)
        else:
            reader = {"jsonl": _read_jsonl, "folder": _read_folder, "conll": _read_conll}[self.kind]
            rows: list[dict] = []
            for row in reader(self):
                rows.append(row)
                if len(rows) >= BATCH_ROWS:
                    yield _table(rows, wanted, self.multi_label)
                    rows = []
            if rows:
                yield _table(rows, wanted, self.multi_label)

    def locate(self, row: int) -> str:
        """Where data row ``row`` (0-based, counted across :attr:`files` in order) is, as messages name places:
        ``file:line`` for text files (the line it starts on, as an editor numbers them), ``file:row N``
        (0-based, as Arrow numbers rows) for Parquet. Reads the files again: for error messages only."""
        left = row
        for file in self.files:
            if self.kind in ("csv", "tsv"):
                encoding = detect_encoding(file, self.options["encoding"])
                line = _csv_line(file, encoding, self.kind, left, default=None)
                if line is not None:
                    return f"{file}:{line}"
                left -= _delimited_rows(file, encoding, self.kind)
            elif self.kind == "jsonl":
                count = 0
                for number, _values in _jsonl_rows(file, self.options):
                    if count == left:
                        return f"{file}:{number}"
                    count += 1
                left -= count
            elif self.kind == "parquet":
                import pyarrow.parquet as pq

                count = pq.ParquetFile(file).metadata.num_rows
                if left < count:
                    return f"{file}:row {left}"
                left -= count
            else:
                break
        return f"{self.path}:row {row}"



def open_source(path: Path | str, *, kind: str | None = None, encoding: str | None = None,
                text_column: str | None = None, label_column: str | None = None, tokens_column: str | None = None,
                tags_column: str | None = None, split_column: str | None = None,
                conll_token_col: int = 0, conll_tag_col: int = -1, label_separator: str | None = None) -> Source:
    """Inspect ``path`` and return a :class:`Source` to stream; raises InvalidInputError with the fix.

    Args:
        kind: force a kind (default: from the suffix; a folder of ``<label>/*.txt`` is ``folder``).
        text_column / label_column: column names for tabular sources (defaults: ``text`` / ``label``).
        tokens_column / tags_column: for token classification from JSON Lines or Parquet (lists).
        split_column: a column naming each row's split (default: ``split`` if present).
        conll_token_col / conll_tag_col: CoNLL columns (whitespace separated) of the token and its tag.
        label_separator: multi-label; split each label cell on it (``"a|b"`` → ``["a", "b"]``, empty → no
            labels). Without it, a JSON Lines or Parquet label column of lists is multi-label; the label
            column then defaults to ``labels`` when there is no ``label``.
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
               "conll_token_col": conll_token_col, "conll_tag_col": conll_tag_col, "label_separator": label_separator}
    if label_separator is not None and (label_separator == "" or kind in ("folder", "conll")):
        raise InvalidInputError(f"--label-separator {label_separator!r}: " + (
            "the separator is empty" if label_separator == "" else f"a {kind} source has one label per row"),
            hint="e.g. --label-separator '|' for label cells like sport|politics")
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
        multi_label = False
        if label_separator is not None:
            raise InvalidInputError("--label-separator is for text classification; this source holds tokens "
                                    "and tags", hint="drop --label-separator")
    else:
        text_column = text_column or "text"
        _require(files[0], columns, [text_column], "--text-column")
        if label_column is not None:
            _require(files[0], columns, [label_column], "--label-column")
        if label_column is None:
            if "label" in columns:
                label_column = "label"
            elif "labels" in columns and (label_separator is not None or
                                          _holds_lists(kind, files, "labels", options)):
                label_column = "labels"  # the usual name of a multi-label column
        options.update(text_column=text_column, label_column=label_column)
        has_labels = label_column is not None
        if label_separator is not None and not has_labels:
            raise InvalidInputError(f"{files[0]}: --label-separator given, but there is no label column",
                                    hint="name it with --label-column")
        multi_label = has_labels and (label_separator is not None or _holds_lists(kind, files, label_column, options))
    if split_column is not None:
        _require(files[0], columns, [split_column], "--split-column")
    split_column = split_column or ("split" if "split" in columns else None)
    options["split_column"] = split_column
    task = "token-classification" if token_task else "text-classification"
    has_splits = split_column is not None or _split_named(files)
    return Source(kind, task, path, tuple(files), has_labels, has_splits, None, options, multi_label)


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


def _holds_lists(kind: str, files: list[Path], column: str, options: dict) -> bool:
    """Whether ``column`` holds lists: the Parquet type of the first file, or the first JSON value not null."""
    if kind == "parquet":
        import pyarrow.parquet as pq

        schema = pq.read_schema(files[0])
        return column in schema.names and _is_list_type(schema.field(column).type)
    if kind == "jsonl":
        for file in files:
            for _, row in _jsonl_rows(file, options):
                if row.get(column) is not None:
                    return isinstance(row[column], list)
    return False


def _is_list_type(type_: pa.DataType) -> bool:
    return pa.types.is_list(type_) or pa.types.is_large_list(type_) or pa.types.is_fixed_size_list(type_)


def _open_text(file: Path, encoding: str):
    return open(file, encoding=encoding, newline="", errors="strict")


def _decode_error(file: Path, encoding: str, exc: UnicodeDecodeError) -> InvalidInputError:
    return InvalidInputError(f"{file}: bytes at offset ~{exc.start} are not valid {encoding}",
                             hint="pass the file's encoding with --encoding (e.g. latin-1, cp1252)")


# -- readers ---------------------------------------------------------------------------------------


def _row(source: Source, values: dict, file: Path, where: str, file_split: str | None) -> dict:
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
            if source.multi_label:
                row["label"] = _label_list(label, o["label_separator"], f"{file}:{where}")
            elif isinstance(label, list):
                raise InvalidInputError(f"{file}:{where}: the label is a list ({_short(label)}), but earlier rows "
                                        "hold single labels; a source is either single- or multi-label",
                                        hint="write every label as a list, e.g. [\"sport\"] (a multi-label "
                                             "dataset), or one label per row")
            else:
                row["label"] = None if label is None or label == "" else str(label)
    split = values.get(o["split_column"]) if o["split_column"] else file_split
    if split is not None:
        row["split"] = SPLIT_NAMES.get(str(split).strip().lower(), str(split).strip())
    return row


def _short(value: object) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _label_list(label: object, separator: str | None, where: str) -> list[str]:
    """One JSON row's labels as a sorted list of distinct names; ``where`` is ``file:line`` for errors."""
    if label is None:
        return []
    if isinstance(label, str) and separator is not None:
        items = [item.strip() for item in label.split(separator)] if label.strip() else []
        if "" in items:
            raise InvalidInputError(f"{where}: empty label name in {label!r} (split on {separator!r})",
                                    hint="remove the doubled or trailing separator")
        return sorted(set(items))
    if not isinstance(label, list):
        raise InvalidInputError(f"{where}: the label is a single value ({_short(label)}), but earlier rows hold "
                                "label lists; a source is either single- or multi-label",
                                hint="write it as a list, e.g. [\"sport\"], or [] for no labels")
    names: set[str] = set()
    for item in label:
        if isinstance(item, bool) or not isinstance(item, (str, int)):
            raise InvalidInputError(f"{where}: label list item {_short(item)} is not a string or an integer",
                                    hint="labels are names (\"sport\") or integer ids")
        if isinstance(item, str) and not item.strip():
            raise InvalidInputError(f"{where}: empty label name in {_short(label)}", hint="remove it or name it")
        names.add(str(item))
    return sorted(names)


def _delimited_rows(file: Path, encoding: str, kind: str) -> int:
    """How many data rows (non-blank records after the header) a delimited file holds."""
    with _open_text(file, encoding) as f:
        reader = csv.reader(f, delimiter="\t" if kind == "tsv" else ",")
        next(reader, None)
        return sum(1 for values in reader if values)


def _csv_line(file: Path, encoding: str, kind: str, row: int, default: Any = _LAST) -> int:
    """The line where data row ``row`` (0-based, after the header) of a delimited file starts (past the end:
    ``default``, else the last line)."""
    global _csv_limit_set
    if not _csv_limit_set:
        csv.field_size_limit(64 * 1024 * 1024)
        _csv_limit_set = True
    with _open_text(file, encoding) as f:
        reader = csv.reader(f, delimiter="\t" if kind == "tsv" else ",")
        next(reader, None)
        last, index = reader.line_num, 0
        for values in reader:
            if values:  # Arrow skips blank lines, so they are no row
                if index == row:
                    return last + 1
                index += 1
            last = reader.line_num
    return last if default is _LAST else default


def _read_delimited(source: Source, wanted: tuple[str, ...]) -> Iterator[pa.Table]:
    """Arrow's multi-threaded CSV reader, reading only the mapped columns, as strings.

    Arrow's errors name no line; on any of them the file is re-read with Python's ``csv`` module up to
    the bad row, so the message names the file and line and says what is wrong there.
    """
    import pyarrow.csv as pcsv

    names = _source_columns(source, wanted)
    for file in source.files:
        encoding = detect_encoding(file, source.options["encoding"])
        header = _columns(source.kind, file, {**source.options, "encoding": encoding})  # detected once per file
        read = pcsv.ReadOptions(encoding="utf8" if encoding in ("utf-8", "utf-8-sig") else encoding,
                                block_size=_CSV_BLOCK_BYTES)
        parse = pcsv.ParseOptions(delimiter="\t" if source.kind == "tsv" else ",", newlines_in_values=True)
        convert = pcsv.ConvertOptions(column_types={name: pa.string() for name in header},
                                      include_columns=sorted(set(names.values())), strings_can_be_null=False,
                                      quoted_strings_can_be_null=False)
        first_row = 0
        labels = _LabelMode(source.options["label_separator"], lambda row, file=file, encoding=encoding: str(
            _csv_line(file, encoding, source.kind, row))) if source.multi_label else None
        try:
            with pcsv.open_csv(file, read_options=read, parse_options=parse, convert_options=convert) as reader:
                for table in _joined(reader):
                    yield _standard(file, table, names, wanted, first_row, labels)
                    first_row += table.num_rows
        except (pa.ArrowInvalid, pa.ArrowKeyError) as exc:
            _locate_delimited_error(source, file, encoding)
            raise InvalidInputError(f"{file}: cannot be read as {source.kind.upper()} ({exc})",
                                    hint="check the quoting and the number of fields per row") from None


def _joined(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.Table]:
    """Arrow record batches joined into tables of at least :data:`_ARROW_BATCH_ROWS` rows (the last: the rest)."""
    pending: list[pa.RecordBatch] = []
    rows = 0
    for batch in batches:
        pending.append(batch)
        rows += batch.num_rows
        if rows >= _ARROW_BATCH_ROWS:
            yield pa.Table.from_batches(pending)
            pending, rows = [], 0
    if pending:
        yield pa.Table.from_batches(pending)


def _locate_delimited_error(source: Source, file: Path, encoding: str) -> None:
    """Re-read ``file`` with Python's ``csv`` and raise the first problem with its line number."""
    global _csv_limit_set
    if not _csv_limit_set:  # long documents in one cell are normal for text datasets
        csv.field_size_limit(64 * 1024 * 1024)
        _csv_limit_set = True
    with _open_text(file, encoding) as f:
        reader = csv.reader(f, delimiter="\t" if source.kind == "tsv" else ",", strict=True)
        try:
            header = next(reader)
            for values in reader:
                if values and len(values) != len(header):
                    raise InvalidInputError(
                        f"{file}:{reader.line_num}: {len(values)} fields where the header has {len(header)}",
                        hint="quote fields that contain the delimiter or line breaks")
        except csv.Error as exc:
            raise InvalidInputError(f"{file}:{reader.line_num}: malformed row ({exc})",
                                    hint="check the quoting on that line") from None
        except UnicodeDecodeError as exc:
            raise _decode_error(file, encoding, exc) from None


def _source_columns(source: Source, wanted: tuple[str, ...]) -> dict[str, str]:
    """Standard column name -> the source's column name, for the columns asked for."""
    o = source.options
    mapping = {"text": o["text_column"], "label": o["label_column"], "tokens": o["tokens_column"],
               "tags": o["tags_column"], "split": o["split_column"]}
    return {name: mapping[name] for name in wanted if mapping.get(name)}


@dataclass(frozen=True)
class _LabelMode:
    """How a multi-label Arrow reader reads labels: the separator, and where a row is (``"12"``, ``"row 3"``)."""

    separator: str | None
    locate: Callable[[int], str]


def _standard(file: Path, table: pa.Table, names: dict[str, str], wanted: tuple[str, ...], first_row: int,
              labels: _LabelMode | None = None) -> pa.Table:
    """Rename the source's columns to the standard ones and give them their standard types and values.

    With ``labels`` (a multi-label source), ``label`` becomes sorted lists of distinct label names.
    """
    columns: dict[str, pa.ChunkedArray] = {}
    for name, column in names.items():
        values = table.column(column)
        if name == "label" and labels is not None:
            columns[name] = _label_lists(file, values, column, first_row, labels)
            continue
        if name == "label" and _is_list_type(values.type):
            raise InvalidInputError(f"{file}: column {column!r} holds label lists, but the first file holds single "
                                    "labels; a source is either single- or multi-label",
                                    hint="give every file the same kind of label column")
        if name in ("tokens", "tags"):
            values = _cast(file, values, pa.list_(pa.string()), column)
        else:
            values = _cast(file, values, pa.string(), column)
        if name == "text":
            values = values.fill_null("")
        elif name == "label":
            values = pc.if_else(pc.equal(values, ""), pa.scalar(None, pa.string()), values)
        elif name == "split":
            values = _canonical_splits(values)
        columns[name] = values
    if "tokens" in columns and "tags" in columns:
        lengths_differ = pc.not_equal(pc.fill_null(pc.list_value_length(columns["tokens"]), -1),
                                      pc.fill_null(pc.list_value_length(columns["tags"]), -2))
        if pc.any(lengths_differ).as_py():
            row = first_row + pc.index(lengths_differ, True).as_py()
            raise InvalidInputError(f"{file}:row {row}: tokens and tags must be lists of the same length")
    if "split" in wanted and "split" not in names:  # files named train.csv, test.csv...
        columns["split"] = pa.array([_split_of(file)] * table.num_rows, pa.string())
    return pa.table(columns)


def _label_lists(file: Path, values: pa.ChunkedArray, column: str, first_row: int,
                 mode: _LabelMode) -> pa.ChunkedArray:
    """A multi-label column (lists, or strings split on the separator) as sorted lists of distinct names.

    Null and empty cells are rows without labels (``[]``); null items and empty names are errors.
    """
    split = not _is_list_type(values.type)
    if split:
        if mode.separator is None:
            raise InvalidInputError(f"{file}: column {column!r} holds single labels ({values.type}), but the first "
                                    "file holds label lists; a source is either single- or multi-label",
                                    hint="give every file the same kind of label column")
        cells = pc.utf8_trim_whitespace(_cast(file, values, pa.string(), column).combine_chunks())
        cells = pc.if_else(pc.equal(cells, ""), pa.scalar(None, pa.string()), cells)
        lists = pc.split_pattern(cells, pattern=mode.separator)
    else:
        item = values.type.value_type
        if not (pa.types.is_string(item) or pa.types.is_large_string(item) or pa.types.is_integer(item)
                or pa.types.is_null(item)):
            raise InvalidInputError(f"{file}: column {column!r} holds lists of {item}; label names must be strings "
                                    "or integers", hint="map another column, or convert this one first")
        lists = _cast(file, values, pa.list_(pa.string()), column).combine_chunks()
    items = pc.list_flatten(lists)
    parents = pc.list_parent_indices(lists).to_numpy(zero_copy_only=False).astype(np.int64)
    if split:
        items = pc.utf8_trim_whitespace(items)
    bad = pc.fill_null(pc.equal(pc.utf8_trim_whitespace(items), ""), True)  # null item or empty name
    if pc.any(bad).as_py():
        at = pc.index(bad, True).as_py()
        row = int(parents[at])
        where = mode.locate(first_row + row)
        cell = lists[row].as_py() if not split else values[row].as_py()
        what = "a null item" if items[at].as_py() is None else "an empty label name"
        raise InvalidInputError(f"{file}:{where}: {what} in the labels {_short(cell)}",
                                hint="remove the doubled or trailing separator" if split else "remove it or name it")
    names = sorted(pc.unique(items).to_pylist())
    ids = pc.index_in(items, value_set=pa.array(names, pa.string())).to_numpy(zero_copy_only=False).astype(np.int64)
    order = np.lexsort((ids, parents))
    ids, parents = ids[order], parents[order]
    keep = np.ones(len(ids), dtype=bool)
    keep[1:] = (ids[1:] != ids[:-1]) | (parents[1:] != parents[:-1])
    offsets = np.zeros(len(lists) + 1, dtype=np.int32)
    np.cumsum(np.bincount(parents[keep], minlength=len(lists)), out=offsets[1:])
    canonical = pa.ListArray.from_arrays(pa.array(offsets), pa.array(names, pa.string()).take(pa.array(ids[keep])))
    return pa.chunked_array([canonical], pa.list_(pa.string()))


def _cast(file: Path, values: pa.ChunkedArray, to: pa.DataType, column: str) -> pa.ChunkedArray:
    if values.type == to:
        return values
    try:
        return values.cast(to)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        raise InvalidInputError(f"{file}: column {column!r} holds {values.type}, which cannot be read as "
                                f"{'a list of strings' if pa.types.is_list(to) else 'text'}",
                                hint="map another column, or convert this one first") from None


def _canonical_splits(values: pa.ChunkedArray) -> pa.ChunkedArray:
    """Split names as Hugging Face spells them (``dev`` → ``validation``), stripped; nulls stay null."""
    uniques = pc.unique(values).to_pylist()
    canonical = [None if u is None else SPLIT_NAMES.get(u.strip().lower(), u.strip()) for u in uniques]
    if canonical == uniques:
        return values
    return pc.take(pa.array(canonical, pa.string()), pc.index_in(values, value_set=pa.array(uniques, pa.string())))


def _table(rows: list[dict], wanted: tuple[str, ...], multi_label: bool = False) -> pa.Table:
    types = {"text": pa.string(), "label": pa.list_(pa.string()) if multi_label else pa.string(),
             "split": pa.string(), "tokens": pa.list_(pa.string()), "tags": pa.list_(pa.string())}
    return pa.table({name: pa.array([row.get(name) for row in rows], types[name]) for name in wanted})


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
        file_split = _split_of(file)
        for number, values in _jsonl_rows(file, source.options):
            yield _row(source, values, file, str(number), file_split)


def _read_parquet(source: Source, wanted: tuple[str, ...]) -> Iterator[pa.Table]:
    import pyarrow.parquet as pq

    names = _source_columns(source, wanted)
    for file in source.files:
        parquet = pq.ParquetFile(file)
        first_row = 0
        labels = _LabelMode(source.options["label_separator"], lambda row: f"row {row}") if source.multi_label else None
        for table in _joined(parquet.iter_batches(batch_size=BATCH_ROWS, columns=sorted(set(names.values())))):
            yield _standard(file, table, names, wanted, first_row, labels)
            first_row += table.num_rows


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
