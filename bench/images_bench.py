"""Benchmark images through the lifecycle on scikit-learn's digits, against anchors measured in the same run.

1. **Accuracy.** ``examples/digits/pipeline.yaml`` as shipped (import → a ResNet pretrained from its config →
   report card → ONNX int8 → publish gated on accuracy → serve-check), on all 1,797 digits, in a child process
   over a fresh store. Its test split is read back from the imported dataset (each image's file name is its
   ``load_digits`` index), and scikit-learn's ``SVC(gamma=0.001)`` and logistic regression are trained on the
   same train split (the 64 raw pixels, as scikit-learn's own example does) and scored on the same test split.
2. **Speed.** The fp32 torch model, its ONNX fp32 export, the pipeline's ONNX int8 variant (static: calibrated) and,
   for information, a dynamic int8 one, each measured in a child process of its own (one thread pool per process; ONNX Runtime told not to spin), one after the other
   in ``--rounds`` rounds: ``fmhub.load``, batch-1 latency over the test images (p50, after warm-up), accuracy
   over the whole test split, all at ``--threads`` threads.
3. **Import.** 10,000 images (the digits upsampled to 32×32 with a few levels of seeded noise, so every file
   differs) imported by ``fmhub data import`` in a child process, end to end (the command's start-up included):
   wall time, images/s, peak RSS; the same at 2,500 images — flat means the peak at 4× the images stays within
   50 MB of the peak at 2,500 (memory does not grow with the count); RSS sampled every 50 ms is kept in the
   JSON. The anchor in the same run: ``datasets.load_dataset("imagefolder")`` + ``to_parquet`` on the same
   folder. Peak RSS is each child's own high-water mark (``VmHWM``).

Prints tables, writes JSON to ``bench/results/images_bench-<UTC timestamp>.json``.

    .venv/bin/python bench/images_bench.py                    # everything (a few minutes on 2 cores)
    .venv/bin/python bench/images_bench.py --skip-pipeline    # only the import part
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "digits"

_MEASURE = r"""
import json, os, sys, time
import numpy as np, torch
import datasets, transformers
import fmhub
from datasets import Image
from fmhub.data import load
from fmhub.evaluate._efficiency import WEIGHT_SUFFIXES
datasets.disable_progress_bars(); transformers.utils.logging.set_verbosity_error()
ref, threads = sys.argv[1], int(sys.argv[2])
torch.set_num_threads(threads)
model = fmhub.load(ref, threads=threads)
if model.format == "onnx":  # no spinning: a spinning pool slows whatever runs next on 2 cores
    import onnxruntime as ort
    from fmhub.formats.onnx import ORT_DISABLED_OPTIMIZERS
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    model.model = ort.InferenceSession(str(model.folder / "model.onnx"), options, providers=["CPUExecutionProvider"],
                                       disabled_optimizers=list(ORT_DISABLED_OPTIMIZERS))
test = load("digits/digits", split="test")
gold = np.asarray(test["label"])
images = model.task.read_inputs(test, "image")
rows = [model.task.encode_batch(model.preprocessor, [image], 0) for image in images]
for row in rows[:20]:
    model.logits(row)
timings = []
for row in rows:
    started = time.perf_counter()
    model.logits(row)
    timings.append(time.perf_counter() - started)
predictions = np.concatenate([model.logits(model.task.encode_batch(model.preprocessor, images[i:i + 64], 0)).argmax(-1)
                              for i in range(0, len(images), 64)])
weights = sum(p.stat().st_size for p in model.folder.rglob("*") if p.name.endswith(WEIGHT_SUFFIXES))
ms = np.asarray(timings) * 1000
print(json.dumps({"ref": f"{model.repo}@{model.commit}", "format": model.format, "weights_bytes": weights,
                  "latency_ms_p50": float(np.percentile(ms, 50)), "latency_ms_p95": float(np.percentile(ms, 95)),
                  "accuracy": float((predictions == gold).mean()), "rows": int(len(gold)), "threads": threads}))
