"""``fmhub serve`` as a process: SIGTERM drains accepted requests and exits 0; several workers serve alike."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

import fmhub

FMHUB = str(Path(sys.executable).with_name("fmhub"))


def _start(model: str, *options: str) -> tuple[subprocess.Popen, str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen([FMHUB, "serve", model, "--port", str(port), "--threads", "1", "--log-level",
                                "warning", *options], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        assert process.poll() is None, process.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "the server did not become ready"
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return process, url
        except httpx.TransportError:
            pass
        time.sleep(0.1)


def _queued(url: str) -> float:
    match = re.search(r"^fmhub_queue_depth (\S+)$", httpx.get(f"{url}/metrics").text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def test_sigterm_finishes_every_accepted_request_then_exits_0(classifier: str) -> None:
    process, url = _start(classifier, "--max-wait-ms", "3000", "--max-batch-size", "64")
    try:
        with ThreadPoolExecutor(8) as pool:
            # Two inputs per request: a lone single input would run at once, these wait for their batch.
            pending = [pool.submit(httpx.post, f"{url}/v1/classify", json={"inputs": [f"goal match {i}", "data cloud"]},
                                   timeout=60) for i in range(8)]
            deadline = time.monotonic() + 30
            while _queued(url) < 16:  # all eight accepted and waiting for their batch
                assert time.monotonic() < deadline, "the requests were not queued"
                time.sleep(0.02)
            process.send_signal(signal.SIGTERM)
            answers = [p.result() for p in pending]
        assert [a.status_code for a in answers] == [200] * 8
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_two_workers_serve_the_same_commit(classifier: str) -> None:
    commit = fmhub.load(classifier).commit
    process, url = _start(classifier, "--workers", "2")
    try:
        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(lambda i: httpx.post(f"{url}/v1/classify", json={"inputs": "data cloud"},
                                                         timeout=60), range(8)))
        assert [(a.status_code, a.headers.get("x-model-commit")) for a in answers] == [(200, commit)] * 8, \
            [a.text for a in answers]
        assert len({a.text for a in answers}) == 1  # the same answer from either worker
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _deployments(repo: str, commit: str) -> list[dict]:
    from fmhub.client import Hub

    hub = Hub.open()
    try:
        graph = hub.lineage(repo, commit, direction="down", depth=1)
    finally:
        hub.close()
    edges = {(e["from"], e["to"]): e["relation"] for e in graph["edges"]}
    return [dict(n, relation=edges.get((f"model:{repo}@{commit}", n["id"]))) for n in graph["nodes"]
            if n["kind"] == "deployment"]


def test_a_deployment_is_recorded_under_the_version_while_it_serves_and_when_it_stops(classifier: str) -> None:
    repo, commit = classifier.split("@", 1)[0], fmhub.load(classifier).commit
    before = _deployments(repo, commit)
    process, url = _start(classifier)
    try:
        port = url.rsplit(":", 1)[1]
        [serving] = [n for n in _deployments(repo, commit) if n not in before]
        assert serving["relation"] == "deployed" and serving["commit"] == commit
        assert serving["info"]["step"] == f"{socket.gethostname()}:{port}"
        assert serving["info"]["detail"].startswith("serving since ")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    [stopped] = [n for n in _deployments(repo, commit) if n["id"] == serving["id"]]  # the same node, updated
    assert stopped["info"]["detail"].startswith("stopped since ")
    assert len(_deployments(repo, commit)) == len(before) + 1


def test_a_taken_port_is_an_input_error_and_records_no_deployment(classifier: str) -> None:
    repo, commit = classifier.split("@", 1)[0], fmhub.load(classifier).commit
    before = _deployments(repo, commit)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run([FMHUB, "serve", classifier, "--port", str(port), "--host", "127.0.0.1"],
                              capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr and "--port" in done.stderr
    assert "Traceback" not in done.stderr
    assert _deployments(repo, commit) == before
