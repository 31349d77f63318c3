"""Hub server throughput and memory, side by side with nginx and coreutils, in one run.

Starts the real server (``fmhub server`` over a fresh temporary ``FMHUB_HOME``: SQLite + ``file://``
blobs) and nginx (a minimal config, serving the very same blob through a hard link) on loopback ports,
then measures, on one large ``.safetensors`` file:

    step                                       fmhub                        anchor                      goal
    a. download (curl, whole file)             GET /{repo}/resolve/main/…   nginx, sendfile on          ≥ 0.9× nginx's throughput
    b. upload (huggingface_hub upload_file)    LFS batch + PUT + commit     sha256sum FILE && cp FILE   ≤ 2× the anchor's time
    c. server peak RSS during a and b          VmHWM (+ VmRSS every 50 ms)  —                           ≤ 200 MB
    d. N concurrent downloaders for D seconds  small file (+ medium file)   nginx, same file, same load 0 errors (ratio: information)

Both servers are stopped at the end, always (also on Ctrl-C). The page cache is dropped before every
timed transfer when this runs as root (``sync; echo 3 > /proc/sys/vm/drop_caches``); otherwise every
run starts with its input read once (warm) and the report says so.

Usage:
    .venv/bin/python bench/hub_bench.py                                     # 1 GiB, 3 repetitions, 64 × 30 s
    .venv/bin/python bench/hub_bench.py --size-gib 0.125 --repeat 1 --duration 5   # quick check
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import resource
import secrets
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from store_bench import choose_parent, filesystem_of  # same folder: shared helpers
from _hub_load import LOAD_CLIENTS, child_load  # same folder: the load generator
from _hub_services import (  # same folder: the servers and the process/memory probes
    ADMIN, CHUNK, MB, MIB, RssMonitor, Service, can_drop_caches, cpu_seconds, ensure_nginx, log_tail,
    prepare_cache, start_hub, start_nginx,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO_ROOT / "bench" / "results"
GIB = 1 << 30

DOWNLOAD_REPO = f"{ADMIN}/hub-bench"
WEIGHTS = "model.safetensors"
SMALL = "config.json"

# Goals (the issue's): download throughput ratio, upload time ratio, peak RSS, errors under load.
DOWNLOAD_MIN_RATIO = 0.9
UPLOAD_MAX_RATIO = 2.0
RSS_GOAL_MB = 200.0
LOAD_MAX_ERRORS = 0



# -- test files ------------------------------------------------------------------------------------

def safetensors_header(total: int) -> bytes:
    """The 8-byte length + JSON header of a safetensors file of ``total`` bytes holding one U8 tensor.

    The header is space-padded to a multiple of 8 (as the safetensors crate writes it), and the tensor
    covers every byte after it, so the hub's header validation accepts the file.
    """
    data = total - 8
    for _ in range(4):  # the header's length depends on the digits of the data length: iterate to a fixed point
        body = json.dumps({"__metadata__": {"format": "pt", "source": "fmhub hub_bench"},
                           "weights": {"dtype": "U8", "shape": [data], "data_offsets": [0, data]}},
                          separators=(",", ":")).encode()
        body += b" " * (-len(body) % 8)
        if total - 8 - len(body) == data:
            return len(body).to_bytes(8, "little") + body
        data = total - 8 - len(body)
    raise RuntimeError(f"no safetensors header fits a {total}-byte file")


def make_safetensors(path: Path, total: int) -> int:
    """Write a valid safetensors file of exactly ``total`` bytes (random tensor data); returns the data offset."""
    header = safetensors_header(total)
    with open(path, "wb") as f:
        f.write(header)
        remaining = total - len(header)
        while remaining:
            chunk = os.urandom(min(CHUNK, remaining))
            f.write(chunk)
            remaining -= len(chunk)
        f.flush()
        os.fsync(f.fileno())
    return len(header)


def refresh_content(path: Path, data_offset: int) -> None:
    """Give the file new content (so a new blob, not a dedup hit) by rewriting 64 bytes of tensor data."""
    fd = os.open(path, os.O_WRONLY)
    try:
        os.pwrite(fd, os.urandom(64), data_offset)
        os.fsync(fd)
    finally:
        os.close(fd)


def small_config() -> bytes:
    """A ~1 KB ``config.json`` shaped like a transformers config."""
    config = {"architectures": ["BertModel"], "model_type": "bert", "attention_probs_dropout_prob": 0.1,
              "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "hidden_size": 384, "initializer_range": 0.02,
              "intermediate_size": 1536, "layer_norm_eps": 1e-12, "max_position_embeddings": 512,
              "num_attention_heads": 12, "num_hidden_layers": 6, "pad_token_id": 0, "position_embedding_type":
              "absolute", "torch_dtype": "float32", "transformers_version": "5.23.0", "type_vocab_size": 2,
              "use_cache": True, "vocab_size": 30522, "id2label": {str(i): f"LABEL_{i}" for i in range(20)}}
    text = json.dumps(config, indent=2) + "\n"
    return (text + " " * max(0, 1023 - len(text)) + "\n").encode()


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb", buffering=0) as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


# -- child processes: huggingface_hub uploads (the load generator is in _hub_load.py) --------------

def hf_env(work: Path) -> dict[str, str]:
    """The environment of huggingface_hub children: no Xet (read at import), no telemetry, a private cache."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING_FACE_", "FMHUB_"))}
    env.update({"HF_HUB_DISABLE_XET": "1", "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1",
                "HF_HOME": str(work / "hf-home")})
    return env


