"""Run a model over a split: class probabilities, per-word tag probabilities, or per-row log-likelihoods.

The model is any forward function (:data:`fmhub.tasks.Forward`, e.g. a loaded version's ``logits``, torch or
ONNX Runtime): padded int64 ``input_ids`` and ``attention_mask`` arrays by name in, float32 logits out. Rows are tokenized once, run longest
first in batches (little padding) and put back in row order. What each task produces:

- text classification: softmax probabilities ``(rows, labels)``;
- token classification: for each row, the probabilities of the first sub-word of every word the
  truncation kept (words past ``max_length`` are counted as truncated and predicted ``O``);
- causal LM: each row's summed negative log-likelihood of tokens 2..n given the previous ones;
- masked LM: 15% of each row's non-special tokens (at least one) replaced by the mask token, chosen by
  a generator seeded with (seed, row) — the same positions in every run — and the summed negative
  log-likelihood of the original tokens there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["classify", "tag", "score_language_model", "LanguageModelScores", "MASK_PROBABILITY", "padded", "pad_id",
           "softmax", "log_softmax"]

MASK_PROBABILITY = 0.15


def _batches(lengths: list[int], batch_size: int) -> Iterator[np.ndarray]:
    order = np.argsort(-np.asarray(lengths, dtype=np.int64), kind="stable")
    for start in range(0, len(order), batch_size):
        yield order[start:start + batch_size]


def padded(ids: list[list[int]], rows: np.ndarray, pad_id: int) -> dict[str, np.ndarray]:
    """Rows ``ids[rows]`` padded to the longest, as model inputs (``input_ids``, ``attention_mask``)."""
    width = max(1, max(len(ids[i]) for i in rows))
    out = np.full((len(rows), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.int64)
    for position, i in enumerate(rows):
        out[position, :len(ids[i])] = ids[i]
        mask[position, :len(ids[i])] = 1
    return {"input_ids": out, "attention_mask": mask}


def pad_id(tokenizer: Any) -> int:
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)


def log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits.astype(np.float64) - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def softmax(logits: np.ndarray) -> np.ndarray:
    return np.exp(log_softmax(logits)).astype(np.float32)


def classify(forward: Any, tokenizer: Any, texts: list[str], max_length: int, num_labels: int,
             batch_size: int = 32, on_rows: Callable[[int], None] | None = None) -> np.ndarray:
    """Softmax probabilities ``(len(texts), num_labels)`` as float32."""
    ids = tokenizer([t or "" for t in texts], truncation=True, max_length=max_length, return_attention_mask=False,
                    return_token_type_ids=False)["input_ids"]
    out = np.zeros((len(texts), num_labels), dtype=np.float32)
    for rows in _batches([len(x) for x in ids], batch_size):
        out[rows] = softmax(forward(padded(ids, rows, pad_id(tokenizer))))
        if on_rows:
            on_rows(len(rows))
    return out


def tag(forward: Any, tokenizer: Any, words: list[list[str]], max_length: int, num_labels: int,
        batch_size: int = 32, on_rows: Callable[[int], None] | None = None) -> list[np.ndarray]:
    """Per row, the tag probabilities ``(kept words, labels)`` of each word's first sub-word (float32)."""
    encoded = tokenizer([list(w) for w in words], is_split_into_words=True, truncation=True, max_length=max_length,
                        return_attention_mask=False, return_token_type_ids=False)
    first: list[np.ndarray] = []
    for i in range(len(words)):
        seen: dict[int, int] = {}
        for position, word in enumerate(encoded.word_ids(i)):
            if word is not None and word not in seen:
                seen[word] = position
        first.append(np.asarray([seen[w] for w in sorted(seen)], dtype=np.int64))
    ids = encoded["input_ids"]
    out: list[np.ndarray] = [np.zeros((0, num_labels), np.float32)] * len(words)
    for rows in _batches([len(x) for x in ids], batch_size):
        probabilities = softmax(forward(padded(ids, rows, pad_id(tokenizer))))
        for position, i in enumerate(rows):
            out[i] = probabilities[position, first[i]]
        if on_rows:
            on_rows(len(rows))
    return out


@dataclass(frozen=True)
class LanguageModelScores:
    nll: np.ndarray  # per row: summed negative log-likelihood (nats) of its scored tokens
    tokens: np.ndarray  # per row: how many tokens were scored
    targets: list[np.ndarray]  # per row: the scored token ids (for the unigram baseline)


def _masked_positions(ids: list[list[int]], special: set[int], seed: int) -> list[np.ndarray]:
    masks = []
    for row, values in enumerate(ids):
        candidates = np.asarray([p for p, t in enumerate(values) if t not in special], dtype=np.int64)
        rng = np.random.default_rng([seed, row])
        chosen = candidates[rng.random(len(candidates)) < MASK_PROBABILITY]
        if not len(chosen) and len(candidates):
            chosen = candidates[rng.integers(len(candidates)):][:1]
        masks.append(np.sort(chosen))
    return masks


def score_language_model(forward: Any, tokenizer: Any, texts: list[str], masked: bool, max_length: int,
                         seed: int, batch_size: int = 16,
                         on_rows: Callable[[int], None] | None = None) -> LanguageModelScores:
    """Per-row negative log-likelihoods (see the module docstring for what is scored)."""
    ids = tokenizer([t or "" for t in texts], truncation=True, max_length=max_length, return_attention_mask=False,
                    return_token_type_ids=False)["input_ids"]
    nll = np.zeros(len(texts), dtype=np.float64)
    tokens = np.zeros(len(texts), dtype=np.int64)
    targets: list[np.ndarray] = [np.zeros(0, np.int64)] * len(texts)
    masks = _masked_positions(ids, set(tokenizer.all_special_ids), seed) if masked else []
    for rows in _batches([len(x) for x in ids], batch_size):
        inputs = padded(ids, rows, pad_id(tokenizer))
        input_ids, mask = inputs["input_ids"], inputs["attention_mask"]
        original = input_ids.copy()
        if masked:
            for position, i in enumerate(rows):
                input_ids[position, masks[i]] = tokenizer.mask_token_id
        logits = forward(inputs)
        for position, i in enumerate(rows):
            if masked:
                where, predicted_from = masks[i], masks[i]
            else:  # token t+1 from the logits at t, over the row's real tokens
                length = int(mask[position].sum())
                where, predicted_from = np.arange(1, length), np.arange(0, length - 1)
            target = original[position, where]
            scores = log_softmax(logits[position, predicted_from])
            nll[i] = float(-scores[np.arange(len(target)), target].sum())
            tokens[i] = len(target)
            targets[i] = target.astype(np.int64)
        if on_rows:
            on_rows(len(rows))
    return LanguageModelScores(nll, tokens, targets)
