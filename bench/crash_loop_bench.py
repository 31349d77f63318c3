"""Kill -9 crash loop: the hub is killed mid-commit, again and again; no acknowledged commit may be lost.

Each round starts ``fmhub server`` (one worker) on a fresh port over the same store, has ``--clients``
processes commit small files through the unmodified ``huggingface_hub`` client (inline and LFS sizes),
kills the server with SIGKILL at a random moment 0-2 s after the round's first acknowledged commit, ends the
committers still retrying ``--client-grace`` seconds later, and checks, over the store directly, that every
commit a client saw acknowledged is there with its file's bytes. At the end ``fmhub fsck`` (sha256 of every
blob) must find nothing wrong. The table: rounds, commits acknowledged, commits lost, fsck problems. SIGTERM
or Ctrl-C ends the run after the round under way, with the same checks and table.

Usage:
    .venv/bin/python bench/crash_loop_bench.py --rounds 100
"""

from __future__ import annotations

import argparse
import atexit
import hashlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
DEFAULT_JSON = HERE / "results" / "crash_loop_bench.json"
ADMIN = "fmhub_crash-loop-admin-token-0123456789"


# One committer: uploads small files (inline and LFS sizes) until a request fails; one JSON line per commit
# the server acknowledged (its oid, path and the sha256 of its bytes), then one line for the request that failed.
_CLIENT = """
import hashlib, json, os, random, sys
from huggingface_hub import HfApi
token, prefix, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
url = sys.stdin.readline().strip()  # imports done while the server starts; then its URL arrives
api, rng, count = HfApi(endpoint=url, token=token), random.Random(seed), 0
print(json.dumps({"ready": True}), flush=True)
while True:
    count += 1
    data = os.urandom(rng.choice([100, 4096, 11 * 1024 * 1024 if count % 10 == 0 else 2000]))
    path = f"{prefix}/f{count}.bin.txt"
    try:
        info = api.upload_file(path_or_fileobj=data, path_in_repo=path, repo_id="admin/crash")
    except Exception as error:  # the server was killed under it: not acknowledged
        print(json.dumps({"failed": type(error).__name__}), flush=True)
        break
    print(json.dumps({"oid": info.oid, "path": path, "sha256": hashlib.sha256(data).hexdigest()}), flush=True)
"""


def _read_lines(client: subprocess.Popen, records: list[dict]) -> None:
    for line in client.stdout:
        records.append(json.loads(line))


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start(env: dict[str, str], live: list[subprocess.Popen]) -> tuple[subprocess.Popen, str]:
    port = _port()
    process = subprocess.Popen([sys.executable, "-m", "fmhub", "server", "--port", str(port), "--log-level",
                                "warning"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    live.append(process)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError("the hub did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=20, help="kill -9 cycles")
    parser.add_argument("--clients", type=int, default=4, help="committing threads per round")
    parser.add_argument("--client-grace", type=float, default=5.0,
                        help="seconds a committer may keep retrying after the kill before it is ended (default 5)")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = parser.parse_args()

    from huggingface_hub import HfApi

    home = Path(tempfile.mkdtemp(prefix="fmhub-crash-"))
    env = {**os.environ, "FMHUB_HOME": str(home), "FMHUB_ADMIN_TOKEN": ADMIN, "HF_HUB_DISABLE_TELEMETRY": "1"}
    os.environ["FMHUB_HOME"] = str(home)
    client_env = {**env, "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
    acknowledged: list[tuple[str, str, str]] = []  # (commit oid, path, sha256 of the content)
    failed_requests = 0
    rng = random.Random(29)
    started = time.time()
    live: list[subprocess.Popen] = []  # ended on any exit: no server or committer outlives the bench
    atexit.register(lambda: [p.kill() for p in live if p.poll() is None])
    # SIGTERM or Ctrl-C: finish the round under way, then check what was acknowledged so far (a run cut short
    # still reports its rounds, commits lost and fsck).
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    rounds_done = 0
    for round_number in range(args.rounds):
        if stopping.is_set():
            break
        # Committers are processes, not threads: after the kill a client may retry for minutes (the Xet
        # client backs off and retries), and a process can be ended where a thread cannot. They start (and
        # import) while the server starts.
        clients = [subprocess.Popen([sys.executable, "-c", _CLIENT, ADMIN, f"r{round_number}/w{i}",
                                     str(rng.randrange(1 << 30))], env=client_env, stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
                   for i in range(args.clients)]
        live.extend(clients)
        process, url = _start(env, live)
        HfApi(endpoint=url, token=ADMIN).create_repo("admin/crash", exist_ok=True)
        for client in clients:
            client.stdin.write(url + "\n")
            client.stdin.close()
        records: list[dict] = []
        readers = [threading.Thread(target=_read_lines, args=(client, records), daemon=True) for client in clients]
        for reader in readers:
            reader.start()
        # The kill lands while commits are under way: a random moment after the round's first acknowledgement
        # (on a loaded machine the first commit of a fresh server can take seconds).
        deadline = time.time() + 120
        while not any("oid" in r or "failed" in r for r in records) and time.time() < deadline:
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 2.0))
        process.send_signal(signal.SIGKILL)
        process.wait()
        grace = time.time() + args.client_grace
        for client in clients:
            try:
                client.wait(timeout=max(0.0, grace - time.time()))
            except subprocess.TimeoutExpired:
                client.kill()  # still retrying against the dead server: nothing more will be acknowledged
                client.wait()
        for reader in readers:
            reader.join()
        live.clear()
        for record in records:
            if "failed" in record:
                failed_requests += 1
            elif "oid" in record:
                acknowledged.append((record["oid"], record["path"], record["sha256"]))
        rounds_done += 1
        print(f"round {round_number + 1}/{args.rounds}: {len(acknowledged)} commits acknowledged so far", flush=True)

    from fmhub.store import open_store
    from fmhub.store.maintenance import fsck

    lost = []
    with open_store() as store:
        for oid, path, sha256 in acknowledged:
            try:
                if hashlib.sha256(store.read_bytes("admin/crash", path, oid)).hexdigest() != sha256:
                    lost.append(f"{oid[:12]} {path}: wrong bytes")
            except Exception as error:  # noqa: BLE001
                lost.append(f"{oid[:12]} {path}: {type(error).__name__}")
        report = fsck(store)
    problems = list(report.problems)
    result = {"rounds": rounds_done, "rounds_asked": args.rounds, "load_average_end": os.getloadavg()[0],
              "clients": args.clients, "acknowledged": len(acknowledged),
              "interrupted_requests": failed_requests, "lost": len(lost), "fsck_problems": len(problems),
              "seconds": round(time.time() - started, 1), "examples": (lost + problems)[:10]}
    print(f"{'rounds':>7} {'acknowledged':>13} {'interrupted':>12} {'lost':>5} {'fsck problems':>14}")
    print(f"{rounds_done:>7} {len(acknowledged):>13} {failed_requests:>12} {len(lost):>5} {len(problems):>14}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.json}")
    sys.exit(1 if lost or problems else 0)


if __name__ == "__main__":
    main()
