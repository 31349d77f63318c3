"""Embedded store throughput and memory, side by side with coreutils on the same file.

Measures, on one large file of random bytes in a disk-backed work folder and a fresh embedded store
(SQLite metadata + ``file://`` blobs), against the anchors ``sha256sum`` and ``cp``:

    step                        anchor                  goal
    store upload (first)        sha256sum + cp          ≤ 2.0×
    store re-upload (same data) sha256sum               ≤ 1.2× and 0 new bytes in the blob folder
    store download (local_dir)  cp                      ≤ 1.5×
    peak RSS of a store step    —                       ≤ 200 MB

Each store step runs in a child process (this script with the hidden ``--step`` flag), so its peak
RSS is its own and its timing excludes interpreter start-up and imports. Every measured step starts
from the same state: dirty pages flushed (``sync``), then the input read once (warm page cache).

Usage:
    .venv/bin/python bench/store_bench.py                      # 1 GiB, 3 repetitions
    .venv/bin/python bench/store_bench.py --size-gib 0.125 --repeat 1
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_JSON = REPO_ROOT / "bench" / "results" / "store_bench.json"
DEFAULT_PARENTS = (Path("/var/tmp"), Path(tempfile.gettempdir()), REPO_ROOT / "bench" / "results")
RAM_FILESYSTEMS = {"tmpfs", "ramfs", "devtmpfs"}
GIB = 1 << 30
MB = 1_000_000  # throughput and RSS are in decimal megabytes
CHUNK = 8 * 1024 * 1024
REPO_ID = "bench/store-bench"
FILE_NAME = "weights.bin"

# The goals of the issue: (store step, anchor, max ratio of medians).
RATIO_GOALS = {
    "upload": ("A", 2.0),
    "reupload_same_path": ("B", 1.2),
    "reupload_new_path": ("B", 1.2),
    "download": ("C", 1.5),
}
RSS_GOAL_MB = 200.0


# -- helpers shared by parent and child ----------------------------------------------------------

def _proc_io() -> dict[str, int]:
    """This process's I/O counters (Linux); rchar/wchar count bytes through read/write syscalls."""
    try:
        with open("/proc/self/io") as f:
            return {k: int(v) for k, v in (line.split(":") for line in f)}
    except (OSError, ValueError):
        return {}


def _io_delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: after[k] - before[k] for k in ("rchar", "wchar", "read_bytes", "write_bytes") if k in before}


def _vm_status(field: str) -> float | None:
    """A ``/proc/self/status`` memory field (VmRSS, VmHWM) in MB."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024 / MB
    except OSError:
        pass
    return None


def _folder_usage(root: Path) -> dict[str, int]:
    """Files, apparent bytes and allocated bytes below ``root``."""
    files = size = allocated = 0
    for dirpath, _, names in os.walk(root):
        for name in names:
            st = os.lstat(os.path.join(dirpath, name))
            files += 1
            size += st.st_size
            allocated += st.st_blocks * 512
    return {"files": files, "bytes": size, "allocated": allocated}


def _store_urls(store_dir: Path) -> tuple[str, str]:
    return f"sqlite:///{store_dir / 'fmhub.db'}", (store_dir / "blobs").as_uri()


# -- child: one store step, timed and measured in its own process --------------------------------

def _timed(calls: list, name: str, fn):
    """Wrap a bound method so each call's result and duration are recorded (a spy, no behaviour change)."""
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            calls.append({"call": name, "seconds": time.perf_counter() - start, "error": type(exc).__name__})
            raise
        calls.append({"call": name, "seconds": time.perf_counter() - start, "result": result})
        return result
    return wrapper


