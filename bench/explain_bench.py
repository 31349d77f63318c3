"""Benchmark explanations on the BBC News fine-tuned all-MiniLM-L6-v2: speed, completeness and faithfulness.

Wall times depend on the machine's load; the CPU seconds (all threads) beside them less so — on an idle
machine, wall ≈ CPU / threads. Uses the BBC store of the model benchmarks (`--home DIR`, see `_bbc.py`; built first when absent). In one
child process, side by side on the same rows:

1. one 256-token explanation with integrated gradients (steps raised from `--steps` until completeness holds
   within 5%), median of `--repeat` runs, beside occlusion and attention rollout of the same text;
2. the report card's explanations section on the test split (222 rows): `--rows` rows (16, the card's default;
   0: all 222), misclassified first, integrated gradients at the card's fixed steps, attention rollout and a random
   attribution, each with ERASER comprehensiveness, sufficiency and the deletion AUC — integrated gradients must
   beat the random baseline (≥ 2×) and rollout.

    .venv/bin/python bench/explain_bench.py --home bench/.bbc-home
    .venv/bin/python bench/explain_bench.py --home .fmhub-demo --model demo/bbc-minilm --data demo/bbc-news --length 128
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table

from _bbc import add_home_options, bbc_home

_CHILD = r"""
import json, statistics, sys, tempfile, time
from pathlib import Path
import numpy as np, torch, datasets, transformers
import fmhub
from fmhub.data import load
from fmhub.explain import ExplainArgs, SectionArgs, explain, explanations_section
datasets.disable_progress_bars(); transformers.utils.logging.set_verbosity_error()
steps, repeat, rows, threads = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
model, data, section_steps, length = sys.argv[5], sys.argv[6], int(sys.argv[7]), int(sys.argv[8])
torch.set_num_threads(threads)
loaded = fmhub.load(model, threads=threads)
test = load(data, split="test")
texts = list(test["text"])
lengths = [len(ids) for ids in loaded.tokenizer(texts, truncation=True, max_length=256)["input_ids"]]
long = texts[int(np.argmax(lengths))]
out = {"tokens": max(lengths), "rows": len(texts)}
for method in ("integrated-gradients", "occlusion", "attention-rollout"):
    times, cpu, last = [], [], None
    for _ in range(repeat):
        started, used = time.perf_counter(), time.process_time()
        [(last, _)] = explain(loaded, [long], ExplainArgs(method=method, steps=steps, max_length=256))
    out[method]["first_cpu_seconds"] = cpu[0]
        times.append(time.perf_counter() - started)
        cpu.append(time.process_time() - used)
    out[method] = {"seconds_median": statistics.median(times), "seconds": times,
                   "cpu_seconds_median": statistics.median(cpu)}
    if last.completeness is not None:
        c = last.completeness
        out[method]["completeness"] = {"steps": c.steps, "error": c.error, "expected": c.expected,
                                       "relative_error": c.error / max(abs(c.expected), 1e-12), "holds": c.holds}
started = time.perf_counter()
gold = loaded.task.gold(test, "label", loaded.labels)
scored = loaded.task.score(loaded.logits, loaded.tokenizer, texts, gold, labels=loaded.labels, max_length=length,
                           batch_size=32, seed=0)
probabilities, predicted = scored.probabilities, np.asarray(scored.predicted)
out["accuracy"] = float((predicted == gold).mean())
out["predict_seconds"] = time.perf_counter() - started
with tempfile.TemporaryDirectory() as folder:
    started, used = time.perf_counter(), time.process_time()
    section = explanations_section(loaded, texts, gold, predicted, probabilities, max_length=length,
                                   folder=Path(folder), relative=f"eval/{data}/test",
                                   args=SectionArgs(rows=rows or len(texts), steps=section_steps))
    out["section_seconds"] = time.perf_counter() - started
    out["section_cpu_seconds"] = time.process_time() - used