"""

_ANCHOR = """
import sys, datasets
datasets.disable_progress_bars()
ds = datasets.load_dataset("imagefolder", data_dir=sys.argv[1], split="train", cache_dir=sys.argv[2])
ds.to_parquet(sys.argv[3])
"""


def _env(home: Path) -> dict[str, str]:
    env = {**os.environ, "FMHUB_HOME": str(home), "HF_HUB_DISABLE_TELEMETRY": "1", "TOKENIZERS_PARALLELISM": "false"}
    for key in ("FMHUB_DB_URL", "FMHUB_BLOB_URL", "FMHUB_ENDPOINT", "FMHUB_TOKEN"):
        env.pop(key, None)
    return env


def run_child(argv: list[str], env: dict[str, str], *, capture: bool = False) -> dict[str, object]:
    """Wall seconds, peak RSS (MB) and stdout of one child process, and its RSS every 50 ms.

    The peak is the child's own ``VmHWM`` (read from /proc while it runs): ``wait4``'s ``ru_maxrss`` would start
    from this (parent) process's high-water mark, which a fork passes on.
    """
    samples: list[tuple[float, float]] = []
    peak = [0.0]
    with tempfile.TemporaryFile() as stderr, tempfile.TemporaryFile() as stdout:
        start = time.perf_counter()
        child = subprocess.Popen(argv, env=env, stdout=stdout if capture else subprocess.DEVNULL, stderr=stderr)
        done = threading.Event()

        def watch() -> None:
            status = Path(f"/proc/{child.pid}/status")
            while not done.wait(0.05):
                try:
                    fields = {line.split(":")[0]: int(line.split()[1]) / 1024 for line in status.read_text().splitlines()
                              if line.startswith(("VmRSS:", "VmHWM:"))}
                except (OSError, ValueError, IndexError):
                    continue
                if "VmRSS" in fields:
                    samples.append((time.perf_counter() - start, fields["VmRSS"]))
                    peak[0] = max(peak[0], fields.get("VmHWM", 0.0), fields["VmRSS"])

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        _, status, _ = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - start
        done.set()
        watcher.join()
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            stderr.seek(0)
            raise SystemExit(f"{' '.join(argv[:4])} failed ({code}):\n{stderr.read().decode(errors='replace')[-4000:]}")
        stdout.seek(0)
        out = stdout.read().decode(errors="replace")
    return {"seconds": seconds, "peak_rss_mb": peak[0], "samples": samples, "stdout": out}


# -- 1. accuracy ------------------------------------------------------------------------------------------


def run_pipeline(work: Path, console: Console) -> dict[str, object]:
    sys.path.insert(0, str(EXAMPLE))
    from make_digits import write_digits

    folder = work / "example"
    folder.mkdir()
    shutil.copy(EXAMPLE / "pipeline.yaml", folder / "pipeline.yaml")
    written = write_digits(folder / "images")
    console.print(f"wrote {written:,} digit images; running examples/digits/pipeline.yaml (a few minutes)")
    fmhub_cli = str(Path(sys.executable).with_name("fmhub"))
    done = run_child([fmhub_cli, "run", str(folder / "pipeline.yaml")], _env(work / "home"), capture=True)
    console.print(done["stdout"].split("pipeline digits:", 1)[-1].rsplit("lineage:", 1)[0][-3000:])
    return {"seconds": done["seconds"], "images": written}


def anchors(work: Path) -> dict[str, object]:
    """The imported split read back, and SVC / logistic regression trained and scored on it."""
    os.environ.update(_env(work / "home"))
    from datasets import Image
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import SVC

    from fmhub.client import Hub
    from fmhub.data import load

    digits = load_digits()
    with Hub.open() as hub:
        commit = hub.repo_info("digits/digits", repo_type="dataset").commit.oid
    split = load("digits/digits", revision=commit)
    index = {}
    for name in split:
        paths = [row["path"] for row in split[name].cast_column("image", Image(decode=False))["image"]]
        index[name] = np.asarray([int(Path(p).stem) for p in paths])
    train, test = index["train"], index["test"]
    assert len(set(train) & set(test)) == 0
    out: dict[str, object] = {"dataset": f"digits/digits@{commit}", "split": {k: len(v) for k, v in index.items()},
                              "test_indices_sha": __import__("hashlib").sha256(np.sort(test).tobytes()).hexdigest()}
    for name, model in (("SVC(gamma=0.001)", SVC(gamma=0.001)),
                        ("LogisticRegression(max_iter=5000)", LogisticRegression(max_iter=5000))):
        started = time.perf_counter()
        model.fit(digits.data[train], digits.target[train])
        seconds = time.perf_counter() - started
        out[name] = {"accuracy": float((model.predict(digits.data[test]) == digits.target[test]).mean()),
                     "fit_seconds": seconds}
    with Hub.open() as hub:
        cards = {c.model: c for c in hub.list_evaluations(limit=100) if c.split == "test"}
        [run] = hub.list_runs(limit=1, task="image-classification")
    out["fmhub"] = {repo: {"accuracy": card.metrics.get("accuracy"), "commit": card.model_commit}
                    for repo, card in cards.items()}
    out["fmhub_run"] = {"id": run.id, "train_seconds": run.duration.total_seconds(), "steps": run.summary.get("steps"),
                        "samples_per_second": run.summary.get("samples_per_second"),
                        "threads": run.config.get("threads")}
    return out


# -- 2. speed ----------------------------------------------------------------------------------------------


def speed(work: Path, threads: int, rounds: int, console: Console) -> list[dict[str, object]]:
    os.environ.update(_env(work / "home"))
    from fmhub.client import Hub
    from fmhub.optimize import export_onnx, quantize

    with Hub.open() as hub:
        parent = f"digits/digits-resnet@{hub.repo_info('digits/digits-resnet').commit.oid}"
        fp32 = export_onnx(parent, "digits/digits-resnet-onnx", hub=hub, report=False)
        dynamic = quantize(parent, "digits/digits-resnet-dynamic", hub=hub, report=False)  # information
        refs = [("fp32 torch", parent), ("fp32 ONNX", f"{fp32.repo}@{fp32.commit}"),
                ("int8 ONNX (the pipeline's: static)",
                 f"digits/digits-resnet-int8@{hub.repo_info('digits/digits-resnet-int8').commit.oid}"),
                ("int8 ONNX (dynamic)", f"{dynamic.repo}@{dynamic.commit}")]
    measured: dict[str, list[dict]] = {name: [] for name, _ in refs}
    for round_ in range(rounds):
        for name, ref in refs:
            done = run_child([sys.executable, "-c", _MEASURE, ref, str(threads)], _env(work / "home"), capture=True)
            measured[name].append(json.loads(done["stdout"].strip().splitlines()[-1]))
        console.print(f"speed round {round_ + 1}/{rounds} done")
    out = []
    for name, ref in refs:
        runs = measured[name]
        out.append({"variant": name, "ref": ref, "format": runs[0]["format"], "weights_bytes": runs[0]["weights_bytes"],
                    "latency_ms_p50": float(np.mean([r["latency_ms_p50"] for r in runs])),
                    "latency_ms_p95": float(np.mean([r["latency_ms_p95"] for r in runs])),
                    "accuracy": runs[0]["accuracy"], "rows": runs[0]["rows"], "threads": threads,
                    "rounds": [r["latency_ms_p50"] for r in runs]})
    return out


# -- 3. import ---------------------------------------------------------------------------------------------


def make_images(folder: Path, count: int, seed: int = 0) -> int:
    """``count`` 32×32 grayscale PNGs: the digits upsampled, with seeded noise so every file differs."""
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    rng = np.random.default_rng(seed)
    total = 0
    for i in range(count):
        source = i % len(digits.images)
        big = Image.fromarray(np.rint(digits.images[source] * 255 / 16).astype(np.uint8), "L").resize(
            (32, 32), Image.Resampling.BILINEAR)
        noisy = np.clip(np.asarray(big, dtype=np.int16) + rng.integers(-6, 7, (32, 32)), 0, 255).astype(np.uint8)
        path = folder / str(digits.target[source]) / f"{i:05d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(noisy, "L").save(path)
        total += path.stat().st_size
    return total


def rss_curve(samples: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """RSS (MB) at each tenth of the child's life, for the JSON."""
    if not samples:
        return []
    end = samples[-1][0]
    return [(round(t, 2), round(rss, 1)) for t, rss in (next(x for x in samples if x[0] >= end * k / 10)
                                                        for k in range(11))]