def _child_upload(args: dict) -> dict:
    from fmhub.errors import EmptyCommitError
    from fmhub.store import open_store
    from fmhub.store.transfer import plan_upload, upload

    store_dir = Path(args["store_dir"])
    blob_root = store_dir / "blobs"
    store = open_store(*_store_urls(store_dir))
    try:
        if args["create_repo"]:
            store.create_repo(REPO_ID)
        store.get_repo(REPO_ID)  # schema check and connection set-up happen before the clock starts
        calls: list[dict] = []
        store.put_file = _timed(calls, "store.put_file", store.put_file)
        store.blobs.put_file = _timed(calls, "blobs.put_file", store.blobs.put_file)
        store.commit = _timed(calls, "store.commit", store.commit)
        plan = plan_upload(args["file"], args["path_in_repo"])
        usage_before = _folder_usage(blob_root)
        rss_before = _vm_status("VmRSS")
        io_before = _proc_io()
        empty = False
        oid = None
        start = time.perf_counter()
        try:
            oid = upload(store, REPO_ID, plan, title=args["title"], author="store-bench").oid
        except EmptyCommitError:
            empty = True
        seconds = time.perf_counter() - start
        io = _io_delta(io_before, _proc_io())
        usage_after = _folder_usage(blob_root)
    finally:
        store.close()
    blob_infos = [c["result"] for c in calls if c["call"] == "store.put_file" and "result" in c]
    phase = {name: sum(c["seconds"] for c in calls if c["call"] == name)
             for name in ("store.put_file", "blobs.put_file", "store.commit")}
    return {
        "seconds": seconds,
        "commit_oid": oid,
        "empty_commit_error": empty,
        "blobs_created": [info.created for info in blob_infos],
        "blob_folder_before": usage_before,
        "blob_folder_after": usage_after,
        "new_blob_bytes": usage_after["bytes"] - usage_before["bytes"],
        "phases_s": {
            "hash_pass_and_record": phase["store.put_file"] - phase["blobs.put_file"],
            "blob_write_pass": phase["blobs.put_file"],
            "commit": phase["store.commit"],
        },
        "io": io,
        "rss_before_mb": rss_before,
    }


def _child_download(args: dict) -> dict:
    from fmhub.store import open_store
    from fmhub.store.transfer import download_snapshot

    store = open_store(*_store_urls(Path(args["store_dir"])))
    try:
        store.get_repo(REPO_ID)
        rss_before = _vm_status("VmRSS")
        io_before = _proc_io()
        start = time.perf_counter()
        folder = download_snapshot(store, REPO_ID, revision=args["revision"], local_dir=args["local_dir"],
                                   fsync=args.get("fsync", False))
        seconds = time.perf_counter() - start
        io = _io_delta(io_before, _proc_io())
    finally:
        store.close()
    return {"seconds": seconds, "folder": str(folder), "io": io, "rss_before_mb": rss_before}


CHILD_STEPS = {"upload": _child_upload, "download": _child_download}


def run_child(step: str, raw_args: str) -> None:
    result = CHILD_STEPS[step](json.loads(raw_args))
    # ru_maxrss is in KiB on Linux: the peak of this process only, parent excluded.
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / MB
    print(json.dumps(result))


# -- parent: set-up, anchors, orchestration, report ----------------------------------------------

def filesystem_of(path: Path) -> tuple[str, str, str]:
    """(fstype, device, mount point) of the mount holding ``path``, from /proc/mounts."""
    path = path.resolve()
    best = ("unknown", "unknown", "/")
    best_len = -1
    try:
        with open("/proc/mounts") as f:
            for line in f:
                device, mount, fstype = line.split()[:3]
                mount = mount.replace("\\040", " ")
                if (path == Path(mount) or Path(mount) in path.parents) and len(mount) > best_len:
                    best, best_len = (fstype, device, mount), len(mount)
    except OSError:
        pass
    return best


