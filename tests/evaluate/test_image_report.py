"""fmhub eval of an image classifier: the report card's sections for images (schema-valid), its metrics recomputed
from predictions.parquet with scikit-learn, each prediction pointing back at its image."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq

from fmhub.client import Hub
from fmhub.data import load
from fmhub.evaluate import EvalConfig, evaluate, schema
from fmhub.tasks._images import CORRUPTIONS


def test_an_image_report_card(image_classifier: str, tiny_images: str) -> None:
    import jsonschema
    from datasets import Image
    from sklearn import metrics as skm

    outcome = evaluate(EvalConfig(model=image_classifier, data=tiny_images, split="test", slice_by="label",
                                  latency_runs=3), push=True)
    report = outcome.report
    jsonschema.Draft202012Validator(schema()).validate(report)
    assert report["task"] == "image-classification" and report["labels"] == [str(d) for d in range(10)]
    folder = outcome.folder / "eval" / tiny_images / "test"
    table = pq.read_table(folder / "predictions.parquet")
    gold, predicted = table.column("label").to_numpy(), table.column("prediction").to_numpy()
    scores = np.asarray(table.column("scores").to_pylist())
    assert report["metrics"]["accuracy"] == skm.accuracy_score(gold, predicted)
    assert report["metrics"]["f1_macro"] == skm.f1_score(gold, predicted, average="macro", zero_division=0)
    assert np.array_equal(scores.argmax(-1), predicted)
    test = load(tiny_images, split="test").cast_column("image", Image(decode=False))
    assert table.column("image").to_pylist() == [row["path"] for row in test["image"]]  # each image's reference
    assert gold.tolist() == test["label"]
    robustness = report["robustness"]["perturbations"]
    assert [p["name"] for p in robustness] == list(CORRUPTIONS)
    assert all(set(p["metrics"]) == {"accuracy", "f1_macro"} for p in robustness)
    by_size, by_label = report["slices"]
    assert by_size["by"] == "length" and by_size["groups"][0]["value"].endswith("pixels")
    assert by_label["by"] == "column:label" and len(by_label["groups"]) == 10
    assert report["efficiency"]["measured_on"] == "3×16×16 pixel values" and "sequence_length" not in \
        report["efficiency"]
    baseline = report["baseline"]
    assert baseline["name"].startswith("logistic regression on 16×16 RGB pixels") and baseline["train_rows"] == len(load(tiny_images, split="train"))
    assert 0.5 <= baseline["metrics"]["accuracy"] <= 1.0  # digits are easy for pixels: a baseline worth beating
    assert {"plots/confusion_matrix.png", "plots/robustness.png", "plots/slices_length.png"} <= {
        p.split("test/", 1)[1] for p in report["files"]["plots"]}
    with Hub.open() as hub:
        card = (hub.download(image_classifier, revision=outcome.commit) / "README.md").read_text()
    assert "3×16×16 pixel values" in card and "change from the clean inputs" in card
