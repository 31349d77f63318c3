"""Benchmark `fmhub eval`: the report card of the BBC News fine-tuned all-MiniLM-L6-v2 on the BBC test split.

Uses the store the training benchmark kept (`bench/train_bench.py --full --home DIR`), which holds
`bench/bbc-minilm` (the full fine-tune) and `bench/bbc-news` (stratified 80/10/10, seed 0). Without
`--home`, this script builds one first: imports the corpus and model (`make bench-deps`) and
fine-tunes with the training benchmark's recipe (`--epochs`, `--lr`), which takes tens of minutes on 2 cores.

The card is built in a child process (wall time and peak RSS from wait4) with every section on:
metrics, calibration, the five robustness passes, slices, efficiency and the TF-IDF baseline.

    .venv/bin/python bench/eval_bench.py --home bench/.bbc-home
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

_EVAL = r"""
import json, sys
import datasets, transformers
from fmhub.evaluate import EvalConfig, evaluate
datasets.disable_progress_bars(); transformers.utils.logging.set_verbosity_error()
outcome = evaluate(EvalConfig(model="bench/bbc-minilm", data="bench/bbc-news", split="test",
                              latency_runs=int(sys.argv[1])), output_dir=sys.argv[2])
print(json.dumps(outcome.report))
"""


def _child(argv: list[str], env: dict[str, str]) -> tuple[str, float, int]:
    """stdout, wall seconds and peak RSS (bytes) of one child process (its own rusage, from wait4)."""
    with tempfile.TemporaryFile() as stdout, tempfile.TemporaryFile() as stderr:
        started = time.perf_counter()
        child = subprocess.Popen([sys.executable, "-c", *argv], env=env, stdout=stdout, stderr=stderr)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - started
        if os.waitstatus_to_exitcode(status) != 0:
            stderr.seek(0)
            raise SystemExit(f"step failed:\n{stderr.read().decode(errors='replace')[-4000:]}")
        stdout.seek(0)
        return stdout.read().decode(), seconds, usage.ru_maxrss * 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_home_options(parser, epochs=5.0)
    parser.add_argument("--latency-runs", type=int, default=50, help="timed batch-1 runs (default 50)")
    args = parser.parse_args()
    env = bbc_home(args)
    output = Path(env["FMHUB_HOME"]) / "eval-bench"
    out, seconds, rss = _child([_EVAL, str(args.latency_runs), str(output)], env)
    report = json.loads(out.strip().splitlines()[-1])
    metrics, baseline = report["metrics"], report["baseline"]["metrics"]
    console = Console()
    table = Table(title=f"fmhub eval: bench/bbc-minilm on BBC News test ({report['provenance']['dataset']['rows']} "
                        f"rows), every section")
    table.add_column("measure")
    table.add_column("fmhub-trained MiniLM", justify="right")
    table.add_column("TF-IDF + logistic regression", justify="right")
    for key in ("accuracy", "f1_macro", "f1_weighted"):
        table.add_row(key, f"{metrics[key]:.4f}", f"{baseline[key]:.4f}" if key in baseline else "")
    table.add_row("ece (15 bins)", f"{report['calibration']['ece']:.4f}", "")
    for perturbation in report["robustness"]["perturbations"]:
        table.add_row(f"Δ accuracy · {perturbation['name']}", f"{perturbation['delta']['accuracy']:+.4f}", "")
    efficiency = report["efficiency"]
    table.add_row("latency p50 / p95, batch 1 (ms)",
                  f"{efficiency['latency_ms']['p50']:.1f} / {efficiency['latency_ms']['p95']:.1f}", "")
    table.add_row("throughput, batch 32 (samples/s)", f"{efficiency['throughput']['samples_per_second']:.1f}", "")
    table.add_row("report card time (s, whole child process)", f"{seconds:.1f}", "")
    table.add_row("peak RSS (MB)", f"{rss / 1e6:.0f}", "")
    console.print(table)
    console.print(f"accuracy − baseline: {metrics['accuracy'] - baseline['accuracy']:+.4f}")
    result = {"command": " ".join(sys.argv), "seconds": seconds, "peak_rss_bytes": rss, "metrics": metrics,
              "baseline": baseline, "ece": report["calibration"]["ece"], "efficiency": efficiency,
              "robustness": {p["name"]: p["delta"] for p in report["robustness"]["perturbations"]},
              "model_commit": report["provenance"]["model"]["commit"]}
    results = Path(__file__).parent / "results"
    results.mkdir(exist_ok=True)
    path = results / f"eval_bench-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    console.print(f"JSON written to {path}")


if __name__ == "__main__":
    main()
