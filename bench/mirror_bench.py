"""Mirroring (``fmhub mirror export`` + ``import``) against ``tar`` + ``sha256sum`` of the same files, the size of an
incremental bundle, and the memory of both sides.

A source store (SQLite + ``file://`` blobs, in a fresh temporary folder) holds a model of ``--size-mib`` MiB in
four shards plus a config and card; the same files also sit in a plain folder for the coreutils anchor.

    step                                measured                                            goal
    a. export + import, fresh target    both in child processes: wall and CPU seconds,      ≤ 1.5 × anchor B1
                                        whole processes and in-process (without the         RSS < 200 MB
                                        interpreter's start and imports), peak RSS of each
                                        (the kernel's ru_maxrss)
    anchor B1: tar + sha256sum          ``tar -cf`` of the folder, then ``sha256sum`` of it (what the goal names)
    anchor B2: tar + untar + sha256sum  pack, unpack elsewhere, hash what was unpacked (the same work as a + an fsync)
    b. incremental bundle               a fine-tune in a new repo: one shard changed, card    ≤ changed + 1 %
                                        new, the rest shared; bundle made --since the first

Rounds alternate (a, B1, B2, a, B1, B2, …) and each pair's ratio is reported, so load from other processes
hits both sides alike; the load average is recorded at the start and the end. Page cache is warm (every input
is read once first). Results print as a table and go to ``bench/results/mirror_bench-<time>.json``.

Usage:
    .venv/bin/python bench/mirror_bench.py                 # 1 GiB, 3 rounds, as in docs/benchmarks.md
    .venv/bin/python bench/mirror_bench.py --size-mib 64 --rounds 1   # a quick check
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO_ROOT / "bench" / "results"
MIB = 1 << 20
RSS_GOAL_MB = 200.0
RATIO_GOAL = 1.5
SHARDS = 4


# -- child steps (run in their own process, so each one's CPU time and peak RSS are its own) -----------------

def _child(step: str, args: dict) -> None:
    sys.path.insert(0, str(REPO_ROOT / "src"))
    from fmhub.mirror import Target, import_bundle, plan_export, read_manifest_file, write_bundle
    from fmhub.store import open_store

    started, cpu = time.perf_counter(), time.process_time()
    with open_store(args["db"], args["blobs"]) as store:
        if step == "export":
            since = read_manifest_file(Path(args["since"])) if args.get("since") else None
            targets = [Target(repo) for repo in args["repos"]]
            size = write_bundle(store, plan_export(store, targets, since=since), Path(args["bundle"]))
            print(json.dumps({"bundle_bytes": size, "inner_wall_s": time.perf_counter() - started,
                              "inner_cpu_s": time.process_time() - cpu}))
        else:
            with open(args["bundle"], "rb") as f:
                summary = import_bundle(store, f)
            print(json.dumps({"bytes_written": summary.bytes_written, "commits": summary.commits_added,
                              "inner_wall_s": time.perf_counter() - started, "inner_cpu_s": time.process_time() - cpu}))


def run_child(step: str, args: dict) -> dict:
    """Run a step in a child process; returns its answer with wall and CPU seconds and peak RSS (MB)."""
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, __file__, "--child", step, json.dumps(args)], stdout=subprocess.PIPE,
                            text=True)
    out = proc.stdout.read()
    _pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise RuntimeError(f"{step} failed ({proc.returncode})")
    answer = json.loads(out.strip().splitlines()[-1])
    return {**answer, "wall_s": time.perf_counter() - started, "cpu_s": usage.ru_utime + usage.ru_stime,
            "peak_rss_mb": usage.ru_maxrss / 1024}


def run_shell(argv: list[str], **kwargs) -> dict:
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, **kwargs)
    _pid, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status):
        raise RuntimeError(f"{argv[0]} failed")
    return {"wall_s": time.perf_counter() - started, "cpu_s": usage.ru_utime + usage.ru_stime,
            "peak_rss_mb": usage.ru_maxrss / 1024}


def _sum(*steps: dict) -> dict:
    out = {"wall_s": sum(s["wall_s"] for s in steps), "cpu_s": sum(s["cpu_s"] for s in steps)}
    if all("inner_wall_s" in s for s in steps):  # without the interpreter's start and fmhub's imports
        out["inner_wall_s"] = sum(s["inner_wall_s"] for s in steps)
        out["inner_cpu_s"] = sum(s["inner_cpu_s"] for s in steps)
    return out


# -- setup ---------------------------------------------------------------------------------------------------

def _write_random(path: Path, size: int) -> None:
    with open(path, "wb") as f:
        f.write(b"weights\0")  # not a pickle by content (the import checks files as a commit does)
        left = size - 8
        while left > 0:
            n = min(left, 16 * MIB)
            f.write(os.urandom(n))
            left -= n


def make_model(folder: Path, size: int) -> None:
    folder.mkdir(parents=True)
    for i in range(SHARDS):
        _write_random(folder / f"shard-{i + 1:05d}-of-{SHARDS:05d}.weights", size // SHARDS)
    (folder / "config.json").write_text(json.dumps({"hidden_size": 4096, "num_hidden_layers": 32}))
    (folder / "README.md").write_text("---\nlicense: apache-2.0\n---\n# base\n")


def warm(folder: Path) -> None:
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            with open(path, "rb") as f:
                while f.read(16 * MIB):
                    pass


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# -- main ----------------------------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mib", type=int, default=1024, help="model size in MiB (default 1024)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (default 3)")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child[0], json.loads(args.child[1]))
        return
    sys.path.insert(0, str(REPO_ROOT / "src"))
    from fmhub.store import AddFile, open_store

    size = args.size_mib * MIB
    load_start = load_average()
    work = Path(tempfile.mkdtemp(prefix="fmhub-mirror-bench-"))
    try:
        model = work / "model"
        make_model(model, size)
        src_db, src_blobs = f"sqlite:///{work / 'src.db'}", (work / "src-blobs").as_uri()
        with open_store(src_db, src_blobs) as store:
            store.create_repo("acme/base")
            ops = [AddFile(p.name, (info := store.put_file(p)).sha256, info.size) for p in sorted(model.iterdir())]
            store.commit("acme/base", ops, title="base", author="bench")
        warm(work / "src-blobs")
        warm(model)
        rounds = []
        for r in range(args.rounds):
            bundle, target = work / "round.fmbundle", work / f"target-{r}"
            export = run_child("export", {"db": src_db, "blobs": src_blobs, "repos": ["acme/base"],
                                          "bundle": str(bundle)})
            imported = run_child("import", {"db": f"sqlite:///{target / 'fmhub.db'}",
                                            "blobs": (target / "blobs").as_uri(), "bundle": str(bundle)})
            fmhub = _sum(export, imported)
            bundle.unlink()
            shutil.rmtree(target)
            tarball, unpacked = work / "round.tar", work / "unpacked"
            tar = run_shell(["tar", "-cf", str(tarball), "-C", str(model), "."])
            sha = run_shell(["sha256sum", *sorted(str(p) for p in model.iterdir())])
            b1 = _sum(tar, sha)
            tar2 = run_shell(["tar", "-cf", str(tarball), "-C", str(model), "."])
            unpacked.mkdir()
            untar = run_shell(["tar", "-xf", str(tarball), "-C", str(unpacked)])
            sha2 = run_shell(["sha256sum", *sorted(str(p) for p in unpacked.iterdir() if p.is_file())])
            b2 = _sum(tar2, untar, sha2)
            tarball.unlink()
            shutil.rmtree(unpacked)
            rounds.append({"fmhub": fmhub, "export": export, "import": imported, "b1_tar_sha256sum": b1,
                           "b2_tar_untar_sha256sum": b2,
                           "ratio_b1_wall": fmhub["wall_s"] / b1["wall_s"], "ratio_b1_cpu": fmhub["cpu_s"] / b1["cpu_s"],
                           "ratio_b2_wall": fmhub["wall_s"] / b2["wall_s"], "ratio_b2_cpu": fmhub["cpu_s"] / b2["cpu_s"],
                           "inner_ratio_b1_wall": fmhub["inner_wall_s"] / b1["wall_s"],
                           "inner_ratio_b1_cpu": fmhub["inner_cpu_s"] / b1["cpu_s"]})
            print(f"round {r + 1}: fmhub {fmhub['wall_s']:.2f} s (cpu {fmhub['cpu_s']:.2f}), tar+sha256sum "
                  f"{b1['wall_s']:.2f} s (cpu {b1['cpu_s']:.2f}), tar+untar+sha256sum {b2['wall_s']:.2f} s "
                  f"(cpu {b2['cpu_s']:.2f})", flush=True)

        # b. incremental: a fine-tune of the mirrored base in a new repo, one shard changed.
        first = work / "base.fmbundle"
        run_child("export", {"db": src_db, "blobs": src_blobs, "repos": ["acme/base"], "bundle": str(first)})
        changed = work / "changed"
        changed.mkdir()
        shard = sorted(p for p in model.iterdir() if p.suffix == ".weights")[0]
        _write_random(changed / shard.name, size // SHARDS)
        (changed / "README.md").write_text("---\nbase_model: acme/base\nlicense: apache-2.0\n---\n# tuned\n")
        with open_store(src_db, src_blobs) as store:
            store.create_repo("acme/tuned")
            ops = [AddFile(p.name, (info := store.put_file(p)).sha256, info.size) for p in sorted(model.iterdir())
                   if not (changed / p.name).exists()]
            ops += [AddFile(p.name, (info := store.put_file(p)).sha256, info.size) for p in sorted(changed.iterdir())]
            store.commit("acme/tuned", ops, title="fine-tune", author="bench")
        second = work / "tuned.fmbundle"
        incremental = run_child("export", {"db": src_db, "blobs": src_blobs, "repos": ["acme/base", "acme/tuned"],
                                           "bundle": str(second), "since": str(first)})
        changed_bytes = sum(p.stat().st_size for p in changed.iterdir())
        load_end = load_average()
    finally:
        shutil.rmtree(work, ignore_errors=True)

    def median(values: list[float]) -> float:
        values = sorted(values)
        return values[len(values) // 2]

    result = {
        "benchmark": "mirror", "at": datetime.now(UTC).isoformat(timespec="seconds"), "size_mib": args.size_mib,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
        "load_average_start": load_start, "load_average_end": load_end, "rounds": rounds,
        "median_ratio_b1_wall": median([r["ratio_b1_wall"] for r in rounds]),
        "median_ratio_b1_cpu": median([r["ratio_b1_cpu"] for r in rounds]),
        "median_ratio_b2_wall": median([r["ratio_b2_wall"] for r in rounds]),
        "median_ratio_b2_cpu": median([r["ratio_b2_cpu"] for r in rounds]),
        "median_inner_ratio_b1_wall": median([r["inner_ratio_b1_wall"] for r in rounds]),
        "median_inner_ratio_b1_cpu": median([r["inner_ratio_b1_cpu"] for r in rounds]),
        "peak_rss_mb": {"export": max(r["export"]["peak_rss_mb"] for r in rounds),
                        "import": max(r["import"]["peak_rss_mb"] for r in rounds)},
        "incremental": {"bundle_bytes": incremental["bundle_bytes"], "changed_bytes": changed_bytes,
                        "ratio": incremental["bundle_bytes"] / changed_bytes},
        "goals": {"ratio_b1": RATIO_GOAL, "rss_mb": RSS_GOAL_MB, "incremental_ratio": 1.01},
    }
    print()
    print(f"{'':34}{'wall s':>10}{'cpu s':>10}{'÷ B1 wall':>12}{'÷ B1 cpu':>11}{'÷ B2 wall':>12}{'÷ B2 cpu':>11}")
    for i, r in enumerate(rounds, 1):
        f = r["fmhub"]
        print(f"round {i}: export + import         {f['wall_s']:10.2f}{f['cpu_s']:10.2f}{r['ratio_b1_wall']:12.2f}"
              f"{r['ratio_b1_cpu']:11.2f}{r['ratio_b2_wall']:12.2f}{r['ratio_b2_cpu']:11.2f}")
        for name, key in (("B1 tar + sha256sum", "b1_tar_sha256sum"), ("B2 tar + untar + sha256sum",
                                                                       "b2_tar_untar_sha256sum")):
            print(f"         {name:<25}{r[key]['wall_s']:10.2f}{r[key]['cpu_s']:10.2f}")
    print(f"median ratio vs B1: wall {result['median_ratio_b1_wall']:.2f}, cpu {result['median_ratio_b1_cpu']:.2f} "
          f"(goal ≤ {RATIO_GOAL}); vs B2: wall {result['median_ratio_b2_wall']:.2f}, "
          f"cpu {result['median_ratio_b2_cpu']:.2f}")
    print(f"without interpreter start and imports (fmhub's in-process time): median ratio vs B1: wall "
          f"{result['median_inner_ratio_b1_wall']:.2f}, cpu {result['median_inner_ratio_b1_cpu']:.2f}")
    print(f"peak RSS: export {result['peak_rss_mb']['export']:.0f} MB, import {result['peak_rss_mb']['import']:.0f} MB "
          f"(goal < {RSS_GOAL_MB:.0f})")
    inc = result["incremental"]
    print(f"incremental bundle: {inc['bundle_bytes']:,} bytes for {inc['changed_bytes']:,} changed bytes "
          f"(× {inc['ratio']:.4f}; goal ≤ 1.01)")
    print(f"load average: start {load_start}, end {load_end}")
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    out = RESULTS_DIR / f"mirror_bench-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
