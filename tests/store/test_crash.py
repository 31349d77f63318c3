"""Crash safety: a writer killed with SIGKILL mid-upload leaves no visible partial blob."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from fmhub.constants import Settings
from fmhub.store import Database, open_store
from fmhub.store.maintenance import fsck, gc

# The child stores a large file and, once a few chunks are on their way, announces it and hangs,
# so the parent's SIGKILL lands mid-write every time (no timing guesswork).
_CHILD = textwrap.dedent("""
    import json, sys, time
    from pathlib import Path
    from fmhub.constants import Settings
    from fmhub.store import open_store

    config = Settings(**{k: (Path(v) if k == "home" else v) for k, v in json.loads(sys.argv[1]).items()})
    marker, source, mode = Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4]
    seen = 0

    def progress(n):
        global seen
        seen += n
        if seen >= 3 * 4 * 1024 * 1024:
            marker.write_text("mid-upload")
            time.sleep(600)

    with open_store(config=config) as store:
        if mode == "file":
            store.put_file(source, progress=progress)
        else:
            with open(source, "rb") as f:
                store.put_stream(f, progress=progress)
""")


@pytest.fixture(params=["file", "s3"])
def crash_settings(request: pytest.FixtureRequest, tmp_path: Path, sqlite_url: str) -> Settings:
    if request.param == "file":
        return Settings(home=tmp_path, db_url=sqlite_url, blob_url=(tmp_path / "blobs").as_uri())
    return Settings(home=tmp_path, db_url=sqlite_url, blob_url=request.getfixturevalue("s3_blob_url"),
                    s3_endpoint_url=request.getfixturevalue("s3_endpoint"))


@pytest.mark.parametrize("mode", ["file", "stream"])
def test_sigkill_mid_upload_leaves_no_visible_partial_blob(crash_settings: Settings, tmp_path: Path,
                                                           mode: str) -> None:
    Database(crash_settings.db_url).upgrade()
    source = tmp_path / "weights.safetensors"
    with open(source, "wb") as f:
        for _ in range(24):  # 24 MiB: several chunks, and multipart on S3
            f.write(os.urandom(1024 * 1024))
    marker = tmp_path / "marker"
    config = {k: str(v) if v is not None else None for k, v in vars(crash_settings).items()}
    child = subprocess.Popen([sys.executable, "-c", _CHILD, json.dumps(config), str(marker), str(source), mode],
                             env=os.environ.copy())
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert child.poll() is None, "the uploader exited before the crash point"
        assert time.monotonic() < deadline, "the uploader never reached the crash point"
        time.sleep(0.02)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL

    with open_store(config=crash_settings) as store:
        assert list(store.blobs.iter_blobs()) == []  # nothing partial is visible
        report = fsck(store)
        assert report.ok, report.problems
        # The store still works: the same upload now lands whole.
        info = store.put_file(source)
        assert [b.sha256 for b in store.blobs.iter_blobs()] == [info.sha256]
        assert store.blobs.rehash(info.sha256) == (info.sha256, source.stat().st_size)
        gc(store, grace_seconds=0)  # and gc clears the interrupted write's leftovers
        assert store.blobs.temporary_files() == []
