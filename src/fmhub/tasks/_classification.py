"""What every single-label classifier shares, whatever its input (text, image, ...): one class label per row.

Label names come from the dataset's ``ClassLabel``; training is cross-entropy (label smoothing, class weights)
with accuracy and macro-F1 on validation; the report card scores softmax probabilities (per-class scores,
confusion matrix, ROC-AUC), calibrates the top-label confidence, and keeps each row's label, prediction and
scores in ``predictions.parquet``. A modality subclasses it with its own inputs: reading and batching them,
perturbations, sizes, the efficiency input and a baseline.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fmhub.errors import InvalidInputError
from fmhub.tasks import _metrics
from fmhub.tasks._base import Metric, Scored, Task
from fmhub.tasks._batches import TokenizedSplit

__all__ = ["SingleLabelClassification", "model_label_ids"]


def model_label_ids(names: list[str], model_labels: list[str]) -> np.ndarray:
    """The model's id of each dataset label name (the dataset's labels must all be the model's)."""
    missing = [n for n in names if n not in model_labels]
    if missing:
        raise InvalidInputError(f"the dataset's labels don't match the model's: dataset {names}, model "
                                f"{model_labels} (not in the model: {missing})",
                                hint="evaluate on a dataset with the labels the model was trained on")
    return np.asarray([model_labels.index(n) for n in names], dtype=np.int64)


class SingleLabelClassification(Task):
    """One class label per row (see the module docstring); subclasses add their inputs."""

    label_column = "label"
    validation_metrics = (Metric("eval_accuracy", "accuracy", "Accuracy"), Metric("eval_f1_macro", "f1", "Macro F1"))
    report_metrics = ("accuracy", "f1_macro")
    distillable = True

    def label_names(self, features: Any, label_column: str | None) -> list[str]:
        feature = features[label_column]
        if not hasattr(feature, "names"):
            lists = hasattr(getattr(feature, "feature", None), "names")
            raise InvalidInputError(f"column {label_column!r} holds {feature}, not one class label per row",
                                    hint="pass --multi-label: each row carries a list of labels" if lists else
                                    "import the dataset with fmhub data import, which stores label names")
        return list(feature.names)

    def class_weights(self, split: TokenizedSplit, num_labels: int) -> Any:
        """Loss weights by inverse label frequency ("balanced": n / (labels × count))."""
        import torch

        values = np.asarray(split.labels)
        counts = np.bincount(values[values >= 0], minlength=num_labels).astype(np.float64)
        return torch.tensor(counts.sum() / (num_labels * np.maximum(counts, 1)), dtype=torch.float32)

    def validate(self, model: Any, split: TokenizedSplit, batch_size: int, pad_id: int,
                 label_names: list[str]) -> dict[str, float]:
        total_loss, counted = 0.0, 0
        predicted = np.zeros(len(split), dtype=np.int64)
        for rows, batch, logits, loss in self.predict_batches(model, split, batch_size, pad_id):
            total_loss += loss
            counted += self.counted(batch["labels"])
            predicted[rows] = logits.argmax(-1).numpy()
        from sklearn.metrics import f1_score

        gold = np.asarray(split.labels)
        # scikit-learn's macro F1 averages the labels in gold or predictions, as the report card's does
        f1_macro = float(f1_score(gold, predicted, average="macro", zero_division=0)) if len(gold) else 0.0
        return {"loss": total_loss / max(1, counted), "accuracy": float((predicted == gold).mean()),
                "f1_macro": f1_macro}

    # -- evaluation ----------------------------------------------------------------------------------------

    def gold(self, rows: Any, label_column: str | None, model_labels: list[str]) -> Any:
        to_model = model_label_ids(self.label_names(rows.features, label_column), model_labels)
        values = rows[label_column]
        if any(v is None or (isinstance(v, int) and v < 0) for v in values):
            raise InvalidInputError("the evaluated split has rows without a label",
                                    hint="evaluate a labelled split (e.g. --split test)")
        return to_model[np.asarray(values, dtype=np.int64)]

    def scored(self, probabilities: np.ndarray, gold: Any, labels: list[str], **extra: Any) -> Scored:
        """The report card's metric sections of softmax ``probabilities`` against ``gold``."""
        sections = _metrics.classification_metrics(gold, probabilities.astype(np.float64), labels)
        return Scored(sections, probabilities, probabilities.argmax(-1), gold, extra)

    def calibration_inputs(self, scored: Scored) -> tuple[np.ndarray, np.ndarray, str] | None:
        return (scored.probabilities.max(-1).astype(np.float64), scored.predicted == scored.gold,
                "top-label confidence")

    def group_metrics(self, scored: Scored, rows: np.ndarray, labels: list[str]) -> dict[str, Any]:
        return self.headline(_metrics.classification_metrics(
            scored.gold[rows], scored.probabilities[rows].astype(np.float64), labels)["metrics"])

    def train_labels(self, train: Any, label_column: str, labels: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(which train rows have a label, their labels in the model's ids): what a baseline is fit on."""
        to_model = model_label_ids(list(train.features[label_column].names), labels)
        ids = np.asarray(train[label_column], dtype=np.int64)
        keep = ids >= 0
        return keep, to_model[ids[keep]]

    def prediction_columns(self, scored: Scored, labels: list[str]) -> dict[str, Any]:
        import pyarrow as pa

        return {"label": pa.array(np.asarray(scored.gold, dtype=np.int64)),
                "prediction": pa.array(np.asarray(scored.predicted, dtype=np.int64)),
                "scores": pa.FixedSizeListArray.from_arrays(
                    pa.array(scored.probabilities.astype(np.float32).reshape(-1)), len(labels))}
