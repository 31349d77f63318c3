"""Benchmark `fmhub optimize auto` on the BBC model: the pick's speed within 0.5 accuracy points, against
Hugging Face Optimum's int8 and the naive server.

The BBC News fine-tuned all-MiniLM-L6-v2 of the shared store (`bench/_bbc.py`: `--home DIR` from
`train_bench.py --full --home DIR`, built first when absent), at the length it was trained at. In one run:

1. `fmhub optimize auto bench/bbc-minilm --max-drop 0.5 --budget-minutes N --output bench/bbc-minilm-fast`
   in a child process (its progress shown as it goes), timed: the search must end within the budget.
2. Optimum (`optimum-onnx`, in its own environment: it pins transformers < 4.58, which fmhub's venv must not get;
   `--optimum-python`, default `bench/.bench-venv/bin/python`): `ORTModelForSequenceClassification` export of the
   same parent, `ORTOptimizer` at O2 then `ORTQuantizer` with `AutoQuantizationConfig.avx512_vnni(is_static=False,
   per_channel=False)` (its documented dynamic int8; when ONNX Runtime cannot quantize the O2 graph, the plain
   export is quantized, as Optimum's quick start does, and the JSON says so).
3. One child process loads the parent, the pick, fmhub's ONNX int8 (the search's `int8` candidate, per channel, and
   `int8-per-tensor`, Optimum's own setting) and Optimum's
   int8 (an ONNX Runtime session with its default options, as `ORTModel` opens it), and times them interleaved —
   model after model, round after round — so load on the shared machine falls on all alike: batch-1 p50 over `--latency-rows` test rows, batch-32 rows/s over the test
   split, test accuracy. Each reads at its own length (the parent and the int8 models at the parent's, the pick at
   the one it was picked at).
4. Serving (`--seconds` per level and server): the naive FastAPI + `transformers.pipeline` server of
   `serve_bench.py`, `fmhub serve` of the pick, and `fmhub serve` of the torch parent (the batching fix: at c = 1 no
   slower than the naive server), at c = 1 and 32, with wrk when installed (`apt-get install wrk`), else an httpx
   client. The servers run side by side and take turns, 3 rounds of a third of `--seconds` each (whole seconds for
   wrk).

Optimum's environment (once; its packages first, fmhub's venv — torch 2.13.0 included — behind them):

    python3 -m venv --without-pip bench/.bench-venv
    .venv/bin/python -c 'import site; print(site.getsitepackages()[0])' \
        > bench/.bench-venv/lib/python3.11/site-packages/zz_fmhub.pth
    .venv/bin/python -m pip --python bench/.bench-venv/bin/python install optimum-onnx==0.1.0 optimum==2.1.0 \
        transformers==4.57.6 torch==2.13.0 onnxruntime==1.32.0 onnx==1.23.2

    .venv/bin/python bench/auto_bench.py --home bench/.bbc-home                 # the full goal run (~30 min search)
    .venv/bin/python bench/auto_bench.py --home bench/.bbc-home --reduced       # a short search (see --reduced)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

from _bbc import add_home_options, bbc_home
from serve_bench import _NAIVE, _load, _load_wrk, _port, _start

#: --reduced: a search a loaded 2-core machine finishes in minutes: int8 and ONNX fp32, one 3-layer student trained a
#: quarter epoch (then int8), the pick's card without the robustness and slice sections.
REDUCED = ["--skip", "prune-heads,prune-neurons,static-int8,torch-int8,int8-per-tensor", "--student-layers", "3",
           "--distill-epochs", "0.25", "--eval-skip", "robustness,slices"]

_OPTIMUM = r"""
import json, sys, time
from pathlib import Path
from optimum.onnxruntime import ORTModelForSequenceClassification, ORTOptimizer, ORTQuantizer
from optimum.onnxruntime.configuration import AutoOptimizationConfig, AutoQuantizationConfig
folder, out = sys.argv[1], Path(sys.argv[2])
began = time.perf_counter()
model = ORTModelForSequenceClassification.from_pretrained(folder, export=True)
model.save_pretrained(out / "fp32")
config = AutoQuantizationConfig.avx512_vnni(is_static=False, per_channel=False)
note = "ORTOptimizer O2, then ORTQuantizer avx512_vnni dynamic per-tensor"
try:
    ORTOptimizer.from_pretrained(model).optimize(save_dir=out / "o2", optimization_config=AutoOptimizationConfig.O2())
    ORTQuantizer.from_pretrained(out / "o2", file_name="model_optimized.onnx").quantize(save_dir=out / "int8",
                                                                                      quantization_config=config)