def _child_upload(args: dict) -> dict:
    """Create a repo, then time one upload_file (or one create_commit of several files) with huggingface_hub."""
    from huggingface_hub import CommitOperationAdd, HfApi
    from huggingface_hub import constants as hf_constants

    api = HfApi(endpoint=args["endpoint"], token=args["token"])
    api.create_repo(args["repo_id"], exist_ok=False)
    files = args["files"]
    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    if len(files) == 1:
        local, in_repo = files[0]
        info = api.upload_file(path_or_fileobj=local, path_in_repo=in_repo, repo_id=args["repo_id"],
                               commit_message="hub_bench upload")
        oid = info.oid
    else:
        info = api.create_commit(args["repo_id"], [CommitOperationAdd(path_in_repo=p, path_or_fileobj=f)
                                                   for f, p in files], commit_message="hub_bench set-up")
        oid = info.oid
    seconds = time.perf_counter() - start
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    return {"seconds": seconds, "commit_oid": oid, "xet_disabled": bool(hf_constants.HF_HUB_DISABLE_XET),
            "client_cpu_s": (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime),
            "client_peak_rss_mb": cpu_after.ru_maxrss * 1024 / MB}


CHILD_STEPS = {"upload": _child_upload, "load": child_load}


def run_child(step: str, raw_args: str) -> None:
    print(json.dumps(CHILD_STEPS[step](json.loads(raw_args))))


def child_command(step: str, args: dict) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), "--step", step, "--step-args", json.dumps(args)]


def run_upload_child(args: dict, env: dict[str, str]) -> dict:
    done = subprocess.run(child_command("upload", args), capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"huggingface_hub upload failed (exit {done.returncode}):\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# -- measurements ----------------------------------------------------------------------------------

def curl_download(url: str, size: int) -> float:
    """Seconds curl needs to fetch ``url`` to /dev/null (its own ``time_total``), after checking status and size."""
    done = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{size_download} %{time_total}", url],
                          capture_output=True, text=True)
    fields = done.stdout.split()
    if done.returncode != 0 or len(fields) != 3 or fields[0] != "200" or int(fields[1]) != size:
        raise RuntimeError(f"curl {url} failed: exit {done.returncode}, got {done.stdout!r} (want 200 {size})")
    return float(fields[2])


def timed_commands(*commands: list[str]) -> float:
    start = time.perf_counter()
    for command in commands:
        subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - start


def run_load(services: dict[str, Service], name: str, url: str, args: Args, expected: int,
             monitor: RssMonitor | None, phase: str) -> dict:
    """``args.concurrency`` downloaders in ``args.load_procs`` processes hammering ``url`` for ``args.duration`` s."""
    service = services[name]
    share = [args.concurrency // args.load_procs + (i < args.concurrency % args.load_procs)
             for i in range(args.load_procs)]
    pids = service.pids()
    cpu_before = cpu_seconds(pids)
    start = time.perf_counter()
    with monitor.phase(phase) if monitor else _null():
        children = [subprocess.Popen(child_command("load", {"url": url, "concurrency": n, "warmup": args.warmup,
                                                            "duration": args.duration, "expected": expected,
                                                            "client": args.load_client}),
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                    for n in share if n]
        try:
            outputs = [child.communicate(timeout=args.warmup + args.duration + 180) for child in children]
        finally:
            for child in children:
                if child.poll() is None:
                    child.kill()
                    child.wait()
    wall = time.perf_counter() - start
    server_cpu = cpu_seconds(service.pids()) - cpu_before
    parts = []
    for child, (out, err) in zip(children, outputs, strict=True):
        if child.returncode != 0:
            raise RuntimeError(f"load generator failed (exit {child.returncode}):\n{err[-4000:]}")
        parts.append(json.loads(out.strip().splitlines()[-1]))
    errors = _sum_counts(p["errors"] for p in parts)
    ok = sum(p["ok"] for p in parts)
    client_cpu = sum(p["cpu_s"] for p in parts)
    return {
        "requests_ok": ok,
        "errors": errors,
        "error_count": sum(errors.values()),
        "requests_per_s": ok / args.duration,
        "mb_per_s": sum(p["bytes"] for p in parts) / MB / args.duration,
        "latency_ms_p50_worst_process": max(p["latency_ms"]["p50"] for p in parts),
        "latency_ms_p99_worst_process": max(p["latency_ms"]["p99"] for p in parts),
        "client_processes": len(parts),
        "client_cpu_s": client_cpu,
        "client_cpu_cores": client_cpu / wall,  # 1.0 = one core busy for the whole run
        "server_cpu_s": server_cpu,
        "server_cpu_cores": server_cpu / wall,
        "wall_s": wall,
        "parts": parts,
    }


@contextmanager
def _null():
    yield None


# -- machine ---------------------------------------------------------------------------------------

def _first_line(command: list[str]) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True)
    except OSError:
        return "not found"
    return (done.stdout or done.stderr).strip().split("\n")[0]


