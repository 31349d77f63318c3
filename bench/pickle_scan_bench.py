"""Which pickle scanner fmhub uses: detection by content on a disguised corpus, false alarms, and speed.

Candidates (issue 29): ``picklescan``, ``fickling``, ``modelscan``, ``modelaudit-picklescan``. Each is asked
about every file of a corpus whose names lie (``weights.npy`` holding a plain pickle, ``model.pth.tar``
holding a ``torch.save`` archive, random bytes named ``pytorch_model.bin``...): does it see the pickle
imports whatever the name, does it stay quiet on files that hold no pickle, does it stream (memory), and
how long does a 64 MB ``torch.save`` checkpoint take.

Two steps, because the corpus needs torch and the scanners need not share the project's venv:

    .venv/bin/python bench/pickle_scan_bench.py make /tmp/pickle-corpus
    .venv/bin/python bench/pickle_scan_bench.py scan /tmp/pickle-corpus          # fmhub's scanner, picklescan
    SCANNER_VENV/bin/python bench/pickle_scan_bench.py scan /tmp/pickle-corpus --json other.json  # the others

A scanner that is not installed is listed as such.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import pickle
import resource
import sys
import tarfile
import time
import zipfile
from pathlib import Path

DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "pickle_scan_bench.json"


class _Payload:
    """Runs ``echo`` when unpickled: the shape of every pickle exploit (a callable and its arguments)."""

    def __reduce__(self):
        return (os.system, ("echo pwned",))


def make(folder: Path) -> None:
    import joblib
    import numpy as np
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    evil = {"weight": torch.zeros(2), "x": _Payload()}
    plain = pickle.dumps(_Payload())
    files: dict[str, bytes] = {}
    buffer = io.BytesIO()
    torch.save(evil, buffer)
    files["pickle/model.pth.tar"] = buffer.getvalue()  # torch.save: a zip holding data.pkl
    buffer = io.BytesIO()
    torch.save(evil, buffer, _use_new_zipfile_serialization=False)
    files["pickle/legacy.ckpt.json"] = buffer.getvalue()  # the legacy torch format: a run of pickles
    files["pickle/weights.npy"] = plain
    buffer = io.BytesIO()
    np.save(buffer, np.array([_Payload()], dtype=object), allow_pickle=True)
    files["pickle/embeddings.npy"] = buffer.getvalue()  # an object array: pickle after the npy header
    buffer = io.BytesIO()
    joblib.dump({"model": _Payload()}, buffer)
    files["pickle/classifier.json"] = buffer.getvalue()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo("archive/data.pkl")
        info.size = len(plain)
        archive.addfile(info, io.BytesIO(plain))
    files["pickle/checkpoint.tar"] = buffer.getvalue()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("x/data.pkl", plain)
    files["pickle/config.zip"] = buffer.getvalue()
    buffer = io.BytesIO()
    torch.save({"w": torch.zeros(3)}, buffer)
    files["pickle/pytorch_model.bin"] = buffer.getvalue()  # a benign state dict: a pickle all the same
    files["clean/pytorch_model.bin"] = os.urandom(4096)  # random bytes named like pickle
    files["clean/config.json"] = json.dumps({"hidden_size": 32, "model_type": "bert"}).encode()
    files["clean/README.md"] = b"# a card\n\ncontent (with parentheses) and a .\n"
    buffer = io.BytesIO()
    np.save(buffer, np.arange(16, dtype=np.float32))
    files["clean/plain.npy"] = buffer.getvalue()
    from safetensors.torch import save

    files["clean/model.safetensors"] = save({"w": torch.zeros(4)})
    big = {f"layer{i}": torch.randn(1024, 1024 // 4 * 4) for i in range(16)}  # 16 × 4 MB = 64 MB
    buffer = io.BytesIO()
    torch.save(big, buffer)
    files["speed/big.pt"] = buffer.getvalue()
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    print(f"{len(files)} files in {folder}")


def _picklescan(path: Path) -> list[str]:
    from picklescan.scanner import scan_bytes

    with path.open("rb") as handle:  # no extension: content decides
        result = scan_bytes(handle, path.name, file_ext=None)
    return sorted(f"{g.module}.{g.name}" for g in result.globals)


def _fickling(path: Path) -> list[str]:
    from fickling.loader import scan_file

    result = scan_file(str(path), graceful=True)
    return [] if result.is_safe and not result.errors else [result.severity.name]


def _modelscan(path: Path) -> list[str]:
    from modelscan.modelscan import ModelScan

    report = ModelScan().scan(str(path))
    return sorted(str(issue.details.module) + "." + str(issue.details.operator) for issue in report.issues.all_issues) \
        if hasattr(report, "issues") else sorted(str(i) for i in report.get("issues", []))


def _modelaudit(path: Path) -> list[str]:
    from modelaudit_picklescan import scan_file

    report = scan_file(path)
    return sorted({f.to_dict().get("rule_code", "finding") for f in report.findings}) if report.findings else []


def _fmhub(path: Path) -> list[str]:
    from fmhub.store.pickles import scan_stream

    with path.open("rb") as handle:
        found = scan_stream(handle)
    return found.names if found else []


SCANNERS = {"fmhub (picklescan, routed by content)": _fmhub, "picklescan": _picklescan, "fickling": _fickling, "modelscan": _modelscan,
            "modelaudit-picklescan": _modelaudit}


def scan(folder: Path, out: Path) -> None:
    rows = []
    for scanner, run in SCANNERS.items():
        try:
            run(folder / "clean" / "config.json")
        except ImportError:
            rows.append({"scanner": scanner, "installed": False})
            continue
        except Exception:  # noqa: BLE001 - a scanner failing on a JSON file is itself a finding
            pass
        detected, missed, false_alarms, errors = [], [], [], []
        for path in sorted((folder / "pickle").iterdir()):
            try:
                (detected if run(path) else missed).append(path.name)
            except Exception as error:  # noqa: BLE001
                errors.append(f"{path.name}: {type(error).__name__}")
                missed.append(path.name)
        for path in sorted((folder / "clean").iterdir()):
            try:
                if run(path):
                    false_alarms.append(path.name)
            except Exception as error:  # noqa: BLE001
                errors.append(f"{path.name}: {type(error).__name__}")
        big = folder / "speed" / "big.pt"
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        start = time.perf_counter()
        try:
            run(big)
        except Exception as error:  # noqa: BLE001
            errors.append(f"big.pt: {type(error).__name__}")
        seconds = time.perf_counter() - start
        grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
        rows.append({"scanner": scanner, "installed": True, "detected": detected, "missed": missed,
                     "false_alarms": false_alarms, "errors": errors, "big_seconds": round(seconds, 3),
                     "big_rss_growth_mb": round(grown, 1), "big_mb": round(big.stat().st_size / 1e6, 1)})
    total = len(list((folder / "pickle").iterdir()))
    print(f"{'scanner':40} {'detected':>9} {'false alarms':>13} {'64 MB .pt (s)':>14} {'RSS +MB':>8}  missed")
    for row in rows:
        if not row["installed"]:
            print(f"{row['scanner']:40} not installed")
            continue
        print(f"{row['scanner']:40} {len(row['detected']):>4}/{total:<4} {len(row['false_alarms']):>13} "
              f"{row['big_seconds']:>14} {row['big_rss_growth_mb']:>8}  {', '.join(row['missed']) or '-'}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"python": sys.version.split()[0], "rows": rows}, indent=2))
    print(f"wrote {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("step", choices=("make", "scan"))
    parser.add_argument("folder", type=Path)
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = parser.parse_args()
    make(args.folder) if args.step == "make" else scan(args.folder, args.json)


if __name__ == "__main__":
    main()
