"""fmhub eval end to end on tiny models: the card's JSON schema, metrics recomputed from the predictions
file with scikit-learn / seqeval (exact agreement), plots, the pushed model card and the index."""

from __future__ import annotations

import json
import math
import struct
import xml.etree.ElementTree as ET

import numpy as np
import pyarrow.parquet as pq
import pytest

from fmhub.cards import parse_card
from fmhub.client import Hub, UploadFile
from fmhub.evaluate import EvalConfig, evaluate, schema
from fmhub.train import TrainConfig, train


def _train(task: str, model: str, data: str, output: str, **extra) -> str:
    config = TrainConfig.from_flat(dict(task=task, model=model, data=data, output=output, epochs=2, batch_size=8, learning_rate=3e-3,
                         max_length=32, threads=1, eval_split=None, seed=0, **extra))
    assert train(config) is not None
    return output


@pytest.fixture
def classifier(tiny_model: str, tiny_data: str) -> str:
    return _train("text-classification", tiny_model, tiny_data, "acme/topics-clf")


def _validate(report: dict) -> None:
    import jsonschema

    jsonschema.Draft202012Validator.check_schema(schema())
    jsonschema.Draft202012Validator(schema(), format_checker=jsonschema.FormatChecker()).validate(report)


def _check_png_svg(data: bytes, name: str) -> None:
    if name.endswith(".png"):
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
        width, height = struct.unpack(">II", data[16:24])
        assert width > 100 and height > 100
    else:
        assert ET.fromstring(data).tag.endswith("svg")