def machine_info(work: Path, nginx: str) -> dict:
    from importlib.metadata import version

    fstype, device, mount = filesystem_of(work)
    cpu_model = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            cpu_model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu_model)
    except OSError:
        pass
    disk = Path(device).name
    disk_info: dict[str, str] = {}
    for key, rel in (("rotational", "queue/rotational"), ("model", "device/model"), ("vendor", "device/vendor")):
        try:
            disk_info[key] = (Path("/sys/block") / disk / rel).read_text().strip()
        except OSError:
            pass
    return {
        "cpu_model": cpu_model,
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / GIB, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "workdir": str(work),
        "filesystem": fstype,
        "device": device,
        "mount": mount,
        "disk": disk_info,
        "nginx": _first_line([nginx, "-v"]),
        "curl": _first_line(["curl", "--version"]),
        "versions": {name: version(name) for name in ("fmhub", "uvicorn", "starlette", "fastapi", "h11",
                                                      "huggingface_hub", "httpx")},
        "git_commit": _first_line(["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"]),
        # The server runs this checkout's src/: say whether it differs from the commit above.
        "src_modified": bool(_first_line(["git", "-C", str(REPO_ROOT), "status", "--porcelain", "--", "src"])),
    }


# -- the run ---------------------------------------------------------------------------------------

@dataclass
class Args:
    size_gib: float
    repeat: int
    concurrency: int
    duration: float
    warmup: float
    medium_mib: float
    load_procs: int
    load_client: str
    server_workers: int
    workdir: Path | None
    json: Path
    install_nginx: bool
    argv: list[str] = field(default_factory=list)


def median(values: list[float]) -> float:
    return statistics.median(values)