def choose_parent(workdir: Path | None) -> Path:
    if workdir is not None:
        workdir = workdir.expanduser().resolve()
        workdir.mkdir(parents=True, exist_ok=True)
        fstype = filesystem_of(workdir)[0]
        if fstype in RAM_FILESYSTEMS:
            sys.exit(f"--workdir {workdir} is on {fstype} (RAM): durable writes would cost nothing there; "
                     "pick a disk-backed folder")
        return workdir
    for candidate in DEFAULT_PARENTS:
        if candidate.is_dir() and os.access(candidate, os.W_OK) and filesystem_of(candidate)[0] not in RAM_FILESYSTEMS:
            return candidate.resolve()
    sys.exit("no disk-backed temp folder found (/var/tmp and the temp dir are RAM-backed); pass --workdir DIR")


def make_random_file(path: Path, size: int) -> str:
    """Write ``size`` random bytes in constant memory; returns their sha256."""
    digest = hashlib.sha256()
    with open(path, "wb") as f:
        remaining = size
        while remaining:
            chunk = os.urandom(min(CHUNK, remaining))
            digest.update(chunk)
            f.write(chunk)
            remaining -= len(chunk)
        f.flush()
        os.fsync(f.fileno())
    return digest.hexdigest()


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    buffer = bytearray(CHUNK)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buffer):
            digest.update(view[:n])
    return digest.hexdigest()


def warm(*paths: Path) -> None:
    """Flush dirty pages left by earlier steps, then read the inputs once so every run is warm-cache."""
    os.sync()
    buffer = bytearray(CHUNK)
    for path in paths:
        with open(path, "rb", buffering=0) as f:
            while f.readinto(buffer):
                pass


def timed_commands(*commands: list[str]) -> tuple[float, list[str]]:
    start = time.perf_counter()
    outputs = [subprocess.run(c, check=True, capture_output=True, text=True).stdout for c in commands]
    return time.perf_counter() - start, outputs


def run_step(step: str, args: dict) -> dict:
    command = [sys.executable, str(Path(__file__).resolve()), "--step", step, "--step-args", json.dumps(args)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"store step {step!r} failed (exit {done.returncode}):\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def blob_path(store_dir: Path, sha256: str) -> Path:
    return store_dir / "blobs" / sha256[:2] / sha256[2:4] / sha256


def machine_info(work: Path) -> dict:
    import ssl

    fstype, device, mount = filesystem_of(work)
    cpu_model, flags = "unknown", set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and cpu_model == "unknown":
                    cpu_model = line.split(":", 1)[1].strip()
                elif line.startswith("flags") and not flags:
                    flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass

    def version(tool: str) -> str:
        return subprocess.run([tool, "--version"], capture_output=True, text=True).stdout.split("\n")[0]

    return {
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu_model": cpu_model,
        "sha_ni": "sha_ni" in flags,
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / GIB, 1),
        "python": platform.python_version(),
        "openssl": ssl.OPENSSL_VERSION,
        "platform": platform.platform(),
        "workdir": str(work),
        "filesystem": fstype,
        "device": device,
        "mount": mount,
        "sha256sum": version("sha256sum"),
        "cp": version("cp"),
    }


@dataclass
class Args:
    size_gib: float
    workdir: Path | None
    json: Path
    repeat: int