def test_text_classification_card_recomputes_exactly_and_is_pushed(classifier: str, tiny_data: str) -> None:
    from sklearn import metrics as skm
    from sklearn.calibration import calibration_curve

    outcome = evaluate(EvalConfig(model=classifier, data=tiny_data, split="test", slice_by="label", latency_runs=3),
                       push=True)
    report = outcome.report
    _validate(report)
    with Hub.open() as hub:
        info = hub.repo_info(classifier)
        data_commit = hub.repo_info(tiny_data, repo_type="dataset").commit.oid
        folder = hub.download(classifier, revision=outcome.commit)
        files = {e.path for e in info.files}
    assert info.commit.oid == outcome.commit
    assert report["provenance"]["dataset"]["commit"] == data_commit
    assert report["provenance"]["dataset"]["content_hash"].startswith("sha256:")
    base = "eval/acme/topics/test"
    assert {f"{base}/report.json", f"{base}/predictions.parquet", f"{base}/plots/confusion_matrix.png",
            f"{base}/plots/reliability.svg", f"{base}/plots/robustness.png", f"{base}/plots/per_class_f1.svg"} <= files
    for path in report["files"]["plots"]:
        _check_png_svg((folder / path).read_bytes(), path)
    assert json.loads((folder / base / "report.json").read_text()) == report

    # Every metric from the predictions file alone, by scikit-learn: exact agreement.
    table = pq.read_table(folder / base / "predictions.parquet")
    gold = np.asarray(table["label"].to_pylist())
    predicted = np.asarray(table["prediction"].to_pylist())
    scores = np.asarray(table["scores"].to_pylist(), dtype=np.float64)
    assert report["provenance"]["dataset"]["rows"] == len(gold) == 18 and (scores.argmax(-1) == predicted).all()
    m = report["metrics"]
    assert m["accuracy"] == skm.accuracy_score(gold, predicted)
    for average in ("macro", "micro", "weighted"):
        assert m[f"f1_{average}"] == pytest.approx(skm.f1_score(gold, predicted, average=average, zero_division=0),
                                                   abs=1e-12)
    assert m["precision_macro"] == pytest.approx(skm.precision_score(gold, predicted, average="macro",
                                                                     zero_division=0), abs=1e-12)
    assert m["recall_macro"] == pytest.approx(skm.recall_score(gold, predicted, average="macro", zero_division=0),
                                              abs=1e-12)
    assert m["roc_auc_ovr"] == pytest.approx(skm.roc_auc_score(gold, scores[:, 1]), abs=1e-12)
    assert report["confusion_matrix"] == skm.confusion_matrix(gold, predicted, labels=[0, 1]).tolist()
    p, r, f, s = skm.precision_recall_fscore_support(gold, predicted, labels=[0, 1], zero_division=0)
    for i, row in enumerate(report["per_class"]):
        assert (row["precision"], row["recall"], row["f1"], row["support"]) == pytest.approx((p[i], r[i], f[i], s[i]))
    confidence, correct = scores.max(-1), (predicted == gold).astype(int)
    true, mean = calibration_curve(correct, confidence, n_bins=15, strategy="uniform")
    counts = np.bincount(np.searchsorted(np.linspace(0, 1, 16)[1:-1], confidence, side="right"), minlength=15)
    ece = float(np.sum(counts[counts > 0] / len(gold) * np.abs(true - mean)))
    assert report["calibration"]["ece"] == pytest.approx(ece, abs=1e-12)

    # Sections: robustness (all five, deltas), slices by length and by the label column, efficiency, baseline.
    names = [p["name"] for p in report["robustness"]["perturbations"]]
    assert names == ["typos", "lowercase", "uppercase", "whitespace", "truncate"]
    typos, _, upper = report["robustness"]["perturbations"][:3]
    assert typos["delta"]["accuracy"] == pytest.approx(typos["metrics"]["accuracy"] - m["accuracy"])
    assert upper["applicable"] is False  # an uncased tokenizer: upper-casing changes nothing the model sees
    assert [s["by"] for s in report["slices"]] == ["length", "column:label"]
    by_label = report["slices"][1]
    assert {g["value"] for g in by_label["groups"]} == {"sport", "tech"}
    assert sum(g["rows"] for g in by_label["groups"]) == 18
    assert report["efficiency"]["parameters"] > 0 and report["efficiency"]["latency_ms"]["p95"] > 0
    assert report["baseline"]["train_rows"] == 84 and 0 <= report["baseline"]["metrics"]["accuracy"] <= 1

    # The model card: an evaluation section and a model-index entry for this dataset split; the index row.
    card = parse_card((folder / "README.md").read_text())
    results = card.metadata["model-index"][0]["results"]
    mine = [r for r in results if r["dataset"]["split"] == "test"]
    assert len(mine) == 1 and mine[0]["dataset"]["revision"] == data_commit
    assert {"type": "accuracy", "value": round(m["accuracy"], 6), "name": "Accuracy"} in mine[0]["metrics"]
    assert "## Evaluation" in card.body and "![confusion matrix](eval/acme/topics/test/plots/confusion_matrix.png)" \
        in card.body
    with Hub.open() as hub:
        [indexed] = hub.list_evaluations(model=classifier)
    assert indexed.card_commit == outcome.commit and indexed.metrics["accuracy"] == m["accuracy"]
    assert indexed.model_commit == report["provenance"]["model"]["commit"]

    # Pushing again replaces this split's section and model-index entry instead of adding a second one.
    again = evaluate(EvalConfig(model=classifier, data=tiny_data, split="test", skip=("robustness", "efficiency")),
                     push=True)
    with Hub.open() as hub:
        card = parse_card(hub.read_bytes(classifier, "README.md", again.commit).decode())
    assert card.body.count("<!-- fmhub-eval acme/topics test -->") == 1
    assert len([r for r in card.metadata["model-index"][0]["results"] if r["dataset"]["split"] == "test"]) == 1


