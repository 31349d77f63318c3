"""Page speed of the hub's web UI on a hub with 10,000 repos (SQLite, one worker).

Seeds a fresh store: 80% models, 20% datasets, every repo with a card (YAML metadata + markdown), every
model with a pushed report card (``report.json`` + ``predictions.parquet``, indexed in the evaluations
index as ``fmhub eval --push`` does) on one real dataset split. Then serves the hub app with uvicorn
(one worker, in this process) and times sequential GETs of each page from a client on loopback:
home (search box, leaderboards), a name search, a model repo page, and a report card page (charts data
and the error browser's first page, with the dataset texts), and the dataset viewer's first page of a
BBC-size split (2,225 texts of ~2.2 kB in one Parquet shard). Each request's time is from sending it to
the last byte received, so it includes ~0.3 ms of loopback HTTP.

    .venv/bin/python bench/web_bench.py                    # 10,000 repos, 200 requests per page
    .venv/bin/python bench/web_bench.py --repos 1000 --requests 50   # quick check

"first" is each page's first request after the server started (its caches cold: the repo listing and
the evaluations index are read once, then reused until a write); p50/p95 are over the timed requests
after 4 more warm-ups. Prints a table and writes bench/results/web_bench.json. Goal: p95 < 100 ms.
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import random
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

RESULTS = Path(__file__).parent / "results"
LABELS = ["business", "entertainment", "politics", "sport", "tech"]


def _card(repo: str, i: int, kind: str) -> bytes:
    if kind == "dataset":
        meta = f"license: cc-by-4.0\ntask_categories: [text-classification]\npretty_name: {repo}\n"
    else:
        meta = (f"license: apache-2.0\nbase_model: bench/base-{i % 50:02d}\ndatasets: [bench/news]\n"
                f"pipeline_tag: text-classification\nlibrary_name: transformers\ntags: [fmhub, text-classification]\n"
                f"fmhub:\n  lineage:\n    base_model: bench/base-{i % 50:02d}\n    dataset: bench/news\n"
                f"    run_id: r-{i:012x}\n")
    body = f"# {repo}\n\nA benchmark {kind} number {i}.\n\n## Results\n\n| metric | value |\n|---|---:|\n" \
           f"| accuracy | {0.8 + (i % 200) / 1000:.4f} |\n\n" + "Some prose about the model. " * 20 + "\n"
    return f"---\n{meta}---\n{body}".encode()


def _report(repo: str, commit: str, data_commit: str, accuracy: float) -> bytes:
    n = 200
    matrix = np.full((5, 5), 2, dtype=int)
    np.fill_diagonal(matrix, int(n * accuracy / 5))
    report = {
        "$schema": "https://fmhub.dev/schemas/eval-report/v1", "schema_version": 1, "task": "text-classification",
        "labels": LABELS, "max_length": 128,
        "metrics": {"accuracy": accuracy, "f1_macro": accuracy - 0.01, "f1_micro": accuracy, "roc_auc_ovr": 0.99},
        "per_class": [{"label": label, "precision": accuracy, "recall": accuracy, "f1": accuracy, "support": 40}
                      for label in LABELS],
        "confusion_matrix": matrix.tolist(),
        "calibration": {"ece": 0.03, "bins_count": 15, "basis": "top-label confidence",
                        "bins": [{"lower": b / 15, "upper": (b + 1) / 15, "count": 13, "confidence": (b + .5) / 15,
                                  "accuracy": (b + .5) / 15} for b in range(15)]},
        "robustness": {"skipped": "--skip"}, "slices": {"skipped": "--skip"}, "efficiency": {"skipped": "--skip"},
        "baseline": {"skipped": "--skip"},
        "files": {"predictions": "eval/bench/news/test/predictions.parquet", "plots": []},
        "provenance": {"model": {"repo": repo, "commit": commit},
                       "dataset": {"repo": "bench/news", "commit": data_commit, "split": "test", "rows": n,
                                   "content_hash": "sha256:" + "0" * 64},
                       "fmhub_version": "bench", "libraries": {}, "hardware": {}, "seed": 0,
                       "created_at": "2026-01-01T00:00:00+00:00", "seconds": 1.0, "options": {}},
    }
    return json.dumps(report).encode()


def _predictions() -> bytes:
    rng = np.random.default_rng(0)
    n = 200
    labels = np.arange(n) % 5
    predictions = np.where(rng.random(n) < 0.9, labels, (labels + 1) % 5)
    scores = rng.dirichlet(np.ones(5), n).astype(np.float32)
    table = pa.table({"row": np.arange(n), "label": labels, "prediction": predictions,
                      "scores": pa.FixedSizeListArray.from_arrays(pa.array(scores.reshape(-1)), 5)})
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def seed(store, repos: int) -> str:
    """Fill ``store``; returns a model repo id to time the repo and report pages on."""
    from fmhub.evaluations import Evaluations
    from fmhub.store import AddFile

    rng = random.Random(0)
    words = ("the bank market match film vote chip phone goal rates shares minister league album software "
             "growth election striker award network").split()
    # BBC News size: 2,225 articles of ~380 words (~2.2 kB) each, as one split's shard.
    texts = [" ".join(rng.choice(words) for _ in range(380)) for _ in range(2225)]
    schema_meta = {"huggingface": json.dumps({"info": {"features": {
        "text": {"dtype": "string", "_type": "Value"}, "label": {"names": LABELS, "_type": "ClassLabel"}}}})}
    sink = io.BytesIO()
    pq.write_table(pa.table({"text": texts, "label": np.arange(len(texts)) % 5}).replace_schema_metadata(schema_meta),
                   sink, row_group_size=10_000, compression="zstd")
    store.create_repo("bench/news", repo_type="dataset")
    shard = store.put_bytes(sink.getvalue())
    data_commit = store.commit("bench/news", [AddFile("data/test-00000-of-00001.parquet", shard.sha256, shard.size)],
                               repo_type="dataset", title="data", author="bench").oid
    predictions = store.put_bytes(_predictions())
    evaluations = Evaluations(store.db)
    models = int(repos * 0.8)
    started = time.perf_counter()
    for i in range(repos):
        kind = "model" if i < models else "dataset"
        repo = f"bench/{kind}-{i:05d}"
        store.create_repo(repo, repo_type=kind, author="bench")
        card = store.put_bytes(_card(repo, i, kind))
        ops = [AddFile("README.md", card.sha256, card.size)]
        commit = store.commit(repo, ops, repo_type=kind, title="card", author="bench").oid
        if kind == "model":
            data = _report(repo, commit, data_commit, 0.80 + (i % 200) / 1000)
            report = store.put_bytes(data)
            card_commit = store.commit(repo, [AddFile("eval/bench/news/test/report.json", report.sha256, report.size),
                                              AddFile("eval/bench/news/test/predictions.parquet",
                                                      predictions.sha256, predictions.size)],
                                       title="report card", author="bench").oid
            evaluations.record(repo, card_commit, "eval/bench/news/test/report.json", data)
        if (i + 1) % 1000 == 0:
            print(f"  seeded {i + 1:,} repos in {time.perf_counter() - started:.0f} s", flush=True)
    return f"bench/model-{models // 2:05d}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repos", type=int, default=10_000, help="repos to seed (80%% models)")
    parser.add_argument("--requests", type=int, default=200, help="timed requests per page (after 5 warm-ups)")
    parser.add_argument("--store", type=Path, help="keep the seeded store in this folder and reuse it on later runs "
                                                   "(default: a temporary folder, deleted at the end)")
    args = parser.parse_args()

    import httpx

    from fmhub.serve._live import running
    from fmhub.server import HubConfig, create_app
    from fmhub.store import open_store

    with tempfile.TemporaryDirectory(prefix="fmhub-web-bench-") as tmp:
        home = args.store or Path(tmp)
        home.mkdir(parents=True, exist_ok=True)
        seeded = (home / "seeded.json")
        with open_store(f"sqlite:///{home / 'fmhub.db'}", (home / "blobs").as_uri()) as store:
            if seeded.exists() and json.loads(seeded.read_text())["repos"] == args.repos:
                model = json.loads(seeded.read_text())["model"]
                print(f"reusing the {args.repos:,} repos seeded in {home}", flush=True)
            else:
                print(f"seeding {args.repos:,} repos (SQLite, file:// blobs)…", flush=True)
                model = seed(store, args.repos)
                seeded.write_text(json.dumps({"repos": args.repos, "model": model}))
            pages = {"home (search + leaderboards)": "/", "search ?q=model-004": "/models?q=model-004",
                     "model repo page": f"/{model}",
                     "report card page": f"/{model}/eval/main/bench/news/test",
                     "dataset viewer (BBC-size split)": "/datasets/bench/news/viewer/default/test"}
            results = {}
            with running(create_app(store, HubConfig(admin_token="fmhub_bench-admin-token-0123456789")),
                         ready_path=None) as url, httpx.Client(base_url=url, headers={"Accept": "text/html"}) as client:
                for name, path in pages.items():
                    start = time.perf_counter()  # the first request: this page's caches are cold
                    assert client.get(path).status_code == 200, path
                    first = (time.perf_counter() - start) * 1000
                    for _ in range(4):
                        assert client.get(path).status_code == 200, path
                    times = []
                    for _ in range(args.requests):
                        start = time.perf_counter()
                        response = client.get(path)
                        times.append((time.perf_counter() - start) * 1000)
                        assert response.status_code == 200
                    times.sort()
                    results[name] = {"path": path, "first_ms": first, "p50_ms": statistics.median(times),
                                     "p95_ms": times[int(0.95 * (len(times) - 1))], "max_ms": times[-1],
                                     "requests": len(times), "bytes": len(response.content)}
    print(f"\nweb UI page times, {args.repos:,} repos, SQLite, one uvicorn worker ({platform.processor() or 'cpu'})")
    print(f"{'page':32} {'first ms':>9} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'kB':>6}  goal p95 < 100 ms")
    for name, r in results.items():
        verdict = "ok" if r["p95_ms"] < 100 else "MISSED"
        print(f"{name:32} {r['first_ms']:9.1f} {r['p50_ms']:8.1f} {r['p95_ms']:8.1f} {r['max_ms']:8.1f} "
              f"{r['bytes'] / 1000:6.1f}  {verdict}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "web_bench.json").write_text(json.dumps({"repos": args.repos, "requests": args.requests,
                                                        "pages": results}, indent=2) + "\n")
    print(f"\nwrote {RESULTS / 'web_bench.json'}")


if __name__ == "__main__":
    main()
