"""Image sources for ``fmhub data import``, in the layouts people have, streamed as batches of image rows.

- **a folder of class folders** (torchvision's ``ImageFolder``, Hugging Face ``imagefolder``): ``<label>/<file>``,
  or ``<split>/<label>/<file>`` with split folders named ``train``/``validation``/``test`` (or ``val``,
  ``dev``...); images straight in the folder have no label;
- **a table of image paths**: a CSV/TSV/JSON Lines file with a column of paths relative to the file's folder
  (``--image-column``; found by itself when it is ``image``, ``image_path``, ``file_name``, ``filepath`` or
  ``path`` and there is no ``text`` column) and the usual label and split columns — also a folder holding
  such a table beside its images (``imagefolder``'s ``metadata.csv``);
- **Parquet with image bytes**: a column of ``{bytes, path}`` structs (what ``datasets`` writes for its
  ``Image`` feature) or of raw bytes; integer labels become their ``ClassLabel`` names when the file's
  Hugging Face metadata has them.

Every source yields Arrow tables with ``image`` as ``struct<bytes: binary, path: string>`` — the Hugging Face
``Image`` encoding, bytes as they are in the file (never re-encoded) — plus ``label`` and ``split`` strings
as the text sources give them. Rows stream in batches of at most :data:`IMAGE_BATCH_ROWS` images or
:data:`IMAGE_BATCH_BYTES` bytes, so memory stays flat however many images a source holds. A path in a table
must stay inside the table's folder (absolute paths and ``..`` are refused); a path to no file gives a row
without bytes, which the import reports as unreadable.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from fmhub.data._sources import SPLIT_NAMES, Source, _columns, open_source
from fmhub.errors import InvalidInputError
from fmhub.tasks import IMAGE_SUFFIXES

__all__ = ["ImageSource", "open_image_source", "IMAGE_STRUCT", "IMAGE_BATCH_ROWS", "IMAGE_BATCH_BYTES",
           "IMAGE_PATH_COLUMNS"]

#: The Hugging Face ``Image`` feature's storage.
IMAGE_STRUCT = pa.struct([pa.field("bytes", pa.binary()), pa.field("path", pa.string())])
IMAGE_BATCH_ROWS = 512
IMAGE_BATCH_BYTES = 32 * 1024 * 1024
#: Column names taken for a table's image paths when ``--image-column`` is not given.
IMAGE_PATH_COLUMNS = ("image", "image_path", "file_name", "filepath", "path")
_TABLE_SUFFIXES = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl",
                   ".json": "jsonl"}


@dataclass(frozen=True)
class ImageSource:
    """An opened image source (the same face as :class:`~fmhub.data._sources.Source` for the import).

    Attributes:
        kind: ``imagefolder``, ``csv``/``tsv``/``jsonl`` (a table of paths) or ``parquet`` (image bytes).
        files: the image files (``imagefolder``) or the data files read.
        table: for tables of paths, the table read as a text source whose ``text`` is each row's path.
        base: the folder table paths are relative to.
    """

    kind: str
    path: Path
    files: tuple[Path, ...]
    has_labels: bool
    has_splits: bool
    label_names: tuple[str, ...] | None
    options: dict
    table: Source | None = None
    base: Path | None = None
    task: str = "image-classification"
    multi_label: bool = False

    @property
    def columns(self) -> tuple[str, ...]:
        return ("image",) + (("label",) if self.has_labels else ()) + (("split",) if self.has_splits else ())

    def batches(self, columns: tuple[str, ...] | None = None) -> Iterator[pa.Table]:
        """The rows as Arrow tables of :attr:`columns` (or the subset ``columns``), in source order; images are read
        only when ``image`` is asked for."""
        wanted = tuple(c for c in (columns or self.columns) if c in self.columns)
        if self.kind == "imagefolder":
            yield from self._folder(wanted)
        elif self.kind == "parquet":
            yield from self._parquet(wanted)
        else:
            yield from self._table(wanted)

    # -- readers ---------------------------------------------------------------------------------------

    def _folder(self, wanted: tuple[str, ...]) -> Iterator[pa.Table]:
        rows: list[dict] = []
        size = 0
        for file in self.files:
            relative = file.relative_to(self.path)
            parts = relative.parts
            row: dict = {}
            if "image" in wanted:
                data = file.read_bytes()
                size += len(data)
                row["image"] = {"bytes": data, "path": relative.as_posix()}
            if "label" in wanted:
                row["label"] = parts[-2]
            if "split" in wanted:
                row["split"] = SPLIT_NAMES[parts[0].lower()]
            rows.append(row)
            if len(rows) >= IMAGE_BATCH_ROWS or size >= IMAGE_BATCH_BYTES or \
                    ("image" not in wanted and len(rows) >= 65_536):
                yield _rows_table(rows, wanted)
                rows, size = [], 0
        if rows:
            yield _rows_table(rows, wanted)

    def _table(self, wanted: tuple[str, ...]) -> Iterator[pa.Table]:
        assert self.table is not None and self.base is not None
        inner = tuple("text" if c == "image" else c for c in wanted)
        row = 0
        for table in self.table.batches(inner):
            if "image" not in wanted:
                yield table
                row += table.num_rows
                continue
            for start in range(0, table.num_rows, IMAGE_BATCH_ROWS):
                part = table.slice(start, IMAGE_BATCH_ROWS)
                images = [self._read(p, row + i) for i, p in enumerate(part.column("text").to_pylist())]
                row += part.num_rows
                columns = {c: (pa.array(images, IMAGE_STRUCT) if c == "image" else part.column(c)) for c in wanted}
                yield pa.table(columns)

    def _read(self, relative: str | None, row: int) -> dict:
        """A table row's image: its bytes (None when no such file) and its path as the table wrote it."""
        assert self.base is not None
        where = f"{self.table.files[0] if self.table and len(self.table.files) == 1 else self.path}: row {row}"
        if not relative or not relative.strip():
            raise InvalidInputError(f"{where}: no image path", hint="fill the image column, or drop the row")
        path = Path(relative.strip())
        if path.is_absolute() or ".." in path.parts:
            raise InvalidInputError(f"{where}: image path {relative!r} leaves the table's folder",
                                    hint="write paths relative to the table's folder, without '..'")
        target = self.base / path
        if not target.is_file():
            return {"bytes": None, "path": path.as_posix()}
        return {"bytes": target.read_bytes(), "path": path.as_posix()}

    def _parquet(self, wanted: tuple[str, ...]) -> Iterator[pa.Table]:
        import pyarrow.parquet as pq

        o = self.options
        names = {"image": o["image_column"], "label": o["label_column"], "split": o["split_column"]}
        for file in self.files:
            parquet = pq.ParquetFile(file)
            class_names = _class_names(parquet.schema_arrow, o["label_column"])
            read = sorted({names[c] for c in wanted if names.get(c)})
            for batch in parquet.iter_batches(batch_size=IMAGE_BATCH_ROWS if "image" in wanted else 65_536,
                                              columns=read):
                columns: dict[str, pa.Array] = {}
                for name in wanted:
                    values = batch.column(names[name])
                    if name == "image":
                        columns[name] = _image_structs(file, values, names["image"])
                    elif name == "label":
                        columns[name] = _labels(file, values, names["label"], class_names)
                    else:
                        columns[name] = _splits(values)
                yield pa.table(columns)