out["section"] = section
print(json.dumps(out))
"""


def _child(argv: list[str], env: dict[str, str]) -> tuple[str, float, int]:
    with tempfile.TemporaryFile() as stdout, tempfile.TemporaryFile() as stderr:
        started = time.perf_counter()
        child = subprocess.Popen([sys.executable, "-c", *argv], env=env, stdout=stdout, stderr=stderr)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - started
        if os.waitstatus_to_exitcode(status) != 0:
            stderr.seek(0)
            raise SystemExit(f"the benchmark failed:\n{stderr.read().decode(errors='replace')[-4000:]}")
        stdout.seek(0)
        return stdout.read().decode(), seconds, usage.ru_maxrss * 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_home_options(parser, epochs=5.0)
    parser.add_argument("--steps", type=int, default=32, help="integrated-gradients steps to start from")
    parser.add_argument("--repeat", type=int, default=3, help="runs of the single explanation (median)")
    parser.add_argument("--rows", type=int, default=16, help="rows the section explains, misclassified first (up to "
                                                             "half); 0: the whole test split (default 16, the report "
                                                             "card's)")
    parser.add_argument("--section-steps", type=int, default=16, help="the section's fixed IG steps (default 16)")
    parser.add_argument("--length", type=int, default=256, help="the section's tokens per row (default 256; make "
                                                                "demo's model was trained at 128)")
    parser.add_argument("--model", default="bench/bbc-minilm", help="default bench/bbc-minilm (make demo's: "
                                                                   "demo/bbc-minilm with --home .fmhub-demo)")
    parser.add_argument("--data", default="bench/bbc-news", help="default bench/bbc-news")
    parser.add_argument("--threads", type=int, default=max(1, len(os.sched_getaffinity(0))))
    args = parser.parse_args()
    env = bbc_home(args)
    out, seconds, rss = _child([_CHILD, str(args.steps), str(args.repeat), str(args.rows), str(args.threads),
                                args.model, args.data, str(args.section_steps), str(args.length)], env)
    result = json.loads(out.strip().splitlines()[-1])
    section = result["section"]
    console = Console()
    single = Table(title=f"One {result['tokens']}-token BBC article, {args.model} ({args.threads} threads, "
                         f"median of {args.repeat})")
    for column in ("method", "seconds", "CPU seconds", "first run CPU s", "completeness"):
        single.add_column(column, justify="right" if column != "method" else "left")
    for method in ("integrated-gradients", "occlusion", "attention-rollout"):
        entry = result[method]
        check = entry.get("completeness")
        single.add_row(method, f"{entry['seconds_median']:.2f}", f"{entry['cpu_seconds_median']:.2f}",
                       f"{entry['first_cpu_seconds']:.2f}",
                       f"{check['relative_error']:.2%} of f(x) − f(b) at {check['steps']} steps"
                       if check else "—")
    console.print(single)
    faith = Table(title=f"Explanations section: {section['rows']['total']} of {result['rows']} test rows "
                        f"({section['rows']['sampled']} sampled + {section['rows']['misclassified']} misclassified), "
                        f"{section['completeness']['rows'] if 'completeness' in section else 0} IG at {args.section_steps} steps, "
                        f"{args.length} tokens: {result['section_seconds']:.0f} s ({result['section_cpu_seconds']:.0f} "
                        f"CPU s)")
    for column in ("method", "comprehensiveness ↑", "sufficiency ↓", "deletion AUC ↓"):
        faith.add_column(column, justify="right" if column != "method" else "left")
    for method, m in section["faithfulness"].items():
        faith.add_row(method, f"{m['comprehensiveness']:.4f}", f"{m['sufficiency']:.4f}", f"{m['deletion_auc']:.4f}")
    console.print(faith)
    comparison = section["comparison"]
    console.print(f"IG comprehensiveness / random: {comparison.get('comprehensiveness_vs_random') or 0:.2f}× "
                  f"(goal ≥ 2×); / attention rollout: {comparison.get('comprehensiveness_vs_attention_rollout') or 0:.2f}×"
                  f" (goal ≥ 1×); completeness held on {section['completeness']['holds']} of "
                  f"{section['completeness']['rows']} rows (median error "
                  f"{section['completeness']['median_relative_error']:.1%} of f(x) − f(b)); model accuracy "
                  f"{result['accuracy']:.4f}")
    result.update({"command": " ".join(sys.argv), "child_seconds": seconds, "peak_rss_bytes": rss})
    results = Path(__file__).parent / "results"
    results.mkdir(exist_ok=True)
    path = results / f"explain_bench-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    console.print(f"JSON written to {path}")


if __name__ == "__main__":
    main()
