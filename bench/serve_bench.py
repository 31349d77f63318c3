"""Benchmark `fmhub serve` against a naive FastAPI server that calls a `transformers.pipeline` per request.

The BBC News fine-tuned all-MiniLM-L6-v2 of the shared store (`bench/_bbc.py`: `--home DIR` from
`train_bench.py --full --home DIR`, built first when absent). Three servers, one after the other, each
in its own process on a loopback port with the machine's cores:

- the anchor, written here: FastAPI + uvicorn, `pipeline("text-classification")` called in each request
  (a plain `def` route, so FastAPI runs it in its thread pool), truncating to the model's 512 tokens;
- `fmhub serve bench/bbc-minilm` (torch backend, dynamic batching: 32 inputs or 5 ms);
- `fmhub serve bench/bbc-minilm-onnx-int8` (the ONNX int8 variant `optimize_bench.py` makes; made here
  with `fmhub optimize quantize` when the store has none).

An async load generator (httpx, one process) keeps `c` requests in flight for `--seconds` at each
concurrency 1, 8 and 32, every request one BBC test article cut to its first `--words` words (about 128
tokens at 96 words); requests/s, p50/p99 latency and errors per server and concurrency.

    .venv/bin/python bench/serve_bench.py --home bench/.bbc-home
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import socket
import subprocess
import sys
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_home_options(parser, epochs=3.0)
    parser.add_argument("--seconds", type=float, default=20.0, help="load per concurrency level (default 20)")
    parser.add_argument("--words", type=int, default=96, help="words of each article sent (default 96)")
    parser.add_argument("--concurrency", default="1,8,32", help="levels, comma-separated (default 1,8,32)")
    args = parser.parse_args()
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
    console = Console(width=200)
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
    table = Table(title=f"Serving the BBC MiniLM: {args.words}-word articles, {args.seconds:g} s per level")
    for column in ("server", "concurrency", "req/s", "× naive", "p50 ms", "p99 ms", "errors"):
        table.add_column(column, justify="left" if column == "server" else "right")
    for name, levels_result in results.items():
        for level, r in levels_result.items():
            r["ratio"] = r["requests_per_second"] / naive[level]["requests_per_second"]
            table.add_row(name, str(level), f"{r['requests_per_second']:.1f}", f"{r['ratio']:.2f}×",
                          f"{r['p50_ms']:.0f}", f"{r['p99_ms']:.0f}", str(r["errors"]))
    console.print(table)
    top = max(levels)
    for name in list(results)[1:]:
        r, anchor = results[name][top], naive[top]
        met = r["ratio"] >= 4 and r["p99_ms"] <= anchor["p99_ms"] and r["errors"] == 0
        console.print(f"{'✔' if met else '✘'} {name} at c={top}: {r['ratio']:.2f}× the naive server's requests/s "
                      f"(goal ≥ 4×), p99 {r['p99_ms']:.0f} vs {anchor['p99_ms']:.0f} ms, {r['errors']} errors")
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    path = out / f"serve_bench-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps({"command": " ".join(sys.argv), "words": args.words, "seconds": args.seconds,
                                "results": results}, indent=2) + "\n")
    console.print(f"JSON written to {path}")


if __name__ == "__main__":
    main()
