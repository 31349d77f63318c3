"""``fmhub serve`` refuses what it cannot serve before binding the port: exit 2 with the reason and the fix."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

FMHUB = str(Path(sys.executable).with_name("fmhub"))


@pytest.mark.parametrize(("which", "reason", "fix"), [
    ("headless", "acme/tiny-bert@", "fine-tune it first"),
    ("dataset", "acme/topics is a dataset repository", "fmhub serve serves models"),
])
def test_serve_of_what_it_cannot_serve_exits_2_before_listening(tiny_model: str, tiny_data: str, which, reason,
                                                                   fix) -> None:
    ref = tiny_model if which == "headless" else tiny_data
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    try:  # a server that starts anyway never exits: the timeout is the failure
        done = subprocess.run([FMHUB, "serve", ref, "--port", str(port), "--threads", "1"], capture_output=True,
                              text=True, timeout=120)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"fmhub serve kept running: {exc.stderr}")
    assert done.returncode == 2, done.stderr
    assert reason in done.stderr and fix in done.stderr and "hint:" in done.stderr
    assert "http://" not in done.stderr  # it never announced a server


def test_a_dataset_given_as_a_model_is_named_as_a_dataset(tiny_data: str, capsys) -> None:
    from fmhub.cli import main

    assert main(["ls", tiny_data]) == 2
    err = capsys.readouterr().err
    assert "acme/topics is a dataset repository, not a model repository" in err
    assert "--repo-type dataset" in err and "repo create" not in err
    assert main(["ls", "acme/nothing"]) == 2  # a missing repo still says how to create it
    assert "fmhub repo create acme/nothing" in capsys.readouterr().err
    assert main(["ls", tiny_data, "--repo-type", "dataset"]) == 0