def run_benchmark(args: Args) -> dict:
    from rich.console import Console

    console = Console()
    if not console.is_terminal:  # piped or redirected: rich would wrap the table at 80 columns
        console = Console(width=150)
    size = int(args.size_gib * GIB)
    parent = choose_parent(args.workdir)
    need = 6 * size + 64 * 1024 * 1024  # source, two cp copies, blob, download, slack
    free = shutil.disk_usage(parent).free
    if free < need:
        sys.exit(f"{parent} has {free / GIB:.1f} GiB free; this run needs about {need / GIB:.1f} GiB "
                 "(use --size-gib or --workdir)")
    work = Path(tempfile.mkdtemp(prefix="fmhub-store-bench-", dir=parent))
    try:
        info = machine_info(work)
        console.print(f"[bold]fmhub store benchmark[/] — {size / GIB:g} GiB, {args.repeat} repetition(s), "
                      f"work dir {work} ({info['filesystem']} on {info['device']})")
        source = work / FILE_NAME
        started = time.perf_counter()
        source_sha = make_random_file(source, size)
        console.print(f"  created {source.name}: {size:,} random bytes in {time.perf_counter() - started:.1f} s")
        raw: dict[str, list] = {k: [] for k in ("A", "B", "B_openssl", "C", "C_sync", "upload",
                                                "reupload_same_path", "reupload_new_path", "download", "download_fsync")}
        has_openssl = shutil.which("openssl") is not None
        if not has_openssl:
            del raw["B_openssl"]
        details: dict[str, list] = {k: [] for k in ("upload", "reupload_same_path", "reupload_new_path", "download")}
        checks: list[dict] = []
        dest, dest2 = work / "dest-cp.bin", work / "dest-cp2.bin"
        for rep in range(args.repeat):
            console.print(f"  [dim]round {rep + 1}/{args.repeat}[/]")
            store_dir = work / f"store-{rep}"  # fresh store per round: the upload is a real first upload

            warm(source)
            seconds, (hash_out, _) = timed_commands(["sha256sum", str(source)], ["cp", str(source), str(dest)])
            raw["A"].append(seconds)
            if hash_out.split()[0] != source_sha:
                raise RuntimeError("sha256sum disagrees with the digest computed while writing the file")
            dest.unlink()

            warm(source)
            up = run_step("upload", {"store_dir": str(store_dir), "file": str(source), "path_in_repo": FILE_NAME,
                                     "create_repo": True, "title": "Add weights"})
            raw["upload"].append(up["seconds"])
            details["upload"].append(up)
            if up["empty_commit_error"] or up["blobs_created"] != [True]:
                raise RuntimeError(f"the first upload did not create a blob and a commit: {up}")

            warm(source)
            seconds, _ = timed_commands(["sha256sum", str(source)])
            raw["B"].append(seconds)

            if has_openssl:  # informational: sha256 with OpenSSL's (SHA-NI) code, as hashlib uses
                warm(source)
                seconds, _ = timed_commands(["openssl", "dgst", "-sha256", str(source)])
                raw["B_openssl"].append(seconds)

            warm(source)  # same path, same bytes: the tree does not change, so no commit lands
            same = run_step("upload", {"store_dir": str(store_dir), "file": str(source), "path_in_repo": FILE_NAME,
                                       "create_repo": False, "title": "Re-upload weights"})
            raw["reupload_same_path"].append(same["seconds"])
            details["reupload_same_path"].append(same)

            warm(source)  # same bytes under a new path: a commit lands, the blob is shared
            new = run_step("upload", {"store_dir": str(store_dir), "file": str(source),
                                      "path_in_repo": f"copies/{FILE_NAME}", "create_repo": False,
                                      "title": "Same weights, new path"})
            raw["reupload_new_path"].append(new["seconds"])
            details["reupload_new_path"].append(new)

            warm(source)
            seconds, _ = timed_commands(["cp", str(source), str(dest2)])
            raw["C"].append(seconds)
            dest2.unlink()

            warm(source)  # informational: cp made as durable as the store's writes (fsync before done)
            seconds, _ = timed_commands(["cp", str(source), str(dest2)], ["sync", str(dest2)])
            raw["C_sync"].append(seconds)
            dest2.unlink()

            local_dir = work / f"download-{rep}"
            warm(blob_path(store_dir, source_sha))
            down = run_step("download", {"store_dir": str(store_dir), "revision": up["commit_oid"],
                                         "local_dir": str(local_dir)})
            raw["download"].append(down["seconds"])
            details["download"].append(down)
            downloaded = local_dir / FILE_NAME
            got_size = downloaded.stat().st_size
            got_sha = sha256_of(downloaded)  # outside the timed region
            checks.append({"round": rep + 1, "size_ok": got_size == size, "sha256_ok": got_sha == source_sha,
                           "copies_path_absent": not (local_dir / "copies").exists(),
                           "empty_commit_error_on_same_path": same["empty_commit_error"],
                           "commit_on_new_path": new["commit_oid"] is not None})
            if got_size != size or got_sha != source_sha:
                raise RuntimeError(f"downloaded file differs from the source: size {got_size}, sha256 {got_sha}")

            # Informational: the durable download (`fmhub download --fsync`) against a durable cp.
            durable_dir = work / f"download-fsync-{rep}"
            warm(blob_path(store_dir, source_sha))
            durable = run_step("download", {"store_dir": str(store_dir), "revision": up["commit_oid"],
                                            "local_dir": str(durable_dir), "fsync": True})
            raw["download_fsync"].append(durable["seconds"])
            if sha256_of(durable_dir / FILE_NAME) != source_sha:
                raise RuntimeError("the --fsync download differs from the source")

            shutil.rmtree(store_dir)
            shutil.rmtree(local_dir)
            shutil.rmtree(durable_dir)

        result = summarize(args, size, source_sha, info, raw, details, checks)
        print_report(console, result)
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2, default=str) + "\n")
        console.print(f"JSON written to {args.json}")
        return result
    finally:
        shutil.rmtree(work, ignore_errors=True)