def test_token_classification_card_agrees_with_seqeval(tiny_model: str, tiny_ner: str) -> None:
    import warnings

    from seqeval import metrics as sq

    model = _train("token-classification", tiny_model, tiny_ner, "acme/ner-bert")
    outcome = evaluate(EvalConfig(model=model, data=tiny_ner, split="validation", train_split="train",
                                  latency_runs=2))
    report = outcome.report
    _validate(report)
    table = pq.read_table(outcome.folder / "eval/acme/ner/validation/predictions.parquet")
    labels = report["labels"]
    gold = [[labels[i] for i in row] for row in table["labels"].to_pylist()]
    guess = [[labels[i] for i in row] for row in table["predictions"].to_pylist()]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert report["metrics"]["f1"] == pytest.approx(sq.f1_score(gold, guess), abs=1e-12)
        assert report["metrics"]["precision"] == pytest.approx(sq.precision_score(gold, guess), abs=1e-12)
        assert report["metrics"]["recall"] == pytest.approx(sq.recall_score(gold, guess), abs=1e-12)
        assert report["metrics"]["accuracy"] == pytest.approx(sq.accuracy_score(gold, guess), abs=1e-12)
        per_type = sq.classification_report(gold, guess, output_dict=True)
    for row in report["per_type"]:
        assert row["support"] == per_type[row["type"]]["support"]
        assert row["f1"] == pytest.approx(per_type[row["type"]]["f1-score"], abs=1e-12)
    assert {r["type"] for r in report["per_type"]} == {"PER", "LOC"}
    assert report["baseline"]["name"].startswith("word-feature") and report["truncated_words"] == 0


def test_language_model_card_perplexity_from_the_predictions(tiny_model: str, tiny_data: str) -> None:
    model = _train("masked-lm", tiny_model, tiny_data, "acme/topics-mlm")
    config = EvalConfig(model=model, data=tiny_data, split="test", skip=("efficiency",), seed=3)
    outcome = evaluate(config)
    report = outcome.report
    _validate(report)
    table = pq.read_table(outcome.folder / "eval/acme/topics/test/predictions.parquet")
    nll, tokens = sum(table["nll"].to_pylist()), sum(table["tokens"].to_pylist())
    assert report["metrics"]["perplexity"] == pytest.approx(math.exp(nll / tokens), rel=1e-12)
    assert report["metrics"]["bits_per_token"] == pytest.approx(nll / tokens / math.log(2), rel=1e-12)
    assert report["calibration"] == {"skipped": "calibration applies to classifiers"}
    assert report["baseline"]["name"].startswith("add-one unigram") and report["baseline"]["metrics"]["perplexity"] > 1
    again = evaluate(config, output_dir=outcome.folder.parent / "again")  # masked positions: a function of the seed
    assert again.report["metrics"] == report["metrics"]


