"""Training data: a dataset split tokenized once (cached by content), served in length-grouped batches.

The tokenized split is cached as Parquet under ``$FMHUB_HOME/cache/tokenized/<key>.parquet``, where
the key hashes the dataset commit, split, columns, max length and the tokenizer's files, so a second
run (or a resumed one) tokenizes nothing. Batches group rows of similar length (sorted within
megabatches of 50 batches, then the batches shuffled) and pad only to the longest row of the batch;
the order depends only on (seed, epoch), which is what makes a resumed run see the same batches.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from fmhub.errors import InvalidInputError

__all__ = ["TokenizedSplit", "tokenize_split", "tokenizer_digest", "batch_order", "pad_rows"]

_MEGABATCH = 50


@dataclass(frozen=True)
class TokenizedSplit:
    """Token ids (one int32 array per row) and labels (an int per row, or an int32 array per row)."""

    input_ids: list[np.ndarray]
    labels: Any

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def lengths(self) -> np.ndarray:
        return np.fromiter((len(ids) for ids in self.input_ids), dtype=np.int64, count=len(self.input_ids))


def tokenizer_digest(folder: Path) -> str:
    """sha256 over the tokenizer files of a model folder (what decides the token ids)."""
    digest = hashlib.sha256()
    for name in sorted(("tokenizer.json", "tokenizer_config.json", "vocab.txt", "vocab.json", "merges.txt",
                        "special_tokens_map.json", "spiece.model", "sentencepiece.bpe.model")):
        path = folder / name
        if path.is_file():
            digest.update(name.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def tokenize_split(dataset: Any, task: Any, tokenizer: Any, *, input_column: str, label_column: str,
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
        table = pa.table({"input_ids": pa.array(ids, pa.list_(pa.int32())), "label": pa.array(labels, label_type)})
        with tempfile.NamedTemporaryFile(dir=cache_dir, suffix=".partial", delete=False) as partial:
            pq.write_table(table, partial.name, compression="zstd")
        Path(partial.name).replace(path)  # readers (and other ranks) never see half a cache file
    table = pq.read_table(path)
    labels = table.column("label").combine_chunks()
    return TokenizedSplit(_lists(table.column("input_ids").combine_chunks()),
                          _lists(labels) if pa.types.is_list(labels.type) else labels.to_numpy())


def _lists(column: pa.ListArray) -> list[np.ndarray]:
    offsets = column.offsets.to_numpy()
    values = column.values.to_numpy()
    return [values[offsets[i]:offsets[i + 1]] for i in range(len(column))]


def batch_order(lengths: np.ndarray, batch_size: int, seed: int, epoch: int, *, shuffle: bool = True
                ) -> list[np.ndarray]:
    """The batches of one epoch as arrays of row indices, grouped by length; a function of (seed, epoch)."""
    if not shuffle:  # evaluation: longest first, so padding is small and memory peaks early
        order = np.argsort(-lengths, kind="stable")
        return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    rng = np.random.Generator(np.random.PCG64([seed, epoch]))
    order = rng.permutation(len(lengths))
    step = batch_size * _MEGABATCH
    batches: list[np.ndarray] = []
    for start in range(0, len(order), step):
        mega = order[start:start + step]
        mega = mega[np.argsort(-lengths[mega], kind="stable")]
        batches += [mega[i:i + batch_size] for i in range(0, len(mega), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def pad_rows(arrays: list[np.ndarray], rows: np.ndarray, pad: int) -> tuple[np.ndarray, np.ndarray]:
    """``arrays[rows]`` padded with ``pad`` to the longest of them, and the attention mask (1 = real)."""
    width = max(len(arrays[i]) for i in rows)
    out = np.full((len(rows), width), pad, dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.int64)
    for position, i in enumerate(rows):
        values = arrays[i]
        out[position, :len(values)] = values
        mask[position, :len(values)] = 1
    return out, mask
