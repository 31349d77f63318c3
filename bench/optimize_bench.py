"""Benchmark `fmhub optimize`: every variant of the BBC News fine-tuned all-MiniLM-L6-v2, side by side.

Uses the store the training benchmark kept (`bench/train_bench.py --full --home DIR`), which holds
`bench/bbc-minilm` (the fine-tuned 6-layer MiniLM) and `bench/bbc-news` (stratified 80/10/10, seed 0);
without `--home` it builds one first (tens of minutes on 2 cores). Then, with the `fmhub` CLI, each a
new model version naming its parent and carrying a report card against it (robustness, slices and
baseline sections skipped to save time):

- ONNX fp32 (`export-onnx`, ORT graph fusions), ONNX int8 and torch int8 (`quantize --method dynamic-int8`),
- a 3-layer student distilled from it (`distill --student-layers 3`, every other layer, T=2, alpha=0.5),
- 50% pruned: unstructured magnitude and whole FFN neurons, each with a recovery fine-tune (`--finetune-steps`).

Then each version is measured in a child process of its own (one model's thread pool per process: torch's
OpenMP threads and ONNX Runtime's both spin after work and slow each other down when they share one),
the versions one after the other in `--rounds` rounds (so drift in the machine hits all of them; each
figure is the mean over rounds): `fmhub.load`, batch-1 latency over the first `--latency-rows` test
articles, batch-32 throughput and accuracy over the whole test split, all at 256 tokens (as trained),
and the bytes of the weight files. Prints a table, writes JSON. `--reuse` measures the variants the
store already holds (each repo's head) instead of building them again.

    .venv/bin/python bench/optimize_bench.py --home bench/.bbc-home
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table

from _bbc import add_home_options, bbc_home

_MEASURE = r"""
import json, sys, time
import numpy as np, torch
import datasets, transformers
import fmhub
from fmhub.data import load
from fmhub.evaluate._efficiency import WEIGHT_SUFFIXES
datasets.disable_progress_bars(); transformers.utils.logging.set_verbosity_error()
ref, latency_rows, max_length = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
model = fmhub.load(ref)
test = load("bench/bbc-news", split="test")
texts, gold = list(test["text"]), np.asarray(list(test["label"]))
rows = [model.tokenizer([t], truncation=True, max_length=max_length, return_tensors="np") for t in texts[:latency_rows]]
for row in rows[:3]:  # warm-up
    model.logits(row["input_ids"], row["attention_mask"])
timings = []
for row in rows:
    started = time.perf_counter()
    model.logits(row["input_ids"], row["attention_mask"])
    timings.append(time.perf_counter() - started)
batches = [model.tokenizer(texts[i:i + 32], truncation=True, max_length=max_length, padding=True, return_tensors="np")
           for i in range(0, len(texts), 32)]
