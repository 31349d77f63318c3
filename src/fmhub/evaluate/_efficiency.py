"""Efficiency of a model on the evaluated rows: size, batch-1 latency, batch-32 throughput, peak memory.

Latency and throughput use a real row of the split of median size (the evaluated text length, the median
image; the task picks it), after warm-up runs, under ``inference_mode`` with the process's torch threads.
Peak RSS is the evaluating process's high-water mark (``getrusage``), which includes the dataset and
the predictions held so far.
"""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["measure_efficiency", "WEIGHT_SUFFIXES"]

WEIGHT_SUFFIXES = (".safetensors", ".onnx", ".onnx_data", ".bin", ".pt")
_WARMUP = 3
_THROUGHPUT_BATCH = 32
_THROUGHPUT_BATCHES = 3


def _peak_rss() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)  # Linux reports KiB, macOS bytes


def measure_efficiency(loaded: Any, example: Mapping[str, np.ndarray], runs: int) -> dict[str, Any]:
    """The report card's ``efficiency`` section of a :class:`~fmhub.formats.LoadedModel` on one row (``example``:
    its model inputs, a batch of one)."""
    folder: Path = loaded.folder
    weights = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and p.name.endswith(WEIGHT_SUFFIXES))
    files = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    one = dict(example)
    timings = []
    for i in range(_WARMUP + runs):
        started = time.perf_counter()
        loaded.logits(one)
        if i >= _WARMUP:
            timings.append(time.perf_counter() - started)
    batch = {name: np.repeat(array, _THROUGHPUT_BATCH, axis=0) for name, array in one.items()}
    loaded.logits(batch)  # warm-up at this shape
    started = time.perf_counter()
    for _ in range(_THROUGHPUT_BATCHES):
        loaded.logits(batch)
    elapsed = time.perf_counter() - started
    milliseconds = np.asarray(timings) * 1000.0
    return {
        "parameters": loaded.parameters(),
        "format": loaded.format,
        "weights_bytes": int(weights),
        "files_bytes": int(files),
        **({"sequence_length": int(one["input_ids"].shape[-1])} if "input_ids" in one else {}),
        "threads": loaded.threads,
        "latency_ms": {"batch_size": 1, "runs": runs, "p50": float(np.percentile(milliseconds, 50)),
                       "p95": float(np.percentile(milliseconds, 95)), "mean": float(milliseconds.mean())},
        "throughput": {"batch_size": _THROUGHPUT_BATCH, "batches": _THROUGHPUT_BATCHES,
                       "samples_per_second": _THROUGHPUT_BATCH * _THROUGHPUT_BATCHES / elapsed},
        "peak_rss_bytes": _peak_rss(),
    }
