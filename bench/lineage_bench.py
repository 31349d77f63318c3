"""Search and lineage query times on a big hub (issue 25's goals), on SQLite or PostgreSQL, one uvicorn worker.

Seeds a fresh store with ``--repos`` repos (10% datasets, 90% models, each with a card): models trained on a
dataset commit through a run from one of 50 base models (data → run, base → run, run → model), 30% of models
are variants of an earlier model (chains form), half the models hold a report card (search metrics, and an
evaluation node with its two edges), 20% carry a published tag. One dataset is "hot": 2% of the trained models
use it, so its impact query is the heaviest. At 100,000 repos that is ~300,000 lineage edges and 45,000 report
cards, the issue's benchmark size.

Seeding writes the store's own rows (repos, commits, trees, refs) in batches, and the search index and lineage
graph through the same functions the store's write hooks call (``fmhub.search.write_documents``,
``fmhub.lineage.record_edges``), batched; it does not go through ``Store.commit`` one commit at a time (that path
is timed by the store and web benchmarks). Then it serves the hub app with uvicorn (one worker, in this
process) and times sequential GETs from a loopback client (each time includes ~0.3 ms of HTTP):

- search: ``/api/models?search=<3-5 chars of a name>&filter=dataset:<a dataset>&sort=lastModified&limit=20``,
- metric search: ``/api/fmhub/search?metric=accuracy>=0.9&on=<dataset>:test&sort=metric:accuracy``,
- lineage: ``/api/fmhub/lineage/models/<a model>?depth=5`` (both directions),
- impact: of a random dataset, and of the hot dataset (the heaviest): its first page (the API's default page
  size, 100, as the web tab's), a page of 1,000 and every descendant in one answer (``limit=10000``).

    .venv/bin/python bench/lineage_bench.py                               # 10,000 repos on SQLite
    .venv/bin/python bench/lineage_bench.py --repos 100000                # the issue's size
    .venv/bin/python bench/lineage_bench.py --db postgresql+psycopg://127.0.0.1/test   # PostgreSQL (a fresh schema)

Prints a table and writes bench/results/lineage_bench[_<db>].json. Goals: seeding ≥ 2,000 repos/s; each query
p95 < 50 ms at the server.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
BATCH = 5000
WORDS = ["news", "bert", "vit", "topics", "sent", "ner", "minilm", "distil", "legal", "med"]
LICENSES = ["mit", "apache-2.0", "cc-by-4.0"]
TASKS = ["text-classification", "token-classification", "fill-mask"]


def _oid(*parts: object) -> str:
    return hashlib.sha1("/".join(map(str, parts)).encode()).hexdigest()


def seed(store, repos: int, rng: random.Random) -> dict:
    """Fill ``store``; returns what the queries pick from (names, the hot dataset) and the seeding figures."""
    from sqlalchemy import insert

    from fmhub.lineage import Edge, NodeRef, record_edges
    from fmhub.search import Document, MetricRow, write_documents
    from fmhub.store import _schema as t
    from fmhub.store.hooks import RepoRow, bulk_insert

    datasets = max(10, repos // 10)
    models = repos - datasets
    card = store.put_bytes(b"---\nlicense: mit\n---\n# a benchmark repo\n")
    tree_id = "b" * 64
    start = datetime(2026, 1, 1, tzinfo=UTC)
    started, cpu_started = time.perf_counter(), time.process_time()
    with store.db.write() as conn:
        conn.execute(insert(t.trees).values(tree_id=tree_id, file_count=1, total_size=card.size))
        conn.execute(insert(t.tree_entries).values(tree_id=tree_id, path="README.md", blob_sha256=card.sha256,
                                                   size=card.size))
    names, kinds, heads, trained = [], [], [], []
    hot_models = 0
    for i in range(repos):
        kind = "dataset" if i < datasets else "model"
        names.append(f"bench/{kind}-{i:06d}-{WORDS[(i * 7) % len(WORDS)]}")
        kinds.append(kind)
        heads.append(_oid(i))
    edges_total = cards_total = 0
    for lo in range(0, repos, BATCH):
        hi = min(repos, lo + BATCH)
        repo_rows, commit_rows, ref_rows, docs, edges = [], [], [], [], []
        for i in range(lo, hi):
            kind, name, oid = kinds[i], names[i], heads[i]
            when = start + timedelta(seconds=i)
            namespace, short = name.split("/")
            repo_rows.append({"pk": i + 1, "repo_type": kind, "namespace": namespace, "name": short,
                              "key": f"{kind}/{name.lower()}", "private": i % 50 == 7, "default_branch": "main",
                              "created_at": when, "updated_at": when})
            commit_rows.append({"repo_pk": i + 1, "oid": oid, "tree_id": tree_id, "parents": "[]", "author": "bench",
                                "title": "card", "message": "", "created_at": when, "generation": 1})
            ref_rows.append({"repo_pk": i + 1, "kind": "branch", "name": "main", "commit_oid": oid, "message": None,
                             "created_at": when, "updated_at": when})
            if kind == "model" and i % 5 == 0:
                ref_rows.append({"repo_pk": i + 1, "kind": "tag", "name": "v1", "commit_oid": oid, "message": None,
                                 "created_at": when, "updated_at": when})
            me = NodeRef(kind, name, oid)
            metadata: dict = {"license": LICENSES[i % 3]}
            metrics: list = []
            if kind == "dataset":
                metadata["task_categories"] = ["text-classification"]
            else:
                variant = trained and rng.random() < 0.3
                if variant:
                    parent = rng.choice(trained[-2000:])  # recent models: chains of variants form
                    edges.append(Edge(NodeRef("model", names[parent], heads[parent]), me, "variant"))
                    data = None
                else:
                    hot = rng.random() < 0.02
                    data = 0 if hot else rng.randrange(1, datasets)
                    hot_models += hot
                    run = NodeRef("run", f"r-{i:012x}", info={"output": f"model/{name.lower()}"})
                    base_name = f"bench/base-{rng.randrange(50):02d}"
                    edges += [Edge(NodeRef("dataset", names[data], heads[data]), run, "data"),
                              Edge(NodeRef("model", base_name, _oid(base_name)), run, "base"),
                              Edge(run, me, "trained")]
                    trained.append(i)
                metadata.update({"pipeline_tag": TASKS[(i // 3) % 3],
                                 "library_name": "transformers", "tags": ["fmhub"],
                                 "datasets": [names[data]] if data is not None else []})
                if i % 2 == 0:
                    on = data if data is not None else rng.randrange(datasets)
                    accuracy = round(rng.uniform(0.6, 0.99), 4)
                    metrics = [MetricRow(oid, names[on].lower(), "test", "accuracy", accuracy),
                               MetricRow(oid, names[on].lower(), "test", "f1_macro", accuracy - 0.01)]
                    evaluation = NodeRef("evaluation", name, oid, f"eval/{names[on]}/test/report.json",
                                         info={"dataset": names[on], "split": "test", "metrics": {"accuracy": accuracy}})
                    edges += [Edge(me, evaluation, "evaluated"),
                              Edge(NodeRef("dataset", names[on], heads[on]), evaluation, "test data")]
                    cards_total += 1
            docs.append(Document(RepoRow(i + 1, kind, name, i % 50 == 7, "main", when, when), oid, metadata, metrics))
        with store.db.write() as conn:
            bulk_insert(conn, t.repos, repo_rows)
            bulk_insert(conn, t.commits, commit_rows)
            bulk_insert(conn, t.refs, ref_rows)
            write_documents(conn, docs, replace=False)
            record_edges(conn, edges)
        edges_total += len(edges)
        elapsed = time.perf_counter() - started
        print(f"  seeded {hi:,} repos, {edges_total:,} edges in {elapsed:.1f} s ({hi / elapsed:,.0f} repos/s)",
              flush=True)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    if store.db.engine.dialect.name == "postgresql":
        with store.db.engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE")
    else:
        with store.db.write() as conn:
            conn.exec_driver_sql("ANALYZE")
    return {"names": names, "kinds": kinds, "datasets": datasets, "models": models, "seconds": seconds,
            "repos_per_second": repos / seconds, "cpu_seconds": cpu_seconds, "repos_per_cpu_second": repos / cpu_seconds, "edges": edges_total, "report_cards": cards_total,
            "hot_dataset": names[0], "hot_models": hot_models}


def _time(client, paths: list[str], requests: int) -> dict:
    for path in paths[:5]:  # warm-up
        assert client.get(path).status_code == 200, path
    times, cpu, sizes = [], [], []
    for n in range(requests):
        path = paths[n % len(paths)]
        begin, begin_cpu = time.perf_counter(), time.process_time()
        response = client.get(path)
        times.append((time.perf_counter() - begin) * 1000)
        cpu.append((time.process_time() - begin_cpu) * 1000)  # server and client threads: both in this process
        assert response.status_code == 200, (path, response.text[:300])
        sizes.append(len(response.content))
    times.sort()
    cpu.sort()
    return {"example": paths[0], "p50_ms": statistics.median(times), "p95_ms": times[int(0.95 * (len(times) - 1))],
            "max_ms": times[-1], "cpu_p50_ms": statistics.median(cpu), "cpu_p95_ms": cpu[int(0.95 * (len(cpu) - 1))],
            "requests": len(times), "mean_kb": statistics.fmean(sizes) / 1000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repos", type=int, default=10_000, help="repos to seed (10%% datasets)")
    parser.add_argument("--requests", type=int, default=200, help="timed requests per query kind")
    parser.add_argument("--db", help="a PostgreSQL URL to seed a fresh schema in (default: SQLite in a temp folder)")
    args = parser.parse_args()

    import httpx

    from fmhub.serve._live import running
    from fmhub.server import HubConfig, create_app
    from fmhub.store import Database, open_store

    rng = random.Random(0)
    with tempfile.TemporaryDirectory(prefix="fmhub-lineage-bench-") as tmp:
        db_url, schema = f"sqlite:///{Path(tmp) / 'fmhub.db'}", None
        if args.db:
            from sqlalchemy import create_engine

            schema = f"lineage_bench_{int(time.time())}"
            engine = create_engine(args.db)
            with engine.begin() as conn:
                conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
            engine.dispose()
            db_url = args.db + ("&" if "?" in args.db else "?") + f"options=-csearch_path%3D{schema},public"
        Database(db_url).upgrade()
        try:
            with open_store(db_url, (Path(tmp) / "blobs").as_uri()) as store:
                dialect = store.db.engine.dialect.name
                print(f"seeding {args.repos:,} repos ({dialect})…", flush=True)
                seeded = seed(store, args.repos, rng)
                names, kinds, datasets = seeded["names"], seeded["kinds"], seeded["datasets"]
                models = [n for n, k in zip(names, kinds, strict=True) if k == "model"]
                public = [n for i, n in enumerate(names) if i % 50 != 7 and kinds[i] == "model"]
                searches = []
                for _ in range(100):
                    name = rng.choice(models).split("/")[1]
                    size = rng.randint(3, 5)
                    at = rng.randrange(len(name) - size)
                    searches.append(f"/api/models?search={name[at:at + size]}&filter=dataset:"
                                    f"{names[rng.randrange(datasets)]}&sort=lastModified&limit=20")
                queries = {
                    "search + filter + sort (Hub list)": searches,
                    "metric filter + metric sort": [f"/api/fmhub/search?metric=accuracy>=0.9&on={names[rng.randrange(datasets)]}"
                                                    f":test&sort=metric:accuracy" for _ in range(100)],
                    "lineage, depth 5, both ways": [f"/api/fmhub/lineage/models/{rng.choice(public)}?depth=5"
                                                    for _ in range(100)],
                    "impact of a random dataset": [f"/api/fmhub/lineage/datasets/{names[i]}/impact"
                                                   for i in rng.sample(range(1, datasets), 100) if i % 50 != 7],
                    "impact of the hot dataset, first page": [f"/api/fmhub/lineage/datasets/{seeded['hot_dataset']}"
                                                              f"/impact"],
                    "impact of the hot dataset, page of 1000": [f"/api/fmhub/lineage/datasets/{seeded['hot_dataset']}"
                                                                f"/impact?limit=1000"],
                    "impact of the hot dataset, every node": [f"/api/fmhub/lineage/datasets/{seeded['hot_dataset']}"
                                                              f"/impact?limit=10000"],
                }
                results = {}
                with running(create_app(store, HubConfig(admin_token="fmhub_bench-admin-token-0123456789")),
                             ready_path=None) as url, httpx.Client(base_url=url, timeout=120) as client:
                    heaviest = client.get(queries["impact of the hot dataset, every node"][0]).json()
                    first_page = client.get(queries["impact of the hot dataset, first page"][0])
                    paged = first_page.json()["next_cursor"] is not None
                    assert first_page.json()["total"] == heaviest["total"] and paged == ("rel=\"next\"" in
                                                                                        first_page.headers.get("link", ""))
                    for name, paths in queries.items():
                        results[name] = _time(client, paths, args.requests)
        finally:
            if schema:
                from sqlalchemy import create_engine

                engine = create_engine(args.db)
                with engine.begin() as conn:
                    conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
                engine.dispose()
    seed_ok = "ok" if seeded["repos_per_second"] >= 2000 else "MISSED"
    print(f"\nsearch and lineage, {args.repos:,} repos, {seeded['edges']:,} lineage edges, {seeded['report_cards']:,} "
          f"report cards, {dialect}, one uvicorn worker ({platform.processor() or 'cpu'})")
    print(f"seeding: {seeded['seconds']:.1f} s = {seeded['repos_per_second']:,.0f} repos/s wall-clock "
          f"(goal ≥ 2,000 repos/s: {seed_ok}); {seeded['cpu_seconds']:.1f} s of this process's CPU = "
          f"{seeded['repos_per_cpu_second']:,.0f} repos per CPU-second (SQLite's work included, the server's "
          f"for PostgreSQL not)")
    print(f"machine load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; "
          f"the hot dataset's impact lists {heaviest['total']:,} descendants "
          f"(first page {len(first_page.json()['nodes']):,} nodes with the root)")
    print(f"{'query':44} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'CPU p50':>8} {'CPU p95':>8} {'kB':>7}  "
          f"goal p95 < 50 ms (wall / CPU)")
    for name, r in results.items():
        verdict = " / ".join("ok" if r[k] < 50 else "MISSED" for k in ("p95_ms", "cpu_p95_ms"))
        print(f"{name:44} {r['p50_ms']:8.1f} {r['p95_ms']:8.1f} {r['max_ms']:8.1f} {r['cpu_p50_ms']:8.1f} "
              f"{r['cpu_p95_ms']:8.1f} {r['mean_kb']:7.1f}  {verdict}")
    print("wall: from sending the request to the last byte, on loopback; CPU: this process's CPU time over the same "
          "span (server and client threads), which a loaded machine does not inflate")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / ("lineage_bench.json" if dialect == "sqlite" else f"lineage_bench_{dialect}.json")
    out.write_text(json.dumps({"repos": args.repos, "db": dialect, "requests": args.requests,
                               "seeding": {k: seeded[k] for k in ("seconds", "repos_per_second", "cpu_seconds",
                                                                  "repos_per_cpu_second", "edges", "report_cards",
                                                                  "hot_models")},
                               "load_average": os.getloadavg()[0], "cores": os.cpu_count(),
                               "heaviest_impact_nodes": heaviest["total"], "queries": results}, indent=2) + "\n")
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