def _rows_table(rows: list[dict], wanted: tuple[str, ...]) -> pa.Table:
    types = {"image": IMAGE_STRUCT, "label": pa.string(), "split": pa.string()}
    return pa.table({name: pa.array([r.get(name) for r in rows], types[name]) for name in wanted})


def _image_structs(file: Path, values: pa.Array, column: str) -> pa.Array:
    """A Parquet image column (``{bytes, path}`` structs or raw bytes) as :data:`IMAGE_STRUCT`."""
    kind = values.type
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
        return pa.StructArray.from_arrays([values.cast(pa.binary()), pa.nulls(len(values), pa.string())],
                                          fields=list(IMAGE_STRUCT))
    if pa.types.is_struct(kind) and kind.get_field_index("bytes") >= 0:
        data = pc.struct_field(values, "bytes").cast(pa.binary())
        path = pc.struct_field(values, "path").cast(pa.string()) if kind.get_field_index("path") >= 0 else \
            pa.nulls(len(values), pa.string())
        return pa.StructArray.from_arrays([data, path], fields=list(IMAGE_STRUCT), mask=values.is_null())
    raise InvalidInputError(f"{file}: column {column!r} holds {kind}, not images (bytes, or {{bytes, path}} structs)",
                            hint="name the image column with --image-column")