def imports(work: Path, count: int, console: Console) -> dict[str, object]:
    fmhub_cli = str(Path(sys.executable).with_name("fmhub"))
    out: dict[str, object] = {}
    for n in (count // 4, count):
        folder = work / f"images-{n}"
        size = make_images(folder, n)
        env = _env(work / f"import-home-{n}")
        done = run_child([fmhub_cli, "data", "import", str(folder), f"bench/digits-{n}"], env)
        anchor = run_child([sys.executable, "-c", _ANCHOR, str(folder), str(work / f"ds-cache-{n}"),
                            str(work / f"anchor-{n}.parquet")], env)
        out[str(n)] = {"images": n, "bytes": size, "fmhub": {k: v for k, v in done.items() if k != "samples"
                                                             and k != "stdout"} | {"rss": rss_curve(done["samples"])},
                       "anchor": {"seconds": anchor["seconds"], "peak_rss_mb": anchor["peak_rss_mb"]}}
        console.print(f"import of {n:,} images: {done['seconds']:.2f} s ({n / done['seconds']:,.0f} images/s), "
                      f"peak RSS {done['peak_rss_mb']:.0f} MB; anchor {anchor['seconds']:.2f} s")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=10_000, help="images of the import part (default 10,000)")
    parser.add_argument("--threads", type=int, default=1, help="threads of each speed measurement (default 1)")
    parser.add_argument("--rounds", type=int, default=3, help="speed measurements of each variant (default 3)")
    parser.add_argument("--skip-pipeline", action="store_true", help="only the import part")
    parser.add_argument("--workdir", type=Path, default=None, help="where to work (default: a temp folder)")
    args = parser.parse_args()
    console = Console()
    load_average = os.getloadavg()[0]
    results: dict[str, object] = {"command": " ".join(sys.argv), "date": datetime.now(UTC).isoformat(timespec="seconds"),
                                  "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                              "processor": platform.processor() or platform.machine(),
                                              "load_average_at_start": load_average}}
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        work = Path(tmp)
        if not args.skip_pipeline:
            results["pipeline"] = run_pipeline(work, console)
            results["accuracy"] = anchors(work)
            results["speed"] = speed(work, args.threads, args.rounds, console)
        results["import"] = imports(work, args.images, console)
    report(results, console)
    folder = Path(__file__).parent / "results"
    folder.mkdir(exist_ok=True)
    out = folder / f"images_bench-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    console.print(f"JSON written to {out}")


