"""fmhub data import of images: the layouts people have, stored in the Hugging Face Image encoding, and the image
quality report (sizes, modes, unreadable files, duplicates, leakage, near and similar images, class balance);
images over the pixel limit stop the import with nothing committed."""

from __future__ import annotations

import io
import json
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from fmhub.client import Hub
from fmhub.data import load
from fmhub.data._image_quality import ImageQualityReport
from fmhub.data._import import ImportOptions, import_dataset
from fmhub.errors import InvalidInputError, RepoNotFoundError
from fmhub.tasks import ImageTooLargeError


def _png(image: Image.Image, kind: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=kind)
    return buffer.getvalue()


def _picture(seed: int, size: int = 24, mode: str = "RGB") -> Image.Image:
    """A distinct picture per seed: random blocks (a perceptual hash sees structure, not noise)."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
    return Image.fromarray(np.kron(blocks, np.ones((size // 4, size // 4, 1), dtype=np.uint8)), "RGB").convert(mode)


def _bomb(side: int = 20_000) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b""))


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def test_an_image_folder_loads_back_as_pil_images_with_its_labels(digits_folder: Path) -> None:
    with Hub.open() as hub:
        result = import_dataset(hub, digits_folder, "acme/digits", ImportOptions(split="train=0.8,test=0.2"))
        files = {e.path for e in hub.list_files("acme/digits", repo_type="dataset")}
    assert result.label_names == [str(d) for d in range(10)] and result.splits == {"train": 100, "test": 20}
    assert {"README.md", "quality.json"} <= files and any(f.startswith("data/train-") for f in files)
    splits = load("acme/digits")
    row = splits["test"][0]
    assert isinstance(row["image"], Image.Image) and row["image"].size == (8, 8) and row["image"].mode == "L"
    assert splits["train"].features["label"].names == [str(d) for d in range(10)]
    stored = splits["test"].cast_column("image", __import__("datasets").Image(decode=False))[0]["image"]
    source = digits_folder / stored["path"]
    assert source.read_bytes() == stored["bytes"]  # the file's bytes, untouched
    assert stored["path"].split("/")[0] == splits["test"].features["label"].names[row["label"]]
    with Hub.open() as hub:
        card = (hub.download("acme/digits", repo_type="dataset") / "README.md").read_text()
    assert "- name: image\n    dtype: image" in card and "class_label" in card
    report = ImageQualityReport.from_dict(json.loads((Path(hub.download("acme/digits", repo_type="dataset"))
                                                      / "quality.json").read_text()))
    assert report.split("train").width.median == 8 and report.split("train").modes == {"L": 100}


def test_the_quality_report_finds_what_is_wrong(tmp_path: Path) -> None:
    root = tmp_path / "pets"
    for i in range(8):  # train: cat 6, dog 2 → no imbalance finding below 5×; test: cat 2, dog 2
        _write(root / "train" / ("cat" if i < 6 else "dog") / f"{i}.png", _png(_picture(i)))
    _write(root / "train" / "cat" / "copy.png", _png(_picture(0)))  # duplicate within train
    _write(root / "test" / "cat" / "leak.png", _png(_picture(1)))  # leakage: train/cat/1.png byte for byte
    _write(root / "test" / "cat" / "resized.png", _png(_picture(2).resize((32, 32))))  # near-duplicate of train 2
    _write(root / "test" / "dog" / "relabelled.png", _png(_picture(3, size=24).resize((48, 48))))  # cat in train
    _write(root / "test" / "dog" / "new.png", _png(_picture(100, mode="L")))
    whole = _png(_picture(7))
    _write(root / "train" / "dog" / "truncated.png", whole[:len(whole) // 2])
    _write(root / "train" / "dog" / "notes.png", b"these are notes, not a picture")
    with Hub.open() as hub:
        result = import_dataset(hub, root, "acme/pets", ImportOptions())
    report = result.quality
    assert isinstance(report, ImageQualityReport)
    train, test = report.split("train"), report.split("test")
    assert (train.rows, train.unreadable, test.rows) == (9, 2, 4)  # unreadable files left out
    assert {u.path for u in train.unreadable_examples} == {"train/dog/truncated.png", "train/dog/notes.png"}
    assert any("truncated" in u.reason for u in train.unreadable_examples)
    assert train.duplicates == 1
    assert [(p.first, p.second, p.count) for p in report.leakage] == [("train", "test", 1)]
    assert [(p.first, p.second, p.count) for p in report.near_duplicates] == [("train", "test", 2)]
    assert report.label_conflicts == 1  # the same picture as cat (train) and dog (test)
    assert test.modes == {"RGB": 3, "L": 1} and test.width.max == 48 and test.width.min == 24
    kinds = [kind for kind, _ in report.findings()]
    assert kinds[:3] == ["leakage", "label_conflicts", "near_duplicates"] and "unreadable" in kinds
    assert "imbalance" not in kinds
    assert report.problems() and report.has_blocking_problems  # what --strict refuses: leakage, conflicts
    stored = load("acme/pets")
    assert stored["train"].num_rows == 9 and stored["test"].num_rows == 4
    assert result.splits == {"train": 9, "test": 4}


def test_class_imbalance_and_similar_images(tmp_path: Path) -> None:
    root = tmp_path / "imbalanced"
    for i in range(12):
        _write(root / "train" / "common" / f"{i}.png", _png(_picture(i)))
    _write(root / "train" / "rare" / "0.png", _png(_picture(50)))
    similar = np.asarray(_picture(5)).copy()
    similar[:6, :6] = 255 - similar[:6, :6]  # one block changed: a few bits of the hash differ
    _write(root / "test" / "common" / "edited.png", _png(Image.fromarray(similar)))
    with Hub.open() as hub:
        without = import_dataset(hub, root, "acme/imbalanced", ImportOptions()).quality
        found = import_dataset(hub, root, "acme/imbalanced", ImportOptions(similar_images=12)).quality
    assert "imbalance" in [kind for kind, _ in without.findings()] and without.split("train").imbalance == 12.0
    assert without.similar == () and without.near_duplicates == ()
    assert [(p.first, p.second, p.count) for p in found.similar] == [("train", "test", 1)]
    assert found.similar_bits == 12


def test_a_bomb_stops_the_import_and_nothing_is_committed(digits_folder: Path) -> None:
    _write(digits_folder / "3" / "bomb.png", _bomb())
    with Hub.open() as hub, pytest.raises(ImageTooLargeError) as refused:
        import_dataset(hub, digits_folder, "acme/bombed", ImportOptions())
    assert "3/bomb.png" in refused.value.message and "--max-image-pixels" in refused.value.hint
    with Hub.open() as hub, pytest.raises(RepoNotFoundError):
        hub.repo_info("acme/bombed", repo_type="dataset")
    (digits_folder / "3" / "bomb.png").unlink()
    _write(digits_folder / "3" / "big.png", _png(Image.new("L", (200, 200))))
    with Hub.open() as hub, pytest.raises(ImageTooLargeError, match="200×200"):
        import_dataset(hub, digits_folder, "acme/bombed", ImportOptions(max_image_pixels=10_000))


def test_a_table_of_image_paths(tmp_path: Path) -> None:
    for i in range(6):
        _write(tmp_path / "images" / f"{i}.png", _png(_picture(i)))
    table = tmp_path / "labels.csv"
    table.write_text("file_name,label,split\n" + "".join(
        f"images/{i}.png,{'ab'[i % 2]},{'train' if i < 4 else 'test'}\n" for i in range(6)) + "images/gone.png,a,test\n")
    with Hub.open() as hub:
        result = import_dataset(hub, table, "acme/table", ImportOptions())
    assert result.splits == {"train": 4, "test": 2} and result.label_names == ["a", "b"]
    assert [u.path for u in result.quality.split("test").unreadable_examples] == ["images/gone.png"]
    assert load("acme/table", split="train")[0]["image"].size == (24, 24)
    lines = tmp_path / "rows.jsonl"
    lines.write_text("\n".join(json.dumps({"picture": f"images/{i}.png", "label": "ab"[i % 2]}) for i in range(6)))
    with Hub.open() as hub:
        assert sum(import_dataset(hub, lines, "acme/lines", ImportOptions(image_column="picture")).splits.values()) == 6
    escaping = tmp_path / "escape.csv"
    escaping.write_text("image,label\n../secret.png,a\n")
    with Hub.open() as hub, pytest.raises(InvalidInputError, match="leaves the table's folder"):
        import_dataset(hub, escaping, "acme/escape", ImportOptions())


def test_parquet_with_image_bytes(tmp_path: Path) -> None:
    images = [{"bytes": _png(_picture(i)), "path": f"{i}.png"} for i in range(8)]
    features = {"image": {"_type": "Image"}, "label": {"_type": "ClassLabel", "names": ["cat", "dog"]}}
    table = pa.table({"image": pa.array(images), "label": pa.array([i % 2 for i in range(8)], pa.int64())})
    table = table.replace_schema_metadata({"huggingface": json.dumps({"info": {"features": features}})})
    pq.write_table(table, tmp_path / "hf.parquet")
    raw = pa.table({"img": pa.array([i["bytes"] for i in images], pa.binary()), "label": ["x", "y"] * 4})
    pq.write_table(raw, tmp_path / "raw.parquet")
    with Hub.open() as hub:
        hf = import_dataset(hub, tmp_path / "hf.parquet", "acme/hf", ImportOptions(split="train=0.5,test=0.5"))
        assert hf.label_names == ["cat", "dog"]  # ClassLabel ids read as their names
        plain = import_dataset(hub, tmp_path / "raw.parquet", "acme/raw", ImportOptions(split="train=0.5,test=0.5"))
        assert plain.label_names == ["x", "y"]
        again = import_dataset(hub, tmp_path / "hf.parquet", "acme/hf", ImportOptions(split="train=0.5,test=0.5"))
    assert again.commit.oid == hf.commit.oid and again.content_hash == hf.content_hash  # the same version
    assert load("acme/raw", split="train")[0]["image"].mode == "RGB"


def test_clear_errors_for_mixed_or_misnamed_layouts(tmp_path: Path) -> None:
    _write(tmp_path / "mixed" / "cat" / "a.png", _png(_picture(0)))
    _write(tmp_path / "mixed" / "b.png", _png(_picture(1)))
    _write(tmp_path / "splits" / "holdout" / "cat" / "a.png", _png(_picture(0)))
    with Hub.open() as hub:
        with pytest.raises(InvalidInputError, match="different depths"):
            import_dataset(hub, tmp_path / "mixed", "acme/x", ImportOptions())
        with pytest.raises(InvalidInputError, match="not split names"):
            import_dataset(hub, tmp_path / "splits", "acme/x", ImportOptions())
        with pytest.raises(InvalidInputError, match="apply to image sources"):
            shutil.copy(Path(__file__).parents[2] / "examples" / "tiny" / "topics.csv", tmp_path / "t.csv")
            import_dataset(hub, tmp_path / "t.csv", "acme/x", ImportOptions(max_image_pixels=100))