def _class_names(schema: pa.Schema, column: str | None) -> list[str] | None:
    """The ``ClassLabel`` names of ``column`` in a Parquet file's Hugging Face metadata, if any."""
    raw = (schema.metadata or {}).get(b"huggingface")
    if not raw or not column:
        return None
    try:
        feature = json.loads(raw)["info"]["features"][column]
    except (ValueError, KeyError, TypeError):
        return None
    names = feature.get("names") if isinstance(feature, dict) and feature.get("_type") == "ClassLabel" else None
    return [str(n) for n in names] if isinstance(names, list) else None


def _labels(file: Path, values: pa.Array, column: str, names: list[str] | None) -> pa.Array:
    if names is not None and pa.types.is_integer(values.type):
        ids = values.to_numpy(zero_copy_only=False)
        bad = [int(i) for i in ids if i is not None and not (i == i and 0 <= i < len(names))]
        if bad:
            raise InvalidInputError(f"{file}: label id {bad[0]} of column {column!r} is not one of its "
                                    f"{len(names)} class names")
        return pa.array([None if v is None else names[v] for v in values.to_pylist()], pa.string())
    if pa.types.is_list(values.type):
        raise InvalidInputError(f"{file}: column {column!r} holds label lists; image classification takes one label "
                                "per image", hint="map another --label-column")
    out = values.cast(pa.string())
    return pc.if_else(pc.equal(out, ""), pa.scalar(None, pa.string()), out)


def _splits(values: pa.Array) -> pa.Array:
    names = [None if v is None else SPLIT_NAMES.get(str(v).strip().lower(), str(v).strip())
             for v in values.cast(pa.string()).to_pylist()]
    return pa.array(names, pa.string())


# -- opening -------------------------------------------------------------------------------------------


def _visible_files(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.is_file() and not any(part.startswith(".") for part in
                                                                         p.relative_to(path).parts))


def _is_image(file: Path) -> bool:
    return file.suffix.lower() in IMAGE_SUFFIXES


def open_image_source(path: Path | str, *, kind: str | None = None, image_column: str | None = None,
                      label_column: str | None = None, split_column: str | None = None,
                      encoding: str | None = None) -> ImageSource | None:
    """An :class:`ImageSource` when ``path`` is one of the image layouts (see the module docstring), else None.

    Raises InvalidInputError for an image source that cannot be read as asked (mixed folder depths, a missing
    ``--image-column``...).
    """
    path = Path(path)
    if not path.exists():
        return None
    options = {"image_column": image_column, "label_column": label_column, "split_column": split_column,
               "encoding": encoding}
    if path.is_dir():
        files = _visible_files(path)
        tables = [f for f in files if f.suffix.lower() in _TABLE_SUFFIXES]
        images = [f for f in files if _is_image(f)]
        if kind in (None, "imagefolder") and images and len(images) == len(files):
            return _image_folder(path, images, options)
        if kind in (None, *set(_TABLE_SUFFIXES.values())) and len(tables) == 1 and \
                len(images) == len(files) - 1:
            return _path_table(tables[0], path, kind, options, required=True)
        if kind == "imagefolder":
            raise InvalidInputError(f"{path}: --format imagefolder needs a folder of image files only",
                                    hint=f"images are {', '.join(sorted(IMAGE_SUFFIXES))}")
        return None
    suffix = path.suffix.lower()
    if kind == "parquet" or (kind is None and suffix == ".parquet"):
        return _image_parquet(path, options)
    if kind in _TABLE_SUFFIXES.values() or (kind is None and suffix in _TABLE_SUFFIXES):
        return _path_table(path, path.parent, kind, options, required=image_column is not None)
    if _is_image(path):
        raise InvalidInputError(f"{path}: one image is not a dataset",
                                hint="import a folder of <label>/<image> files, or a table of image paths")
    return None


