"""Token classification (NER): token lists and BIO tag lists → ``AutoModelForTokenClassification``.

Each word's tag goes to its first sub-word token; the other sub-words get -100 (ignored), as the Hugging
Face examples do. Metrics are entity-level precision/recall/F1 (seqeval's default semantics) and token
accuracy. Words cut off by ``max_length`` count as truncated and are predicted ``O`` in the report card.
Serving: ``/v1/tokens`` (entities with character offsets) and ``/v1/embed``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from fmhub.errors import InvalidInputError
from fmhub.tasks import _metrics
from fmhub.tasks._base import Endpoint, Forward, Metric, OnRows, Scored, Task
from fmhub.tasks._baselines import token_baseline
from fmhub.tasks._batches import IGNORE, TokenizedSplit, pad_rows
from fmhub.tasks._perturb import perturb_words
from fmhub.tasks._predict import softmax, tag
from fmhub.tasks._serving import (
    EMBED,
    Encoded,
    Item,
    ServingContext,
    TextParameters,
    answer_valid,
    grouped_forward,
    text_request,
)
from fmhub.tasks.text_classification import median_row, model_label_ids

__all__ = ["TokenClassification", "TOKENS"]

_TOKENIZE_ROWS = 2048


def _entities(text: str, encoded: Encoded, probabilities: np.ndarray, labels: list[str]) -> list[dict[str, Any]]:
    """Join words into entities: B-X starts one, I-X continues an X (or starts one after O or another type)."""
    assert encoded.words is not None and encoded.offsets is not None
    words: list[tuple[str, float, int, int]] = []  # (label, score, start, end) per word
    for position, word in enumerate(encoded.words):
        if word is None:
            continue
        start, end = encoded.offsets[position]
        if words and position > 0 and encoded.words[position - 1] == word:
            label, score, first, _ = words[-1]
            words[-1] = (label, score, first, end)  # a continuation sub-word widens its word
            continue
        best = int(probabilities[position].argmax())
        words.append((labels[best], float(probabilities[position, best]), start, end))
    entities: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    for label, score, start, end in words:
        prefix, _, kind = label.partition("-") if "-" in label else ("", "", label)
        if label == "O" or not kind:
            current = None
            continue
        if current is None or prefix == "B" or current["entity_group"] != kind:
            current = {"entity_group": kind, "scores": [score], "start": start, "end": end}
            entities.append(current)
        else:
            current["scores"].append(score)
            current["end"] = end
    return [{"entity_group": e["entity_group"], "score": float(math.fsum(e["scores"]) / len(e["scores"])),
             "word": text[e["start"]:e["end"]], "start": e["start"], "end": e["end"]} for e in entities]


def _tokens(context: ServingContext, items: list[Item]) -> list[Any]:
    """Entities: words tagged by their first sub-word, B-/I- runs joined into spans with character offsets."""

    def answer(encoded: list[Encoded], items: list[Item]) -> list[Any]:
        logits = grouped_forward(context, encoded, context.model.logits)
        return [_entities(item.text, e, softmax(row[:len(e.ids)]), context.labels)
                for e, row, item in zip(encoded, logits, items, strict=True)]

    return answer_valid(context, items, answer, offsets=True)


TOKENS = Endpoint("tokens", "Entities with character offsets (token classification)",
                  text_request("TokensRequest", TextParameters), _tokens)


class TokenClassification(Task):
    name = "token-classification"
    title = "Token Classification"
    pipeline_tag = "token-classification"
    auto_class = "AutoModelForTokenClassification"
    head_suffixes = ("ForTokenClassification",)
    input_column = "tokens"
    label_column = "tags"
    validation_metrics = (Metric("eval_f1", "f1", "Entity F1"), Metric("eval_precision", "precision",
                                                                       "Entity precision"),
                          Metric("eval_recall", "recall", "Entity recall"),
                          Metric("eval_accuracy", "accuracy", "Token accuracy"))
    report_metrics = ("f1", "accuracy")
    endpoints = (TOKENS, EMBED)
    distillable = True
    per_token = True

    def encode_batch(self, preprocessor: Any, values: list[Any], max_length: int) -> dict[str, np.ndarray]:
        encoded = preprocessor([list(words) for words in values], is_split_into_words=True, truncation=True,
                               max_length=max_length, padding=True, return_tensors="np")
        return {"input_ids": encoded["input_ids"].astype(np.int64),
                "attention_mask": encoded["attention_mask"].astype(np.int64)}

    def example_inputs(self, preprocessor: Any) -> dict[str, np.ndarray]:
        return self.encode_batch(preprocessor, [["a", "first", "sample"], ["a", "second", "longer", "one"]], 32)

    # -- training ------------------------------------------------------------------------------------------

    def label_names(self, features: Any, label_column: str | None) -> list[str]:
        feature = features[label_column]
        inner = getattr(feature, "feature", feature)
        if not hasattr(inner, "names"):
            raise InvalidInputError(f"column {label_column!r} holds {feature}, not one class label per row",
                                    hint="import the dataset with fmhub data import, which stores label names")
        return list(inner.names)

    def tokenize(self, dataset: Any, tokenizer: Any, input_column: str, label_column: str | None,
                 max_length: int) -> tuple[list[list[int]], list[Any]]:
        if not getattr(tokenizer, "is_fast", False):
            raise InvalidInputError("token classification needs a fast tokenizer (tokenizer.json) to align "
                                    "tags to sub-words", hint="use a model repo that ships tokenizer.json")
        ids: list[list[int]] = []
        labels: list[Any] = []
        for start in range(0, len(dataset), _TOKENIZE_ROWS):
            rows = dataset[start:start + _TOKENIZE_ROWS]
            encoded = tokenizer(rows[input_column], is_split_into_words=True, truncation=True, max_length=max_length,
                                return_attention_mask=False, return_token_type_ids=False)
            for i, tags in enumerate(rows[label_column]):
                aligned, previous = [], None
                for word in encoded.word_ids(i):
                    aligned.append(IGNORE if word is None or word == previous else tags[word])
                    previous = word
                ids.append(encoded["input_ids"][i])
                labels.append(aligned)
        return ids, labels

    def collate(self, split: TokenizedSplit, rows: np.ndarray, pad_id: int, generator: Any = None, *,
                train: bool = False) -> dict[str, Any]:
        import torch

        input_ids, mask = pad_rows(split.input_ids, rows, pad_id)
        labels, _ = pad_rows(split.labels, rows, IGNORE)
        return {"input_ids": torch.from_numpy(input_ids), "attention_mask": torch.from_numpy(mask),
                "labels": torch.from_numpy(labels)}

    def class_weights(self, split: TokenizedSplit, num_labels: int) -> Any:
        """Loss weights by inverse tag frequency ("balanced": n / (labels × count)), over labelled sub-words."""
        import torch

        values = np.concatenate([np.asarray(x) for x in split.labels])
        counts = np.bincount(values[values >= 0], minlength=num_labels).astype(np.float64)
        return torch.tensor(counts.sum() / (num_labels * np.maximum(counts, 1)), dtype=torch.float32)

    def validate(self, model: Any, split: TokenizedSplit, batch_size: int, pad_id: int,
                 label_names: list[str]) -> dict[str, float]:
        """Entity precision/recall/F1 and token accuracy over the labelled sub-words (seqeval's semantics)."""
        total_loss, counted = 0.0, 0
        predicted: dict[int, np.ndarray] = {}
        for rows, batch, logits, loss in self.predict_batches(model, split, batch_size, pad_id):
            total_loss += loss
            counted += self.counted(batch["labels"])
            best = logits.argmax(-1).numpy()
            for out, row in enumerate(rows.tolist()):
                predicted[row] = best[out]
        gold_tags, guess_tags = [], []
        for row, gold in enumerate(split.labels):
            gold = np.asarray(gold)
            keep = gold != IGNORE
            gold_tags.append([label_names[i] for i in gold[keep]])
            guess_tags.append([label_names[i] for i in predicted[row][:len(gold)][keep]])
        metrics = _metrics.entity_metrics(gold_tags, guess_tags)["metrics"]
        return {"loss": total_loss / max(1, counted),
                **{k: float(metrics[k] or 0.0) for k in ("precision", "recall", "f1", "accuracy")}}

    # -- evaluation ----------------------------------------------------------------------------------------

    def gold(self, rows: Any, label_column: str | None, model_labels: list[str]) -> Any:
        to_model = model_label_ids(self.label_names(rows.features, label_column), model_labels)
        return [to_model[np.asarray(tags, dtype=np.int64)] for tags in rows[label_column]]

    def score(self, forward: Forward, preprocessor: Any, values: list[Any], gold: Any, *, labels: list[str],
              max_length: int, batch_size: int, seed: int, on_rows: OnRows = None) -> Scored:
        if not getattr(preprocessor, "is_fast", False):
            raise InvalidInputError("token classification needs a fast tokenizer (tokenizer.json) to align words",
                                    hint="use a model repo that ships tokenizer.json")
        per_row = tag(forward, preprocessor, values, max_length, len(labels), batch_size, on_rows)
        outside = labels.index("O") if "O" in labels else 0
        predicted, truncated = [], 0
        for probabilities, words in zip(per_row, values, strict=True):
            guess = np.full(len(words), outside, dtype=np.int64)
            guess[:len(probabilities)] = probabilities.argmax(-1) if len(probabilities) else []
            truncated += len(words) - len(probabilities)
            predicted.append(guess)
        sections = _metrics.entity_metrics([[labels[i] for i in row] for row in gold],
                                           [[labels[i] for i in row] for row in predicted])
        return Scored({**sections, "truncated_words": truncated}, per_row, predicted, gold)

    def calibration_inputs(self, scored: Scored) -> tuple[np.ndarray, np.ndarray, str] | None:
        kept = [(p, g) for p, g in zip(scored.probabilities, scored.gold, strict=True) if len(p)]
        if not kept:
            return np.zeros(0), np.zeros(0, bool), "top-label confidence per word"
        confidence = np.concatenate([p.max(-1) for p, _ in kept]).astype(np.float64)
        correct = np.concatenate([p.argmax(-1) == g[:len(p)] for p, g in kept])
        return confidence, correct, "top-label confidence per word"

    def perturb(self, name: str, values: list[Any], gold: Any, seed: int) -> tuple[list[Any], Any]:
        changed = [perturb_words(name, list(words), seed, row) for row, words in enumerate(values)]
        return changed, [g[:len(words)] for g, words in zip(gold, changed, strict=True)]

    def sizes(self, values: list[Any]) -> np.ndarray:
        return np.asarray([len(v) for v in values], dtype=np.int64)

    def group_metrics(self, scored: Scored, rows: np.ndarray, labels: list[str]) -> dict[str, Any]:
        return self.headline(_metrics.entity_metrics([[labels[i] for i in scored.gold[r]] for r in rows],
                                                     [[labels[i] for i in scored.predicted[r]] for r in rows]
                                                     )["metrics"])

    def efficiency_input(self, preprocessor: Any, values: list[Any], max_length: int) -> dict[str, np.ndarray]:
        return median_row(preprocessor([list(v) for v in values], is_split_into_words=True, truncation=True,
                                       max_length=max_length)["input_ids"])

    def baseline(self, train: Any, input_column: str, label_column: str | None, values: list[Any], gold: Any,
                 scored: Scored, *, labels: list[str], preprocessor: Any, max_length: int, seed: int
                 ) -> tuple[str, dict[str, Any]]:
        to_model = model_label_ids(list(train.features[label_column].feature.names), labels)
        tags = [to_model[np.asarray(t, dtype=np.int64)] for t in train[label_column]]
        per_row = token_baseline(train[input_column], tags, values, len(labels), seed)
        metrics = _metrics.entity_metrics([[labels[i] for i in row] for row in gold],
                                          [[labels[i] for i in p.argmax(-1)] for p in per_row])["metrics"]
        return "word-feature logistic regression tagger", metrics

    def prediction_columns(self, scored: Scored, labels: list[str]) -> dict[str, Any]:
        import pyarrow as pa

        return {"labels": pa.array([g.tolist() for g in scored.gold], pa.list_(pa.int64())),
                "predictions": pa.array([p.tolist() for p in scored.predicted], pa.list_(pa.int64())),
                "scores": pa.array([p.astype(np.float32).tolist() for p in scored.probabilities],
                                   pa.list_(pa.list_(pa.float32()))),
                "scored_words": pa.array([len(p) for p in scored.probabilities], pa.int64())}
