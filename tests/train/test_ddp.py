"""fmhub train --nproc 2: two gloo DDP processes on a tiny model stay in sync and publish one output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def test_two_processes_stay_in_sync_and_publish_once(tiny_model: str, tiny_data: str) -> None:
    from fmhub.client import Hub
    from fmhub.runs import Runs
    from fmhub.store import open_store

    fmhub = str(Path(sys.executable).with_name("fmhub"))
    argv = [fmhub, "train", "--task", "text-classification", "--model", tiny_model, "--data", tiny_data,
            "--output", "acme/ddp-bert", "--lr", "1e-3", "--batch-size", "4", "--max-length", "32", "--epochs", "2",
            "--nproc", "2"]
    done = subprocess.run(argv, env={**os.environ, "TOKENIZERS_PARALLELISM": "false"}, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]
    (line,) = [line for line in done.stdout.splitlines() if line.startswith("{")]  # rank 0 alone reports
    outcome = json.loads(line)
    assert outcome["steps"] == 2 * (21 // 2)  # 84 rows / batch 4 = 21 batches, 10 per rank and epoch
    with Hub.open() as hub:
        commits = hub.list_commits("acme/ddp-bert")
    assert len(commits) == 2 and commits[0].oid == outcome["commit"]  # the repo's first commit + one publish
    with open_store() as store:
        (run,) = Runs(store.db).list()
    assert run.status == "completed" and run.config["processes"] == 2
    assert run.summary["ranks_in_sync"] is True
