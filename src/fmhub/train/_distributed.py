"""Data-parallel training with torch DDP, launched through ``torch.distributed.run`` (torchrun).

``fmhub train --nproc N`` starts N worker processes on this machine (``--standalone`` rendezvous);
with ``--nnodes``, ``--node-rank`` and ``--rdzv-endpoint`` the same command on every node forms one
job across machines (torchrun's c10d rendezvous). Each worker runs the same loop on its share of the
batches (every rank computes the same length-grouped batch order from (seed, epoch) and takes every
N-th batch), DDP averages the gradients, and rank 0 alone evaluates, checkpoints, records the run
and publishes. Backend: gloo on CPU, nccl when CUDA is available.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from fmhub.errors import InvalidInputError

__all__ = ["rank", "world_size", "is_main", "init", "shutdown", "barrier", "all_sum", "broadcast_flag", "launch"]


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def is_main() -> bool:
    return rank() == 0


def init() -> None:
    """Join the process group torchrun set up (no-op for a single process)."""
    import torch
    import torch.distributed as dist

    if world_size() > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")


def shutdown() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def all_sum(*values: float) -> list[float]:
    """The sums of ``values`` over all ranks (the values themselves for one process)."""
    import torch
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return list(values)
    tensor = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(tensor)
    return tensor.tolist()


def broadcast_flag(flag: bool) -> bool:
    """Rank 0's ``flag`` on every rank (e.g. "stop early")."""
    import torch
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return flag
    tensor = torch.tensor([1 if flag else 0], dtype=torch.int64)
    dist.broadcast(tensor, src=0)
    return bool(tensor.item())


def launch(config: dict[str, Any], *, nproc: int, resume: bool, command: str, nnodes: str | None = None,
           node_rank: int | None = None, rdzv_endpoint: str | None = None, env: dict[str, str] | None = None) -> int:
    """Run ``python -m torch.distributed.run … -m fmhub.train._worker`` and return its exit code."""
    if nproc < 1:
        raise InvalidInputError(f"--nproc {nproc} must be at least 1")
    if (nnodes is None) != (rdzv_endpoint is None):
        raise InvalidInputError("multi-node training needs both --nnodes and --rdzv-endpoint",
                                hint="e.g. --nnodes 2 --node-rank 0 --rdzv-endpoint head-node:29400 on each node")
    with tempfile.TemporaryDirectory(prefix="fmhub-ddp-") as tmp:
        spec = Path(tmp) / "job.json"
        spec.write_text(json.dumps({"config": config, "resume": resume, "command": command}))
        argv = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={nproc}"]
        if nnodes is None:
            argv.append("--standalone")
        else:
            argv += [f"--nnodes={nnodes}", "--rdzv-backend=c10d", f"--rdzv-endpoint={rdzv_endpoint}"]
            if node_rank is not None:
                argv.append(f"--node-rank={node_rank}")
        argv += ["-m", "fmhub.train._worker", str(spec)]
        # Each worker gets an equal share of the cores, so N workers do not oversubscribe the machine.
        threads = max(1, len(os.sched_getaffinity(0)) // nproc)
        child_env = {**os.environ, "OMP_NUM_THREADS": str(threads), **(env or {})}
        return subprocess.run(argv, env=child_env).returncode
