"""Parquet shards in the layout ``datasets.load_dataset`` recognizes: ``data/{split}-NNNNN-of-NNNNN.parquet``.

Rows are appended per split and written in row groups; a shard is closed at ~128 MB and the shards
of a split are renamed to their final ``-of-NNNNN`` names once the split's count is known. The Hugging
Face ``features`` (e.g. a ClassLabel with its names) ride in the schema metadata, where ``datasets``
reads them, so labels load back as names, not bare integers. A multi-label ``label`` column is
``list<int64>`` (indices into the sorted names) with the feature ``Sequence(ClassLabel(names))``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

__all__ = ["ShardWriter", "SplitFiles", "hf_features", "arrow_schema", "SHARD_BYTES"]

#: Uncompressed bytes per shard before a new one starts (the Hub's own converter aims at this size).
SHARD_BYTES = 128 * 1000 * 1000
_ROW_GROUP_ROWS = 10_000


def hf_features(task: str, label_names: list[str] | None, tag_names: list[str] | None, *,
                multi_label: bool = False) -> dict:
    """The ``datasets`` features of the stored columns (the card's ``dataset_info.features`` uses them too)."""
    if task == "token-classification":
        tags = {"feature": {"_type": "ClassLabel", "names": tag_names or []}, "_type": "Sequence"}
        return {"tokens": {"feature": {"dtype": "string", "_type": "Value"}, "_type": "Sequence"},
                "tags": tags}
    features: dict = {"text": {"dtype": "string", "_type": "Value"}}
    if label_names is not None:
        label = {"names": label_names, "_type": "ClassLabel"}
        features["label"] = {"feature": label, "_type": "Sequence"} if multi_label else label
    return features


def arrow_schema(task: str, label_names: list[str] | None, tag_names: list[str] | None, *,
                 multi_label: bool = False) -> pa.Schema:
    if task == "token-classification":
        fields = [pa.field("tokens", pa.list_(pa.string())), pa.field("tags", pa.list_(pa.int64()))]
    else:
        fields = [pa.field("text", pa.string())]
        if label_names is not None:
            fields.append(pa.field("label", pa.list_(pa.int64()) if multi_label else pa.int64()))
    features = hf_features(task, label_names, tag_names, multi_label=multi_label)
    metadata = {"huggingface": json.dumps({"info": {"features": features}})}
    return pa.schema(fields, metadata=metadata)


@dataclass
class SplitFiles:
    """What was written for one split."""

    name: str
    paths: list[Path] = field(default_factory=list)
    num_examples: int = 0
    num_bytes: int = 0  # uncompressed Arrow bytes, as ``datasets`` reports ``num_bytes``


class ShardWriter:
    """Append rows per split; :meth:`close` names the shards and returns them per split.

    Example:
        >>> writer = ShardWriter(tmp, schema)
        >>> writer.write("train", {"text": ["a"], "label": [0]})
        >>> splits = writer.close()   # {"train": SplitFiles(paths=[.../data/train-00000-of-00001.parquet])}
    """

    def __init__(self, root: Path, schema: pa.Schema, *, shard_bytes: int = SHARD_BYTES) -> None:
        self.root = Path(root)
        self.schema = schema
        self.shard_bytes = shard_bytes
        self._writers: dict[str, pq.ParquetWriter] = {}
        self._shard_size: dict[str, int] = {}
        self.splits: dict[str, SplitFiles] = {}
        (self.root / "data").mkdir(parents=True, exist_ok=True)

    def write(self, split: str, columns: dict[str, list]) -> None:
        table = pa.table(columns, schema=self.schema)
        if table.num_rows == 0:
            return
        files = self.splits.setdefault(split, SplitFiles(split))
        if split in self._writers and self._shard_size[split] >= self.shard_bytes:
            self._writers.pop(split).close()
        if split not in self._writers:
            path = self.root / "data" / f".{split}-{len(files.paths):05d}.parquet.partial"
            # Fixed writer settings: the same rows give byte-identical files (no timestamps are written).
            self._writers[split] = pq.ParquetWriter(path, self.schema, compression="zstd",
                                                    write_statistics=True, use_dictionary=True)
            self._shard_size[split] = 0
            files.paths.append(path)
        self._writers[split].write_table(table, row_group_size=_ROW_GROUP_ROWS)
        self._shard_size[split] += table.nbytes
        files.num_examples += table.num_rows
        files.num_bytes += table.nbytes

    def close(self) -> dict[str, SplitFiles]:
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()
        for files in self.splits.values():
            total = len(files.paths)
            final = []
            for index, path in enumerate(files.paths):
                target = self.root / "data" / f"{files.name}-{index:05d}-of-{total:05d}.parquet"
                path.rename(target)
                final.append(target)
            files.paths = final
        return self.splits
