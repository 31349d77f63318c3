"""Benchmark `fmhub data import` on a generated CSV against `datasets.load_dataset("csv")` + `to_parquet`.

Both run in child processes (their peak RSS is each child's own, from wait4), on the same file,
side by side in one run. The anchor does less work (no splits, card, quality report or commit), so a
ratio near 1 means the extra work is cheap.

    .venv/bin/python bench/data_bench.py --rows 1000000
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table

_WORDS = ("model data train market team government film music game phone network bank growth election "
          "player season price share record star court health energy school city report").split()
_LABELS = ("business", "entertainment", "politics", "sport", "tech")

_ANCHOR = """
import sys, datasets
ds = datasets.load_dataset("csv", data_files=sys.argv[1], split="train", cache_dir=sys.argv[2])
ds.to_parquet(sys.argv[3])
"""


def make_csv(path: Path, rows: int, seed: int = 0) -> int:
    """A CSV of ``rows`` short news-like texts (~200 bytes each) with one of five labels."""
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as f:
        f.write("text,label\n")
        for i in range(rows):
            text = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(18, 40)))
            f.write(f'"{i} {text}",{_LABELS[i % 5]}\n')
    return path.stat().st_size


def run_child(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one child process (its own rusage, from wait4)."""
    with tempfile.TemporaryFile() as stderr:
        start = time.perf_counter()
        child = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)
        if child.returncode != 0:
            stderr.seek(0)
            raise SystemExit(f"{argv[:3]} failed:\n{stderr.read().decode(errors='replace')[-3000:]}")
    return seconds, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the generated CSV (default 1,000,000)")
    parser.add_argument("--workdir", type=Path, default=None, help="where to put the CSV and stores (default: temp)")
    args = parser.parse_args()
    console = Console()
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        work = Path(tmp)
        csv_path = work / "news.csv"
        size = make_csv(csv_path, args.rows)
        console.print(f"generated {args.rows:,} rows, {size / 1e6:.0f} MB: {csv_path.name}")
        env = {**os.environ, "FMHUB_HOME": str(work / "home"), "HF_HUB_DISABLE_TELEMETRY": "1"}
        for key in ("FMHUB_DB_URL", "FMHUB_BLOB_URL", "FMHUB_ENDPOINT"):
            env.pop(key, None)
        anchor = run_child([sys.executable, "-c", _ANCHOR, str(csv_path), str(work / "ds-cache"),
                            str(work / "anchor.parquet")], env)
        fmhub_cli = str(Path(sys.executable).with_name("fmhub"))
        fmhub = run_child([fmhub_cli, "data", "import", str(csv_path), "bench/news"], env)
    rows = [("fmhub data import (splits, card, quality, commit)", fmhub), ("datasets csv + to_parquet", anchor)]
    table = Table(title=f"Import of a {args.rows:,}-row CSV ({size / 1e6:.0f} MB)")
    for column in ("step", "seconds", "rows/s", "peak RSS"):
        table.add_column(column, justify="left" if column == "step" else "right")
    for name, (seconds, rss) in rows:
        table.add_row(name, f"{seconds:.2f}", f"{args.rows / seconds:,.0f}", f"{rss:.0f} MB")
    console.print(table)
    ratio = fmhub[0] / anchor[0]
    goal = fmhub[1] <= 500
    console.print(f"time ratio fmhub / anchor: {ratio:.2f}×; peak RSS goal ≤ 500 MB: {'✔' if goal else '✘'}")
    results = Path(__file__).parent / "results"
    results.mkdir(exist_ok=True)
    out = results / f"data_bench-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.write_text(json.dumps({"rows": args.rows, "csv_bytes": size, "command": " ".join(sys.argv),
                               "fmhub": {"seconds": fmhub[0], "peak_rss_mb": fmhub[1]},
                               "anchor": {"seconds": anchor[0], "peak_rss_mb": anchor[1]},
                               "time_ratio": ratio, "rss_goal_met": goal}, indent=2) + "\n")
    console.print(f"JSON written to {out}")


if __name__ == "__main__":
    main()
