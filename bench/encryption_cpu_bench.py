"""The blob layer's own cost of encryption at rest, in CPU time: storing and reading 1 GiB, clear vs encrypted.

No HTTP, no client: the same plaintext stream goes into a ``file://`` blob store in clear and into the same
kind of store wrapped by :class:`~fmhub.store.encryption.EncryptedBlobStore`, alternately (clear, encrypted,
clear, encrypted, ...), and each step's CPU time (user + system, this process) is taken; the ratio is taken
pair by pair. CPU time, not wall time, so that other work on a shared machine changes the figures little
(``bench/encryption_bench.py`` measures the whole server path in wall time).

    step        measured                                            goal
    store       put_stream of a fresh 1 GiB stream (hash + write)   encrypted ≤ 1.2× clear
    read        iter_chunks of it, every byte (decrypt)             encrypted ≤ 1.2× clear

Results print as a table and go to ``bench/results/encryption_cpu_bench-<time>.json``. Never run by the tests.

Usage:
    .venv/bin/python bench/encryption_cpu_bench.py                  # 1 GiB, 3 rounds
    .venv/bin/python bench/encryption_cpu_bench.py --size-gib 0.25 --rounds 2
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import resource
import secrets
import statistics
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from fmhub.store import Database
from fmhub.store.blobs.file import FileBlobStore
from fmhub.store.encryption import SEGMENT_SIZE, EncryptedBlobStore
from fmhub.store.keys import LocalKeyFile, create_key_file

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO_ROOT / "bench" / "results"
GIB = 1 << 30
PATTERN = 64 << 20  # random bytes repeated to make the stream: no disk read, no generator cost to speak of


class _Source(io.RawIOBase):
    """``size`` bytes: a random pattern repeated, with a fresh random head so every round stores new content."""

    def __init__(self, pattern: bytes, size: int) -> None:
        self._pattern = memoryview(pattern)
        self._head = secrets.token_bytes(32)
        self._size = size
        self._pos = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        view = memoryview(buffer).cast("B")
        n = min(len(view), self._size - self._pos)
        done = 0
        while done < n:
            offset = (self._pos + done) % len(self._pattern)
            k = min(n - done, len(self._pattern) - offset)
            view[done:done + k] = self._pattern[offset:offset + k]
            done += k
        if self._pos == 0 and n >= 32:
            view[:32] = self._head
        self._pos += n
        return n


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _round(store, pattern: bytes, size: int) -> tuple[float, float]:
    source = io.BufferedReader(_Source(pattern, size), buffer_size=8 << 20)  # as the LFS route bridges its body
    start = _cpu()
    info = store.put_stream(source)
    stored = _cpu() - start
    start = _cpu()
    for _ in store.iter_chunks(info.sha256, chunk_size=SEGMENT_SIZE):
        pass
    read = _cpu() - start
    store.delete(info.sha256)
    return stored, read


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-gib", type=float, default=1.0, help="bytes stored per step, in GiB")
    parser.add_argument("--rounds", type=int, default=3, help="clear/encrypted pairs")
    args = parser.parse_args()
    size = int(args.size_gib * GIB)
    pattern = secrets.token_bytes(PATTERN)
    rows = []
    with tempfile.TemporaryDirectory(prefix="fmhub-enc-cpu-") as tmp:
        root = Path(tmp)
        key_file = root / "keys.json"
        create_key_file(key_file)
        db = Database(f"sqlite:///{root / 'db.sqlite'}")
        db.upgrade()
        clear = FileBlobStore(root / "clear")
        encrypted = EncryptedBlobStore(FileBlobStore(root / "encrypted"), db, LocalKeyFile(key_file))
        for i in range(args.rounds):
            clear_put, clear_read = _round(clear, pattern, size)
            enc_put, enc_read = _round(encrypted, pattern, size)
            rows.append({"round": i + 1, "clear_store_s": clear_put, "encrypted_store_s": enc_put,
                         "store_ratio": enc_put / clear_put, "clear_read_s": clear_read,
                         "encrypted_read_s": enc_read, "read_ratio": enc_read / clear_read})
        db.dispose()
    print(f"{'round':>5} {'store clear':>12} {'encrypted':>10} {'ratio':>6} {'read clear':>11} {'encrypted':>10} "
          f"{'ratio':>6}   (CPU seconds for {args.size_gib:g} GiB)")
    for r in rows:
        print(f"{r['round']:>5} {r['clear_store_s']:>12.2f} {r['encrypted_store_s']:>10.2f} {r['store_ratio']:>6.2f} "
              f"{r['clear_read_s']:>11.2f} {r['encrypted_read_s']:>10.2f} {r['read_ratio']:>6.2f}")
    summary = {"store_ratio_median": statistics.median(r["store_ratio"] for r in rows),
               "read_ratio_median": statistics.median(r["read_ratio"] for r in rows)}
    load = os.getloadavg()
    print(f"median ratio: store {summary['store_ratio_median']:.2f}×, read {summary['read_ratio_median']:.2f}× "
          f"(load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f})")
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    out = RESULTS_DIR / f"encryption_cpu_bench-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    out.write_text(json.dumps({"size_bytes": size, "rounds": rows, **summary, "load_average": load,
                               "machine": platform.platform(), "cpus": os.cpu_count()}, indent=1))
    print(f"wrote {out.relative_to(REPO_ROOT)}")


if __name__ == "__main__":
    main()
