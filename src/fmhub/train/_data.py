"""Training data: a dataset split tokenized once (cached by content), served in length-grouped batches.

The tokenized split is cached as Parquet under ``$FMHUB_HOME/cache/tokenized/<key>.parquet``, where
the key hashes the dataset commit, split, columns, max length and the preprocessor's files, so a second
run (or a resumed one) tokenizes nothing. Rows are what the task's ``tokenize`` made: token ids (stored as
``list<int32>``), or encoded inputs a batch decodes (an image's bytes, stored as ``binary``). The batches made
of it are the task's (:func:`fmhub.tasks.batch_order`, ``Task.collate``).
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from fmhub.errors import InvalidInputError
from fmhub.tasks import Task, TokenizedSplit

__all__ = ["tokenize_split", "tokenizer_digest"]


def tokenizer_digest(folder: Path, files: tuple[str, ...] = Task.preprocessor_files) -> str:
    """sha256 over the preprocessor ``files`` of a model folder (what decides the model inputs)."""
    digest = hashlib.sha256()
    for name in sorted(files):
        path = folder / name
        if path.is_file():
            digest.update(name.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def tokenize_split(dataset: Any, task: Any, tokenizer: Any, *, input_column: str, label_column: str | None,
                   max_length: int, cache_dir: Path, cache_key: dict[str, Any]) -> TokenizedSplit:
    """Tokenize ``dataset`` (a ``datasets.Dataset``) with ``task.tokenize``, or read the cached result."""
    key = hashlib.sha256(json.dumps({**cache_key, "task": task.name, "input": input_column, "label": label_column,
                                     "max_length": max_length}, sort_keys=True).encode()).hexdigest()
    path = cache_dir / f"{key}.parquet"
    if not path.exists():
        if len(dataset) == 0:
            raise InvalidInputError(f"split {cache_key.get('split')!r} of the dataset is empty")
        cache_dir.mkdir(parents=True, exist_ok=True)
        ids, labels = task.tokenize(dataset, tokenizer, input_column, label_column, max_length)
        label_type = pa.list_(pa.int32()) if labels and isinstance(labels[0], list) else pa.int64()
        row_type = pa.binary() if ids and isinstance(ids[0], bytes) else pa.list_(pa.int32())
        table = pa.table({"input_ids": pa.array(ids, row_type), "label": pa.array(labels, label_type)})
        with tempfile.NamedTemporaryFile(dir=cache_dir, suffix=".partial", delete=False) as partial:
            pq.write_table(table, partial.name, compression="zstd")
        Path(partial.name).replace(path)  # readers (and other ranks) never see half a cache file
    table = pq.read_table(path)
    labels = table.column("label").combine_chunks()
    rows = table.column("input_ids").combine_chunks()
    return TokenizedSplit(_lists(rows) if pa.types.is_list(rows.type) else rows.to_pylist(),
                          _lists(labels) if pa.types.is_list(labels.type) else labels.to_numpy())


def _lists(column: pa.ListArray) -> list[np.ndarray]:
    offsets = column.offsets.to_numpy()
    values = column.values.to_numpy()
    return [values[offsets[i]:offsets[i + 1]] for i in range(len(column))]
