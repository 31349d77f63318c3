"""datasets.load_dataset, unmodified, loads an fmhub-imported dataset from a live hub (HF_ENDPOINT set)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from fmhub.client._local import LocalHub
from fmhub.data._import import ImportOptions, import_dataset

_LOAD = """
import datasets, json, sys
d = datasets.load_dataset(sys.argv[1])
print(json.dumps({"sizes": {s: d[s].num_rows for s in d}, "labels": d["train"].features["label"].names}))
"""


def test_load_dataset_through_the_hub(hub_url: str, local_store, tokens, tmp_path) -> None:
    source = tmp_path / "s.csv"
    source.write_text("text,label\n" + "\n".join(f"row {i},{'ab'[i % 2]}" for i in range(50)) + "\n")
    result = import_dataset(LocalHub(local_store), source, "alice/s", ImportOptions())
    env = {**os.environ, "HF_ENDPOINT": hub_url, "HF_HUB_CACHE": str(tmp_path / "hub"),
           "HF_DATASETS_CACHE": str(tmp_path / "ds"), "HF_HUB_DISABLE_TELEMETRY": "1", "HF_TOKEN": tokens.alice}
    done = subprocess.run([sys.executable, "-c", _LOAD, "alice/s"], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert loaded == {"sizes": result.splits, "labels": ["a", "b"]}  # the rows the embedded import committed


_LOAD_IMAGES = """
import datasets, json, sys
d = datasets.load_dataset(sys.argv[1])
row = d["train"][0]
print(json.dumps({"sizes": {s: d[s].num_rows for s in d}, "labels": d["train"].features["label"].names,
                  "type": type(row["image"]).__module__ + "." + type(row["image"]).__name__,
                  "size": list(row["image"].size), "mode": row["image"].mode}))
"""


def test_load_dataset_decodes_images_through_the_hub(hub_url: str, local_store, tokens, tmp_path) -> None:
    """An image import loads as PIL images in a client with no fmhub code: the Hugging Face Image encoding."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_digits", Path(__file__).parents[2] / "examples" / "digits" /
                                                  "make_digits.py")
    make_digits = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_digits)
    make_digits.write_digits(tmp_path / "digits", per_class=3)
    result = import_dataset(LocalHub(local_store), tmp_path / "digits", "alice/digits",
                            ImportOptions(split="train=0.7,test=0.3"))
    env = {**os.environ, "HF_ENDPOINT": hub_url, "HF_HUB_CACHE": str(tmp_path / "hub"),
           "HF_DATASETS_CACHE": str(tmp_path / "ds"), "HF_HUB_DISABLE_TELEMETRY": "1", "HF_TOKEN": tokens.alice}
    done = subprocess.run([sys.executable, "-c", _LOAD_IMAGES, "alice/digits"], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert loaded == {"sizes": result.splits, "labels": [str(d) for d in range(10)],
                      "type": "PIL.PngImagePlugin.PngImageFile", "size": [8, 8], "mode": "L"}
