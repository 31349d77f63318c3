"""Token rows and the batches made of them: what a task's collate and predictions work on.

A :class:`TokenizedSplit` holds one int32 array of token ids per row — or, for tasks whose inputs are decoded a
batch at a time, each row's encoded input (an image's bytes) — and the labels (an int per row, or an int32
array per row). Batches group rows of similar length (sorted within megabatches of 50 batches,
then the batches shuffled) and pad only to the longest row of the batch; the order depends only on
(seed, epoch), which is what makes a resumed training run see the same batches.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["TokenizedSplit", "batch_order", "pad_rows", "IGNORE"]

IGNORE = -100  # the label index cross-entropy skips (sub-word continuations, padding)
_MEGABATCH = 50


@dataclass(frozen=True)
class TokenizedSplit:
    """Token ids (one int32 array per row; image tasks: each row's encoded image, ``bytes``) and labels (an int per
    row, or an int32 array per row). ``lengths`` are token counts (bytes for encoded rows: batches then group
    files of similar size)."""

    input_ids: list[np.ndarray]
    labels: Any

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def lengths(self) -> np.ndarray:
        return np.fromiter((len(ids) for ids in self.input_ids), dtype=np.int64, count=len(self.input_ids))


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
