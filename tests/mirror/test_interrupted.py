"""kill -9 during an import (while files stream in, or inside the final transaction) leaves nothing visible; the
same import run again completes, and fsck finds the store consistent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _mirror_helpers import Source, dump

from fmhub.mirror import Target, import_bundle, plan_export, write_bundle
from fmhub.store import AddFile, Store
from fmhub.store.maintenance import fsck

# Runs an import in a child process and stops it (forever) at a chosen point, after leaving a marker file.
_CHILD = r"""
import sys, time
from pathlib import Path
from fmhub.store import open_store
import fmhub.mirror._import as importing

db, blobs, bundle, stage, marker = sys.argv[1:6]

def stop_here():
    Path(marker).write_text("stopped")
    time.sleep(3600)

seen = 0
def progress(n):
    global seen
    seen += n
    if stage == "blobs" and seen > 3 * 1024 * 1024:
        stop_here()

if stage == "transaction":
    real = importing.apply
    def apply(*args, **kwargs):
        result = real(*args, **kwargs)
        stop_here()  # inside the write transaction, after the first repo's rows
        return result
    importing.apply = apply

with open_store(db, blobs) as store, open(bundle, "rb") as f:
    importing.import_bundle(store, f, progress=progress)
"""

pytestmark = pytest.mark.slow  # child processes / live servers: seconds each


@pytest.fixture
def big_bundle(source: Source, tmp_path: Path) -> Path:
    """acme/clf and acme/base, plus an 8 MiB weights file in acme/base (so an import takes a while to stream)."""
    store = source.store
    blob = store.put_bytes(b"weights\0" + os.urandom(8 * 1024 * 1024))
    store.commit("acme/base", [AddFile("model.bin", blob.sha256, blob.size)], title="weights", author="alice",
                 allow_pickle=True)
    path = tmp_path / "big.fmbundle"
    write_bundle(store, plan_export(store, [Target("acme/base"), Target("acme/clf")]), path)
    return path


def _killed_import(target_dir: Path, bundle: Path, stage: str, tmp_path: Path) -> None:
    marker = tmp_path / f"stopped-{stage}"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    child = subprocess.Popen([sys.executable, "-c", _CHILD, f"sqlite:///{target_dir / 'fmhub.db'}",
                              (target_dir / "blobs").as_uri(), str(bundle), stage, str(marker)], env=env)
    try:
        while not marker.exists():  # wait for the child to reach the point (not a timing assumption: an event)
            assert child.poll() is None, f"the import ended before reaching {stage}"
            time.sleep(0.05)
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait()
    assert child.returncode == -signal.SIGKILL


@pytest.mark.parametrize("stage", ["blobs", "transaction"])
def test_kill_9_then_rerun(source: Source, target: Store, big_bundle: Path, tmp_path: Path, stage: str) -> None:
    target_dir = tmp_path / "target"
    target.list_repos()  # the schema exists before the child writes
    _killed_import(target_dir, big_bundle, stage, tmp_path)
    assert target.list_repos() == []  # nothing half-visible
    report = fsck(target)
    assert report.ok, report.problems
    with open(big_bundle, "rb") as f:
        summary = import_bundle(target, f)
    assert summary.conflicts == [] and summary.commits_added > 0
    assert {r.repo_id for r in target.list_repos()} == {"acme/base", "acme/clf"}
    assert dump(target, ["model/acme/base", "model/acme/clf"])["commits"] == \
        dump(source.store, ["model/acme/base", "model/acme/clf"])["commits"]
    report = fsck(target)
    assert report.ok, report.problems
    if stage == "transaction":
        assert summary.blobs_written == 0  # every file was stored before the kill: the rerun only checked them
