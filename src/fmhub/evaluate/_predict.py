"""Run a model over a split: class probabilities, per-word tag probabilities, or per-row log-likelihoods.

Rows are tokenized once, run longest first in batches (little padding) under ``inference_mode`` and put
back in row order. What each task produces:

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

__all__ = ["classify", "tag", "score_language_model", "LanguageModelScores", "MASK_PROBABILITY"]

MASK_PROBABILITY = 0.15


def _batches(lengths: list[int], batch_size: int) -> Iterator[np.ndarray]:
    order = np.argsort(-np.asarray(lengths, dtype=np.int64), kind="stable")
    for start in range(0, len(order), batch_size):
        yield order[start:start + batch_size]


def _padded(ids: list[list[int]], rows: np.ndarray, pad_id: int) -> tuple[Any, Any]:
    import torch

    width = max(1, max(len(ids[i]) for i in rows))
    out = np.full((len(rows), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.int64)
    for position, i in enumerate(rows):
        out[position, :len(ids[i])] = ids[i]
        mask[position, :len(ids[i])] = 1
    return torch.from_numpy(out), torch.from_numpy(mask)


def _pad_id(tokenizer: Any) -> int:
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)


def classify(model: Any, tokenizer: Any, texts: list[str], max_length: int, batch_size: int = 32,
             on_rows: Callable[[int], None] | None = None) -> np.ndarray:
    """Softmax probabilities ``(len(texts), labels)`` as float32."""
    import torch

    ids = tokenizer([t or "" for t in texts], truncation=True, max_length=max_length, return_attention_mask=False,
                    return_token_type_ids=False)["input_ids"]
    out = np.zeros((len(texts), model.config.num_labels), dtype=np.float32)
    model.eval()
    with torch.inference_mode():
        for rows in _batches([len(x) for x in ids], batch_size):
            input_ids, mask = _padded(ids, rows, _pad_id(tokenizer))
            logits = model(input_ids=input_ids, attention_mask=mask).logits.float()
            out[rows] = torch.softmax(logits, dim=-1).numpy()
            if on_rows:
                on_rows(len(rows))
    return out


def tag(model: Any, tokenizer: Any, words: list[list[str]], max_length: int, batch_size: int = 32,
        on_rows: Callable[[int], None] | None = None) -> list[np.ndarray]:
    """Per row, the tag probabilities ``(kept words, labels)`` of each word's first sub-word (float32)."""
    import torch

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
    out: list[np.ndarray] = [np.zeros((0, model.config.num_labels), np.float32)] * len(words)
    model.eval()
    with torch.inference_mode():
        for rows in _batches([len(x) for x in ids], batch_size):
            input_ids, mask = _padded(ids, rows, _pad_id(tokenizer))
            probabilities = torch.softmax(model(input_ids=input_ids, attention_mask=mask).logits.float(), -1).numpy()
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


def score_language_model(model: Any, tokenizer: Any, texts: list[str], masked: bool, max_length: int, seed: int,
                         batch_size: int = 16, on_rows: Callable[[int], None] | None = None) -> LanguageModelScores:
    """Per-row negative log-likelihoods (see the module docstring for what is scored)."""
    import torch

    ids = tokenizer([t or "" for t in texts], truncation=True, max_length=max_length, return_attention_mask=False,
                    return_token_type_ids=False)["input_ids"]
    special = set(tokenizer.all_special_ids)
    nll = np.zeros(len(texts), dtype=np.float64)
    tokens = np.zeros(len(texts), dtype=np.int64)
    targets: list[np.ndarray] = [np.zeros(0, np.int64)] * len(texts)
    masks: list[np.ndarray] = []
    if masked:
        for row, values in enumerate(ids):
            candidates = np.asarray([p for p, t in enumerate(values) if t not in special], dtype=np.int64)
            rng = np.random.default_rng([seed, row])
            chosen = candidates[rng.random(len(candidates)) < MASK_PROBABILITY]
            if not len(chosen) and len(candidates):
                chosen = candidates[rng.integers(len(candidates)):][:1]
            masks.append(np.sort(chosen))
    model.eval()
    with torch.inference_mode():
        for rows in _batches([len(x) for x in ids], batch_size):
            input_ids, mask = _padded(ids, rows, _pad_id(tokenizer))
            labels = torch.full_like(input_ids, -100)
            if masked:
                for position, i in enumerate(rows):
                    where = torch.from_numpy(masks[i])
                    labels[position, where] = input_ids[position, where]
                    input_ids[position, where] = tokenizer.mask_token_id
                logits = model(input_ids=input_ids, attention_mask=mask).logits.float()
            else:
                labels[:, 1:] = torch.where(mask[:, 1:] == 1, input_ids[:, 1:], -100)
                logits = model(input_ids=input_ids, attention_mask=mask).logits.float()[:, :-1]
                labels = labels[:, 1:]
            losses = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1),
                                                       ignore_index=-100, reduction="none").view(labels.shape)
            scored = labels != -100
            for position, i in enumerate(rows):
                nll[i] = float(losses[position][scored[position]].double().sum())
                tokens[i] = int(scored[position].sum())
                targets[i] = labels[position][scored[position]].numpy().astype(np.int64)
            if on_rows:
                on_rows(len(rows))
    return LanguageModelScores(nll, tokens, targets)