def test_bad_input_fails_clearly_and_pushes_nothing(classifier: str, tiny_model: str, tiny_data: str,
                                                    tmp_path, capsys) -> None:
    from fmhub.cli import main
    from fmhub.data._import import ImportOptions, import_dataset

    (tmp_path / "moods.csv").write_text("text,label\n" + "".join(f"goal match {i},{'happy' if i % 2 else 'sad'}\n"
                                                                for i in range(40)))
    (tmp_path / "no-test.csv").write_text("text,label,split\ngoal,sport,train\nchip,tech,train\n")
    import pyarrow as pa
    import pyarrow.parquet as pq

    from fmhub.data import load

    labels = load(tiny_data, split="train").features["label"]
    empty = tmp_path / "empty"
    (empty / "data").mkdir(parents=True)
    for split, texts in (("train", ["goal match", "chip cloud"]), ("test", [])):  # a test split with no rows
        pq.write_table(pa.table({"text": pa.array(texts, pa.string()),
                                 "label": pa.array([labels.str2int(t) for t in ("sport", "tech")][:len(texts)],
                                                   pa.int64())}), empty / "data" / f"{split}-00000-of-00001.parquet")
    (empty / "README.md").write_text("---\ndataset_info:\n  features:\n  - name: text\n    dtype: string\n  - name: label\n"
                                     "    dtype:\n      class_label:\n        names:\n          '0': sport\n"
                                     "          '1': tech\n---\n")
    with Hub.open() as hub:
        import_dataset(hub, tmp_path / "moods.csv", "acme/moods")
        import_dataset(hub, tmp_path / "no-test.csv", "acme/train-only", ImportOptions())
        hub.create_repo("acme/empty-test", repo_type="dataset")
        hub.upload(empty, "acme/empty-test", repo_type="dataset")
        before = hub.repo_info(classifier).commit.oid
    cases = [
        ([classifier, "--data", "acme/moods"], "dataset ['happy', 'sad'], model ['sport', 'tech']"),
        ([classifier, "--data", tiny_data, "--split", "dev"], "has no 'dev' split; its splits are: "),
        ([classifier, "--data", "acme/train-only"], "has no 'test' split"),
        ([classifier, "--data", "acme/empty-test"], "split 'test' of dataset acme/empty-test is empty"),
        ([tiny_model, "--data", tiny_data], "has no task head (architectures: BertModel)"),
        ([classifier, "--data", tiny_data, "--skip", "plots"], "--skip plots: no such section"),
        ([classifier, "--data", tiny_data, "--slice-by", "source"], "--slice-by 'source': no such column"),
        ([classifier, "--data", tiny_data, "--max-length", "4096"], "beyond the model's 64 positions"),
        ([classifier, "--data", tiny_data, "--explain-rows", "-1"], "--explain-rows -1 must be 0 (off) or more"),
        ([classifier, "--data", tiny_data, "--explain-steps", "1"], "--explain-steps 1 must be between 2 and 512"),
    ]
    for argv, needle in cases:
        assert main(["eval", *argv, "--push"]) == 2, argv
        assert needle in capsys.readouterr().err, argv
    with Hub.open() as hub:
        assert hub.repo_info(classifier).commit.oid == before  # nothing pushed


def test_cli_eval_compare_and_the_index(classifier: str, tiny_data: str, capsys) -> None:
    from fmhub.cli import main

    with Hub.open() as hub:
        hub.create_tag(classifier, "v1")
    assert main(["eval", f"{classifier}@v1", "--data", tiny_data, "--skip", "robustness,efficiency", "--push"]) == 0
    out = capsys.readouterr().out
    assert "accuracy" in out and "committed" in out
    with Hub.open() as hub:
        tagged = hub.repo_info(classifier, revision="v1").commit.oid
    assert main(["evals", classifier, "--metric", "accuracy"]) == 0
    assert tagged[:12] in capsys.readouterr().out
    _train("text-classification", "acme/tiny-bert", tiny_data, "acme/topics-clf-2")
    assert main(["compare", f"{classifier}@v1", "acme/topics-clf-2", "--data", tiny_data, "--skip",
                 "robustness", "--skip", "efficiency"]) == 0
    out = capsys.readouterr().out
    assert "acme/topics-clf@v1" in out and "acme/topics-clf-2 (Δ)" in out and "f1_macro" in out
    assert main(["evals", "--metric", "nope"]) == 2
    assert "--metric 'nope' is in none of these cards" in capsys.readouterr().err


def test_compare_reuses_the_card_at_the_card_commit_and_says_when_it_evaluates(classifier: str, tiny_data: str,
                                                                                capsys) -> None:
    from fmhub.cli import main

    with Hub.open() as hub:
        weights = hub.repo_info(classifier).commit.oid
    assert main(["eval", classifier, "--data", tiny_data, "--skip", "robustness,efficiency", "--push"]) == 0
    with Hub.open() as hub:
        card_commit = hub.repo_info(classifier).commit.oid  # the head is now the commit eval --push made
    assert card_commit != weights
    capsys.readouterr()
    assert main(["compare", classifier, f"{classifier}@{weights[:12]}", "--data", tiny_data]) == 0
    captured = capsys.readouterr()
    assert "evaluating it now" not in captured.err  # both are the indexed card: nothing re-evaluated
    assert "accuracy" in captured.out
    assert main(["compare", classifier, f"{classifier}@{weights[:12]}", "--data", tiny_data, "--split", "validation",
                 "--skip", "robustness,slices"]) == 0
    err = capsys.readouterr().err
    assert f"{classifier}@{card_commit[:12]}: no pushed report card on {tiny_data}@" in err
    assert "· validation (its cards are on acme/topics@" in err and "· test)" in err
    assert "evaluating it now, not pushed; it will lack robustness, slices (--skip)" in err


