"""Benchmark `fmhub serve` against a naive FastAPI server that calls a `transformers.pipeline` per request.

The BBC News fine-tuned all-MiniLM-L6-v2 of the shared store (`bench/_bbc.py`: `--home DIR` from
`train_bench.py --full --home DIR`, built first when absent). Three servers, one after the other, each
in its own process on a loopback port with the machine's cores:

- the anchor, written here: FastAPI + uvicorn, `pipeline("text-classification")` called in each request
  (a plain `def` route, so FastAPI runs it in its thread pool), truncating to the model's 512 tokens;
- `fmhub serve bench/bbc-minilm` (torch backend, dynamic batching: 32 inputs or 5 ms);
- `fmhub serve bench/bbc-minilm-onnx-int8` (the ONNX int8 variant `optimize_bench.py` makes; made here
  with `fmhub optimize quantize` when the store has none).

A load generator keeps `c` requests in flight for `--seconds` at each concurrency 1, 8 and 32, every
request one BBC test article cut to its first `--words` words (about 128 tokens at 96 words); requests/s,
p50/p99 latency and errors per server and concurrency. `--client wrk` (the default when Debian's `wrk`
is installed: `apt-get install wrk`) is a C load generator that needs a few percent of a core; `--client
httpx` is an asyncio client in this process, which on a 2-core machine takes CPU from the servers.
Before the servers, each served model's own ceiling is measured offline in a child process (the same
texts in batches of 32, no HTTP): the most inputs/s any server of that model could answer here.

    .venv/bin/python bench/serve_bench.py --home bench/.bbc-home
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np
from rich.console import Console
from rich.table import Table

from _bbc import add_home_options, bbc_home

_NAIVE = r"""
import sys
import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel
from transformers import pipeline
from fmhub.client import Hub
with Hub.open() as hub:
    folder = hub.download("bench/bbc-minilm", exclude=["eval/*"])
classifier = pipeline("text-classification", model=str(folder), device="cpu")
app = FastAPI()

class Body(BaseModel):
    inputs: str

@app.get("/readyz")
def ready():
    return {"status": "ready"}

@app.post("/v1/classify")
def classify(body: Body):
    return classifier(body.inputs, truncation=True)

uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start(argv: list[str], env: dict[str, str], port: int) -> subprocess.Popen:
    process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while True:
        if process.poll() is not None:
            raise SystemExit(f"{argv[:3]} failed:\n{process.communicate()[1][-3000:]}")
        if time.monotonic() > deadline:
            process.kill()
            raise SystemExit(f"{argv[:3]} did not become ready")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        time.sleep(0.2)