except Exception as exc:
    note = (f"ORTQuantizer failed on the O2 graph ({type(exc).__name__}: {str(exc)[:160]}); quantized the plain "
            "export (Optimum's quick start), avx512_vnni dynamic per-tensor")
    ORTQuantizer.from_pretrained(model).quantize(save_dir=out / "int8", quantization_config=config)
path = next((out / "int8").glob("*.onnx"))
print(json.dumps({"path": str(path), "note": note, "seconds": time.perf_counter() - began}))
"""

_MEASURE = r"""
import json, sys, time
import numpy as np
import torch
import fmhub
from fmhub.data import load
spec = json.loads(sys.argv[1])
threads = spec["threads"]
torch.set_num_threads(threads)
test = load(spec["data"], split="test")
texts, gold = list(test["text"]), np.asarray(test["label"])
parent = fmhub.load(spec["parent"], threads=threads)
models = {name: fmhub.load(ref, threads=threads) for name, ref in spec["fmhub"].items()}
tokenizer = parent.tokenizer
if spec.get("optimum"):
    import onnxruntime
    options = onnxruntime.SessionOptions()  # as ORTModel opens it: ONNX Runtime's defaults (all optimizations)
    options.intra_op_num_threads = threads  # the threads fmhub's sessions use
    ort = onnxruntime.InferenceSession(spec["optimum"], options, providers=["CPUExecutionProvider"])
    inputs = {i.name for i in ort.get_inputs()}
    class Optimum:
        def logits(self, batch):
            feed = {k: np.asarray(v, dtype=np.int64) for k, v in batch.items() if k in inputs}
            if "token_type_ids" in inputs and "token_type_ids" not in feed:
                feed["token_type_ids"] = np.zeros_like(feed["input_ids"])
            return ort.run(None, feed)[0]
    models["Optimum int8"] = Optimum()
lengths = spec["lengths"]
def encode(name, rows):
    return dict(tokenizer(rows, truncation=True, max_length=lengths.get(name, spec["length"]), padding=True,
                          return_tensors="np"))
out = {name: {"length": lengths.get(name, spec["length"])} for name in models}
# Model after model in each round (A B C D, A B C D, ...): load drifts over the run fall on every model alike, and
# one model's thread pool winding down does not land in another's timing row by row.
batches = {name: [encode(name, texts[i:i + 32]) for i in range(0, len(texts), 32)] for name in models}
singles = {name: [encode(name, [t]) for t in texts[:spec["latency_rows"]]] for name in models}
seconds = {name: [] for name in models}
times = {name: [] for name in models}
predictions = {}
for round_ in range(spec["rounds"] + 1):
    for name, model in models.items():
        for batch in singles[name][:2]:
            model.logits(batch)  # warm-up of this block
        if round_ == 0:
            predicted = np.concatenate([model.logits(b).argmax(-1) for b in batches[name]])
            out[name]["accuracy"] = float((predicted == gold).mean())
            out[name]["correct"] = int((predicted == gold).sum())
            predictions[name] = predicted
            continue
        began = time.perf_counter()
        for batch in batches[name]:
            model.logits(batch)
        seconds[name].append(time.perf_counter() - began)
        for batch in singles[name]:
            began = time.perf_counter()
            model.logits(batch)
            times[name].append((time.perf_counter() - began) * 1000)
for name in models:
    # fidelity: the test rows whose prediction is the parent's (a quantized model's accuracy moves with its flips)
    out[name]["agreement_with_parent"] = float(np.mean(predictions[name] == predictions["parent"]))
    out[name]["batch32_rows_per_s"] = len(texts) / float(np.median(seconds[name]))
    out[name]["batch1_p50_ms"] = float(np.median(times[name]))
