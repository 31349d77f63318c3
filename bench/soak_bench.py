"""Soak: 64 clients on one hub worker for minutes; no errors, no 5xx, no leaked file descriptors or memory.

Starts ``fmhub server`` (one worker, SQLite + file blobs, a fresh ``FMHUB_HOME``) with a few repos, then runs
``--clients`` keep-alive clients (httpx, in a process of their own) for ``--duration`` seconds. Each client
loops over what ``from_pretrained`` and the Hub's clients do: HEAD then GET of small files, model info, tree
listings, a Range read, a missing file (404 expected), and — for ``--writers`` of the clients — commits
through the NDJSON commit API (with an occasional 412 race on ``parentCommit``, expected). The server's open
file descriptors and RSS are sampled every ``--sample`` seconds. A warm-up load (``--warmup`` seconds) comes
first, so pools, caches and the file handles SQLite keeps reach their working size; the server idle after it
and idle after the long load are compared: open fds may grow by ``--max-fd-growth``, RSS by
``--max-rss-growth-mb``, at most. The database file's handles are bounded apart: SQLite keeps the handle of a
connection the pool closed (for reuse by the next open) while other connections hold the file, so their count
follows the peak of concurrent connections, up to the pool's capacity, not the time under load. Anything
else — a 5xx, a connection error, an unexpected status, a wrong body — fails the run (exit 1).

Usage:
    .venv/bin/python bench/soak_bench.py --duration 600         # ten minutes
    .venv/bin/python bench/soak_bench.py --duration 60 --clients 16   # a quick check
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import multiprocessing
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
DEFAULT_JSON = HERE / "results" / "soak_bench.json"
ADMIN = "fmhub_soak-bench-admin-token-0123456789"
REPOS = ["admin/tiny-a", "admin/tiny-b", "admin/tiny-c"]
FILES = {"config.json": b'{"model_type": "bert", "hidden_size": 32}\n' * 20,
         "tokenizer_config.json": b'{"do_lower_case": true}\n' * 10,
         "vocab.txt": b"\n".join(f"word{i}".encode() for i in range(3000))}


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ndjson(summary: str, files: dict[str, bytes], parent: str | None = None) -> bytes:
    header: dict = {"summary": summary}
    if parent:
        header["parentCommit"] = parent
    lines = [{"key": "header", "value": header}] + [
        {"key": "file", "value": {"path": p, "content": base64.b64encode(d).decode(), "encoding": "base64"}}
        for p, d in files.items()]
    return b"\n".join(json.dumps(line).encode() for line in lines)


async def _client(url: str, number: int, writer: bool, end: float, counts: dict, problems: list) -> None:
    rng = random.Random(number)
    headers = {"Authorization": f"Bearer {ADMIN}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=120) as client:
        while time.time() < end:
            repo = rng.choice(REPOS)
            path = rng.choice(list(FILES))
            kind = rng.choice(["head+get", "head+get", "info", "tree", "range", "missing"] +
                              (["commit"] if writer else []))
            try:
                if kind == "head+get":
                    head = await client.head(f"/{repo}/resolve/main/{path}")
                    got = await client.get(f"/{repo}/resolve/main/{path}")
                    ok = head.status_code == 200 and got.status_code == 200 and got.content == FILES[path]
                    status = got.status_code if head.status_code == 200 else head.status_code
                elif kind == "info":
                    got = await client.get(f"/api/models/{repo}")
                    status, ok = got.status_code, got.status_code == 200 and len(got.json()["siblings"]) >= 3
                elif kind == "tree":
                    got = await client.get(f"/api/models/{repo}/tree/main")
                    status, ok = got.status_code, got.status_code == 200
                elif kind == "range":
                    got = await client.get(f"/{repo}/resolve/main/{path}", headers={"Range": "bytes=0-9"})
                    status, ok = got.status_code, got.status_code == 206 and got.content == FILES[path][:10]
                elif kind == "missing":
                    got = await client.get(f"/{repo}/resolve/main/nope-{number}.bin")
                    status, ok = got.status_code, got.status_code == 404 and "error" in got.json()
                else:
                    parent = (await client.get(f"/api/models/{repo}/revision/main")).json()["sha"]
                    got = await client.post(f"/api/models/{repo}/commit/main", headers={
                        "Content-Type": "application/x-ndjson"}, content=_ndjson(
                        "soak", {f"runs/w{number}-{rng.randrange(1 << 30)}.txt": os.urandom(64).hex().encode()},
                        parent))
                    status, ok = got.status_code, got.status_code in (200, 412)  # 412: another writer got there
            except httpx.HTTPError as error:
                status, ok = type(error).__name__, False
            key = f"{kind} {status}"
            counts[key] = counts.get(key, 0) + 1
            if not ok and len(problems) < 20:
                problems.append(f"{kind} {repo} {path}: {status}")


def _child(url: str, clients: int, writers: int, duration: float) -> dict:
    counts: dict[str, int] = {}
    problems: list[str] = []
    end = time.time() + duration

    async def run() -> None:
        await asyncio.gather(*(_client(url, i, i < writers, end, counts, problems) for i in range(clients)))

    asyncio.run(run())
    return {"counts": counts, "problems": problems}


def _sample(pid: int) -> tuple[int, float]:
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    rss_kb = next(int(line.split()[1]) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                  if line.startswith("VmRSS:"))
    return fds, rss_kb / 1024


#: The SQLite pool of fmhub.store._db: pool_size 8 + max_overflow 64 connections at most.
_POOL_CAPACITY = 8 + 64


def _others(kinds: dict[str, int]) -> int:
    return sum(n for kind, n in kinds.items() if not kind.startswith("fmhub.db"))


def _fd_kinds(pid: int) -> dict[str, int]:
    """What the open fds are: sockets, pipes, anon inodes, or files by name (e.g. ``fmhub.db-wal``)."""
    kinds: dict[str, int] = {}
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        kind = target.split(":")[0] if ":" in target else Path(target).name
        kinds[kind] = kinds.get(kind, 0) + 1
    return kinds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=600.0, help="seconds of load (default 600)")
    parser.add_argument("--clients", type=int, default=64, help="concurrent keep-alive clients (default 64)")
    parser.add_argument("--writers", type=int, default=2, help="of the clients, how many also commit (default 2)")
    parser.add_argument("--warmup", type=float, default=30.0,
                        help="seconds of a first load before the baseline of idle fds and RSS (default 30)")
    parser.add_argument("--sample", type=float, default=5.0, help="seconds between samples (default 5)")
    parser.add_argument("--max-fd-growth", type=int, default=16, help="allowed growth of open fds (default 16)")
    parser.add_argument("--max-rss-growth-mb", type=float, default=64.0,
                        help="allowed RSS growth after the warm-up, MB (default 64)")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="fmhub-soak-"))
    env = {**os.environ, "FMHUB_HOME": str(home), "FMHUB_ADMIN_TOKEN": ADMIN}
    port = _port()
    server = subprocess.Popen([sys.executable, "-m", "fmhub", "server", "--port", str(port), "--log-level",
                               "warning"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    samples: list[tuple[float, int, float]] = []
    try:
        deadline = time.time() + 120
        while True:
            try:
                if httpx.get(f"{url}/readyz", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.time() > deadline or server.poll() is not None:
                raise RuntimeError("the hub did not start")
            time.sleep(0.2)
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=60) as setup:
            for repo in REPOS:
                setup.post("/api/repos/create", json={"name": repo.split("/")[1]}).raise_for_status()
                setup.post(f"/api/models/{repo}/commit/main", content=_ndjson("files", FILES),
                           headers={"Content-Type": "application/x-ndjson"}).raise_for_status()
        load_start = os.getloadavg()[0]

        def settled() -> tuple[int, float, dict[str, int]]:
            """Idle again: the server closes the clients' sockets as it reads their FINs (bounded wait)."""
            time.sleep(2)
            fds, rss = _sample(server.pid)
            for _ in range(30):
                time.sleep(1)
                again = _sample(server.pid)
                if again[0] >= fds:
                    break
                fds, rss = again
            return fds, rss, _fd_kinds(server.pid)

        stop = threading.Event()

        def sampler() -> None:
            started = time.time()
            while not stop.wait(args.sample):
                samples.append((time.time() - started, *_sample(server.pid)))

        thread = threading.Thread(target=sampler, daemon=True)
        thread.start()
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            # A warm-up load first: pools, caches and SQLite's kept file handles reach their working size. The
            # leak checks compare the idle server after it with the idle server after the long load.
            warm = pool.apply(_child, (url, args.clients, args.writers, args.warmup))
            idle_fds, idle_rss, kinds_before = settled()
            stat = Path(f"/proc/{server.pid}/stat").read_text().rsplit(")", 1)[1].split()
            cpu_before = (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")
            result = pool.apply(_child, (url, args.clients, args.writers, args.duration))
            stat = Path(f"/proc/{server.pid}/stat").read_text().rsplit(")", 1)[1].split()
            server_cpu = (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK") - cpu_before
        final_fds, final_rss, kinds_after = settled()
        stop.set()
        thread.join()
        alive = server.poll() is None
        result["problems"] = warm["problems"] + result["problems"]
        for key, n in warm["counts"].items():  # the warm-up's answers are checked too
            if not key.split()[-1].isdigit() or key.split()[-1].startswith("5"):
                result["counts"][key] = result["counts"].get(key, 0) + n
    finally:
        server.terminate()
        server.wait(30)

    base_fds, base_rss = idle_fds, idle_rss
    final = (final_fds, final_rss)
    peak_fds, peak_rss = max(s[1] for s in samples), max(s[2] for s in samples)
    counts = result["counts"]
    requests = sum(counts.values())
    errors = sum(n for key, n in counts.items() if not key.split()[-1].isdigit() or key.split()[-1].startswith("5"))
    checks = {
        "no 5xx or connection error": errors == 0,
        "every answer as expected": not result["problems"],
        "server alive": alive,
        # SQLite keeps the handle of a connection the pool closed while others hold the file (its unix VFS
        # reuses it for the next open): those are bounded by the pool's capacity, not by time.
        f"open fds other than the database file's, when idle, grew ≤ {args.max_fd_growth} over the long load":
            _others(kinds_after) - _others(kinds_before) <= args.max_fd_growth,
        f"database file handles ≤ the pool's capacity ({_POOL_CAPACITY})":
            kinds_after.get("fmhub.db", 0) <= _POOL_CAPACITY,
        f"RSS when idle grew ≤ {args.max_rss_growth_mb:g} MB over the long load":
            final[1] - base_rss <= args.max_rss_growth_mb,
    }
    summary = {
        "clients": args.clients, "writers": args.writers, "duration_s": args.duration, "requests": requests,
        "req_s": requests / args.duration, "server_cpu_ms_per_request": server_cpu * 1000 / max(requests, 1),
        "counts": counts, "problems": result["problems"], "fds": {"idle_after_warmup": base_fds, "peak": peak_fds,
                                                                  "idle_after": final[0]},
        "rss_mb": {"idle_after_warmup": round(base_rss, 1), "peak": round(peak_rss, 1),
                   "idle_after": round(final[1], 1)},
        "fd_kinds": {"idle_after_warmup": kinds_before, "idle_after": kinds_after},
        "load_average": {"start": load_start, "end": os.getloadavg()[0]}, "checks": checks,
    }
    print(f"{args.clients} clients ({args.writers} committing) × {args.duration:g} s on one worker; load average "
          f"{load_start:.1f} → {os.getloadavg()[0]:.1f}")
    print(f"requests {requests} ({summary['req_s']:.0f}/s), server CPU {summary['server_cpu_ms_per_request']:.2f} ms"
          f"/request")
    for key in sorted(counts):
        print(f"  {key:28} {counts[key]:>8}")
    print(f"open fds: {base_fds} idle after the warm-up, peak {peak_fds} under load, {final[0]} idle after")
    print(f"  idle after the warm-up: {kinds_before}\n  idle after:  {kinds_after}")
    print(f"RSS MB:   {base_rss:.1f} idle after the warm-up, peak {peak_rss:.1f}, {final[1]:.1f} idle after")
    for name, passed in checks.items():
        print(f"  {'ok  ' if passed else 'FAIL'} {name}")
    for problem in result["problems"][:10]:
        print(f"  problem: {problem}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(summary, indent=2))
    print(f"wrote {args.json}")
    sys.exit(0 if all(checks.values()) else 1)


if __name__ == "__main__":
    main()