def _image_folder(root: Path, files: list[Path], options: dict) -> ImageSource:
    depths = {len(f.relative_to(root).parts) for f in files}
    if len(depths) != 1:
        raise InvalidInputError(f"{root}: images at different depths ({', '.join(map(str, sorted(depths)))} levels "
                                "down)", hint="lay images out as <label>/<image>, or <split>/<label>/<image>")
    depth = depths.pop()
    if depth > 3:
        raise InvalidInputError(f"{root}: images {depth} levels down",
                                hint="lay images out as <label>/<image>, or <split>/<label>/<image>")
    if depth == 3:
        tops = {f.relative_to(root).parts[0] for f in files}
        unknown = sorted(t for t in tops if t.lower() not in SPLIT_NAMES)
        if unknown:
            raise InvalidInputError(f"{root}: the top folders {', '.join(unknown)} are not split names",
                                    hint="name them train, validation, test (or lay images out as <label>/<image>)")
    labels = tuple(sorted({f.parent.name for f in files})) if depth >= 2 else None
    return ImageSource("imagefolder", root, tuple(files), depth >= 2, depth == 3, labels, options)


def _path_table(file: Path, base: Path, kind: str | None, options: dict, *, required: bool) -> ImageSource | None:
    """A table whose image column holds paths, read through the text source (its CSV/JSON Lines readers)."""
    columns = _columns(kind or _TABLE_SUFFIXES[file.suffix.lower()], file, options)
    column = options["image_column"]
    if column is None and "text" not in columns:
        column = next((c for c in IMAGE_PATH_COLUMNS if c in columns), None)
    if column is None:
        if required:
            raise InvalidInputError(f"{file}: no column of image paths; the columns are: {', '.join(columns)}",
                                    hint="name it with --image-column")
        return None
    if column not in columns:
        raise InvalidInputError(f"{file}: no column {column!r}; the columns are: {', '.join(columns)}",
                                hint="name the column of image paths with --image-column")
    table = open_source(file, kind=kind, encoding=options["encoding"], text_column=column,
                        label_column=options["label_column"], split_column=options["split_column"])
    if table.multi_label:
        raise InvalidInputError(f"{file}: the label column holds lists; image classification takes one label per "
                                "image", hint="map another --label-column")
    files = tuple(f for f in table.files)
    return ImageSource(table.kind, file, files, table.has_labels, table.has_splits, None,
                       {**options, "image_column": column, "label_column": table.options["label_column"],
                        "split_column": table.options["split_column"]}, table=table, base=base)


def _image_parquet(file: Path, options: dict) -> ImageSource | None:
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(file)
    except Exception:  # not Parquet: the text source says so
        return None
    column = options["image_column"]
    if column is None:
        column = next((f.name for f in schema if f.name in ("image", "img") and _holds_images(f.type)), None)
        if column is None:
            return None
    if column not in schema.names:
        raise InvalidInputError(f"{file}: no column {column!r}; the columns are: {', '.join(schema.names)}",
                                hint="name the image column with --image-column")
    if not _holds_images(schema.field(column).type):
        raise InvalidInputError(f"{file}: column {column!r} holds {schema.field(column).type}, not images",
                                hint="Parquet images are bytes, or {bytes, path} structs (the datasets Image "
                                     "feature)")
    label = options["label_column"] or ("label" if "label" in schema.names else None)
    if label is not None and label not in schema.names:
        raise InvalidInputError(f"{file}: no column {label!r}; the columns are: {', '.join(schema.names)}",
                                hint="name it with --label-column")
    split = options["split_column"] or ("split" if "split" in schema.names else None)
    if split is not None and split not in schema.names:
        raise InvalidInputError(f"{file}: no column {split!r}", hint="name it with --split-column")
    return ImageSource("parquet", file, (file,), label is not None, split is not None, None,
                       {**options, "image_column": column, "label_column": label, "split_column": split})


def _holds_images(kind: pa.DataType) -> bool:
    return pa.types.is_binary(kind) or pa.types.is_large_binary(kind) or \
        (pa.types.is_struct(kind) and kind.get_field_index("bytes") >= 0)
