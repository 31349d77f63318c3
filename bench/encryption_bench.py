"""Encryption at rest against the same hub in clear: 1 GiB up and down, side by side, and server memory.

Starts two real servers (``fmhub server``, 1 worker each, SQLite + ``file://`` blobs): one in clear, one
with ``FMHUB_ENCRYPTION_KEY_FILE`` set (every blob AES-256-GCM encrypted at rest). The unmodified
``huggingface_hub`` client, in child processes, uploads a fresh 1 GiB ``.safetensors`` file to each and
downloads it back, the two servers in turn (clear, encrypted, clear, encrypted, ...) so that drift in the
machine's speed hits both alike; the ratio is taken round by round and its median reported. Each step's
server CPU time (user + system of the server's processes) is reported beside its wall time: on a loaded
machine it moves much less than the wall time does.

    step                 measured                              goal
    upload 1 GiB         upload_file (LFS, as HF_HUB_DISABLE_XET=1; Xet with --xet)   encrypted ≤ 1.2× clear
    download it          hf_hub_download to a folder           encrypted ≤ 1.2× clear
    server peak RSS      VmHWM (reset per step) and samples    < 200 MB

It also checks that the encrypted server's blob folder holds no plaintext (a marker written into the
file is searched for). Results print as a table and go to ``bench/results/encryption_bench-<time>.json``.
Never run by the test suite.

Usage:
    .venv/bin/python bench/encryption_bench.py                    # 1 GiB, 3 rounds
    .venv/bin/python bench/encryption_bench.py --size-gib 0.25 --rounds 2   # a quick check
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from _hub_services import ADMIN, RssMonitor, start_hub  # same folder: the server and its memory probe
from hub_bench import make_safetensors, refresh_content, sha256_of  # same folder: test files
from xet_bench import CHILD_STEPS, run_child  # same folder: the unmodified client in child processes

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO_ROOT / "bench" / "results"
GIB = 1 << 30
RSS_GOAL_MB = 200.0
RATIO_GOAL = 1.2
MARKER = b"fmhub-encryption-bench-plaintext-marker"


def contains(root: Path, needle: bytes) -> bool:
    """Whether any file under ``root`` holds ``needle`` (read in overlapping blocks, constant memory)."""
    for path in root.rglob("*"):
        if not path.is_file():
            continue
        tail = b""
        with open(path, "rb") as f:
            while block := f.read(8 << 20):
                if needle in tail + block:
                    return True
                tail = block[-len(needle):]
    return False


def run(ns: argparse.Namespace) -> dict:
    work = Path(tempfile.mkdtemp(prefix="encryption-bench-", dir=ns.work_dir))
    logs = work / "logs"
    logs.mkdir(parents=True)
    token = "fmhub_" + secrets.token_hex(16)
    key_file = work / "keys.json"
    subprocess.run([sys.executable, "-m", "fmhub", "encryption", "init", str(key_file)], check=True,
                   capture_output=True)
    hubs = {"clear": start_hub(work / "home-clear", token, 1, logs, name="clear"),
            "encrypted": start_hub(work / "home-encrypted", token, 1, logs, name="encrypted",
                                   extra_env={"FMHUB_ENCRYPTION_KEY_FILE": str(key_file)})}
    result: dict = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "command": " ".join(sys.argv),
                    "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                "platform": platform.platform(), "load_average_at_start": os.getloadavg()},
                    "size_bytes": int(ns.size_gib * GIB), "client_path": "xet" if ns.xet else "lfs", "rounds": []}
    monitors = {}
    try:
        for hub in hubs.values():
            hub.wait_ready("/healthz")
        monitors = {name: RssMonitor(hub).__enter__() for name, hub in hubs.items()}
        big = work / "big.safetensors"
        offset = make_safetensors(big, result["size_bytes"])
        with open(big, "r+b") as f:  # a known plaintext the encrypted store must not hold
            f.seek(offset + 4096)
            f.write(MARKER)
        for round_no in range(ns.rounds):
            row: dict = {}
            for name, hub in hubs.items():
                refresh_content(big, offset)  # new bytes each time: a new blob, never a dedup hit
                sha = sha256_of(big)
                args = {"endpoint": hub.base_url, "token": token, "repo_id": f"{ADMIN}/bench-{round_no}"}
                with monitors[name].phase(f"{name}-upload-{round_no}"):
                    up = run_child("upload", {**args, "file": str(big), "path": big.name}, work, xet=ns.xet)
                dest = work / f"down-{name}"
                with monitors[name].phase(f"{name}-download-{round_no}"):
                    down = run_child("download", {**args, "path": big.name, "dest": str(dest)}, work, xet=ns.xet)
                if sha256_of(Path(down["path"])) != sha:
                    raise RuntimeError(f"{name}: the downloaded file differs from the upload")
                shutil.rmtree(dest)
                shutil.rmtree(work / "hf-home", ignore_errors=True)
                row[name] = {"upload_s": up["seconds"], "download_s": down["seconds"],
                             "upload_server_cpu_s": monitors[name].phases[f"{name}-upload-{round_no}"].cpu_s,
                             "download_server_cpu_s": monitors[name].phases[f"{name}-download-{round_no}"].cpu_s,
                             "upload_peak_rss_mb": monitors[name].peak_mb(f"{name}-upload-{round_no}"),
                             "download_peak_rss_mb": monitors[name].peak_mb(f"{name}-download-{round_no}")}
            for step in ("upload", "download"):
                row[f"{step}_ratio"] = row["encrypted"][f"{step}_s"] / row["clear"][f"{step}_s"]
                row[f"{step}_cpu_ratio"] = (row["encrypted"][f"{step}_server_cpu_s"]
                                            / row["clear"][f"{step}_server_cpu_s"])
            row["load_average"] = os.getloadavg()
            result["rounds"].append(row)
            print(f"round {round_no + 1}: upload ×{row['upload_ratio']:.2f} "
                  f"(server CPU ×{row['upload_cpu_ratio']:.2f}), "
                  f"download ×{row['download_ratio']:.2f} (server CPU ×{row['download_cpu_ratio']:.2f}), "
                  f"load {row['load_average'][0]:.1f}", file=sys.stderr)
        result["plaintext_in_encrypted_store"] = contains(work / "home-encrypted" / "blobs", MARKER)
        result["plaintext_in_clear_store"] = contains(work / "home-clear" / "blobs", MARKER)  # the control
    finally:
        for monitor in monitors.values():
            monitor.__exit__(None, None, None)
        for hub in hubs.values():
            hub.stop()
        if not ns.keep:
            shutil.rmtree(work, ignore_errors=True)
    rounds = result["rounds"]
    result["summary"] = {
        name: {"upload_s": statistics.median(r[name]["upload_s"] for r in rounds),
               "download_s": statistics.median(r[name]["download_s"] for r in rounds),
               "upload_server_cpu_s": statistics.median(r[name]["upload_server_cpu_s"] for r in rounds),
               "download_server_cpu_s": statistics.median(r[name]["download_server_cpu_s"] for r in rounds),
               "peak_rss_mb": max(max(r[name]["upload_peak_rss_mb"], r[name]["download_peak_rss_mb"]) for r in rounds)}
        for name in ("clear", "encrypted")}
    for key in ("upload_ratio", "download_ratio", "upload_cpu_ratio", "download_cpu_ratio"):
        result["summary"][key] = statistics.median(r[key] for r in rounds)
    return result


def table(result: dict) -> str:
    s = result["summary"]
    mb = result["size_bytes"] / 1e6
    mark = lambda ok: "✔" if ok else "✘"  # noqa: E731
    lines = [f"{result['size_bytes'] / GIB:g} GiB through {result['client_path'].upper()}, "
             f"{len(result['rounds'])} rounds, medians (ratio: median of the per-round ratios)", "",
             "| step | clear | encrypted | encrypted / clear | goal |", "|---|---:|---:|---:|---|"]
    for step in ("upload", "download"):
        c, e, ratio = s["clear"][f"{step}_s"], s["encrypted"][f"{step}_s"], s[f"{step}_ratio"]
        lines.append(f"| {step} | {c:.2f} s · {mb / c:.0f} MB/s | {e:.2f} s · {mb / e:.0f} MB/s | {ratio:.2f}× | "
                     f"≤ {RATIO_GOAL}× {mark(ratio <= RATIO_GOAL)} |")
        c, e = s["clear"][f"{step}_server_cpu_s"], s["encrypted"][f"{step}_server_cpu_s"]
        lines.append(f"| {step}: server CPU | {c:.2f} s | {e:.2f} s | {s[f'{step}_cpu_ratio']:.2f}× | |")
    peak = s["encrypted"]["peak_rss_mb"]
    lines.append(f"| server peak RSS | {s['clear']['peak_rss_mb']:.0f} MB | {peak:.0f} MB | | "
                 f"< {RSS_GOAL_MB:.0f} MB {mark(peak < RSS_GOAL_MB)} |")
    lines.append(f"| plaintext marker found in the blob folder | {'yes' if result['plaintext_in_clear_store'] else 'no'}"
                 f" | {'yes' if result['plaintext_in_encrypted_store'] else 'no'} | | none "
                 f"{mark(not result['plaintext_in_encrypted_store'])} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-gib", type=float, default=1.0, help="size of the file uploaded and downloaded (GiB)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; each uploads and downloads on both servers")
    parser.add_argument("--xet", action="store_true", help="use the client's Xet path instead of LFS")
    parser.add_argument("--work-dir", type=Path, default=None, help="where to put the temporary hubs and files")
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
    path = (ns.json or RESULTS_DIR / f"encryption_bench-{stamp}.json").expanduser().resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