def test_a_perturbation_that_changes_no_model_input_is_not_applicable(classifier: str, tmp_path,
                                                                      topic_words) -> None:
    import random

    from fmhub.data._import import ImportOptions, import_dataset

    rng = random.Random(2)
    rows = ["text,label"]  # 14-20 words each: half of the words is still longer than an 8-token cut
    for i in range(30):
        label = "sport" if i % 2 else "tech"
        rows.append(" ".join(rng.choice(topic_words[label]) for _ in range(rng.randint(14, 20))) + f",{label}")
    (tmp_path / "long.csv").write_text("\n".join(rows) + "\n")
    with Hub.open() as hub:
        import_dataset(hub, tmp_path / "long.csv", "acme/long", ImportOptions(split="test=1.0"))
    report = evaluate(EvalConfig(model=classifier, data="acme/long", split="test", max_length=8,
                                 skip=("efficiency", "baseline", "slices"))).report
    _validate(report)
    by_name = {p["name"]: p for p in report["robustness"]["perturbations"]}
    truncate = by_name["truncate"]
    assert truncate["applicable"] is False and truncate["rows_changed"] == 0
    assert truncate["delta"] == {"accuracy": None, "f1_macro": None} or set(truncate["delta"].values()) == {None}
    assert "8-token cut" in truncate["note"]
    assert by_name["typos"]["applicable"] is True and by_name["typos"]["rows_changed"] > 0


def test_pull_request_review_with_report_cards(classifier: str, tiny_data: str, capsys) -> None:
    """Issue 28's workflow: propose a new model version as a pull request, compute its report card on the pull
    request's revision (pushed there, not to main), review the metrics against main's card, merge."""
    from fmhub.cli import main
    from fmhub.store.discussions import Discussion

    skip = ["--skip", "robustness,efficiency"]
    assert main(["eval", classifier, "--data", tiny_data, *skip, "--push"]) == 0
    with Hub.open() as hub:
        main_head = hub.repo_info(classifier).commit.oid
        pr: Discussion = hub.create_discussion(classifier, title="Retrained", pull_request=True)
        # the proposed version: other weights (the classifier's, perturbed), committed to refs/pr/1
        folder = hub.download(classifier, exclude=["eval/*"])
        from safetensors.numpy import load_file, save_file
        tensors = load_file(folder / "model.safetensors")
        for name in tensors:
            if name.endswith("classifier.bias"):
                tensors[name] = tensors[name] + 0.5
        save_file(tensors, str(folder / "new.safetensors"))
        hub.commit(classifier, [UploadFile("model.safetensors", folder / "new.safetensors")],
                   revision=pr.git_reference, title="new weights")
    capsys.readouterr()
    assert main(["eval", f"{classifier}@refs/pr/1", "--data", tiny_data, *skip, "--push"]) == 0
    with Hub.open() as hub:
        assert hub.repo_info(classifier).commit.oid == main_head  # the card went to the pull request
        details = hub.get_pull_request(classifier, pr.num)
    assert {"model.safetensors", "eval/acme/topics/test/report.json"} <= {f.path for f in details.files}
    capsys.readouterr()
    assert main(["pr", "show", classifier, str(pr.num)]) == 0
    out = capsys.readouterr().out
    assert "report cards" in out and "accuracy" in out and "acme/topics:test" in out
    assert main(["pr", "merge", classifier, str(pr.num)]) == 0
    with Hub.open() as hub:
        assert hub.repo_info(classifier).commit.oid != main_head
