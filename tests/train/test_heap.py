"""While a training loop runs, freed tensor memory stays in the process: the next step's tensors of the same size
take no page faults (glibc)."""

from __future__ import annotations

import platform
import resource

import pytest
import torch

from fmhub.train._heap import kept_heap

pytestmark = pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                                reason="the kept heap is glibc's mallopt")

SIZE = 64 * 2**20  # above glibc's largest mmap threshold (32 MB): a fresh mmap per tensor by default
PAGES = SIZE // resource.getpagesize()


def faults_of_three_tensors() -> int:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(3):
        tensor = torch.ones(SIZE // 4)  # touched in full
        del tensor
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


def test_a_freed_tensors_pages_are_reused_within_and_returned_after() -> None:
    with kept_heap() as kept:
        assert kept
        faults_of_three_tensors()  # the heap grows to hold them (memalign: the second one once more)
        within = faults_of_three_tensors()
    after = faults_of_three_tensors()
    assert within < PAGES // 10, within  # the same pages, three times over
    assert after > PAGES, after  # mmap again, and the heap trimmed: fresh pages again