def summarize(args: Args, size: int, source_sha: str, info: dict, raw: dict, details: dict,
              checks: list[dict]) -> dict:
    medians = {k: statistics.median(v) for k, v in raw.items()}
    ratios = {step: medians[step] / medians[anchor] for step, (anchor, _) in RATIO_GOALS.items()}
    # Not goals: the same steps against anchors as fast as the store could be (hardware sha256, durable cp).
    info_ratios = {"download_fsync_vs_cp_sync": medians["download_fsync"] / medians["C_sync"]}
    if "B_openssl" in medians:
        info_ratios["upload_vs_openssl_plus_cp"] = medians["upload"] / (medians["B_openssl"] + medians["C"])
        info_ratios["upload_vs_openssl_plus_cp_sync"] = medians["upload"] / (medians["B_openssl"] + medians["C_sync"])
        info_ratios["reupload_new_path_vs_openssl"] = medians["reupload_new_path"] / medians["B_openssl"]
    reupload_runs = details["reupload_same_path"] + details["reupload_new_path"]
    new_bytes = max(r["new_blob_bytes"] for r in reupload_runs)
    created = any(any(r["blobs_created"]) for r in reupload_runs)
    peak = {step: max(r["peak_rss_mb"] for r in runs) for step, runs in details.items()}
    goals = {
        step: {"anchor": anchor, "max_ratio": limit, "ratio": ratios[step], "pass": ratios[step] <= limit}
        for step, (anchor, limit) in RATIO_GOALS.items()
    }
    goals["reupload_new_bytes"] = {"max_bytes": 0, "bytes": new_bytes, "blob_created": created,
                                   "pass": new_bytes == 0 and not created}
    goals["peak_rss"] = {"max_mb": RSS_GOAL_MB, "mb": max(peak.values()), "by_step_mb": peak,
                         "pass": max(peak.values()) <= RSS_GOAL_MB}
    return {
        "benchmark": "store_bench",
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": shlex.join([sys.executable, *sys.argv]),
        "argv": sys.argv,
        "size_bytes": size,
        "size_gib": args.size_gib,
        "repeat": args.repeat,
        "source_sha256": source_sha,
        "machine": info,
        "method": {
            "warm_cache": "before every measured step: os.sync() (flush dirty pages of earlier steps), "
                          "then the step's input read once, so all runs start warm-cache with no writeback pending",
            "store_steps": "each in a child process; time covers the store call only (not start-up, imports, "
                           "open_store or create_repo); peak RSS is the child's own ru_maxrss",
            "anchors": "coreutils run as subprocesses, timed around the call; sha256sum + cp run back to back",
            "durability": "the store fsyncs its blobs; downloads are not fsynced by default (like huggingface_hub "
                          "and git checkouts), `--fsync` makes them durable. C_sync (cp then `sync FILE`) is the "
                          "durable anchor for the informational download_fsync step",
            "units": "MB = 10^6 bytes",
        },
        "anchors": {"A": "sha256sum FILE + cp FILE DEST", "B": "sha256sum FILE", "C": "cp FILE DEST2",
                    "B_openssl": "openssl dgst -sha256 FILE (informational)",
                    "C_sync": "cp FILE DEST2 + sync DEST2 (informational)"},
        "raw_seconds": raw,
        "median_seconds": medians,
        "throughput_mb_s": {k: size / MB / v for k, v in medians.items()},
        "ratios": ratios,
        "informational_ratios": info_ratios,
        "goals": goals,
        "all_pass": all(g["pass"] for g in goals.values()),
        "store_details": details,
        "checks": checks,
    }


