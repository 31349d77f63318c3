"""Xet storage against the LFS path of the same hub and against coreutils, and what dedup saves, in one run.

Starts the real server (``fmhub server``, 1 worker, over a fresh temporary ``FMHUB_HOME``: SQLite +
``file://`` blobs) and drives it with the unmodified ``huggingface_hub`` client in child processes:

    step                                          measured                                   anchor / goal
    a. upload 1 GiB .safetensors through Xet      upload_file, Xet on (the default)          LFS path; sha256sum + cp
    b. download it through Xet                    hf_hub_download to a folder                LFS path; sha256sum + cp
    c. the same two through LFS                   HF_HUB_DISABLE_XET=1                       (the comparison for a, b)
    d. a second version of a 500 MB safetensors   bytes the client sent (new xorbs +         ≤ 10% of the file
       file, 5% of its tensors changed             shards the hub received), bytes newly      (LFS: 100%)
                                                   stored (blob folder growth)
    e. server peak RSS in every step              VmHWM (reset per step) and VmRSS samples   < 200 MB

The page cache is warm (every input is read once before it is timed). Results print as a table and go to
``bench/results/xet_bench-<time>.json``. Never run by the test suite.

Usage:
    .venv/bin/python bench/xet_bench.py                         # 1 GiB and 500 MB, as in docs/benchmarks.md
    .venv/bin/python bench/xet_bench.py --size-gib 0.125 --st-mb 100   # a quick check
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from _hub_services import ADMIN, MB, RssMonitor, start_hub  # same folder: the server and its memory probe
from hub_bench import make_safetensors, refresh_content, sha256_of  # same folder: test files

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO_ROOT / "bench" / "results"
GIB = 1 << 30
RSS_GOAL_MB = 200.0
DEDUP_GOAL = 0.10


# -- child processes: the unmodified client, Xet on or off (read at import) ------------------------

def _child_upload(args: dict) -> dict:
    from huggingface_hub import HfApi
    from huggingface_hub import constants

    api = HfApi(endpoint=args["endpoint"], token=args["token"])
    api.create_repo(args["repo_id"], exist_ok=True)
    start = time.perf_counter()
    api.upload_file(path_or_fileobj=args["file"], path_in_repo=args["path"], repo_id=args["repo_id"],
                    commit_message="xet_bench")
    return {"seconds": time.perf_counter() - start, "xet_disabled": bool(constants.HF_HUB_DISABLE_XET)}


def _child_download(args: dict) -> dict:
    from huggingface_hub import hf_hub_download

    start = time.perf_counter()
    path = hf_hub_download(args["repo_id"], args["path"], endpoint=args["endpoint"], token=args["token"],
                           local_dir=args["dest"])
    return {"seconds": time.perf_counter() - start, "path": path}


CHILD_STEPS = {"upload": _child_upload, "download": _child_download}


def run_child(step: str, args: dict, work: Path, *, xet: bool) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING_FACE_", "FMHUB_"))}
    env.update({"HF_HOME": str(work / "hf-home"), "HF_HUB_DISABLE_TELEMETRY": "1",
                "HF_HUB_DISABLE_PROGRESS_BARS": "1", "HF_HUB_DISABLE_XET": "0" if xet else "1"})
    done = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--step", step, "--step-args",
                           json.dumps(args)], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"huggingface_hub {step} failed (exit {done.returncode}):\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# -- files -------------------------------------------------------------------------------------------

def tensor_file(path: Path, total_mb: int, tensors: int, changed: list[int] | None = None,
                base: Path | None = None) -> list[tuple[int, int]]:
    """A safetensors file of ``tensors`` F32 tensors filling ``total_mb`` MB; with ``base``, a copy of it with
    the tensors at ``changed`` rewritten (a fine-tune that moved a few layers). Returns each tensor's span."""
    per = (total_mb * MB // tensors) // 4 * 4
    header: dict = {"__metadata__": {"format": "pt", "source": "fmhub xet_bench"}}
    for i in range(tensors):
        header[f"layer.{i:03d}.weight"] = {"dtype": "F32", "shape": [per // 4], "data_offsets": [i * per, (i + 1) * per]}
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    start = 8 + len(raw)
    spans = [(start + i * per, start + (i + 1) * per) for i in range(tensors)]
    if base is None:
        with open(path, "wb") as out:
            out.write(len(raw).to_bytes(8, "little") + raw)
            for _ in range(tensors):
                out.write(os.urandom(per))
    else:
        shutil.copyfile(base, path)
        with open(path, "r+b") as out:
            for i in changed or []:
                out.seek(spans[i][0])
                out.write(os.urandom(per))
    return spans


def folder_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and "tmp" not in p.relative_to(root).parts)


def received_by_hub(home: Path, since: datetime) -> int:
    """Bytes of xorbs and shards the hub accepted since ``since`` (what the client had to send)."""
    from sqlalchemy import func, select

    from fmhub.store import open_store
    from fmhub.xet import _tables as x

    with open_store(f"sqlite:///{home}/fmhub.db", (home / "blobs").as_uri()) as store, store.db.read() as conn:
        xorbs = conn.execute(select(func.coalesce(func.sum(x.xet_xorbs.c.stored_bytes), 0))
                             .where(x.xet_xorbs.c.created_at >= since)).scalar_one()
        shards = conn.execute(select(func.coalesce(func.sum(x.xet_shards.c.size), 0))
                              .where(x.xet_shards.c.created_at >= since)).scalar_one()
    return int(xorbs) + int(shards)


def timed(*commands: list[str]) -> float:
    start = time.perf_counter()
    for command in commands:
        subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - start


def warm(*paths: Path) -> None:
    for path in paths:
        with open(path, "rb", buffering=0) as f:
            while f.read(8 << 20):
                pass


# -- the run -----------------------------------------------------------------------------------------

def run(ns: argparse.Namespace) -> dict:
    work = Path(tempfile.mkdtemp(prefix="xet-bench-", dir=ns.work_dir))
    home, logs = work / "home", work / "logs"
    logs.mkdir(parents=True)
    token = "fmhub_" + secrets.token_hex(16)
    result: dict = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "command": " ".join(sys.argv),
                    "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                "platform": platform.platform()}, "steps": {}}
    hub = start_hub(home, token, 1, logs)
    try:
        hub.wait_ready("/healthz")
        base = dict(endpoint=hub.base_url, token=token)
        with RssMonitor(hub) as monitor:
            # a-c: one large file, both paths, and the coreutils anchor.
            size = int(ns.size_gib * GIB)
            big = work / "big.safetensors"
            data_offset = make_safetensors(big, size)
            sha = sha256_of(big)
            warm(big)
            anchor = min(timed(["sha256sum", str(big)], ["cp", str(big), str(work / "anchor-copy")])
                         for _ in range(ns.repeat))
            (work / "anchor-copy").unlink()
            cp_only = min(timed(["cp", str(big), str(work / "anchor-copy")]) for _ in range(ns.repeat))
            (work / "anchor-copy").unlink()
            steps = result["steps"]
            steps["anchor"] = {"sha256sum_cp_s": anchor, "cp_s": cp_only, "bytes": size}
            for path_name, xet in (("xet", True), ("lfs", False)):
                if not xet:  # new bytes: the same ones would be a dedup hit (the hub has them through Xet)
                    refresh_content(big, data_offset)
                    sha = sha256_of(big)
                    warm(big)
                repo = f"{ADMIN}/bench-{path_name}"
                with monitor.phase(f"{path_name}-upload"):
                    up = run_child("upload", {**base, "repo_id": repo, "file": str(big), "path": big.name}, work,
                                   xet=xet)
                dest = work / f"down-{path_name}"
                with monitor.phase(f"{path_name}-download"):
                    down = run_child("download", {**base, "repo_id": repo, "path": big.name, "dest": str(dest)},
                                     work, xet=xet)
                if sha256_of(Path(down["path"])) != sha:
                    raise RuntimeError(f"{path_name}: the downloaded file differs from the upload")
                shutil.rmtree(dest)
                steps[f"{path_name}_upload"] = {"seconds": up["seconds"], "xet_disabled": up["xet_disabled"],
                                                "peak_rss_mb": monitor.peak_mb(f"{path_name}-upload")}
                steps[f"{path_name}_download"] = {"seconds": down["seconds"],
                                                  "peak_rss_mb": monitor.peak_mb(f"{path_name}-download")}
            big.unlink()

            # d: a second version of a tensor file, through Xet and through LFS.
            v1, v2 = work / "v1.safetensors", work / "v2.safetensors"
            changed = sorted(secrets.SystemRandom().sample(range(ns.tensors), max(1, round(ns.tensors * ns.changed))))
            for path_name, xet in (("xet", True), ("lfs", False)):
                tensor_file(v1, ns.st_mb, ns.tensors)  # fresh random weights for each path: no cross-path dedup
                tensor_file(v2, ns.st_mb, ns.tensors, changed, base=v1)
                file_size = v2.stat().st_size
                repo = f"{ADMIN}/dedup-{path_name}"
                with monitor.phase(f"{path_name}-v1"):
                    run_child("upload", {**base, "repo_id": repo, "file": str(v1), "path": "model.safetensors"},
                              work, xet=xet)
                stored_before, since = folder_bytes(home / "blobs"), datetime.now(UTC)
                with monitor.phase(f"{path_name}-v2"):
                    up = run_child("upload", {**base, "repo_id": repo, "file": str(v2), "path": "model.safetensors"},
                                   work, xet=xet)
                stored = folder_bytes(home / "blobs") - stored_before
                sent = received_by_hub(home, since) if xet else file_size
                steps[f"{path_name}_second_version"] = {
                    "file_bytes": file_size, "tensors": ns.tensors, "changed_tensors": changed,
                    "seconds": up["seconds"], "bytes_sent": sent, "bytes_stored": stored,
                    "sent_share": sent / file_size, "stored_share": stored / file_size,
                    "peak_rss_mb": max(monitor.peak_mb(f"{path_name}-v1"), monitor.peak_mb(f"{path_name}-v2"))}
        result["peak_rss_mb"] = max(m.vmhwm_mb for m in monitor.phases.values())
        result["peak_rss_sampled_mb"] = max(m.sampled_peak_mb for m in monitor.phases.values())
    finally:
        hub.stop()
        if not ns.keep:
            shutil.rmtree(work, ignore_errors=True)
    return result


def table(result: dict) -> str:
    s = result["steps"]
    size_mb = s["anchor"]["bytes"] / MB
    anchor = s["anchor"]["sha256sum_cp_s"]

    def speed(seconds: float) -> str:
        return f"{seconds:.2f} s · {size_mb / seconds:.0f} MB/s"

    ok = lambda good: "✔" if good else "✘"  # noqa: E731
    rows = [
        ("| step | Xet | LFS (same hub) | `sha256sum` + `cp` | Xet / anchor |", None),
        ("|---|---|---|---|---:|", None),
    ]
    for kind in ("upload", "download"):
        xet, lfs = s[f"xet_{kind}"]["seconds"], s[f"lfs_{kind}"]["seconds"]
        rows.append((f"| {kind} {size_mb / 1000:.2f} GB | {speed(xet)} | {speed(lfs)} | {speed(anchor)} | "
                     f"{xet / anchor:.2f}× |", None))
    x, l = s["xet_second_version"], s["lfs_second_version"]
    rows += [
        ("", None),
        (f"| second version of a {x['file_bytes'] / MB:.0f} MB safetensors file, {len(x['changed_tensors'])} of "
         f"{x['tensors']} tensors changed | Xet | LFS | goal |", None),
        ("|---|---:|---:|---|", None),
        (f"| bytes sent | {x['bytes_sent'] / MB:.1f} MB ({x['sent_share']:.1%}) | {l['bytes_sent'] / MB:.1f} MB "
         f"({l['sent_share']:.0%}) | ≤ 10% {ok(x['sent_share'] <= DEDUP_GOAL)} |", None),
        (f"| bytes newly stored | {x['bytes_stored'] / MB:.1f} MB ({x['stored_share']:.1%}) | "
         f"{l['bytes_stored'] / MB:.1f} MB ({l['stored_share']:.0%}) | ≤ 10% {ok(x['stored_share'] <= DEDUP_GOAL)} |",
         None),
        (f"| upload time | {x['seconds']:.2f} s | {l['seconds']:.2f} s | |", None),
        ("", None),
        (f"| server peak RSS (all steps) | {result['peak_rss_mb']:.0f} MB | | | < 200 MB "
         f"{ok(result['peak_rss_mb'] < RSS_GOAL_MB)} |", None),
    ]
    peaks = ", ".join(f"{k.replace('_', ' ')} {v['peak_rss_mb']:.0f}" for k, v in s.items() if "peak_rss_mb" in v)
    rows.append((f"\npeak RSS per step (MB): {peaks}", None))
    return "\n".join(r for r, _ in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-gib", type=float, default=1.0, help="size of the file of steps a-c (GiB)")
    parser.add_argument("--st-mb", type=int, default=500, help="size of the tensor file of step d (MB)")
    parser.add_argument("--tensors", type=int, default=100, help="tensors in that file")
    parser.add_argument("--changed", type=float, default=0.05, help="share of tensors changed in its second version")
    parser.add_argument("--repeat", type=int, default=3, help="repetitions of the coreutils anchor (best kept)")
    parser.add_argument("--work-dir", type=Path, default=None, help="where to put the temporary hub and files")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--json", type=Path, default=None, help="where to write the JSON (default: bench/results/)")
    parser.add_argument("--step", choices=sorted(CHILD_STEPS), help=argparse.SUPPRESS)
    parser.add_argument("--step-args", help=argparse.SUPPRESS)
    ns = parser.parse_args()
    if ns.step:
        print(json.dumps(CHILD_STEPS[ns.step](json.loads(ns.step_args))))
        return
    result = run(ns)
    print(table(result))
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = (ns.json or RESULTS_DIR / f"xet_bench-{stamp}.json").expanduser().resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