def report(results: dict, console: Console) -> None:
    goals = []
    if "accuracy" in results:
        accuracy = results["accuracy"]
        table = Table(title=f"Digits: test accuracy on one split ({accuracy['dataset'][:26]}, "
                            f"split {accuracy['split']})")
        for column in ("model", "test accuracy", "trained on"):
            table.add_column(column, justify="left" if column != "test accuracy" else "right")
        for repo, card in sorted(accuracy["fmhub"].items()):
            table.add_row(f"fmhub {repo} (report card)", f"{card['accuracy']:.4f}", "train split, 32×32 inputs")
        for name in ("SVC(gamma=0.001)", "LogisticRegression(max_iter=5000)"):
            table.add_row(f"scikit-learn {name}", f"{accuracy[name]['accuracy']:.4f}", "train split, 64 raw pixels")
        console.print(table)
        ours = accuracy["fmhub"].get("digits/digits-resnet", {}).get("accuracy") or 0.0
        goals.append(("digits test accuracy ≥ 0.985", ours >= 0.985, f"{ours:.4f}"))
        speed = {row["variant"]: row for row in results["speed"]}
        table = Table(title=f"Batch-1 latency on the {speed['fp32 torch']['rows']} test images "
                            f"({speed['fp32 torch']['threads']} thread, mean of p50 over rounds)")
        for column in ("variant", "format", "weights", "p50 ms", "p95 ms", "speed-up vs torch", "accuracy"):
            table.add_column(column, justify="left" if column in ("variant", "format") else "right")
        base = speed["fp32 torch"]
        for row in results["speed"]:
            table.add_row(row["variant"], row["format"], f"{row['weights_bytes'] / 1e3:.0f} kB",
                          f"{row['latency_ms_p50']:.3f}", f"{row['latency_ms_p95']:.3f}",
                          f"{base['latency_ms_p50'] / row['latency_ms_p50']:.2f}×", f"{row['accuracy']:.4f}")
        console.print(table)
        int8 = speed["int8 ONNX (the pipeline's: static)"]
        ratio = base["latency_ms_p50"] / int8["latency_ms_p50"]
        drop = (base["accuracy"] - int8["accuracy"]) * 100
        goals.append(("ONNX int8 ≥ 2× faster than fp32 torch at batch 1", ratio >= 2, f"{ratio:.2f}×"))
        goals.append(("ONNX int8 accuracy drop ≤ 0.5 point", drop <= 0.5, f"{drop:+.2f} points"))
    table = Table(title="Import of images (fmhub data import: checks, hashes, quality report, commit)")
    for column in ("images", "MB", "fmhub s", "images/s", "peak RSS", "anchor s (datasets imagefolder + to_parquet)",
                   "anchor peak RSS"):
        table.add_column(column, justify="right")
    for row in results["import"].values():
        fm = row["fmhub"]
        table.add_row(f"{row['images']:,}", f"{row['bytes'] / 1e6:.1f}", f"{fm['seconds']:.2f}",
                      f"{row['images'] / fm['seconds']:,.0f}", f"{fm['peak_rss_mb']:.0f} MB",
                      f"{row['anchor']['seconds']:.2f}",
                      f"{row['anchor']['peak_rss_mb']:.0f} MB")
    console.print(table)
    rows = list(results["import"].values())
    big, small = rows[-1], rows[0]
    rate = big["images"] / big["fmhub"]["seconds"]
    goals.append((f"import of {big['images']:,} images ≥ 1,000 images/s", rate >= 1000, f"{rate:,.0f}/s"))
    flat = big["fmhub"]["peak_rss_mb"] - small["fmhub"]["peak_rss_mb"] <= 50
    goals.append(("RSS flat (the peak at 4× the images within 50 MB)", flat,
                  f"{small['fmhub']['peak_rss_mb']:.0f} → {big['fmhub']['peak_rss_mb']:.0f} MB"))
    table = Table(title="Goals")
    for column in ("goal", "met", "measured"):
        table.add_column(column)
    for goal, met, measured in goals:
        table.add_row(goal, "✔" if met else "✘", measured)
    console.print(table)
    results["goals"] = [{"goal": g, "met": m, "measured": x} for g, m, x in goals]


if __name__ == "__main__":
    main()
