"""What differs between tasks: columns, model head, tokenization, batches, loss and validation metrics.

- ``text-classification``: a text column and a class label → ``AutoModelForSequenceClassification``;
  cross-entropy (label smoothing, class weights); accuracy and macro-F1.
- ``token-classification``: token lists and BIO tag lists → ``AutoModelForTokenClassification``; each
  word's tag goes to its first sub-word token, the other sub-words get -100 (ignored), as the Hugging
  Face examples do; entity-level precision/recall/F1 (seqeval's default semantics, from
  ``fmhub.evaluate``) and token accuracy.
- ``masked-lm`` / ``causal-lm``: texts are tokenized, joined with a separator and cut into blocks of
  ``max_length`` (the Hugging Face ``run_mlm``/``run_clm`` recipe); masked LM masks 15% of the tokens
  per batch (80% [MASK], 10% random, 10% kept) with torch's generator, so a resumed run masks the
  same way; validation masks with a fixed seed. Loss and perplexity.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from fmhub.errors import InvalidInputError
from fmhub.train._data import TokenizedSplit, batch_order, pad_rows

__all__ = ["Task", "MultiLabelClassification", "LanguageModeling", "task_for", "IGNORE", "PIPELINE_TAGS"]

#: The Hub's pipeline tag of each task's model.
PIPELINE_TAGS = {"text-classification": "text-classification", "token-classification": "token-classification",
                 "masked-lm": "fill-mask", "causal-lm": "text-generation"}

IGNORE = -100  # the label index cross-entropy skips (sub-word continuations, padding)
_TOKENIZE_ROWS = 2048


@dataclass(frozen=True)
class Task:
    name: str
    title: str  # for the model card
    default_columns: tuple[str, str]  # (input column, label column)
    metrics: tuple[tuple[str, str, str], ...]  # (metric key, model-index type, display name)

    def label_names(self, features: Any, label_column: str) -> list[str]:
        feature = features[label_column]
        inner = getattr(feature, "feature", feature) if self.name == "token-classification" else feature
        if not hasattr(inner, "names"):
            lists = self.name == "text-classification" and hasattr(getattr(feature, "feature", None), "names")
            raise InvalidInputError(f"column {label_column!r} holds {feature}, not one class label per row",
                                    hint="pass --multi-label: each row carries a list of labels" if lists else
                                    "import the dataset with fmhub data import, which stores label names")
        return list(inner.names)

    def model_class(self) -> Any:
        import transformers

        return transformers.AutoModelForTokenClassification if self.name == "token-classification" else \
            transformers.AutoModelForSequenceClassification

    def tokenize(self, dataset: Any, tokenizer: Any, input_column: str, label_column: str,
                 max_length: int) -> tuple[list[list[int]], list[Any]]:
        """Token ids per row and labels per row (an int, or one int per token)."""
        ids: list[list[int]] = []
        labels: list[Any] = []
        for start in range(0, len(dataset), _TOKENIZE_ROWS):
            rows = dataset[start:start + _TOKENIZE_ROWS]
            if self.name == "text-classification":
                ids += tokenizer([t or "" for t in rows[input_column]], truncation=True, max_length=max_length,
                                 return_attention_mask=False, return_token_type_ids=False)["input_ids"]
                labels += list(rows[label_column])
                continue
            if not getattr(tokenizer, "is_fast", False):
                raise InvalidInputError("token classification needs a fast tokenizer (tokenizer.json) to align "
                                        "tags to sub-words", hint="use a model repo that ships tokenizer.json")
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

    def collate(self, split: TokenizedSplit, rows: np.ndarray, pad_id: int, generator: Any = None
                ) -> dict[str, Any]:
        import torch

        input_ids, mask = pad_rows(split.input_ids, rows, pad_id)
        if self.name == "token-classification":
            labels, _ = pad_rows(split.labels, rows, IGNORE)
        else:
            labels = np.asarray([split.labels[i] for i in rows], dtype=np.int64)
        return {"input_ids": torch.from_numpy(input_ids), "attention_mask": torch.from_numpy(mask),
                "labels": torch.from_numpy(labels)}

    def class_weights(self, split: TokenizedSplit, num_labels: int) -> Any:
        """Loss weights by inverse label frequency ("balanced": n / (labels × count))."""
        import torch

        values = np.concatenate([np.asarray(x) for x in split.labels]) if self.name == "token-classification" \
            else np.asarray(split.labels)
        counts = np.bincount(values[values >= 0], minlength=num_labels).astype(np.float64)
        return torch.tensor(counts.sum() / (num_labels * np.maximum(counts, 1)), dtype=torch.float32)

    def loss_function(self, weights: Any = None, label_smoothing: float = 0.0, reduction: str = "mean") -> Any:
        """The loss for labels of this task (``weights``: per-class weights or None)."""
        import torch

        return torch.nn.CrossEntropyLoss(weight=weights, label_smoothing=label_smoothing, ignore_index=IGNORE,
                                         reduction=reduction)

    def model_options(self) -> dict[str, Any]:
        """Extra ``from_pretrained`` options of the head (e.g. the problem type)."""
        return {}

    def loss(self, logits: Any, labels: Any, loss_fn: Any) -> Any:
        return loss_fn(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1))

    def predict(self, model: Any, split: TokenizedSplit, batch_size: int, pad_id: int,
                generator: Any = None) -> Iterator[tuple[np.ndarray, dict[str, Any], Any, float]]:
        """``(rows, batch, logits, summed loss)`` over ``split``, longest rows first, under ``inference_mode``."""
        import torch

        summed = self.loss_function(reduction="sum")
        model.eval()
        try:
            with torch.inference_mode():
                for rows in batch_order(split.lengths, batch_size * 2, 0, 0, shuffle=False):
                    batch = self.collate(split, rows, pad_id, generator)
                    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
                    yield rows, batch, logits, self.loss(logits, batch["labels"], summed).item()
        finally:
            model.train()

    def evaluate(self, model: Any, split: TokenizedSplit, batch_size: int, pad_id: int,
                 label_names: list[str]) -> dict[str, float]:
        """Validation metrics (under ``inference_mode``), ``loss`` included."""
        total_loss, counted = 0.0, 0
        predicted: dict[int, np.ndarray] = {}
        for rows, batch, logits, loss in self.predict(model, split, batch_size, pad_id):
            total_loss += loss
            counted += int((batch["labels"] != IGNORE).sum())
            best = logits.argmax(-1).numpy()
            for out, row in enumerate(rows.tolist()):
                predicted[row] = best[out]
        metrics = {"loss": total_loss / max(1, counted)}
        if self.name == "text-classification":
            return metrics | _classification_metrics(np.array([predicted[i] for i in range(len(split))]),
                                                     np.asarray(split.labels), len(label_names))
        return metrics | _entity_metrics(split, predicted, label_names)


def _classification_metrics(predictions: np.ndarray, gold: np.ndarray, num_labels: int) -> dict[str, float]:
    f1s = []
    for label in range(num_labels):
        tp = int(((predictions == label) & (gold == label)).sum())
        fp = int(((predictions == label) & (gold != label)).sum())
        fn = int(((predictions != label) & (gold == label)).sum())
        if tp + fp + fn:
            f1s.append(2 * tp / (2 * tp + fp + fn))
    return {"accuracy": float((predictions == gold).mean()), "f1_macro": float(np.mean(f1s)) if f1s else 0.0}


def _entity_metrics(split: TokenizedSplit, predicted: dict[int, np.ndarray], label_names: list[str]
                    ) -> dict[str, float]:
    """Entity precision/recall/F1 and token accuracy over the labelled sub-words (seqeval's semantics)."""
    from fmhub.evaluate._metrics import entity_metrics

    gold_tags, guess_tags = [], []
    for row, gold in enumerate(split.labels):
        gold = np.asarray(gold)
        keep = gold != IGNORE
        gold_tags.append([label_names[i] for i in gold[keep]])
        guess_tags.append([label_names[i] for i in predicted[row][:len(gold)][keep]])
    metrics = entity_metrics(gold_tags, guess_tags)["metrics"]
    return {k: float(metrics[k] or 0.0) for k in ("precision", "recall", "f1", "accuracy")}


@dataclass(frozen=True)
class MultiLabelClassification(Task):
    """Text classification where a row carries any number of labels: one sigmoid per label."""

    num_labels: int = 0

    def label_names(self, features: Any, label_column: str) -> list[str]:
        feature = features[label_column]
        inner = getattr(feature, "feature", None)
        if not hasattr(inner, "names"):
            hint = "drop --multi-label: this column holds one label per row" if hasattr(feature, "names") else \
                "import it with fmhub data import, which stores label names"
            raise InvalidInputError(f"--multi-label needs a column of label lists; {label_column!r} holds {feature}",
                                    hint=hint)
        return list(inner.names)

    def bind(self, num_labels: int) -> MultiLabelClassification:
        return dataclasses.replace(self, num_labels=num_labels)

    def model_options(self) -> dict[str, Any]:
        return {"problem_type": "multi_label_classification"}

    def tokenize(self, dataset: Any, tokenizer: Any, input_column: str, label_column: str,
                 max_length: int) -> tuple[list[list[int]], list[Any]]:
        ids, labels = super().tokenize(dataset, tokenizer, input_column, label_column, max_length)
        return ids, [list(row or []) for row in labels]  # each row's label ids; null: none

    def collate(self, split: TokenizedSplit, rows: np.ndarray, pad_id: int, generator: Any = None
                ) -> dict[str, Any]:
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

    def evaluate(self, model: Any, split: TokenizedSplit, batch_size: int, pad_id: int,
                 label_names: list[str]) -> dict[str, float]:
        total, predicted, gold = 0.0, [], []
        for _, batch, logits, loss in self.predict(model, split, batch_size, pad_id):
            total += loss
            predicted.append((logits > 0).numpy())  # sigmoid > 0.5
            gold.append(batch["labels"].numpy() > 0.5)
        guess, truth = np.concatenate(predicted), np.concatenate(gold)
        tp = (guess & truth).sum(axis=0)
        fp = (guess & ~truth).sum(axis=0)
        fn = (~guess & truth).sum(axis=0)
        seen = (tp + fp + fn) > 0
        per_label = 2 * tp[seen] / np.maximum(1, 2 * tp[seen] + fp[seen] + fn[seen])
        micro = 2 * tp.sum() / max(1, 2 * tp.sum() + fp.sum() + fn.sum())
        return {"loss": total / max(1, truth.size), "f1_micro": float(micro),
                "f1_macro": float(per_label.mean()) if seen.any() else 0.0,
                "subset_accuracy": float((guess == truth).all(axis=1).mean())}


@dataclass(frozen=True)
class LanguageModeling(Task):
    """Masked or causal language modeling, bound to a tokenizer's special tokens."""

    mask_id: int | None = None
    separator_id: int | None = None
    bos_id: int | None = None
    eos_id: int | None = None
    special_ids: tuple[int, ...] = ()
    vocab: int = 0
    mlm_probability: float = 0.15

    def bind(self, tokenizer: Any, mlm_probability: float) -> LanguageModeling:
        masked = self.name == "masked-lm"
        if masked and tokenizer.mask_token_id is None:
            raise InvalidInputError("this tokenizer has no mask token, so it cannot do masked-lm",
                                    hint="use --task causal-lm, or a BERT-style model")
        separator = tokenizer.sep_token_id if masked else tokenizer.eos_token_id
        if separator is None:
            separator = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else tokenizer.sep_token_id
        return dataclasses.replace(
            self, mask_id=tokenizer.mask_token_id, separator_id=separator,
            bos_id=tokenizer.cls_token_id if masked else None, eos_id=tokenizer.sep_token_id if masked else None,
            special_ids=tuple(sorted(set(tokenizer.all_special_ids))), vocab=len(tokenizer),
            mlm_probability=mlm_probability)

    def label_names(self, features: Any, label_column: str) -> list[str]:
        return []

    def model_class(self) -> Any:
        import transformers

        return transformers.AutoModelForMaskedLM if self.name == "masked-lm" else transformers.AutoModelForCausalLM

    def tokenize(self, dataset: Any, tokenizer: Any, input_column: str, label_column: str,
                 max_length: int) -> tuple[list[list[int]], list[Any]]:
        wrapped = self.bos_id is not None
        inner = max_length - (2 if wrapped else 0)
        blocks: list[list[int]] = []
        buffer: list[int] = []
        for start in range(0, len(dataset), _TOKENIZE_ROWS):
            texts = [t or "" for t in dataset[start:start + _TOKENIZE_ROWS][input_column]]
            for ids in tokenizer(texts, add_special_tokens=False, return_attention_mask=False,
                                 return_token_type_ids=False)["input_ids"]:
                buffer += ids
                if self.separator_id is not None:
                    buffer.append(self.separator_id)
                while len(buffer) >= inner:
                    chunk, buffer = buffer[:inner], buffer[inner:]
                    blocks.append([self.bos_id, *chunk, self.eos_id] if wrapped else chunk)
        if len(buffer) > 1 and (not blocks or len(buffer) >= inner // 4):  # a short tail is dropped, as HF does
            blocks.append([self.bos_id, *buffer, self.eos_id] if wrapped else buffer)
        if not blocks:
            raise InvalidInputError("the texts hold no tokens to train on")
        return blocks, [0] * len(blocks)

    def collate(self, split: TokenizedSplit, rows: np.ndarray, pad_id: int, generator: Any = None
                ) -> dict[str, Any]:
        import torch

        input_ids, mask = pad_rows(split.input_ids, rows, pad_id)
        ids = torch.from_numpy(input_ids)
        attention = torch.from_numpy(mask)
        labels = ids.clone()
        labels[attention == 0] = IGNORE
        if self.name == "masked-lm":
            special = torch.isin(ids, torch.tensor(self.special_ids, dtype=torch.int64)) | (attention == 0)
            chosen = torch.bernoulli(torch.full(ids.shape, self.mlm_probability), generator=generator).bool() & ~special
            labels[~chosen] = IGNORE
            masked = torch.bernoulli(torch.full(ids.shape, 0.8), generator=generator).bool() & chosen
            randomized = torch.bernoulli(torch.full(ids.shape, 0.5), generator=generator).bool() & chosen & ~masked
            ids = ids.clone()
            ids[masked] = self.mask_id
            ids[randomized] = torch.randint(self.vocab, ids.shape, generator=generator)[randomized]
        return {"input_ids": ids, "attention_mask": attention, "labels": labels}

    def class_weights(self, split: TokenizedSplit, num_labels: int) -> Any:
        raise InvalidInputError("--class-weights applies to classification tasks")

    def _targets(self, labels: Any) -> Any:
        """The labels the logits are scored against: causal LM predicts token t+1 from tokens up to t."""
        return labels[:, 1:] if self.name == "causal-lm" else labels

    def loss(self, logits: Any, labels: Any, loss_fn: Any) -> Any:
        if self.name == "causal-lm":
            logits = logits[:, :-1]
        return super().loss(logits, self._targets(labels), loss_fn)

    def evaluate(self, model: Any, split: TokenizedSplit, batch_size: int, pad_id: int,
                 label_names: list[str]) -> dict[str, float]:
        import torch

        generator = torch.Generator().manual_seed(0)  # the same masks at every evaluation
        total, counted = 0.0, 0
        for _, batch, _, summed in self.predict(model, split, batch_size, pad_id, generator):
            total += summed
            counted += int((self._targets(batch["labels"]) != IGNORE).sum())
        loss = total / max(1, counted)
        return {"loss": loss, "perplexity": math.exp(min(loss, 700.0))}


_TASKS = {
    "text-classification": Task("text-classification", "Text Classification", ("text", "label"),
                                (("eval_accuracy", "accuracy", "Accuracy"), ("eval_f1_macro", "f1", "Macro F1"))),
    "token-classification": Task("token-classification", "Token Classification", ("tokens", "tags"),
                                 (("eval_f1", "f1", "Entity F1"), ("eval_precision", "precision", "Entity precision"),
                                  ("eval_recall", "recall", "Entity recall"),
                                  ("eval_accuracy", "accuracy", "Token accuracy"))),
    "masked-lm": LanguageModeling("masked-lm", "Fill-Mask", ("text", "label"),
                                  (("eval_perplexity", "perplexity", "Perplexity"),)),
    "causal-lm": LanguageModeling("causal-lm", "Text Generation", ("text", "label"),
                                  (("eval_perplexity", "perplexity", "Perplexity"),)),
}


_MULTI_LABEL = MultiLabelClassification(
    "text-classification", "Text Classification", ("text", "label"),
    (("eval_f1_micro", "f1", "Micro F1"), ("eval_f1_macro", "f1", "Macro F1"),
     ("eval_subset_accuracy", "accuracy", "Subset accuracy")))


def task_for(name: str, multi_label: bool = False) -> Task:
    return _MULTI_LABEL if multi_label and name == "text-classification" else _TASKS[name]