print(json.dumps(out))
"""


def _child_json(argv: list[str], env: dict[str, str]) -> dict:
    out = subprocess.run(argv, env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def _search_result(env: dict[str, str], output: str) -> dict:
    code = ("import json\nfrom fmhub.client import Hub\nwith Hub.open() as hub:\n"
            f"    s = json.loads(hub.read_bytes({output!r}, 'auto/search.json'))\n"
            f"    cards = [c for c in hub.list_evaluations(model={output!r}, limit=50)]\n"
            f"    head = hub.repo_info({output!r}).commit.oid\n"
            "    card = next((c for c in cards if c.card_commit == head), None)\n"
            "print(json.dumps({'search': s, 'test': card.metrics if card else None}))")
    return _child_json([sys.executable, "-c", code], env)


def _serve(servers: dict[str, list[str]], env: dict[str, str], texts: list[str], levels: list[int], seconds: float,
           client: str, console: Console, rounds: int = 3) -> dict[str, dict[int, dict[str, float]]]:
    """Every server up at once; at each level, ``rounds`` rounds of ``seconds / rounds`` each, server after server, so
    a moment of load falls on all alike. Per server and level: requests/s over all rounds, the median round's p50,
    the worst round's p99, the errors, and each round's requests/s."""
    processes, urls = {}, {}
    try:
        for name, argv in servers.items():
            port = _port()
            processes[name] = _start([*argv, str(port)] if "-c" in argv else [*argv, "--port", str(port)], env, port)
            urls[name] = f"http://127.0.0.1:{port}/v1/classify"
            for text in texts[:8]:  # warm-up
                httpx.post(urls[name], json={"inputs": text}, timeout=120)
        runs: dict[str, dict[int, list[dict[str, float]]]] = {name: {level: [] for level in levels} for name in servers}
        for level in levels:
            for _ in range(rounds):
                for name, url in urls.items():
                    if client == "wrk":
                        with tempfile.TemporaryDirectory() as workdir:
                            r = _load_wrk(url, texts, level, max(1, round(seconds / rounds)), Path(workdir))
                    else:
                        r = asyncio.run(_load(url, texts, level, seconds / rounds))
                    runs[name][level].append(r)
        results: dict[str, dict[int, dict[str, float]]] = {}
        for name in servers:
            results[name] = {}
            for level, parts in runs[name].items():
                rates = [r["requests_per_second"] for r in parts]
                r = {"requests_per_second": sum(rates) / len(rates), "rounds": rates,
                     "p50_ms": sorted(p["p50_ms"] for p in parts)[len(parts) // 2],
                     "p99_ms": max(p["p99_ms"] for p in parts), "errors": sum(p["errors"] for p in parts)}
                results[name][level] = r
                console.print(f"{name} · c={level}: {r['requests_per_second']:.1f} req/s (rounds "
                              f"{', '.join(f'{v:.1f}' for v in rates)}), p50 {r['p50_ms']:.0f} ms, "
                              f"p99 {r['p99_ms']:.0f} ms, {r['errors']} errors")
        return results
    finally:
        for process in processes.values():
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_home_options(parser, epochs=3.0)
    parser.add_argument("--budget-minutes", type=float, default=30.0, help="the search's budget (default 30)")
    parser.add_argument("--max-drop", type=float, default=0.5, help="accuracy points the pick may lose (default 0.5)")
    parser.add_argument("--reduced", action="store_true", help=f"a short search: {' '.join(REDUCED)}")
    parser.add_argument("--search-option", action="append", default=[],
                        help="more options for fmhub optimize auto (repeat), e.g. --search-option=--threads=2")
    parser.add_argument("--optimum-python", type=Path, default=Path(__file__).parent / ".bench-venv" / "bin" / "python",
                        help="a Python with optimum-onnx installed (see the docstring)")
    parser.add_argument("--latency-rows", type=int, default=32, help="test rows timed at batch 1 (default 32)")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds, model after model (default 3)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                        help="CPU threads of every model in the search and the timing (default: the cores); on a "
                             "loaded machine 1 keeps torch's thread pool from stalling")
    parser.add_argument("--seconds", type=float, default=20.0, help="serving load per level (default 20)")
    parser.add_argument("--words", type=int, default=96, help="words of each article sent to the servers (default 96)")
    parser.add_argument("--concurrency", default="1,32", help="serving levels (default 1,32)")
    parser.add_argument("--client", choices=("auto", "wrk", "httpx"), default="auto")
    parser.add_argument("--no-serve", action="store_true", help="skip the serving comparison")
    parser.add_argument("--model", default="bench/bbc-minilm",
                        help="the parent in the store of --home (default bench/bbc-minilm; make demo's: demo/bbc-minilm)")
    parser.add_argument("--data", default="bench/bbc-news", help="its dataset (default bench/bbc-news)")
    args = parser.parse_args()
    model, output = args.model, f"{args.model}-fast"
    console = Console(width=200)
    env = bbc_home(args)
    fmhub_cli = str(Path(sys.executable).with_name("fmhub"))
    result: dict = {"command": " ".join(sys.argv), "date": datetime.now(UTC).isoformat()}

    # 1. the search
    argv = [fmhub_cli, "optimize", "auto", model, "--output", output, "--max-drop",
            str(args.max_drop), "--budget-minutes", str(args.budget_minutes), "--threads", str(args.threads),
            *(REDUCED if args.reduced else []),
            *args.search_option]
    console.print(f"$ {' '.join(argv[1:])}")
    began = time.monotonic()
    subprocess.run(argv, env=env, check=True)
    search_seconds = time.monotonic() - began
    found = _search_result(env, output)
    search, test = found["search"], found["test"]
    pick, parent = search["pick"], search["parent"]
    result["search"] = {"seconds": search_seconds, "budget_minutes": args.budget_minutes, "pick": pick["name"],
                        "candidate": pick["ref"], "measured": len(search["candidates"]),
                        "unmeasured": [(r["name"], r["status"]) for r in search["unmeasured"]],
                        "validation": {"parent": parent, "pick": pick}, "pick_test_metrics": test}

    # 2. Optimum's int8 of the same parent
    optimum = None
    folder = _child_json([sys.executable, "-c", "import json\nfrom fmhub.client import Hub\nwith Hub.open() as h:\n"
                          f"    print(json.dumps({{'folder': str(h.download({model!r}, exclude=['eval/*']))}}))"],
                         env)["folder"]
    workdir = Path(tempfile.mkdtemp(prefix="auto-bench-optimum-"))
    if args.optimum_python.exists():
        clean = {k: v for k, v in env.items() if k != "PYTHONPATH"}
        optimum = _child_json([str(args.optimum_python), "-c", _OPTIMUM, folder, str(workdir)], clean)
        console.print(f"Optimum: {optimum['note']} ({optimum['seconds']:.0f} s)")
    else:
        console.print(f"[yellow]no Optimum anchor: {args.optimum_python} is missing[/]")
    result["optimum"] = optimum

    # 3. interleaved measurement
    # fmhub's ONNX int8 as the search built it (per channel), and per tensor: Optimum's avx512_vnni setting
    int8s = {"fmhub ONNX int8": "int8", "fmhub ONNX int8 per tensor": "int8-per-tensor"}
    models = {"parent": model, "fmhub auto pick": output}
    for label, name in int8s.items():
        ref = next((r["ref"] for r in search["candidates"] if r["name"] == name), None)
        if ref:
            models[label] = ref
    spec = {"parent": model, "data": args.data, "fmhub": models, "optimum": optimum and optimum["path"],
            "length": parent["max_length"], "lengths": {"fmhub auto pick": pick["max_length"]},
            "latency_rows": args.latency_rows, "rounds": args.rounds, "threads": args.threads}
    measured = _child_json([sys.executable, "-c", _MEASURE, json.dumps(spec)], env)
    base = measured["parent"]
    table = Table(title=f"BBC MiniLM, test split, interleaved in one process (parent at {parent['max_length']} "
                        "tokens)")
    for column in ("model", "length", "test accuracy", "Δ points", "as the parent", "batch-1 p50 ms", "× parent",
                   "batch-32 rows/s", "× parent"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for name, r in measured.items():
        r["batch1_speedup"] = base["batch1_p50_ms"] / r["batch1_p50_ms"]
        r["batch32_ratio"] = r["batch32_rows_per_s"] / base["batch32_rows_per_s"]
        table.add_row(name, str(r["length"]), f"{r['accuracy']:.2%}",
                      f"{(r['accuracy'] - base['accuracy']) * 100:+.2f}", f"{r['agreement_with_parent']:.2%}",
                      f"{r['batch1_p50_ms']:.2f}", f"{r['batch1_speedup']:.2f}×", f"{r['batch32_rows_per_s']:.1f}",
                      f"{r['batch32_ratio']:.2f}×")
    console.print(table)
    result["models"] = measured
    shutil.rmtree(workdir, ignore_errors=True)

    # 4. serving
    if not args.no_serve:
        client = args.client if args.client != "auto" else "wrk" if shutil.which("wrk") else "httpx"
        texts = _child_json([sys.executable, "-c", "import json, sys; from fmhub.data import load\n"
                             "print(json.dumps([' '.join(t.split()[:int(sys.argv[1])]) "
                             "for t in load(sys.argv[2], split='test')['text']]))", str(args.words), args.data], env)
        naive = _NAIVE.replace('"bench/bbc-minilm"', json.dumps(model))
        servers = {"naive FastAPI + transformers.pipeline": [sys.executable, "-c", naive],
                   "fmhub serve (auto pick)": [fmhub_cli, "serve", output, "--log-level", "warning"],
                   "fmhub serve (torch parent)": [fmhub_cli, "serve", model, "--log-level", "warning"]}
        levels = [int(c) for c in args.concurrency.split(",")]
        served = _serve(servers, env, texts, levels, args.seconds, client, console)
        naive = served["naive FastAPI + transformers.pipeline"]
        table = Table(title=f"Serving: {args.words}-word articles, {args.seconds:g} s per level, load from {client}")
        for column in ("server", "c", "req/s", "× naive", "p50 ms", "p99 ms", "errors"):
            table.add_column(column, justify="left" if column == "server" else "right")
        for name, per_level in served.items():
            for level, r in per_level.items():
                r["ratio"] = r["requests_per_second"] / naive[level]["requests_per_second"]
                table.add_row(name, str(level), f"{r['requests_per_second']:.1f}", f"{r['ratio']:.2f}×",
                              f"{r['p50_ms']:.0f}", f"{r['p99_ms']:.0f}", str(r["errors"]))
        console.print(table)
        result["serving"] = {"client": client, "words": args.words, "seconds": args.seconds, "results": served}

    # the goals
    pick_row = measured["fmhub auto pick"]
    goals = [(pick_row["accuracy"] >= base["accuracy"] - 0.005 and pick_row["batch1_speedup"] >= 4,
              f"pick {pick['name']}: test accuracy {pick_row['accuracy']:.2%} vs parent {base['accuracy']:.2%}, "
              f"batch-1 {pick_row['batch1_speedup']:.2f}× the parent (goal ≥ 4× within 0.5 points)"),
             (search_seconds <= args.budget_minutes * 60,
              f"search took {search_seconds / 60:.1f} min (budget {args.budget_minutes:g} min)")]
    for label in int8s:
        int8_row, o = measured.get(label), measured.get("Optimum int8")
        if int8_row and o:
            goals.append((int8_row["batch1_p50_ms"] <= o["batch1_p50_ms"] and
                          int8_row["batch32_rows_per_s"] >= o["batch32_rows_per_s"] and
                          int8_row["accuracy"] >= o["accuracy"],
                          f"{label} vs Optimum int8: batch-1 {o['batch1_p50_ms'] / int8_row['batch1_p50_ms']:.2f}×,"
                          f" batch-32 {int8_row['batch32_rows_per_s'] / o['batch32_rows_per_s']:.2f}×, accuracy "
                          f"{int8_row['accuracy']:.2%} vs {o['accuracy']:.2%} (goal: ≥ 1×, ≥ 1×, ≥); as the parent on "
                          f"{int8_row['agreement_with_parent']:.2%} vs {o['agreement_with_parent']:.2%} of the rows"))
    if "serving" in result:
        top, low = max(levels), min(levels)
        p, n, t = served["fmhub serve (auto pick)"], naive, served["fmhub serve (torch parent)"]
        goals.append((p[top]["ratio"] >= 4 and p[top]["p99_ms"] <= n[top]["p99_ms"] and p[top]["errors"] == 0,
                      f"fmhub serve (pick) at c={top}: {p[top]['ratio']:.2f}× the naive server, p99 "
                      f"{p[top]['p99_ms']:.0f} vs {n[top]['p99_ms']:.0f} ms, {p[top]['errors']} errors (goal ≥ 4×)"))
        goals.append((t[low]["ratio"] >= 1, f"fmhub serve (torch) at c={low}: {t[low]['ratio']:.2f}× the naive "
                                            "server (goal ≥ 1×)"))
    for met, text in goals:
        console.print(f"{'✔' if met else '✘'} {text}")
    result["goals"] = [{"met": m, "text": t} for m, t in goals]
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    path = out / f"auto_bench-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    console.print(f"JSON written to {path}")


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
