"""Start-up of the ``fmhub`` command line: ``fmhub --version``, ``fmhub --help``, ``fmhub verify --help``, as fresh
processes, this tree against a baseline source tree (e.g. a checkout of an older commit), alternated round by round.

Each round runs every command once with this tree's ``src`` first on ``PYTHONPATH``, then once with the
baseline's, and records wall and CPU seconds (the child's user + system time). Ratios (this tree / baseline) are
taken per pair; the median is reported. Results print as a table and go to
``bench/results/cli_startup_bench-<time>.json``.

Usage:
    git worktree add /tmp/fmhub-base <commit>
    .venv/bin/python bench/cli_startup_bench.py --baseline /tmp/fmhub-base/src --rounds 7
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO_ROOT / "bench" / "results"
COMMANDS = (("--version",), ("--help",), ("verify", "--help"))


def run(src: Path, args: tuple[str, ...]) -> tuple[float, float]:
    """(wall, CPU) seconds of ``python -m fmhub ARGS`` with ``src`` first on the path."""
    env = {**os.environ, "PYTHONPATH": str(src), "COLUMNS": "100"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "fmhub", *args], env=env, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", type=Path, required=True, help="the src folder of the tree to compare with")
    parser.add_argument("--rounds", type=int, default=7, help="rounds (default 7)")
    args = parser.parse_args()
    trees = {"this": REPO_ROOT / "src", "baseline": args.baseline}
    import compileall

    for src in trees.values():  # compile the bytecode once, outside the timing (a run alone would not write it
        compileall.compile_dir(src, quiet=1)  # when PYTHONDONTWRITEBYTECODE is set: every process would compile)
        run(src, ("--help",))
    load_before = os.getloadavg()
    runs: dict[str, dict[str, list[tuple[float, float]]]] = {" ".join(c): {t: [] for t in trees} for c in COMMANDS}
    for _ in range(args.rounds):
        for command in COMMANDS:
            for tree, src in trees.items():
                runs[" ".join(command)][tree].append(run(src, command))
    load_after = os.getloadavg()
    rows = []
    for command, by_tree in runs.items():
        row = {"command": f"fmhub {command}"}
        for tree in trees:
            row[f"{tree}_wall"] = statistics.median(w for w, _ in by_tree[tree])
            row[f"{tree}_cpu"] = statistics.median(c for _, c in by_tree[tree])
        row["cpu_ratio"] = statistics.median(a[1] / b[1] for a, b in zip(by_tree["this"], by_tree["baseline"]))
        row["wall_ratio"] = statistics.median(a[0] / b[0] for a, b in zip(by_tree["this"], by_tree["baseline"]))
        rows.append(row)
    print(f"\nfmhub start-up, this tree vs baseline ({args.rounds} rounds alternated, medians; ratios per pair)")
    print(f"{'command':<22} {'baseline CPU':>12} {'this CPU':>9} {'ratio':>6} {'baseline wall':>14} {'this wall':>10} "
          f"{'ratio':>6}")
    for r in rows:
        print(f"{r['command']:<22} {r['baseline_cpu']:>11.3f}s {r['this_cpu']:>8.3f}s {r['cpu_ratio']:>5.2f}× "
              f"{r['baseline_wall']:>13.3f}s {r['this_wall']:>9.3f}s {r['wall_ratio']:>5.2f}×")
    print(f"load average (1 min) before {load_before[0]:.1f}, after {load_after[0]:.1f}")
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    out = RESULTS_DIR / f"cli_startup_bench-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.write_text(json.dumps({"rows": rows, "runs": runs, "load_average": [load_before, load_after]}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
