"""The hub app's own CPU per small-file download, in process: no sockets, no HTTP parser, no load generator.

Calls the hub's ASGI app directly, on one event loop, for ``GET /acme/tiny/resolve/main/config.json`` (the
~1 KB file of ``small_file_bench.py``), and reports the CPU time (``time.process_time``) per request: routing,
dependencies, access check, metadata reads, the response — what fmhub's code and its framework cost, which
the machine's load hardly moves (CPU time, not wall time). Each ``--src`` checkout runs in a child process of
its own, alternately, round by round; the per-round ratios to the first source are the figures to read.

Usage:
    .venv/bin/python bench/small_file_cpu_bench.py --src <older checkout>/src --src src --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_JSON = HERE / "results" / "small_file_cpu_bench.json"

_CHILD = """
import asyncio, json, sys, tempfile, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from small_file_bench import CONFIG, PATH
from fmhub.server import HubConfig, create_app
from fmhub.store import AddFile, open_store

requests = int(sys.argv[2])
work = Path(tempfile.mkdtemp(prefix="fmhub-cpu-"))
store = open_store(f"sqlite:///{work / 'fmhub.db'}", (work / "blobs").as_uri())
store.create_repo("acme/tiny")
blob = store.put_bytes(CONFIG)
store.commit("acme/tiny", [AddFile("config.json", blob.sha256, blob.size)], title="config", author="acme")
app = create_app(store, HubConfig())
scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
         "path": PATH, "raw_path": PATH.encode(), "query_string": b"", "root_path": "",
         "headers": [(b"host", b"127.0.0.1"), (b"accept", b"*/*")], "client": ("127.0.0.1", 1),
         "server": ("127.0.0.1", 80)}

async def one():
    sent = []
    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}
    async def send(message):
        sent.append(message)
    await app(dict(scope), receive, send)
    assert sent[0]["status"] == 200 and sent[1]["body"] == CONFIG, sent[0]

async def main():
    startup, events = asyncio.Queue(), asyncio.Queue()
    await startup.put({"type": "lifespan.startup"})
    life = asyncio.create_task(app({"type": "lifespan", "asgi": {"version": "3.0"}}, startup.get, events.put))
    await events.get()
    for _ in range(200):  # warm: caches, compiled statements, pooled connections
        await one()
    start = time.process_time()
    for _ in range(requests):
        await one()
    print(json.dumps({"cpu_us_per_request": (time.process_time() - start) / requests * 1e6}))
    await startup.put({"type": "lifespan.shutdown"})
    await life

asyncio.run(main())
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--src", type=Path, action="append", help="an fmhub source folder (repeat; default: ./src)")
    parser.add_argument("--requests", type=int, default=1000, help="requests timed per round (default 1000)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (default 3)")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = parser.parse_args()
    sources = args.src or [HERE.parent / "src"]
    runs: dict[str, list[float]] = {str(src): [] for src in sources}
    loads = []
    for _ in range(args.rounds):
        for src in sources:
            out = subprocess.run([sys.executable, "-c", _CHILD, str(HERE), str(args.requests)], check=True,
                                 capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(src)})
            runs[str(src)].append(json.loads(out.stdout.strip().splitlines()[-1])["cpu_us_per_request"])
            loads.append(os.getloadavg()[0])
    first = runs[str(sources[0])]
    print(f"CPU per small-file GET in process, {args.requests} requests × {args.rounds} rounds; load average "
          f"{min(loads):.1f}–{max(loads):.1f}")
    print(f"{'source':50} {'µs/request (median)':>20}  per-round ratio to the first")
    rows = []
    for src, values in runs.items():
        ratios = [v / f for v, f in zip(values, first, strict=True)]
        rows.append({"src": src, "cpu_us": values, "median_us": statistics.median(values), "of_first": ratios})
        print(f"{src[-50:]:50} {statistics.median(values):20.0f}  " + " ".join(f"{r:.2f}" for r in ratios))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"requests": args.requests, "rows": rows, "load_average": loads}, indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
