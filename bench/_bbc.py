"""The BBC News store the model benchmarks share: ``bench/bbc-minilm`` fine-tuned on ``bench/bbc-news``.

``train_bench.py --full --home DIR`` builds it (tens of minutes on 2 cores); ``eval_bench.py`` and
``optimize_bench.py`` take ``--home DIR`` and build one first when it holds no store.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path


def add_home_options(parser: argparse.ArgumentParser, epochs: float) -> None:
    parser.add_argument("--home", type=Path, help="FMHUB_HOME holding bench/bbc-minilm and bench/bbc-news "
                                                  "(from train_bench.py --full --home DIR)")
    parser.add_argument("--epochs", type=float, default=epochs, help="without --home: epochs of the fine-tune")
    parser.add_argument("--lr", type=float, default=1e-4, help="without --home: learning rate of the fine-tune")


def bbc_home(args: argparse.Namespace) -> dict[str, str]:
    """The environment of child processes working on the BBC store (built first when ``--home`` has none)."""
    home = args.home or Path(__file__).parent / ".bbc-home"  # the default store is built once, then reused
    if not (home / "fmhub.db").exists():
        subprocess.run([sys.executable, str(Path(__file__).with_name("train_bench.py")), "--steps", "0", "--full",
                        "--precisions", "fp32",
                        "--epochs", str(args.epochs), "--lr", str(args.lr), "--home", str(home)], check=True)
    env = {**os.environ, "FMHUB_HOME": str(home.resolve()), "TOKENIZERS_PARALLELISM": "false",
           "TRANSFORMERS_VERBOSITY": "error"}
    for key in ("FMHUB_DB_URL", "FMHUB_BLOB_URL", "FMHUB_ENDPOINT"):
        env.pop(key, None)
    return env