def _sum_counts(counters) -> dict[str, int]:
    total: dict[str, int] = {}
    for counter in counters:
        for key, n in counter.items():
            total[key] = total.get(key, 0) + n
    return total


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def run_benchmark(args: Args) -> dict:
    from rich.console import Console

    console = Console()
    if not console.is_terminal:  # piped or redirected: rich would wrap the table at 80 columns
        console = Console(width=160)
    if shutil.which("curl") is None:
        sys.exit("curl (the download client) is not installed: apt-get install -y curl")
    nginx = ensure_nginx(args.install_nginx, console)
    size = int(args.size_gib * GIB)
    medium = int(args.medium_mib * MIB)
    parent = choose_parent(args.workdir)
    need = (args.repeat + 4) * size + 2 * medium + 256 * MIB  # source, blob, cp copy, one blob per upload
    free = shutil.disk_usage(parent).free
    if free < need:
        sys.exit(f"{parent} has {free / GIB:.1f} GiB free; this run needs about {need / GIB:.1f} GiB "
                 "(use --size-gib or --workdir)")
    cold = can_drop_caches()
    cache_mode = ("cold: sync; echo 3 > /proc/sys/vm/drop_caches before every timed transfer" if cold else
                  "warm: not root (or /proc/sys read-only), so every timed transfer starts with its input read "
                  "once; both sides alike")
    token = "fmhub_bench_" + secrets.token_urlsafe(32)
    work = Path(tempfile.mkdtemp(prefix="fmhub-hub-bench-", dir=parent))
    services: dict[str, Service] = {}
    interrupted = False
    previous_sigterm = signal.signal(signal.SIGTERM, _interrupt)  # `kill` stops the servers too, like Ctrl-C
    try:
        info = machine_info(work, nginx)
        info["loadavg_at_start"] = os.getloadavg()
        if info["loadavg_at_start"][0] > 0.5:
            console.print(f"[yellow]warning[/]: load average {info['loadavg_at_start'][0]:.2f} at start: other work "
                          "on this machine shares the CPUs with the servers and skews the results")
        console.print(f"[bold]fmhub hub benchmark[/] — {size / GIB:g} GiB file, {args.repeat} repetition(s), "
                      f"{args.concurrency} downloaders × {args.duration:g} s; work dir {work} "
                      f"({info['filesystem']} on {info['device']}); page cache {'cold' if cold else 'warm'}")
        logs = work / "logs"
        logs.mkdir()
        home, www, files = work / "fmhub-home", work / "www", work / "files"
        www.mkdir()
        files.mkdir()

        # -- the files: the big one, a small config, a medium shard --------------------------------
        started = time.perf_counter()
        source = files / WEIGHTS
        data_offset = make_safetensors(source, size)
        (files / SMALL).write_bytes(small_config())
        medium_name = f"shard-{args.medium_mib:g}mib.safetensors"
        if medium:
            make_safetensors(files / medium_name, medium)
        console.print(f"  created {WEIGHTS} ({size:,} bytes, valid safetensors) in {time.perf_counter() - started:.1f} s")

        # -- the servers ---------------------------------------------------------------------------
        services["hub"] = start_hub(home, token, args.server_workers, logs)
        services["hub"].wait_ready("/healthz")
        hub = services["hub"]
        console.print(f"  fmhub server on {hub.base_url} (pid {hub.process.pid}, {args.server_workers} worker(s))")
        env = hf_env(work)
        upload_files = [[str(source), WEIGHTS], [str(files / SMALL), SMALL]]
        if medium:
            upload_files.append([str(files / medium_name), medium_name])
        setup = run_upload_child({"endpoint": hub.base_url, "token": token, "repo_id": DOWNLOAD_REPO,
                                  "files": upload_files}, env)
        if not setup["xet_disabled"]:
            raise RuntimeError("HF_HUB_DISABLE_XET=1 did not reach huggingface_hub")
        # nginx serves the hub's own blob through hard links: the same inode, so the same bytes and the
        # same page-cache state for both servers.
        from fmhub.store.blobs.file import FileBlobStore

        blobs = FileBlobStore(home / "blobs")
        for name in [WEIGHTS, SMALL] + ([medium_name] if medium else []):
            blob = blobs.local_path(sha256_of(files / name))
            if blob is None or not blob.is_file():
                raise RuntimeError(f"the hub has no blob for {name} at {blob}")
            os.link(blob, www / name)
        services["nginx"] = start_nginx(nginx, work, www, logs)
        services["nginx"].wait_ready("/" + SMALL)
        ngx = services["nginx"]
        console.print(f"  nginx on {ngx.base_url} (pid {ngx.process.pid}, 2 workers, sendfile on); "
                      f"repo {DOWNLOAD_REPO} committed ({setup['seconds']:.1f} s)")
        urls = {"hub": f"{hub.base_url}/{DOWNLOAD_REPO}/resolve/main/{{}}", "nginx": f"{ngx.base_url}/{{}}"}

        raw: dict[str, list] = {k: [] for k in ("download_hub", "download_nginx", "download_warm_hub",
                                                "download_warm_nginx", "upload_hub", "upload_anchor")}
        uploads: list[dict] = []
        load: dict[str, list] = {}
        with RssMonitor(hub) as monitor:
            # -- a. downloads ------------------------------------------------------------------------
            blob = www / WEIGHTS
            for rep in range(args.repeat):
                console.print(f"  [dim]download round {rep + 1}/{args.repeat}[/]")
                order = ("hub", "nginx") if rep % 2 == 0 else ("nginx", "hub")  # neither always goes first
                for name in order:
                    prepare_cache(cold, blob)
                    if name == "hub":
                        with monitor.phase("download"):
                            raw["download_hub"].append(curl_download(urls["hub"].format(WEIGHTS), size))
                    else:
                        raw["download_nginx"].append(curl_download(urls["nginx"].format(WEIGHTS), size))
                for name in order:  # information: the same from a warm page cache (server overhead only)
                    prepare_cache(False, blob)
                    if name == "hub":
                        with monitor.phase("download"):
                            raw["download_warm_hub"].append(curl_download(urls["hub"].format(WEIGHTS), size))
                    else:
                        raw["download_warm_nginx"].append(curl_download(urls["nginx"].format(WEIGHTS), size))

            # -- b. uploads: new content each round, so the blob store cannot dedup ---------------------
            dest = files / "anchor-copy.bin"
            blob_root = home / "blobs"
            for rep in range(args.repeat):
                console.print(f"  [dim]upload round {rep + 1}/{args.repeat}[/]")
                refresh_content(source, data_offset)
                blobs_before = sum(1 for _ in blobs.iter_blobs())
                prepare_cache(cold, source)
                raw["upload_anchor"].append(timed_commands(["sha256sum", str(source)], ["cp", str(source), str(dest)]))
                dest.unlink()
                prepare_cache(cold, source)
                with monitor.phase("upload"):
                    up = run_upload_child({"endpoint": hub.base_url, "token": token,
                                           "repo_id": f"{ADMIN}/upload-{rep + 1}", "files": [[str(source), WEIGHTS]]},
                                          env)
                up["new_blobs"] = sum(1 for _ in blobs.iter_blobs()) - blobs_before
                if up["new_blobs"] != 1:
                    raise RuntimeError(f"upload round {rep + 1} stored {up['new_blobs']} new blobs, expected 1 "
                                       f"(dedup would make the timing meaningless); blobs in {blob_root}")
                raw["upload_hub"].append(up["seconds"])
                uploads.append(up)

            # -- d. concurrent downloaders -------------------------------------------------------------
            targets = [("small", SMALL, len(small_config()))] + ([("medium", medium_name, medium)] if medium else [])
            for label, name, expected in targets:
                for rep in range(args.repeat):
                    for server in ("hub", "nginx"):
                        console.print(f"  [dim]load {label} ({name}) round {rep + 1}/{args.repeat}: {server}, "
                                      f"{args.concurrency} downloaders, {args.warmup:g} s warm-up + "
                                      f"{args.duration:g} s[/]")
                        result = run_load(services, server, urls[server].format(name), args, expected,
                                          monitor if server == "hub" else None, f"load_{label}")
                        load.setdefault(f"{label}_{server}", []).append(result)

        memory = {name: vars(phase) | {"peak_mb": monitor.peak_mb(name)} for name, phase in monitor.phases.items()}
        info["loadavg_at_end"] = os.getloadavg()  # our own load is in it too: compare with the start
        result = summarize(args, size, medium, medium_name, info, cache_mode, cold, raw, uploads, load, memory,
                           setup, hub)
        print_report(console, result)
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2, default=str) + "\n")
        console.print(f"JSON written to {args.json}")
        return result
    except KeyboardInterrupt:
        interrupted = True
        console.print("[yellow]interrupted: stopping the servers and deleting the work dir[/]")
        raise
    finally:
        for service in services.values():
            service.stop()
        signal.signal(signal.SIGTERM, previous_sigterm)
        if not interrupted and sys.exc_info()[0] is not None:
            for service in services.values():  # an error: show what the servers said before it goes
                console.print(f"[dim]--- last lines of the {service.name} log ---\n{log_tail(service.log)}[/]")
        shutil.rmtree(work, ignore_errors=True)


