"""While a training loop runs, freed tensor memory stays in the process: the next step's tensors of the same size
take no page faults (glibc).

Each measurement runs in a fresh interpreter: which glibc arena serves the main thread is a property of the process's
history (a failed huge allocation moves the thread to a secondary arena for good, and a secondary arena serves a block
of 64 MB or more with its own mmap whatever ``mallopt`` says), and a test worker has a history of its own.
"""

from __future__ import annotations

import json
import platform
import resource
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                                reason="the kept heap is glibc's mallopt")

MB = 2**20


def faults_of_three_tensors(size: int) -> int:
    import torch

    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(3):
        tensor = torch.ones(size // 4)  # touched in full
        del tensor
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


def within_and_after(size: int, *, after_a_failed_allocation: bool) -> dict[str, int]:
    """Run in a fresh process: the page faults of three tensors of `size` bytes inside the kept heap, then after."""
    import torch

    from fmhub.train._heap import kept_heap

    if after_a_failed_allocation:
        with pytest.raises(RuntimeError):
            torch.empty(2**44, dtype=torch.uint8)  # 16 TiB: glibc retries in a secondary arena and keeps it
    with kept_heap() as kept:
        faults_of_three_tensors(size)  # the heap grows to hold them (memalign: the second one once more)
        within = faults_of_three_tensors(size)
    return {"kept": int(kept), "within": within, "after": faults_of_three_tensors(size)}


def measured(size: int, *, after_a_failed_allocation: bool = False) -> dict[str, int]:
    code = ("import json, test_heap; print(json.dumps(test_heap.within_and_after("
            f"{size}, after_a_failed_allocation={after_a_failed_allocation})))")
    done = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).parent,  # `-c` imports from its folder
                          capture_output=True, text=True, timeout=300, check=True)
    return json.loads(done.stdout.splitlines()[-1])


def test_a_freed_tensors_pages_are_reused_within_and_returned_after() -> None:
    size = 64 * MB  # above glibc's largest mmap threshold (32 MB): a fresh mmap per tensor by default
    pages = size // resource.getpagesize()
    figures = measured(size)
    assert figures["kept"], figures
    assert figures["within"] < pages // 10, figures  # the same pages, three times over
    assert figures["after"] > pages, figures  # mmap again, and the heap trimmed: fresh pages again


def test_a_secondary_arena_keeps_a_training_steps_tensors() -> None:
    """After a failed huge allocation the main thread allocates from a secondary arena, whose heaps hold blocks under
    64 MB: a MiniLM step's largest tensor (the 47 MB word-embedding gradient) is still kept."""
    size = 48 * MB
    figures = measured(size, after_a_failed_allocation=True)
    assert figures["within"] < size // resource.getpagesize() // 10, figures
