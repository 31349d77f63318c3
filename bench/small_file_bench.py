"""Small-file load on the hub: 64 keep-alive clients fetching a ~1 KB ``config.json`` from one worker.

Every ``from_pretrained`` asks for several small files (HEAD first, then GET), so requests per second on a
small file is what many clients at once feel. Side by side in one run, each server on the same port
range, one worker, the same load generator (``_hub_load.py``'s raw HTTP/1.1 client, in its own process):

    server                     what it is
    bare FastAPI               a route returning the same bytes: the framework's own ceiling (the anchor)
    fmhub                      the hub from ``--src`` (this checkout by default)
    fmhub (baseline)           the hub from ``--baseline-src`` (e.g. a checkout of main), when given

Each server runs once with uvicorn's pure-Python stack (h11, asyncio) and, when ``httptools`` and ``uvloop``
are installed (fmhub depends on them) or ``--fast-libs`` names a folder holding them, once more with them.
Rounds alternate servers so load on the machine hits all of them alike; the figures to read are the ratios
within a round (each server against the anchor, fmhub against the baseline, measured back to back), with the
server's CPU time per request (from /proc: the server process only, not the load generator) and the load
average; absolute rates move with the machine's load. A last request sends ``If-None-Match`` with the ETag (a
client's revalidation: 304).

Usage:
    .venv/bin/python bench/small_file_bench.py --duration 5 --rounds 2
    .venv/bin/python bench/small_file_bench.py --baseline-src <an older checkout>/src --rounds 4
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _hub_load import child_load  # noqa: E402

DEFAULT_JSON = HERE / "results" / "small_file_bench.json"
REPO = "acme/tiny"
PATH = f"/{REPO}/resolve/main/config.json"
CONFIG = json.dumps({
    "architectures": ["BertForSequenceClassification"], "attention_probs_dropout_prob": 0.1,
    "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "hidden_size": 32, "initializer_range": 0.02,
    "intermediate_size": 37, "layer_norm_eps": 1e-12, "max_position_embeddings": 512, "model_type": "bert",
    "num_attention_heads": 4, "num_hidden_layers": 2, "pad_token_id": 0, "type_vocab_size": 2,
    "vocab_size": 1124, "id2label": {str(i): f"LABEL_{i}" for i in range(12)},
    "label2id": {f"LABEL_{i}": i for i in range(12)}, "torch_dtype": "float32", "transformers_version": "5.23.0",
}, indent=2).encode()

_HUB = """
import sys, uvicorn
from fmhub.server import HubConfig, create_app
from fmhub.store import open_store
store = open_store(sys.argv[1], sys.argv[2])
uvicorn.run(create_app(store, HubConfig()), host="127.0.0.1", port=int(sys.argv[3]), log_level="warning",
            access_log=False, loop=sys.argv[4], http=sys.argv[5])
"""
_BARE = """
import sys, uvicorn
from fastapi import FastAPI
from fastapi.responses import Response
data = open(sys.argv[1], "rb").read()
app = FastAPI()
@app.api_route("/acme/tiny/resolve/main/config.json", methods=["GET", "HEAD"])
def config() -> Response:
    return Response(data, media_type="application/octet-stream", headers={"ETag": '"x"'})
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[3]), log_level="warning", access_log=False,
            loop=sys.argv[4], http=sys.argv[5])
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _make_store(folder: Path, src: Path) -> tuple[str, str]:
    db, blobs = f"sqlite:///{folder / 'fmhub.db'}", (folder / "blobs").as_uri()
    script = ("import sys\nfrom fmhub.store import open_store, AddFile\n"
              "s = open_store(sys.argv[1], sys.argv[2])\ns.create_repo('acme/tiny')\n"
              "b = s.put_bytes(open(sys.argv[3], 'rb').read())\n"
              "s.commit('acme/tiny', [AddFile('config.json', b.sha256, b.size)], title='config', author='acme')\n")
    (folder / "config.json").write_bytes(CONFIG)
    subprocess.run([sys.executable, "-c", script, db, blobs, str(folder / "config.json")], check=True,
                   env={**os.environ, "PYTHONPATH": str(src)})
    return db, blobs


