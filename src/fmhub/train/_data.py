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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from fmhub.errors import InvalidInputError

__all__ = ["TokenizedSplit", "tokenize_split", "tokenizer_digest", "batch_order", "collate"]

_MEGABATCH = 50
_TOKENIZE_ROWS = 2048


@dataclass(frozen=True)
class TokenizedSplit:
    """Token ids (one int32 array per row) and labels of one split."""

    input_ids: list[np.ndarray]
    labels: np.ndarray

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


def tokenize_split(dataset: Any, tokenizer: Any, *, text_column: str, label_column: str, max_length: int,
                   cache_dir: Path, cache_key: dict[str, Any]) -> TokenizedSplit:
    """Tokenize ``dataset`` (a ``datasets.Dataset``) or read the cached result for ``cache_key``."""
    key = hashlib.sha256(json.dumps({**cache_key, "text": text_column, "label": label_column,
                                     "max_length": max_length}, sort_keys=True).encode()).hexdigest()
    path = cache_dir / f"{key}.parquet"
    if not path.exists():
        if len(dataset) == 0:
            raise InvalidInputError(f"split {cache_key.get('split')!r} of the dataset is empty")
        cache_dir.mkdir(parents=True, exist_ok=True)
        ids: list[list[int]] = []
        for start in range(0, len(dataset), _TOKENIZE_ROWS):
            texts = dataset[start:start + _TOKENIZE_ROWS][text_column]
            ids += tokenizer([t or "" for t in texts], truncation=True, max_length=max_length,
                             return_attention_mask=False, return_token_type_ids=False)["input_ids"]
        table = pa.table({"input_ids": pa.array(ids, pa.list_(pa.int32())),
                          "label": pa.array(np.asarray(dataset[label_column], dtype=np.int64))})
        partial = path.with_suffix(".partial")
        pq.write_table(table, partial, compression="zstd")
        partial.replace(path)  # readers never see half a cache file
    table = pq.read_table(path)
    column = table.column("input_ids").combine_chunks()
    offsets = column.offsets.to_numpy()
    values = column.values.to_numpy()
    input_ids = [values[offsets[i]:offsets[i + 1]] for i in range(len(column))]
    return TokenizedSplit(input_ids, table.column("label").to_numpy())


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


def collate(split: TokenizedSplit, rows: np.ndarray, pad_id: int) -> dict[str, Any]:
    """Pad the rows to the longest of them: ``input_ids``, ``attention_mask`` and ``labels`` tensors."""
    import torch

    width = max(len(split.input_ids[i]) for i in rows)
    input_ids = np.full((len(rows), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.int64)
    for out, i in enumerate(rows):
        ids = split.input_ids[i]
        input_ids[out, :len(ids)] = ids
        mask[out, :len(ids)] = 1
    return {"input_ids": torch.from_numpy(input_ids), "attention_mask": torch.from_numpy(mask),
            "labels": torch.from_numpy(split.labels[rows].astype(np.int64))}