def print_report(console, result: dict) -> None:
    from rich.table import Table

    m = result["machine"]
    console.print(f"\n[bold]Machine[/]: {m['cpu_count']} CPUs ({m['cpus_usable']} usable), {m['cpu_model']}, "
                  f"sha_ni={'yes' if m['sha_ni'] else 'no'}, {m['memory_gib']} GiB RAM; Python {m['python']} "
                  f"({m['openssl']}); {m['platform']}")
    console.print(f"[bold]Work dir[/]: {m['workdir']} — filesystem {m['filesystem']} on {m['device']} "
                  f"(mounted at {m['mount']}); {m['sha256sum']}")
    console.print(f"[bold]Method[/]: {result['size_bytes'] / GIB:g} GiB random file, median of "
                  f"{result['repeat']} run(s). Every step runs after the same warm-up: sync, then the input "
                  "is read once (warm page cache). Store steps run in child processes. The store fsyncs its "
                  "blobs, as cp + sync does; downloads and plain cp do not (--fsync downloads are compared with "
                  "cp + sync). MB = 10^6 bytes.")

    raw, med, thr, goals = result["raw_seconds"], result["median_seconds"], result["throughput_mb_s"], result["goals"]
    table = Table(title="fmhub store vs coreutils")
    for column, justify in (("step", "left"), ("time (s)", "right"), ("throughput (MB/s)", "right"),
                            ("anchor", "left"), ("ratio", "right"), ("goal", "left"), ("pass/fail", "center")):
        table.add_column(column, justify=justify)

    def seconds(key: str) -> str:
        runs = raw[key]
        spread = f" [dim]({min(runs):.2f}–{max(runs):.2f})[/]" if len(runs) > 1 else ""
        return f"{med[key]:.3f}{spread}"

    def verdict(ok: bool) -> str:
        return "[green]PASS[/]" if ok else "[bold red]FAIL[/]"

    for key, label in (("A", "anchor A: sha256sum + cp"), ("B", "anchor B: sha256sum"), ("C", "anchor C: cp"),
                       ("B_openssl", "openssl dgst -sha256"), ("C_sync", "cp + sync FILE")):
        if key in raw:
            table.add_row(label, seconds(key), f"{thr[key]:.0f}", "—", "—",
                          "baseline" if len(key) == 1 else "info only", "—")
    table.add_section()
    names = {"upload": "store upload (first)", "reupload_same_path": "store re-upload, same path ¹",
             "reupload_new_path": "store re-upload, new path ²", "download": "store download (local_dir)"}
    anchor_names = {"A": "A: sha256sum + cp", "B": "B: sha256sum", "C": "C: cp"}
    for step, label in names.items():
        goal = goals[step]
        table.add_row(label, seconds(step), f"{thr[step]:.0f}", anchor_names[goal["anchor"]],
                      f"{goal['ratio']:.2f}×", f"≤ {goal['max_ratio']}×", verdict(goal["pass"]))
    table.add_section()
    nb = goals["reupload_new_bytes"]
    table.add_row("re-upload: new bytes in blob folder", f"{nb['bytes']:,} B", "", "", "",
                  "0 B, no blob created" + (" [red](one was)[/]" if nb["blob_created"] else ""), verdict(nb["pass"]))
    rss = goals["peak_rss"]
    worst = max(rss["by_step_mb"], key=rss["by_step_mb"].get)
    table.add_row(f"peak RSS of store steps (max: {worst})", f"{rss['mb']:.0f} MB", "", "", "",
                  f"≤ {rss['max_mb']:.0f} MB", verdict(rss["pass"]))
    console.print(table)
    console.print("¹ same bytes, same path: the tree is unchanged, EmptyCommitError is raised (expected). "
                  "² same bytes under copies/: a commit lands, the blob is shared.")
    info = result["informational_ratios"]
    labels = {"download_fsync_vs_cp_sync": "download --fsync / (cp + sync)",
              "upload_vs_openssl_plus_cp": "upload / (openssl sha256 + cp)",
              "upload_vs_openssl_plus_cp_sync": "upload / (openssl sha256 + cp + sync)",
              "reupload_new_path_vs_openssl": "re-upload / openssl sha256"}
    console.print("[bold]Against faster or durable anchors[/] (info, not goals): "
                  + ", ".join(f"{labels[k]} {v:.2f}×" for k, v in info.items()))

    up = result["store_details"]["upload"]
    phases = {k: statistics.median(r["phases_s"][k] for r in up) for k in up[0]["phases_s"]}
    io = up[0]["io"]
    console.print("[bold]Upload breakdown[/] (median s): " + ", ".join(f"{k} {v:.3f}" for k, v in phases.items())
                  + (f"; read {io['rchar'] / result['size_bytes']:.2f}× and wrote {io['wchar'] / result['size_bytes']:.2f}× "
                     "the file size through syscalls" if io else ""))
    console.print("[bold]Peak RSS by step[/] (MB): "
                  + ", ".join(f"{k} {v:.0f}" for k, v in rss["by_step_mb"].items())
                  + f" (after imports, before the step: ~{up[0]['rss_before_mb']:.0f} MB)")
    console.print("[bold green]All goals met.[/]" if result["all_pass"] else
                  "[bold red]Some goals are not met[/] — see the FAIL rows.")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark the embedded fmhub store (SQLite + file blobs) against sha256sum and cp: "
                    "first upload, re-upload of identical content, download, and peak memory. "
                    "Prints a table and writes the raw numbers as JSON.",
    )
    parser.add_argument("--size-gib", type=float, default=1.0,
                        help="size of the random test file in GiB (default: 1; use 0.125 for a quick run)")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="disk-backed folder under which a fresh temp dir is made for the file, the copies and "
                             "the stores, and deleted at the end (default: /var/tmp, else the system temp dir if it "
                             "is not tmpfs); needs about 6× --size-gib free")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON,
                        help="where to write the JSON results (default: bench/results/store_bench.json in the repo; "
                             "the folder is created and git-ignored)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="repetitions of every measurement; the table shows medians (default: 3)")
    parser.add_argument("--step", choices=sorted(CHILD_STEPS), help=argparse.SUPPRESS)  # child process entry
    parser.add_argument("--step-args", help=argparse.SUPPRESS)
    ns = parser.parse_args(argv)
    if ns.step is None:
        if ns.size_gib <= 0:
            parser.error("--size-gib must be positive")
        if ns.repeat < 1:
            parser.error("--repeat must be at least 1")
    return ns


def main(argv: list[str] | None = None) -> None:
    ns = parse_args(argv)
    if ns.step is not None:
        run_child(ns.step, ns.step_args)
        return
    run_benchmark(Args(size_gib=ns.size_gib, workdir=ns.workdir, json=ns.json.expanduser().resolve(),
                       repeat=ns.repeat))


if __name__ == "__main__":
    main()
