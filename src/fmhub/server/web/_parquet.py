"""Rows of Parquet files in the store, reading only the row groups a page needs.

A blob on the local folder store is memory-mapped; on S3 it is read through ranged GETs (a seekable
file over ``Store.iter_file``), so pyarrow fetches the footer and the needed column chunks, never the
whole shard. Used by the dataset viewer (a page of a split) and the error browser (the dataset rows
a report card's predictions point at).
"""

from __future__ import annotations

import io
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from fmhub.store import Store, TreeEntry

__all__ = ["open_parquet", "SplitShards", "split_shards", "read_rows", "read_range", "viewable"]

_FOOTERS: OrderedDict[str, pq.FileMetaData] = OrderedDict()  # blob sha256 -> footer (blobs are immutable)
_FOOTERS_SIZE = 256


class _BlobFile(io.RawIOBase):
    """A read-only seekable file over a blob, one ranged read per ``read``."""

    def __init__(self, store: Store, entry: TreeEntry) -> None:
        self.store, self.entry, self.pos = store, entry, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        self.pos = {0: offset, 1: self.pos + offset, 2: self.entry.size + offset}[whence]
        return self.pos

    def tell(self) -> int:
        return self.pos

    def readinto(self, buffer: Any) -> int:
        end = min(self.entry.size, self.pos + len(buffer))
        if end <= self.pos:
            return 0
        data = b"".join(self.store.iter_file(self.entry, self.pos, end))
        buffer[:len(data)] = data
        self.pos += len(data)
        return len(data)


def open_parquet(store: Store, entry: TreeEntry) -> pq.ParquetFile:
    """A ParquetFile over the blob of ``entry`` (footer cached by the blob's sha256)."""
    local = store.blobs.local_path(entry.blob_sha256)
    source: Any = pa.memory_map(str(local)) if local is not None else _BlobFile(store, entry)
    metadata = _FOOTERS.get(entry.blob_sha256)
    parquet = pq.ParquetFile(source, metadata=metadata)
    if metadata is None:
        _FOOTERS[entry.blob_sha256] = parquet.metadata
        if len(_FOOTERS) > _FOOTERS_SIZE:
            _FOOTERS.popitem(last=False)
    return parquet


@dataclass(frozen=True)
class SplitShards:
    """A dataset split's shards (``data/<split>-*.parquet``) in order, and where each starts."""

    split: str
    entries: tuple[TreeEntry, ...]
    starts: tuple[int, ...]  # global index of each shard's first row
    rows: int
    schema: pa.Schema | None


def split_names(files: list[TreeEntry]) -> list[str]:
    """Splits of a dataset revision, in the order a person expects (train, validation, test, others)."""
    names = {e.path[5:].split("-", 1)[0].split(".", 1)[0] for e in files
             if e.path.startswith("data/") and e.path.endswith(".parquet") and "/" not in e.path[5:]}
    order = {"train": 0, "validation": 1, "test": 2}
    return sorted(names, key=lambda n: (order.get(n, 3), n))


def split_shards(store: Store, files: list[TreeEntry], split: str) -> SplitShards:
    entries = sorted((e for e in files if e.path.startswith(f"data/{split}-") or e.path == f"data/{split}.parquet"),
                     key=lambda e: e.path)
    starts, total, schema = [], 0, None
    for entry in entries:
        parquet = open_parquet(store, entry)
        starts.append(total)
        total += parquet.metadata.num_rows
        schema = schema or parquet.schema_arrow
    return SplitShards(split, tuple(entries), tuple(starts), total, schema)


def _group_starts(parquet: pq.ParquetFile) -> list[int]:
    starts, total = [], 0
    for i in range(parquet.metadata.num_row_groups):
        starts.append(total)
        total += parquet.metadata.row_group(i).num_rows
    return starts


def read_rows(store: Store, shards: SplitShards, indices: list[int], columns: list[str] | None = None
              ) -> dict[int, dict[str, Any]]:
    """The rows at these global indices (missing indices are left out), reading only their row groups."""
    import bisect

    wanted: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for index in sorted(set(indices)):
        if not 0 <= index < shards.rows:
            continue
        shard = bisect.bisect_right(shards.starts, index) - 1
        wanted.setdefault((shard, 0), []).append((index, index - shards.starts[shard]))
    out: dict[int, dict[str, Any]] = {}
    for (shard, _), items in wanted.items():
        parquet = open_parquet(store, shards.entries[shard])
        groups = _group_starts(parquet)
        by_group: dict[int, list[tuple[int, int]]] = {}
        for index, local in items:
            group = bisect.bisect_right(groups, local) - 1
            by_group.setdefault(group, []).append((index, local - groups[group]))
        for group, members in by_group.items():
            table = _row_group(parquet, shards.entries[shard].blob_sha256, group, columns)
            taken = table.take(pa.array([m[1] for m in members])).to_pylist()
            for (index, _), row in zip(members, taken, strict=True):
                out[index] = row
    return out


_GROUPS: OrderedDict[tuple[str, int, tuple[str, ...] | None], pa.Table] = OrderedDict()
_GROUPS_BYTES = 64 * 1024 * 1024  # decoded row groups kept, at most (a BBC-size split's texts are ~5 MB)


def _row_group(parquet: pq.ParquetFile, sha256: str, group: int, columns: list[str] | None) -> pa.Table:
    """A decoded row group, kept while recently used: paging through a split decodes each group once."""
    key = (sha256, group, tuple(columns) if columns is not None else None)
    table = _GROUPS.get(key)
    if table is None:
        table = parquet.read_row_group(group, columns=columns)
        _GROUPS[key] = table
        while len(_GROUPS) > 1 and sum(t.nbytes for t in _GROUPS.values()) > _GROUPS_BYTES:
            _GROUPS.popitem(last=False)
    else:
        _GROUPS.move_to_end(key)
    return table


def read_range(store: Store, shards: SplitShards, start: int, count: int, columns: list[str] | None = None
               ) -> list[dict[str, Any]]:
    """Rows ``[start, start + count)`` of the split, in order."""
    rows = read_rows(store, shards, list(range(start, min(shards.rows, start + count))), columns)
    return [rows[i] for i in sorted(rows)]


#: Magic bytes of the raster formats an image cell may show inline (never SVG: it can carry script).
_IMAGE_MAGIC = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"), (b"GIF87a", "image/gif"),
                (b"GIF89a", "image/gif"), (b"BM", "image/bmp"))
_INLINE_IMAGE_BYTES = 64 * 1024  # larger images are named, not inlined (a page of 50 stays small)


def viewable(value: Any) -> Any:
    """A cell as a page shows it: an image (the Hugging Face ``Image`` encoding, ``{bytes, path}``) becomes a data:
    URI of a small PNG/JPEG/GIF/BMP/WebP (or just its path and size); any other value stays as it is."""
    import base64

    if not (isinstance(value, dict) and set(value) == {"bytes", "path"} and isinstance(value["bytes"], bytes | None)):
        return value
    data = value["bytes"] or b""
    kind = next((mime for magic, mime in _IMAGE_MAGIC if data.startswith(magic)), None)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        kind = "image/webp"
    src = f"data:{kind};base64,{base64.b64encode(data).decode()}" if kind and len(data) <= _INLINE_IMAGE_BYTES else None
    return {"fmhub_image": True, "src": src, "path": value["path"], "size": len(data)}