def summarize(args: Args, size: int, medium: int, medium_name: str, info: dict, cache_mode: str, cold: bool,
              raw: dict, uploads: list[dict], load: dict, memory: dict, setup: dict, hub: Service) -> dict:
    med = {k: median(v) for k, v in raw.items()}
    goals: dict[str, dict] = {}
    download_ratio = med["download_nginx"] / med["download_hub"]  # throughput ratio hub / nginx
    goals["download"] = {"ratio": download_ratio, "min_ratio": DOWNLOAD_MIN_RATIO, "pass": download_ratio >= DOWNLOAD_MIN_RATIO}
    upload_ratio = med["upload_hub"] / med["upload_anchor"]
    goals["upload"] = {"ratio": upload_ratio, "max_ratio": UPLOAD_MAX_RATIO, "pass": upload_ratio <= UPLOAD_MAX_RATIO}
    peak_ab = max(memory[p]["peak_mb"] for p in ("download", "upload"))
    goals["peak_rss"] = {"mb": peak_ab, "max_mb": RSS_GOAL_MB, "pass": peak_ab <= RSS_GOAL_MB,
                         "by_phase_mb": {p: memory[p]["peak_mb"] for p in ("download", "upload")}}
    load_summary = {}
    for key, runs in load.items():
        load_summary[key] = {
            "requests_per_s": median([r["requests_per_s"] for r in runs]),
            "mb_per_s": median([r["mb_per_s"] for r in runs]),
            "errors": sum(r["error_count"] for r in runs),
            "error_kinds": _sum_counts(r["errors"] for r in runs),
            "client_cpu_cores": median([r["client_cpu_cores"] for r in runs]),
            "server_cpu_cores": median([r["server_cpu_cores"] for r in runs]),
            "latency_ms_p50": median([r["latency_ms_p50_worst_process"] for r in runs]),
            "latency_ms_p99": median([r["latency_ms_p99_worst_process"] for r in runs]),
        }
    for label in ("small", "medium"):
        if f"{label}_hub" in load_summary:
            hub_load, anchor = load_summary[f"{label}_hub"], load_summary[f"{label}_nginx"]
            goals[f"load_{label}"] = {"errors": hub_load["errors"], "max_errors": LOAD_MAX_ERRORS,
                                      "ratio": hub_load["requests_per_s"] / anchor["requests_per_s"],
                                      "pass": hub_load["errors"] <= LOAD_MAX_ERRORS}
    return {
        "benchmark": "hub_bench",
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": shlex.join([sys.executable, *args.argv]),
        "size_bytes": size,
        "medium_bytes": medium,
        "medium_file": medium_name if medium else None,
        "repeat": args.repeat,
        "concurrency": args.concurrency,
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "load_processes": args.load_procs,
        "server_workers": args.server_workers,
        "server_command": shlex.join(getattr(hub, "command", [])),
        "machine": info,
        "method": {
            "page_cache": cache_mode,
            "cold_cache": cold,
            "download": "curl -s -o /dev/null -w '%{time_total}' of the whole file; fmhub GET "
                        f"/{DOWNLOAD_REPO}/resolve/main/{WEIGHTS} (anonymous, public repo) vs nginx GET /{WEIGHTS}; "
                        "nginx serves a hard link to the hub's blob (same inode); the order alternates per round; "
                        "ratio = nginx time / fmhub time (fmhub's throughput as a fraction of nginx's)",
            "upload": "huggingface_hub HfApi.upload_file(path_or_fileobj=str(path)) in a child process with "
                      "HF_HUB_DISABLE_XET=1, timed around the call only (not interpreter start-up, import or "
                      "create_repo), into a fresh repo each round; 64 bytes of tensor data are rewritten before each "
                      "round so the content is new (the blob store dedups identical content). Anchor: "
                      "sha256sum FILE then cp FILE DEST, same disk, not fsynced (the hub fsyncs its blob). "
                      "ratio = fmhub time / anchor time",
            "rss": "server processes' VmHWM, reset at the start of each phase via /proc/PID/clear_refs, and VmRSS "
                   "sampled every 50 ms; peak = the larger of the two (summed over processes)",
            "load": f"{args.concurrency} keep-alive downloaders ({args.load_client} client on asyncio) in "
                    f"{args.load_procs} separate process(es), {args.warmup:g} s warm-up then {args.duration:g} s "
                    "counted; a request counts if it completes inside the window with status 200 and the full "
                    "body; any error counts, warm-up included; ratio = fmhub req/s / nginx req/s. Client and "
                    "servers share the machine's CPUs: see client_cpu_cores",
            "load_client": args.load_client,
            "units": "MB = 10^6 bytes; MiB = 2^20 bytes",
        },
        "raw_seconds": raw,
        "median_seconds": med,
        "throughput_mb_s": {k: size / MB / v for k, v in med.items()},
        "uploads": uploads,
        "setup_commit": setup,
        "load": load_summary,
        "load_runs": load,
        "server_memory": memory,
        "goals": goals,
        "missed_goals": [name for name, goal in goals.items() if not goal["pass"]],
        "all_pass": all(goal["pass"] for goal in goals.values()),
    }