async def _load(url: str, texts: list[str], concurrency: int, seconds: float) -> dict[str, float]:
    """Keep ``concurrency`` requests in flight for ``seconds``; latency of each, errors counted."""
    latencies: list[float] = []
    errors = 0
    stop = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=120) as client:

        async def worker(offset: int) -> None:
            nonlocal errors
            i = offset
            while time.perf_counter() < stop:
                started = time.perf_counter()
                try:
                    answer = await client.post(url, json={"inputs": texts[i % len(texts)]})
                    ok = answer.status_code == 200
                except httpx.HTTPError:
                    ok = False
                latencies.append(time.perf_counter() - started)
                errors += not ok
                i += concurrency

        started = time.perf_counter()
        await asyncio.gather(*(worker(k) for k in range(concurrency)))
        elapsed = time.perf_counter() - started
    ms = np.asarray(latencies) * 1000
    return {"requests": len(latencies), "requests_per_second": len(latencies) / elapsed,
            "p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)), "errors": errors}


_WRK_SCRIPT = r"""
local bodies, i = {}, 0
init = function(args)
  for line in io.lines(args[1]) do bodies[#bodies + 1] = line end
end
request = function()
  i = i + 1
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, bodies[(i - 1) % #bodies + 1])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('{"requests": %d, "duration_us": %d, "errors": %d, "p50_us": %d, "p99_us": %d}\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


def _load_wrk(url: str, texts: list[str], concurrency: int, seconds: float, workdir: Path) -> dict[str, float]:
    """The same measurement with wrk (one thread, ``concurrency`` connections, each one request in flight)."""
    script, bodies = workdir / "post.lua", workdir / "bodies.jsonl"
    script.write_text(_WRK_SCRIPT)
    bodies.write_text("".join(json.dumps({"inputs": t}) + "\n" for t in texts))
    out = subprocess.run(["wrk", "-t1", f"-c{concurrency}", f"-d{seconds:g}s", "--timeout", "120s", "-s", str(script),
                          url, "--", str(bodies)], check=True, capture_output=True, text=True).stdout
    r = json.loads(out.strip().splitlines()[-1])
    return {"requests": r["requests"], "requests_per_second": r["requests"] / (r["duration_us"] / 1e6),
            "p50_ms": r["p50_us"] / 1000, "p99_ms": r["p99_us"] / 1000, "errors": r["errors"]}


_CEILING = r"""
import json, sys, time
import fmhub
loaded = fmhub.load(sys.argv[1])
texts = json.loads(sys.stdin.read())
def run(rows):
    for i in range(0, len(rows), 32):
        batch = loaded.tokenizer(rows[i:i + 32], truncation=True, max_length=512, padding=True, return_tensors="np")
        loaded.logits(batch["input_ids"], batch["attention_mask"])
run(texts[:64])  # warm-up
started = time.perf_counter()
run(texts)
print(len(texts) / (time.perf_counter() - started))
"""


def _ceiling(ref: str, texts: list[str], env: dict[str, str]) -> float:
    """Offline inputs/s of the model itself, batches of 32 in one process: what no server can exceed."""
    out = subprocess.run([sys.executable, "-c", _CEILING, ref], input=json.dumps(texts), env=env, check=True,
                         capture_output=True, text=True).stdout
    return float(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_home_options(parser, epochs=3.0)
    parser.add_argument("--seconds", type=float, default=20.0, help="load per concurrency level (default 20)")
    parser.add_argument("--words", type=int, default=96, help="words of each article sent (default 96)")
    parser.add_argument("--concurrency", default="1,8,32", help="levels, comma-separated (default 1,8,32)")
    parser.add_argument("--client", choices=("auto", "wrk", "httpx"), default="auto",
                        help="load generator (default auto: wrk when installed, else httpx)")
    args = parser.parse_args()
    client = args.client if args.client != "auto" else "wrk" if shutil.which("wrk") else "httpx"
    if client == "wrk" and not shutil.which("wrk"):
        raise SystemExit("--client wrk: wrk is not installed (apt-get install wrk), or use --client httpx")
    env = bbc_home(args)
    levels = [int(c) for c in args.concurrency.split(",")]
    fmhub_cli = str(Path(sys.executable).with_name("fmhub"))
    texts = json.loads(subprocess.run(
        [sys.executable, "-c", "import json, sys; from fmhub.data import load\n"
                               "print(json.dumps([' '.join(t.split()[:int(sys.argv[1])]) "
                               "for t in load('bench/bbc-news', split='test')['text']]))", str(args.words)],
        env=env, check=True, capture_output=True, text=True).stdout)
    has_int8 = subprocess.run([fmhub_cli, "ls", "bench/bbc-minilm-onnx-int8"], env=env, capture_output=True).returncode
    if has_int8 != 0:
        subprocess.run([fmhub_cli, "optimize", "quantize", "bench/bbc-minilm", "--backend", "onnx", "--output",
                        "bench/bbc-minilm-onnx-int8", "--no-eval"], env=env, check=True, capture_output=True)
    servers = {
        "naive FastAPI + transformers.pipeline": lambda port: [sys.executable, "-c", _NAIVE, str(port)],
        "fmhub serve (torch)": lambda port: [fmhub_cli, "serve", "bench/bbc-minilm", "--port", str(port),
                                             "--log-level", "warning"],
        "fmhub serve (onnx int8)": lambda port: [fmhub_cli, "serve", "bench/bbc-minilm-onnx-int8", "--port",
                                                 str(port), "--log-level", "warning"],
    }
    ceilings = {"fmhub serve (torch)": _ceiling("bench/bbc-minilm", texts, env),
                "fmhub serve (onnx int8)": _ceiling("bench/bbc-minilm-onnx-int8", texts, env)}
    console = Console(width=200)
    for name, value in ceilings.items():
        console.print(f"{name.removeprefix('fmhub serve ')} model offline, batches of 32: {value:.1f} inputs/s")
    results: dict[str, dict[int, dict[str, float]]] = {}
    for name, argv in servers.items():
        port = _port()
        process = _start(argv(port), env, port)
        try:
            url = f"http://127.0.0.1:{port}/v1/classify"
            for text in texts[:8]:  # warm-up
                httpx.post(url, json={"inputs": text}, timeout=120)
            results[name] = {}
            for level in levels:
                if client == "wrk":
                    with tempfile.TemporaryDirectory() as workdir:
                        results[name][level] = _load_wrk(url, texts, level, args.seconds, Path(workdir))
                else:
                    results[name][level] = asyncio.run(_load(url, texts, level, args.seconds))
                r = results[name][level]
                console.print(f"{name} · c={level}: {r['requests_per_second']:.1f} req/s, p50 {r['p50_ms']:.0f} ms, "
                              f"p99 {r['p99_ms']:.0f} ms, {r['errors']} errors")
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
    naive = results["naive FastAPI + transformers.pipeline"]
    table = Table(title=f"Serving the BBC MiniLM: {args.words}-word articles, {args.seconds:g} s per level, "
                        f"load from {client}")
    for column in ("server", "concurrency", "req/s", "× naive", "of ceiling", "p50 ms", "p99 ms", "errors"):
        table.add_column(column, justify="left" if column == "server" else "right")
    for name, levels_result in results.items():
        for level, r in levels_result.items():
            r["ratio"] = r["requests_per_second"] / naive[level]["requests_per_second"]
            share = f"{r['requests_per_second'] / ceilings[name]:.0%}" if name in ceilings else ""
            table.add_row(name, str(level), f"{r['requests_per_second']:.1f}", f"{r['ratio']:.2f}×", share,
                          f"{r['p50_ms']:.0f}", f"{r['p99_ms']:.0f}", str(r["errors"]))
    console.print(table)
    top = max(levels)
    for name in list(results)[1:]:
        r, anchor = results[name][top], naive[top]
        met = r["ratio"] >= 4 and r["p99_ms"] <= anchor["p99_ms"] and r["errors"] == 0
        console.print(f"{'✔' if met else '✘'} {name} at c={top}: {r['ratio']:.2f}× the naive server's requests/s "
                      f"(goal ≥ 4×), p99 {r['p99_ms']:.0f} vs {anchor['p99_ms']:.0f} ms, {r['errors']} errors; "
                      f"the model alone tops out at {ceilings[name] / anchor['requests_per_second']:.2f}× "
                      f"({ceilings[name]:.1f} inputs/s)")
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    path = out / f"serve_bench-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps({"command": " ".join(sys.argv), "client": client, "words": args.words,
                                "seconds": args.seconds, "ceilings": ceilings, "results": results},
                               indent=2) + "\n")
    console.print(f"JSON written to {path}")


if __name__ == "__main__":
    main()
