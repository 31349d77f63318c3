"""While a training loop runs, the memory of freed tensors stays in the process for the next step (glibc only).

glibc's ``malloc`` serves a large block (from 128 kB, a threshold that rises with use to at most 32 MB) with a fresh
``mmap`` and gives it back to the system at ``free``, and trims the heap's free top back to the system past a
threshold. A training step allocates and frees the same large tensors every step — activations of
(batch, length, hidden) and (batch, length, 4 × hidden), and the dense gradient of the word embeddings, 47 MB for
all-MiniLM-L6-v2 — so each step asks the kernel for fresh pages, which it maps and zeroes one page fault at a time:
on a 2-core machine 0.19 of the 1.5 CPU seconds of a bf16 MiniLM step at length 256 (batch 16) were system time,
most of it those faults. With no ``mmap`` for large blocks and no trimming while the loop runs,
the second step onwards reuses the first step's pages; the faults are gone and the step is that much faster. The
memory the process holds is the loop's peak, as it is for PyTorch's own caching allocators on accelerators.

On leaving, ``mmap`` is allowed again and the heap's free memory is returned (``malloc_trim``). Any ``mallopt``
turns glibc's rising thresholds off for good, so the thresholds left behind are where they rise to in a process
that frees large tensors (``mmap`` from 32 MB, trimming past 64 MB), not the 128 kB starting values: fixed there, every
large tensor after training would be a fresh ``mmap`` (a MiniLM step's system time went from 0.19 to 1.0 s).
A thread served by one of glibc's secondary arenas (other threads; the main thread once a huge allocation
has failed) still gets each block of 64 MB or more, a secondary heap's size, from its own ``mmap``; smaller blocks,
which are all of a MiniLM step's, are kept there too.
Elsewhere than glibc (musl, macOS, a jemalloc or tcmalloc preloaded by the user) nothing changes.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import platform
from collections.abc import Iterator
from typing import Any

__all__ = ["kept_heap"]

# mallopt(3) parameters and glibc's defaults
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_MMAP_MAX = -1, -3, -4
_RISEN_MMAP_THRESHOLD, _RISEN_TRIM_THRESHOLD, _DEFAULT_MMAP_MAX = 32 * 2**20, 64 * 2**20, 65536
_NO_TRIM = 2**31 - 1  # mallopt takes an int: about 2 GiB of free heap top is kept


def _glibc() -> Any | None:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt.argtypes, libc.mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
        libc.malloc_trim.argtypes, libc.malloc_trim.restype = [ctypes.c_size_t], ctypes.c_int
    except (OSError, AttributeError):
        return None
    return libc


@contextlib.contextmanager
def kept_heap() -> Iterator[bool]:
    """Within: large blocks come from the heap and freed memory stays in it. Yields whether that applies here."""
    libc = _glibc()
    if libc is None:
        yield False
        return
    try:
        yield bool(libc.mallopt(_M_MMAP_MAX, 0) and libc.mallopt(_M_TRIM_THRESHOLD, _NO_TRIM))
    finally:
        libc.mallopt(_M_MMAP_THRESHOLD, _RISEN_MMAP_THRESHOLD)
        libc.mallopt(_M_TRIM_THRESHOLD, _RISEN_TRIM_THRESHOLD)
        libc.mallopt(_M_MMAP_MAX, _DEFAULT_MMAP_MAX)
        libc.malloc_trim(0)