GOAL_LABELS = {"download": "a. download", "upload": "b. upload", "peak_rss": "c. peak RSS",
               "load_small": "d. errors under load (small file)", "load_medium": "d. errors under load (medium file)"}


def print_report(console, result: dict) -> None:
    from rich.table import Table

    m = result["machine"]
    disk = m["disk"]
    console.print(f"\n[bold]Machine[/]: {m['cpu_model']}, {m['cpu_count']} CPUs ({m['cpus_usable']} usable), "
                  f"{m['memory_gib']} GiB RAM; {m['platform']}; Python {m['python']}")
    console.print(f"[bold]Disk[/]: {m['filesystem']} on {m['device']} (mounted at {m['mount']}"
                  + (f", rotational={disk['rotational']}" if "rotational" in disk else "")
                  + (f", {disk.get('vendor', '')} {disk['model']}".rstrip() if "model" in disk else "") + ")")
    v = m["versions"]
    console.print(f"[bold]Software[/]: {m['nginx']}; {m['curl'].split(' (')[0]}; uvicorn {v['uvicorn']}, "
                  f"starlette {v['starlette']}, h11 {v['h11']}; huggingface_hub {v['huggingface_hub']}, "
                  f"httpx {v['httpx']}")
    console.print(f"[bold]Server[/]: {result['server_command']} (commit {m['git_commit'][:12]}"
                  + (", src/ modified" if m["src_modified"] else "") + ")")
    console.print(f"[bold]Page cache[/]: {result['method']['page_cache']}; load average at start "
                  f"{m['loadavg_at_start'][0]:.2f}")

    size_gib = result["size_bytes"] / GIB
    raw, med, thr, goals = result["raw_seconds"], result["median_seconds"], result["throughput_mb_s"], result["goals"]

    def timing(key: str) -> str:
        runs = raw[key]
        spread = f" [dim]({min(runs):.2f}–{max(runs):.2f})[/]" if len(runs) > 1 else ""
        return f"{med[key]:.2f} s · {thr[key]:.0f} MB/s{spread}"

    def mark(ok: bool | None) -> str:
        return "" if ok is None else ("[green]✔[/]" if ok else "[bold red]✘[/]")

    table = Table(title=f"fmhub hub server vs anchors — median of {result['repeat']}")
    for column, justify in (("step", "left"), ("fmhub", "right"), ("anchor", "right"), ("ratio", "right"),
                            ("goal", "left"), ("✔/✘", "center")):
        table.add_column(column, justify=justify)
    cold = result["method"]["cold_cache"]
    g = goals["download"]
    table.add_row(f"a. download {size_gib:g} GiB, curl ({'cold' if cold else 'warm'} cache)", timing("download_hub"),
                  f"nginx: {timing('download_nginx')}", f"{g['ratio']:.2f}×", f"≥ {g['min_ratio']}× (throughput)",
                  mark(g["pass"]))
    if cold:
        warm_ratio = med["download_warm_nginx"] / med["download_warm_hub"]
        table.add_row("   same, warm page cache", timing("download_warm_hub"),
                      f"nginx: {timing('download_warm_nginx')}", f"{warm_ratio:.2f}×", "info", "")
    g = goals["upload"]
    table.add_row(f"b. upload {size_gib:g} GiB, huggingface_hub", timing("upload_hub"),
                  f"sha256sum + cp: {timing('upload_anchor')}", f"{g['ratio']:.2f}×", f"≤ {g['max_ratio']:g}× (time)",
                  mark(g["pass"]))
    g = goals["peak_rss"]
    by = g["by_phase_mb"]
    table.add_row("c. server peak RSS during a / b", f"{by['download']:.0f} / {by['upload']:.0f} MB", "", "",
                  f"≤ {g['max_mb']:.0f} MB", mark(g["pass"]))
    load = result["load"]
    concurrency, duration = result["concurrency"], result["duration_s"]
    files = {"small": f"{SMALL}, {len(small_config())} B",
             "medium": f"{(result['medium_bytes'] or 0) / MIB:g} MiB file"}
    for label in ("small", "medium"):
        if f"load_{label}" not in goals:
            continue
        table.add_section()
        g, h, n = goals[f"load_{label}"], load[f"{label}_hub"], load[f"{label}_nginx"]

        def rate(x: dict) -> str:
            return f"{x['requests_per_s']:,.0f} req/s" + (f" · {x['mb_per_s']:.0f} MB/s" if label == "medium" else "")

        table.add_row(f"d. {concurrency} downloaders × {duration:g} s ({files[label]})",
                      f"{rate(h)}, {h['errors']} errors", f"nginx: {rate(n)}, {n['errors']} errors",
                      f"{g['ratio']:.2f}×", "0 errors; ratio: info", mark(g["pass"]))
        table.add_row("   CPU cores used: server / load client",
                      f"{h['server_cpu_cores']:.2f} / {h['client_cpu_cores']:.2f}",
                      f"{n['server_cpu_cores']:.2f} / {n['client_cpu_cores']:.2f}", "", "info", "")
        table.add_row("   latency p50 / p99", f"{h['latency_ms_p50']:.0f} / {h['latency_ms_p99']:.0f} ms",
                      f"{n['latency_ms_p50']:.1f} / {n['latency_ms_p99']:.1f} ms", "", "info", "")
        mem = result["server_memory"].get(f"load_{label}")
        if mem:
            table.add_row("   server peak RSS under this load", f"{mem['peak_mb']:.0f} MB", "", "",
                          f"info (c: ≤ {RSS_GOAL_MB:.0f} MB)",
                          "" if mem["peak_mb"] <= RSS_GOAL_MB else "[yellow]![/]")
    console.print(table)
    console.print("Ratios: a and d are fmhub throughput ÷ anchor throughput (higher is better); b is fmhub time ÷ "
                  "anchor time (lower is better). Spreads (min–max) in brackets. MB = 10^6 bytes.")
    up = result["uploads"]
    console.print(f"[bold]Upload detail[/] (median): client CPU {median([u['client_cpu_s'] for u in up]):.2f} s, "
                  f"client peak RSS {max(u['client_peak_rss_mb'] for u in up):.0f} MB; server CPU "
                  f"{result['server_memory']['upload']['cpu_s'] / len(up):.2f} s per upload; one new blob per round")
    d = result["server_memory"]["download"]
    console.print(f"[bold]Download detail[/]: server CPU {d['cpu_s'] / d['wall_s']:.2f} cores while serving; "
                  f"VmHWM {'reset per phase' if d['hwm_reset'] else 'since start (clear_refs refused)'}, "
                  f"{d['samples']} RSS samples")
    bound = [k for k, v in result["load"].items() if v["client_cpu_cores"] >= 0.9 * result["load_processes"]]
    if bound:
        console.print(f"[yellow]Note[/]: the load client used ≥ 90% of its {result['load_processes']} process(es)' "
                      f"CPU in {', '.join(bound)}: there the client, not the server, may set the pace "
                      f"({m['cpus_usable']} CPUs are shared by the client and the servers).")
    if result["all_pass"]:
        console.print("[bold green]All goals met.[/]")
    else:
        missed = ", ".join(GOAL_LABELS.get(name, name) for name in result["missed_goals"])
        console.print(f"[bold red]Goals missed[/]: {missed} (this is a measurement: the exit code is 0)")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark the fmhub hub server (fmhub server over a temporary FMHUB_HOME: SQLite + file "
                    "blobs) against anchors in one run: (a) download of a large file with curl vs nginx, "
                    "(b) huggingface_hub upload vs sha256sum + cp, (c) the server's peak RSS, (d) many concurrent "
                    "downloaders vs nginx. Prints a table and writes the raw numbers as JSON. Needs nginx and "
                    "curl; run as root to measure with a cold page cache.",
    )
    parser.add_argument("--size-gib", type=float, default=1.0,
                        help="size of the test .safetensors file in GiB (default: 1; 0.125 for a quick run)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="repetitions of every measurement; the table shows medians (default: 3)")
    parser.add_argument("--concurrency", type=int, default=64,
                        help="concurrent keep-alive downloaders in the load test (default: 64)")
    parser.add_argument("--duration", type=float, default=30.0,
                        help="counted seconds of each load test run, per server and file (default: 30)")
    parser.add_argument("--warmup", type=float, default=2.0,
                        help="uncounted seconds before each load test's window (default: 2)")
    parser.add_argument("--medium-mib", type=float, default=10.0,
                        help="size in MiB of the second load-test file; 0 tests only the ~1 KB config.json "
                             "(default: 10)")
    parser.add_argument("--load-procs", type=int, default=1,
                        help="processes the load generator's downloaders are spread over (default: 1; on a 2-core "
                             "machine more processes take CPU from the server under test)")
    parser.add_argument("--load-client", choices=sorted(LOAD_CLIENTS), default="raw",
                        help="the load generator: 'raw' keep-alive HTTP/1.1 on asyncio streams (default; tens of "
                             "thousands of small requests/s per core, so nginx, not the client, is measured) or "
                             "'httpx' (httpx.AsyncClient; a few hundred requests/s per core: it caps both servers)")
    parser.add_argument("--server-workers", type=int, default=1,
                        help="fmhub server --workers (default: 1; RSS is summed over all worker processes)")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="disk-backed folder under which a temp dir is made for FMHUB_HOME, nginx's root and "
                             "the files, and deleted at the end (default: /var/tmp, else the system temp dir if "
                             "it is not tmpfs); needs about (repeat + 4) × --size-gib free")
    parser.add_argument("--json", type=Path, default=None,
                        help="where to write the JSON results (default: bench/results/hub_bench-<UTC timestamp>.json "
                             "in the repo; the folder is created and git-ignored)")
    parser.add_argument("--install-nginx", action="store_true",
                        help="if nginx is missing and this runs as root, install it with apt-get (Debian/Ubuntu; "
                             "on a systemd machine the package also starts a system nginx on port 80). "
                             "Without it, a missing nginx stops the run with the install command")
    parser.add_argument("--step", choices=sorted(CHILD_STEPS), help=argparse.SUPPRESS)  # child process entry
    parser.add_argument("--step-args", help=argparse.SUPPRESS)
    ns = parser.parse_args(argv)
    if ns.step is None:
        for name in ("size_gib", "duration"):
            if getattr(ns, name) <= 0:
                parser.error(f"--{name.replace('_', '-')} must be positive")
        for name in ("repeat", "concurrency", "load_procs", "server_workers"):
            if getattr(ns, name) < 1:
                parser.error(f"--{name.replace('_', '-')} must be at least 1")
        if ns.warmup < 0 or ns.medium_mib < 0:
            parser.error("--warmup and --medium-mib must not be negative")
        if ns.load_procs > ns.concurrency:
            parser.error("--load-procs must not exceed --concurrency")
    return ns


def main(argv: list[str] | None = None) -> None:
    ns = parse_args(argv)
    if ns.step is not None:
        run_child(ns.step, ns.step_args)
        return
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    json_path = (ns.json or RESULTS_DIR / f"hub_bench-{stamp}.json").expanduser().resolve()
    try:
        run_benchmark(Args(size_gib=ns.size_gib, repeat=ns.repeat, concurrency=ns.concurrency, duration=ns.duration,
                           warmup=ns.warmup, medium_mib=ns.medium_mib, load_procs=ns.load_procs, load_client=ns.load_client,
                           server_workers=ns.server_workers, workdir=ns.workdir, json=json_path,
                           install_nginx=ns.install_nginx, argv=sys.argv if argv is None else [sys.argv[0], *argv]))
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