model.logits(batches[0]["input_ids"], batches[0]["attention_mask"])  # warm-up at batch 32
started = time.perf_counter()
predictions = np.concatenate([model.logits(b["input_ids"], b["attention_mask"]).argmax(-1) for b in batches])
seconds = time.perf_counter() - started
weights = sum(p.stat().st_size for p in model.folder.rglob("*") if p.name.endswith(WEIGHT_SUFFIXES))
ms = np.asarray(timings) * 1000
print(json.dumps({"ref": f"{model.repo}@{model.commit}", "format": model.format, "parameters": model.parameters(),
                  "weights_bytes": weights, "latency_ms_p50": float(np.percentile(ms, 50)),
                  "latency_ms_p95": float(np.percentile(ms, 95)), "throughput": len(texts) / seconds,
                  "accuracy": float((predictions == gold).mean()), "threads": model.threads}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_home_options(parser, epochs=3.0)
    parser.add_argument("--distill-epochs", type=float, default=3.0, help="epochs of the distillation (default 3)")
    parser.add_argument("--finetune-steps", type=int, default=50, help="recovery steps after pruning (default 50)")
    parser.add_argument("--latency-rows", type=int, default=100, help="test articles timed at batch 1 (default 100)")
    parser.add_argument("--rounds", type=int, default=2, help="measurements of each version (default 2)")
    parser.add_argument("--reuse", action="store_true", help="measure the variants already in the store")
    parser.add_argument("--only", help="only the variants whose names contain one of these comma-separated words "
                                       "(e.g. heads,int8), beside the parent")
    args = parser.parse_args()
    env = bbc_home(args)
    console = Console(width=200)
    fmhub_cli = str(Path(sys.executable).with_name("fmhub"))
    parent = json.loads(subprocess.run([sys.executable, "-c", "import json; from fmhub.client import Hub\n"
                                        "with Hub.open() as hub: print(json.dumps(hub.repo_info('bench/bbc-minilm')"
                                        ".commit.oid))"], env=env, check=True, capture_output=True,
                                       text=True).stdout)
    model = f"bench/bbc-minilm@{parent}"
    cards = ["--eval-skip", "robustness,baseline,slices"]
    steps = {
        "ONNX fp32": ["export-onnx", model, "--output", "bench/bbc-minilm-onnx", "--max-length", "256", *cards],
        "ONNX int8": ["quantize", model, "--backend", "onnx", "--output", "bench/bbc-minilm-onnx-int8",
                      "--max-length", "256", *cards],
        "torch int8": ["quantize", model, "--backend", "torch", "--output", "bench/bbc-minilm-torch-int8",
                       "--max-length", "256", *cards],
        "distilled 3-layer": ["distill", "--teacher", model, "--student-layers", "3", "--epochs",
                              str(args.distill_epochs), "--output", "bench/bbc-minilm-l3", *cards],
        "pruned 50% (unstructured)": ["prune", model, "--sparsity", "0.5", "--finetune-steps",
                                      str(args.finetune_steps), "--max-length", "256", "--output",
                                      "bench/bbc-minilm-sparse", *cards],
        "pruned 50% FFN neurons": ["prune", model, "--sparsity", "0.5", "--structured", "neurons", "--finetune-steps",
                                   str(args.finetune_steps), "--max-length", "256", "--output",
                                   "bench/bbc-minilm-ffn", *cards],
        "pruned 50% attention heads": ["prune", model, "--sparsity", "0.5", "--structured", "heads",
                                       "--finetune-steps", str(args.finetune_steps), "--max-length", "256",
                                       "--output", "bench/bbc-minilm-heads", *cards],
    }
    if args.only:
        wanted = [w.strip().lower() for w in args.only.split(",") if w.strip()]
        steps = {name: argv for name, argv in steps.items() if any(w in name.lower() for w in wanted)}
        if not steps:
            raise SystemExit(f"--only {args.only!r} names no variant")
    refs = {"fp32 torch (parent)": model}
    build_seconds: dict[str, float] = {}
    for name, argv in steps.items():
        output = argv[argv.index("--output") + 1]
        if args.reuse:
            refs[name] = output
            continue
        started = time.perf_counter()
        done = subprocess.run([fmhub_cli, "optimize", *argv], env=env, capture_output=True, text=True)
        build_seconds[name] = time.perf_counter() - started
        if done.returncode != 0:
            raise SystemExit(f"{name} failed:\n{done.stderr[-4000:]}")
        summary = json.loads(done.stdout.strip().splitlines()[-1])
        refs[name] = f"{output}@{summary['commit']}"
        console.print(f"built {name} in {build_seconds[name]:.0f} s: {refs[name]}")
    rounds: dict[str, list[dict]] = {name: [] for name in refs}
    for _ in range(args.rounds):
        for name, ref in refs.items():
            done = subprocess.run([sys.executable, "-c", _MEASURE, ref, str(args.latency_rows), "256"], env=env,
                                  capture_output=True, text=True)
            if done.returncode != 0:
                raise SystemExit(f"measuring {name} failed:\n{done.stderr[-4000:]}")
            rounds[name].append(json.loads(done.stdout.strip().splitlines()[-1]))
    results = {}
    for name, measured in rounds.items():
        results[name] = {**measured[0], "rounds": measured}
        for key in ("latency_ms_p50", "latency_ms_p95", "throughput"):
            results[name][key] = sum(m[key] for m in measured) / len(measured)
    base = results["fp32 torch (parent)"]
    table = Table(title=f"fmhub optimize: BBC News MiniLM variants, test split, 256 tokens, {base['threads']} threads")
    for column in ("variant", "size MB", "size ×", "batch-1 p50 ms", "speed-up", "batch-32 /s", "× thr.",
                   "accuracy", "Δ acc (pt)", "build s"):
        table.add_column(column, justify="left" if column == "variant" else "right")
    for name, r in results.items():
        r["size_ratio"] = r["weights_bytes"] / base["weights_bytes"]
        r["speedup_batch1"] = base["latency_ms_p50"] / r["latency_ms_p50"]
        r["throughput_ratio"] = r["throughput"] / base["throughput"]
        r["accuracy_delta_points"] = (r["accuracy"] - base["accuracy"]) * 100
        r["accuracy_share_of_parent"] = r["accuracy"] / base["accuracy"]
        r["build_seconds"] = build_seconds.get(name)
        table.add_row(name, f"{r['weights_bytes'] / 1e6:.1f}", f"{r['size_ratio']:.2f}", f"{r['latency_ms_p50']:.1f}",
                      f"{r['speedup_batch1']:.2f}×", f"{r['throughput']:.1f}", f"{r['throughput_ratio']:.2f}×",
                      f"{r['accuracy']:.4f}", f"{r['accuracy_delta_points']:+.1f}",
                      "" if r["build_seconds"] is None else f"{r['build_seconds']:.0f}")
    console.print(table)
    goals = {}
    onnx, student = results.get("ONNX int8"), results.get("distilled 3-layer")  # absent with --only
    if onnx is not None:
        goals.update({"ONNX int8 ≥ 2.5× faster at batch 1": onnx["speedup_batch1"] >= 2.5,
                      "ONNX int8 ≤ 0.5 pt accuracy drop": onnx["accuracy_delta_points"] >= -0.5,
                      "ONNX int8 ≤ 30% of the size": onnx["size_ratio"] <= 0.30})
    if student is not None:
        goals.update({"student ≥ 1.9× faster at batch 1": student["speedup_batch1"] >= 1.9,
                      "student ≥ 98.5% of the teacher's accuracy": student["accuracy_share_of_parent"] >= 0.985})
    for goal, met in goals.items():
        console.print(f"{'✔' if met else '✘'} {goal}")
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    path = out / f"optimize_bench-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps({"command": " ".join(sys.argv), "results": results, "goals": goals,
                                "latency_rows": args.latency_rows}, indent=2) + "\n")
    console.print(f"JSON written to {path}")


if __name__ == "__main__":
    main()
