"""Text classification: a text column and a class label → ``AutoModelForSequenceClassification``.

Training: cross-entropy (label smoothing, class weights); accuracy and macro-F1 on validation. The
multi-label variant (``--multi-label``: a column of label lists) has one sigmoid per label and BCE.
Report card: probabilities, per-class scores, confusion matrix, calibration, a TF-IDF + logistic
regression baseline. Serving: ``/v1/classify`` (labels with scores) and ``/v1/embed``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from fmhub.errors import InvalidInputError
from fmhub.tasks import _metrics
from fmhub.tasks._base import Endpoint, Forward, Metric, OnRows, Scored, Task
from fmhub.tasks._baselines import text_baseline
from fmhub.tasks._batches import TokenizedSplit, pad_rows
from fmhub.tasks._classification import SingleLabelClassification, model_label_ids
from fmhub.tasks._perturb import perturb_text
from fmhub.tasks._predict import classify, softmax
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

__all__ = ["TextClassification", "MultiLabelClassification", "CLASSIFY", "model_label_ids", "median_row",
           "word_counts"]

_TOKENIZE_ROWS = 2048


def median_row(ids: list[list[int]]) -> dict[str, np.ndarray]:
    """The row of median token length as a batch of one (``input_ids``, ``attention_mask``)."""
    lengths = np.asarray([len(x) for x in ids])
    row = np.asarray([ids[int(np.argsort(lengths, kind="stable")[len(lengths) // 2])]], dtype=np.int64)
    return {"input_ids": row, "attention_mask": np.ones_like(row)}


def word_counts(texts: list[Any]) -> np.ndarray:
    return np.asarray([len((t or "").split()) for t in texts], dtype=np.int64)


class ClassifyParameters(TextParameters):
    top_k: int | None = Field(None, ge=1, description="Labels per input, best first (default: all).")


def _classify(context: ServingContext, items: list[Item]) -> list[Any]:
    """Labels with scores, best first (softmax; sigmoid per label for multi-label models)."""

    def answer(encoded: list[Encoded], items: list[Item]) -> list[Any]:
        out = []
        for row, item in zip(grouped_forward(context, encoded, context.model.logits), items, strict=True):
            scores = 1 / (1 + np.exp(-row)) if context.multi_label else softmax(row[None])[0]
            top = int(item.parameters.get("top_k") or len(context.labels))
            best = np.argsort(-scores, kind="stable")[:top]
            out.append([{"label": context.labels[j], "score": float(scores[j])} for j in best])
        return out

    return answer_valid(context, items, answer)


CLASSIFY = Endpoint("classify", "Labels and scores of each text (text classification)",
                    text_request("ClassifyRequest", ClassifyParameters), _classify)


class TextClassification(SingleLabelClassification):
    name = "text-classification"
    title = "Text Classification"
    pipeline_tag = "text-classification"
    auto_class = "AutoModelForSequenceClassification"
    head_suffixes = ("ForSequenceClassification",)
    input_column = "text"
    endpoints = (CLASSIFY, EMBED)
    explains = "tokens"

    def for_model(self, model_config: Any) -> Task:
        multi = getattr(model_config, "problem_type", None) == "multi_label_classification"
        return MultiLabelClassification() if multi else self

    def with_options(self, *, multi_label: bool) -> Task:
        """The multi-label variant when asked (``--multi-label``)."""
        return MultiLabelClassification() if multi_label else self

    # -- training ------------------------------------------------------------------------------------------

    def tokenize(self, dataset: Any, tokenizer: Any, input_column: str, label_column: str | None,
                 max_length: int) -> tuple[list[list[int]], list[Any]]:
        ids: list[list[int]] = []
        labels: list[Any] = []
        for start in range(0, len(dataset), _TOKENIZE_ROWS):
            rows = dataset[start:start + _TOKENIZE_ROWS]
            ids += tokenizer([t or "" for t in rows[input_column]], truncation=True, max_length=max_length,
                             return_attention_mask=False, return_token_type_ids=False)["input_ids"]
            labels += list(rows[label_column])
        return ids, labels

    def collate(self, split: TokenizedSplit, rows: np.ndarray, pad_id: int, generator: Any = None, *,
                train: bool = False) -> dict[str, Any]:
        import torch

        input_ids, mask = pad_rows(split.input_ids, rows, pad_id)
        labels = np.asarray([split.labels[i] for i in rows], dtype=np.int64)
        return {"input_ids": torch.from_numpy(input_ids), "attention_mask": torch.from_numpy(mask),
                "labels": torch.from_numpy(labels)}

    # -- evaluation ----------------------------------------------------------------------------------------

    def score(self, forward: Forward, preprocessor: Any, values: list[Any], gold: Any, *, labels: list[str],
              max_length: int, batch_size: int, seed: int, on_rows: OnRows = None) -> Scored:
        return self.scored(classify(forward, preprocessor, values, max_length, len(labels), batch_size, on_rows),
                           gold, labels)

    def perturb(self, name: str, values: list[Any], gold: Any, seed: int) -> tuple[list[Any], Any]:
        return [perturb_text(name, text, seed, row) for row, text in enumerate(values)], gold

    def sizes(self, values: list[Any]) -> np.ndarray:
        return word_counts(values)

    def efficiency_input(self, preprocessor: Any, values: list[Any], max_length: int) -> dict[str, np.ndarray]:
        return median_row(preprocessor([v or "" for v in values], truncation=True, max_length=max_length)["input_ids"])

    def baseline(self, train: Any, input_column: str, label_column: str | None, values: list[Any], gold: Any,
                 scored: Scored, *, labels: list[str], preprocessor: Any, max_length: int, seed: int
                 ) -> tuple[str, dict[str, Any]]:
        keep, train_gold = self.train_labels(train, label_column, labels)
        texts = train[input_column]
        probabilities = text_baseline([t for t, k in zip(texts, keep, strict=True) if k], train_gold, values,
                                      len(labels), seed)
        return ("tf-idf (word 1-2-grams) + logistic regression",
                _metrics.classification_metrics(gold, probabilities, labels)["metrics"])

    def check_request(self, values: list[Any]) -> tuple[str, dict[str, Any]] | None:
        return "classify", {"inputs": [v or "" for v in values], "parameters": {"top_k": 1, "truncate": True}}


@dataclasses.dataclass(frozen=True)
class MultiLabelClassification(TextClassification):
    """Text classification where a row carries any number of labels: one sigmoid per label."""

    num_labels: int = 0

    multi_label: ClassVar[bool] = True
    validation_metrics = (Metric("eval_f1_micro", "f1", "Micro F1"), Metric("eval_f1_macro", "f1", "Macro F1"),
                          Metric("eval_subset_accuracy", "accuracy", "Subset accuracy"))
    distillable = False
    explains = None
    report_card = "a multi-label classifier; fmhub eval scores single-label models for now"

    def for_model(self, model_config: Any) -> Task:
        return self

    def bind(self, tokenizer: Any, *, num_labels: int, options: Mapping[str, Any]) -> Task:
        return dataclasses.replace(self, num_labels=num_labels)

    def model_options(self) -> dict[str, Any]:
        return {"problem_type": "multi_label_classification"}

    def label_names(self, features: Any, label_column: str | None) -> list[str]:
        feature = features[label_column]
        inner = getattr(feature, "feature", None)
        if not hasattr(inner, "names"):
            hint = "drop --multi-label: this column holds one label per row" if hasattr(feature, "names") else \
                "import it with fmhub data import, which stores label names"
            raise InvalidInputError(f"--multi-label needs a column of label lists; {label_column!r} holds {feature}",
                                    hint=hint)
        return list(inner.names)

    def tokenize(self, dataset: Any, tokenizer: Any, input_column: str, label_column: str | None,
                 max_length: int) -> tuple[list[list[int]], list[Any]]:
        ids, labels = super().tokenize(dataset, tokenizer, input_column, label_column, max_length)
        return ids, [list(row or []) for row in labels]  # each row's label ids; null: none

    def collate(self, split: TokenizedSplit, rows: np.ndarray, pad_id: int, generator: Any = None, *,
                train: bool = False) -> dict[str, Any]:
        import torch

        input_ids, mask = pad_rows(split.input_ids, rows, pad_id)
        targets = np.zeros((len(rows), self.num_labels), dtype=np.float32)
        for position, i in enumerate(rows):
            targets[position, np.asarray(split.labels[i], dtype=np.int64)] = 1.0
        return {"input_ids": torch.from_numpy(input_ids), "attention_mask": torch.from_numpy(mask),
                "labels": torch.from_numpy(targets)}

    def class_weights(self, split: TokenizedSplit, num_labels: int) -> Any:
        """``pos_weight`` per label: negatives / positives, so each label's positives weigh as its negatives."""
        import torch

        values = np.concatenate([np.asarray(x, dtype=np.int64) for x in split.labels] or [np.zeros(0, np.int64)])
        positives = np.bincount(values, minlength=num_labels).astype(np.float64)
        return torch.tensor((len(split) - positives) / np.maximum(positives, 1), dtype=torch.float32)

    def loss_function(self, weights: Any = None, label_smoothing: float = 0.0, reduction: str = "mean") -> Any:
        import torch

        # Class weights become pos_weight: a label's positives count as much as its negatives.
        return torch.nn.BCEWithLogitsLoss(pos_weight=weights, reduction=reduction)

    def loss(self, logits: Any, labels: Any, loss_fn: Any) -> Any:
        return loss_fn(logits, labels)

    def check_options(self, *, metric: str | None, class_weights: bool, label_smoothing: float,
                      teacher: bool) -> None:
        super().check_options(metric=metric, class_weights=class_weights, label_smoothing=label_smoothing,
                              teacher=teacher)
        if label_smoothing:
            raise InvalidInputError("--label-smoothing applies to single-label classification")

    def validate(self, model: Any, split: TokenizedSplit, batch_size: int, pad_id: int,
                 label_names: list[str]) -> dict[str, float]:
        total, predicted, gold = 0.0, [], []
        for _, batch, logits, loss in self.predict_batches(model, split, batch_size, pad_id):
            total += loss
            predicted.append((logits > 0).numpy())  # sigmoid > 0.5
            gold.append(batch["labels"].numpy() > 0.5)
        from sklearn.metrics import accuracy_score, f1_score

        guess, truth = np.concatenate(predicted), np.concatenate(gold)
        seen = np.flatnonzero((guess | truth).any(axis=0))  # macro F1 over the labels in gold or predictions
        return {"loss": total / max(1, truth.size),
                "f1_micro": float(f1_score(truth, guess, average="micro", zero_division=0)),
                "f1_macro": float(f1_score(truth, guess, labels=seen, average="macro", zero_division=0))
                if seen.size else 0.0,
                "subset_accuracy": float(accuracy_score(truth, guess))}