class _Server:
    def __init__(self, label: str, script: str, args: list[str], pythonpath: list[str], fast: bool) -> None:
        self.label, self.port = label, _free_port()
        loop, http = ("uvloop", "httptools") if fast else ("asyncio", "h11")
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(pythonpath)}
        self.process = subprocess.Popen([sys.executable, "-c", script, *args, str(self.port), loop, http], env=env)
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if httpx.get(self.url + PATH, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise RuntimeError(f"{label} did not start")

    def cpu_seconds(self) -> float:
        """User + system CPU time the server process has used so far (Linux /proc)."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


def _load(server: _Server, concurrency: int, warmup: float, duration: float) -> dict:
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        cpu_before = server.cpu_seconds()
        result = pool.apply(child_load, ({"url": server.url + PATH, "concurrency": concurrency, "client": "raw",
                                          "warmup": warmup, "duration": duration, "expected": len(CONFIG)},))
        server_cpu = server.cpu_seconds() - cpu_before
    # The server's CPU over the whole load (warm-up included) per request answered in it: ok counts the
    # window only, so scale it by the window's share of the load's wall time.
    answered = result["ok"] * result["wall_s"] / duration if result["ok"] else 0
    result["server_cpu_ms_per_request"] = server_cpu * 1000 / answered if answered else None
    result["load_average"] = os.getloadavg()[0]
    return result


def _fast_libs_installed() -> bool:
    import importlib.util

    return all(importlib.util.find_spec(name) is not None for name in ("httptools", "uvloop"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--src", type=Path, default=HERE.parent / "src", help="fmhub source folder to measure")
    parser.add_argument("--baseline-src", type=Path, help="another fmhub source folder, measured alongside")
    parser.add_argument("--fast-libs", type=Path, help="a folder holding httptools and uvloop (pip --target)")
    parser.add_argument("--concurrency", type=int, default=64, help="keep-alive clients (default 64)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds counted per measurement")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds before counting starts")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds; the median is reported")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="fmhub-small-"))
    (work / "new").mkdir()
    stores = {"fmhub": _make_store(work / "new", args.src)}
    if args.baseline_src:
        (work / "old").mkdir()
        stores["fmhub (baseline)"] = _make_store(work / "old", args.baseline_src)
    stacks = [False] + ([True] if args.fast_libs or _fast_libs_installed() else [])
    servers: list[_Server] = []
    try:
        for fast in stacks:
            extra = [str(args.fast_libs)] if fast else []
            suffix = " +httptools/uvloop" if fast else ""
            servers.append(_Server("bare FastAPI" + suffix, _BARE, [str(work / "new" / "config.json"), "-"],
                                   extra, fast))
            for label, (db, blobs) in stores.items():
                src = args.src if label == "fmhub" else args.baseline_src
                servers.append(_Server(label + suffix, _HUB, [db, blobs], [str(src), *extra], fast))
        etag = httpx.get(servers[1].url + PATH).headers.get("etag")
        results: dict[str, list[dict]] = {s.label: [] for s in servers}
        for _ in range(args.rounds):
            for server in servers:
                results[server.label].append(_load(server, args.concurrency, args.warmup, args.duration))
        revalidate = httpx.get(servers[1].url + PATH, headers={"If-None-Match": etag or ""})
    finally:
        for server in servers:
            server.stop()

    rows = []
    for label, runs in results.items():
        rates = [r["ok"] / args.duration for r in runs]
        errors = sum(sum(r["errors"].values()) for r in runs)
        p50 = statistics.median(r["latency_ms"]["p50"] for r in runs)
        cpu = [r["server_cpu_ms_per_request"] for r in runs if r["server_cpu_ms_per_request"] is not None]
        rows.append({"server": label, "req_s": statistics.median(rates), "rates": rates, "errors": errors,
                     "p50_ms": p50, "cpu_ms_per_request": statistics.median(cpu) if cpu else None,
                     "load_average": [r["load_average"] for r in runs]})
    by_label = {row["server"]: row for row in rows}

    def pair_ratios(label: str, anchor: str) -> list[float]:
        """Per round: this server's rate over the anchor's, measured back to back in that round."""
        return [a / b for a, b in zip(by_label[label]["rates"], by_label[anchor]["rates"], strict=True) if b]

    loads = [la for row in rows for la in row["load_average"]]
    print(f"{args.concurrency} clients, ~{len(CONFIG)} B config.json, one worker, {args.rounds} rounds × "
          f"{args.duration:g} s; load average {min(loads):.1f}–{max(loads):.1f}")
    print(f"{'server':34} {'req/s':>7} {'CPU ms/req':>10} {'p50 ms':>7} {'errors':>6}  per-round ratios")
    for row in rows:
        fast = " +httptools/uvloop" if "+httptools" in row["server"] else ""
        anchor = "bare FastAPI" + fast
        row["of_anchor"] = pair_ratios(row["server"], anchor)
        pairs = [("of bare", row["of_anchor"])] if row["server"] != anchor else []
        baseline = "fmhub (baseline)"
        if row["server"].startswith("fmhub") and not row["server"].startswith(baseline) and baseline in by_label:
            row["of_baseline_h11"] = pair_ratios(row["server"], baseline)
            pairs.append(("of baseline h11", row["of_baseline_h11"]))
        cpu = row["cpu_ms_per_request"]
        text = "; ".join(f"{name} " + " ".join(f"{r:.2f}" for r in ratios) for name, ratios in pairs)
        print(f"{row['server']:34} {row['req_s']:7.0f} {cpu if cpu is not None else float('nan'):10.2f} "
              f"{row['p50_ms']:7.1f} {row['errors']:6}  {text}")
    print(f"If-None-Match with the ETag: HTTP {revalidate.status_code}, {len(revalidate.content)} body bytes")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"concurrency": args.concurrency, "duration": args.duration, "rows": rows,
                                     "revalidate_status": revalidate.status_code}, indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
