"""Parquet shards: the layout and features datasets reads back, byte-identical for the same rows."""

from __future__ import annotations

import hashlib
from pathlib import Path

from fmhub.data._parquet import ShardWriter, arrow_schema


def _write(root: Path, shard_bytes: int = 10**9) -> dict:
    writer = ShardWriter(root, arrow_schema("text-classification", ["neg", "pos"], None), shard_bytes=shard_bytes)
    for i in range(5):
        writer.write("train", {"text": [f"row {i} " * 50] * 100, "label": [i % 2] * 100})
    writer.write("test", {"text": ["t"], "label": [1]})
    return writer.close()


def test_layout_counts_and_determinism(tmp_path: Path) -> None:
    splits = _write(tmp_path / "a")
    assert [p.name for p in splits["train"].paths] == ["train-00000-of-00001.parquet"]
    assert (splits["train"].num_examples, splits["test"].num_examples) == (500, 1)
    again = _write(tmp_path / "b")
    digest = lambda p: hashlib.sha256(p.read_bytes()).hexdigest()  # noqa: E731
    assert digest(splits["train"].paths[0]) == digest(again["train"].paths[0])


def test_shards_roll_over_and_load_with_datasets(tmp_path: Path) -> None:
    splits = _write(tmp_path, shard_bytes=30_000)
    names = [p.name for p in splits["train"].paths]
    assert len(names) > 1 and names[-1] == f"train-{len(names) - 1:05d}-of-{len(names):05d}.parquet"
    import datasets

    loaded = datasets.load_dataset("parquet", data_files={"train": [str(p) for p in splits["train"].paths]},
                                   cache_dir=str(tmp_path / "cache"))["train"]
    assert loaded.num_rows == 500
    assert loaded.features["label"].names == ["neg", "pos"]
    assert loaded.features["label"].int2str(loaded[100]["label"]) == "pos"  # rows 100-199 have label 1
