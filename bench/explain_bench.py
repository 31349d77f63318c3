"""Benchmark explanations on the BBC News fine-tuned all-MiniLM-L6-v2: speed, completeness and faithfulness.

Wall times depend on the machine's load; the CPU seconds (all threads) beside them less so — on an idle
machine, wall ≈ CPU / threads. Uses the BBC store of the model benchmarks (`--home DIR`, see `_bbc.py`; built first when absent). In one
child process, side by side on the same rows:

1. the floor: one path point's forward + backward (and a forward alone) at the longest article's tokens, for
   batches of 1, 4 and 8 points — what one integrated-gradients step costs;
2. one 256-token explanation with integrated gradients (the path from `--steps` uniform points, its worst intervals
   halved until completeness holds within 5%, up to `--max-steps`), median of `--repeat` runs (the first, cold run
   shown apart), beside occlusion and attention rollout of the same text;
3. with `--curve N`: completeness error against the steps on the N longest test articles — Captum's
   Gauss-Legendre `LayerIntegratedGradients` (the previous code), a uniform trapezoid, and the adaptive path;
4. the report card's explanations section on the test split (222 rows): `--rows` rows (16, the card's default;
   0: all 222), misclassified first, integrated gradients (from `--section-steps` points, raised up to
   `--section-max-steps` until completeness holds), attention rollout and a random attribution, each with ERASER
   comprehensiveness, sufficiency and the deletion AUC — integrated gradients must beat the random baseline (≥ 2×)
   and rollout; the steps and completeness per row summarized.

    .venv/bin/python bench/explain_bench.py --home bench/.bbc-home
    .venv/bin/python bench/explain_bench.py --home .fmhub-demo --model demo/bbc-minilm --data demo/bbc-news --rows 0

The store is only read (a copy is safer when another process writes to it).
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
from fmhub.explain import ExplainArgs, SectionArgs, explain, explanations_section, get
datasets.disable_progress_bars(); transformers.utils.logging.set_verbosity_error()
(steps, max_steps, repeat, rows, threads, model, data, section_steps, section_max_steps, length,
 curve) = json.loads(sys.argv[1])
torch.set_num_threads(threads)
loaded = fmhub.load(model, threads=threads)
explainer = get("tokens")
test = load(data, split="test")
texts = list(test["text"])
lengths = [len(ids) for ids in loaded.tokenizer(texts, truncation=True, max_length=256)["input_ids"]]
longest = [int(i) for i in np.argsort(lengths, kind="stable")[::-1]]
long = texts[longest[0]]
out = {"tokens": max(lengths), "rows": len(texts), "torch_threads": torch.get_num_threads(),
       "dtype": str(next(loaded.model.parameters()).dtype)}

def timed(call):
    started, used = time.perf_counter(), time.process_time()
    result = call()
    return result, time.perf_counter() - started, time.process_time() - used

# 1. the floor: one path point's forward + backward at the longest article's length
prepared = explainer.prepare(loaded, long, max_length=256)
target = int(np.argmax(loaded.logits(prepared.inputs)[0]))
path = explainer.path(loaded, prepared, target)
path(np.array([0.5]))  # warm
floor = []
for k in (1, 4, 8):
    alphas = np.linspace(0.1, 0.9, k)
    runs = [timed(lambda: path(alphas)) for _ in range(2)]
    wall = min(r[1] for r in runs) / k
    cpu = min(r[2] for r in runs) / k
    batch = {"input_ids": np.repeat(prepared.inputs["input_ids"], k, 0),
             "attention_mask": np.repeat(prepared.inputs["attention_mask"], k, 0)}
    forward = min(timed(lambda: loaded.logits(batch))[1] for _ in range(2)) / k
    floor.append({"points": k, "seconds_per_point": wall, "cpu_seconds_per_point": cpu,
                  "forward_seconds_per_row": forward})
out["floor"] = floor

# 2. one explanation per method
for method in ("integrated-gradients", "occlusion", "attention-rollout"):
    times, cpu, last = [], [], None
    for _ in range(repeat + 1):  # the first run is cold (first backward, allocator): shown apart
        (result, seconds, used) = timed(lambda: explain(loaded, [long], ExplainArgs(
            method=method, steps=steps, max_steps=max_steps, max_length=256)))
        [(last, _)] = result
        times.append(seconds)
        cpu.append(used)
    out[method] = {"first_seconds": times[0], "first_cpu_seconds": cpu[0], "seconds": times[1:],
                   "seconds_median": statistics.median(times[1:]), "cpu_seconds_median": statistics.median(cpu[1:])}
    if last.completeness is not None:
        c = last.completeness
        out[method]["completeness"] = {"steps": c.steps, "error": c.error, "expected": c.expected,
                                       "relative_error": c.error / max(abs(c.expected), 1e-12), "holds": c.holds}

# 3. completeness against the steps on the longest articles: the previous code (Captum's Gauss-Legendre
# LayerIntegratedGradients on the input embeddings) beside a uniform trapezoid and the adaptive path
if curve:
    from captum.attr import LayerIntegratedGradients
    from fmhub.explain._base import frozen
    curves = []
    for row in longest[:curve]:
        prepared = explainer.prepare(loaded, texts[row], max_length=256)
        target = int(np.argmax(loaded.logits(prepared.inputs)[0]))
        m = loaded.model
        ids = torch.from_numpy(prepared.inputs["input_ids"]); mask = torch.from_numpy(prepared.inputs["attention_mask"])
        base = ids.clone(); base[0, torch.from_numpy(prepared.extra["positions"])] = loaded.tokenizer.pad_token_id
        def fwd(i, am):
            return torch.softmax(m(input_ids=i, attention_mask=am).logits.float(), dim=-1)
        entry = {"row": row, "tokens": int(ids.shape[1]), "gausslegendre": {}, "trapezoid": {}}
        for n in (4, 8, 16, 32, 64):
            with torch.enable_grad(), frozen(m):
                a = LayerIntegratedGradients(fwd, m.get_input_embeddings()).attribute(
                    ids, baselines=base, additional_forward_args=(mask,), target=target, n_steps=n,
                    internal_batch_size=64)
            _, total, expected = explainer.integrated_gradients(loaded, prepared, target, n)
            entry["expected"] = expected
            entry["gausslegendre"][n] = abs(float(a.double().sum()) - expected) / abs(expected)
            entry["trapezoid"][n] = abs(total - expected) / abs(expected)
        (scores, check), seconds, _ = timed(lambda: explainer.completed_integrated_gradients(
            loaded, prepared, target, steps, max_steps))
        entry["adaptive"] = {"steps": check.steps, "relative_error": check.error / abs(check.expected),
                             "holds": check.holds, "seconds": seconds}
        curves.append(entry)
    out["curve"] = curves

# 4. the report card's section
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
                                   args=SectionArgs(rows=rows or len(texts), steps=section_steps,
                                                    max_steps=section_max_steps))
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
    parser.add_argument("--steps", type=int, default=4, help="integrated-gradients points to start from (default 4)")
    parser.add_argument("--max-steps", type=int, default=512, help="most integrated-gradients points (default 512)")
    parser.add_argument("--repeat", type=int, default=3, help="warm runs of the single explanation (median)")
    parser.add_argument("--curve", type=int, default=2, help="longest articles of the completeness-vs-steps table "
                                                             "(default 2; 0 leaves it out)")
    parser.add_argument("--rows", type=int, default=16, help="rows the section explains, misclassified first (up to "
                                                             "half); 0: the whole test split (default 16, the report "
                                                             "card's)")
    parser.add_argument("--section-steps", type=int, default=4, help="the section's IG points to start from (4)")
    parser.add_argument("--section-max-steps", type=int, default=64, help="the section's most IG points (64)")
    parser.add_argument("--length", type=int, default=256, help="the section's tokens per row (default 256)")
    parser.add_argument("--model", default="bench/bbc-minilm", help="default bench/bbc-minilm (make demo's: "
                                                                   "demo/bbc-minilm with --home .fmhub-demo)")
    parser.add_argument("--data", default="bench/bbc-news", help="default bench/bbc-news")
    parser.add_argument("--threads", type=int, default=max(1, len(os.sched_getaffinity(0))))
    args = parser.parse_args()
    env = bbc_home(args)
    load_before = os.getloadavg()
    out, seconds, rss = _child([_CHILD, json.dumps([args.steps, args.max_steps, args.repeat, args.rows, args.threads,
                                                    args.model, args.data, args.section_steps,
                                                    args.section_max_steps, args.length, args.curve])], env)
    result = json.loads(out.strip().splitlines()[-1])
    section = result["section"]
    console = Console()
    floor = Table(title=f"One path point at {result['tokens']} tokens ({args.threads} threads, {result['dtype']}): "
                        f"the cost of an integrated-gradients step")
    for column in ("points per batch", "s per point (fwd + bwd)", "CPU s per point", "s per row (forward only)"):
        floor.add_column(column, justify="right")
    for entry in result["floor"]:
        floor.add_row(str(entry["points"]), f"{entry['seconds_per_point']:.3f}", f"{entry['cpu_seconds_per_point']:.3f}",
                      f"{entry['forward_seconds_per_row']:.3f}")
    console.print(floor)
    single = Table(title=f"One {result['tokens']}-token BBC article, {args.model} ({args.threads} threads, "
                         f"median of {args.repeat} warm runs)")
    for column in ("method", "seconds", "CPU seconds", "first (cold) s", "completeness"):
        single.add_column(column, justify="right" if column != "method" else "left")
    for method in ("integrated-gradients", "occlusion", "attention-rollout"):
        entry = result[method]
        check = entry.get("completeness")
        single.add_row(method, f"{entry['seconds_median']:.2f}", f"{entry['cpu_seconds_median']:.2f}",
                       f"{entry['first_seconds']:.2f}",
                       f"{check['relative_error']:.2%} of f(x) − f(b) at {check['steps']} steps"
                       f"{'' if check['holds'] else ' (does not hold)'}" if check else "—")
    console.print(single)
    if result.get("curve"):
        curve = Table(title="Completeness error (of f(x) − f(b)) against the steps, longest test articles")
        for column in ("row (tokens)", "f(x) − f(b)", "rule", "4", "8", "16", "32", "64", "adaptive"):
            curve.add_column(column, justify="right" if column not in ("rule",) else "left")
        for entry in result["curve"]:
            adaptive = entry["adaptive"]
            for rule, label in (("gausslegendre", "Captum Gauss-Legendre (before)"), ("trapezoid", "uniform trapezoid")):
                errors = [f"{entry[rule][str(n)]:.1%}" for n in (4, 8, 16, 32, 64)]
                last = (f"{adaptive['relative_error']:.1%} at {adaptive['steps']} ({adaptive['seconds']:.1f} s)"
                        if rule == "trapezoid" else "")
                curve.add_row(f"{entry['row']} ({entry['tokens']})", f"{entry['expected']:.3f}", label, *errors, last)
        console.print(curve)
    check = section.get("completeness") or {}
    faith = Table(title=f"Explanations section: {section['rows']['total']} of {result['rows']} test rows "
                        f"({section['rows']['sampled']} sampled + {section['rows']['misclassified']} misclassified), "
                        f"{args.length} tokens: {result['section_seconds']:.0f} s ({result['section_cpu_seconds']:.0f} "
                        f"CPU s, {result['section_seconds'] / max(1, section['rows']['total']):.2f} s per row)")
    for column in ("method", "comprehensiveness ↑", "sufficiency ↓", "deletion AUC ↓"):
        faith.add_column(column, justify="right" if column != "method" else "left")
    for method, m in section["faithfulness"].items():
        faith.add_row(method, f"{m['comprehensiveness']:.4f}", f"{m['sufficiency']:.4f}", f"{m['deletion_auc']:.4f}")
    console.print(faith)
    comparison = section["comparison"]
    steps = [r["steps"] for r in check.get("per_row", [])]
    console.print(f"IG comprehensiveness / random: {comparison.get('comprehensiveness_vs_random') or 0:.2f}× "
                  f"(goal ≥ 2×); / attention rollout: {comparison.get('comprehensiveness_vs_attention_rollout') or 0:.2f}×"
                  f" (goal ≥ 1×); completeness held on {check.get('holds', 0)} of {check.get('rows', 0)} rows "
                  f"(median error {check.get('median_relative_error', 0):.1%} of f(x) − f(b); steps from "
                  f"{args.section_steps}, median {check.get('median_steps')}, mean "
                  f"{(sum(steps) / len(steps)) if steps else 0:.1f}, max {check.get('max_steps')} of "
                  f"{args.section_max_steps}; not holding: {check.get('not_holding')}); model accuracy "
                  f"{result['accuracy']:.4f}")
    result.update({"command": " ".join(sys.argv), "child_seconds": seconds, "peak_rss_bytes": rss,
                   "load_average_before": load_before, "load_average_after": os.getloadavg()})
    console.print(f"load average before {load_before[0]:.2f}, after {os.getloadavg()[0]:.2f}")
    results = Path(__file__).parent / "results"
    results.mkdir(exist_ok=True)
    path = results / f"explain_bench-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    console.print(f"JSON written to {path}")


if __name__ == "__main__":
    main()
