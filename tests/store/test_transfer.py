"""Uploading files and folders, downloading snapshots: paths, filters, atomic and idempotent writes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fmhub.errors import EmptyCommitError, InvalidInputError, InvalidPathError
from fmhub.store import Store
from fmhub.store.transfer import download_snapshot, plan_upload, select_files, snapshot_folder, upload


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    root = tmp_path / "model"
    (root / "onnx").mkdir(parents=True)
    (root / "config.json").write_text("{}")
    (root / "onnx" / "model.onnx").write_bytes(os.urandom(1500))
    (root / "tokenizer.json").write_text('{"vocab": {}}')
    (root / ".git" / "objects").mkdir(parents=True)
    (root / ".git" / "config").write_text("[core]")
    (root / ".cache" / "huggingface").mkdir(parents=True)
    (root / ".cache" / "huggingface" / "x.lock").write_text("")
    return root


def test_plan_upload_maps_folders_and_files(model_dir: Path) -> None:
    assert [p.path_in_repo for p in plan_upload(model_dir)] == ["config.json", "onnx/model.onnx", "tokenizer.json"]
    assert [p.path_in_repo for p in plan_upload(model_dir, "v2/")] == \
        ["v2/config.json", "v2/onnx/model.onnx", "v2/tokenizer.json"]
    assert [p.path_in_repo for p in plan_upload(model_dir / "config.json")] == ["config.json"]
    assert [p.path_in_repo for p in plan_upload(model_dir / "config.json", "cfg/base.json")] == ["cfg/base.json"]


@pytest.mark.parametrize("bad", ["../up.json", "/abs.json", "a//b.json", "a\\b.json"])
def test_plan_upload_rejects_unsafe_repo_paths(model_dir: Path, bad: str) -> None:
    with pytest.raises(InvalidPathError):
        plan_upload(model_dir / "config.json", bad)


def test_plan_upload_rejects_missing_and_empty(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="does not exist"):
        plan_upload(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidInputError, match="no files"):
        plan_upload(tmp_path / "empty")


def test_round_trip_through_every_backend(store: Store, model_dir: Path, tmp_path: Path) -> None:
    store.create_repo("acme/m")
    commit = upload(store, "acme/m", plan_upload(model_dir), title="Add", author="t")
    with pytest.raises(EmptyCommitError):
        upload(store, "acme/m", plan_upload(model_dir), title="Again", author="t")

    out = download_snapshot(store, "acme/m", local_dir=tmp_path / "out", verify=True)
    for rel in ("config.json", "onnx/model.onnx", "tokenizer.json"):
        assert (out / rel).read_bytes() == (model_dir / rel).read_bytes()
    assert not list(out.rglob("*.incomplete"))

    cached = download_snapshot(store, "acme/m", revision=commit.oid[:8], cache_dir=tmp_path / "cache",
                               include=["*.json"], exclude="tokenizer*")
    assert cached == snapshot_folder(tmp_path / "cache", "acme/m", "model", commit.oid)
    assert sorted(p.relative_to(cached).as_posix() for p in cached.rglob("*") if p.is_file()) == ["config.json"]


def test_local_dir_is_kept_in_sync_and_skips_identical_files(local_store: Store, model_dir: Path,
                                                             tmp_path: Path) -> None:
    local_store.create_repo("acme/m")
    upload(local_store, "acme/m", plan_upload(model_dir), title="Add", author="t")
    out = tmp_path / "out"
    planned: list[list[str]] = []
    on_plan = lambda _commit, todo: planned.append([e.path for e in todo])  # noqa: E731
    download_snapshot(local_store, "acme/m", local_dir=out, on_plan=on_plan)
    (out / "config.json").write_text("edited locally")  # same size class, different bytes
    download_snapshot(local_store, "acme/m", local_dir=out, on_plan=on_plan)
    assert planned[1] == ["config.json"]  # only the file that differs is fetched again
    assert (out / "config.json").read_text() == "{}"


def test_download_refuses_to_follow_a_symlink_out_of_local_dir(local_store: Store, model_dir: Path,
                                                               tmp_path: Path) -> None:
    local_store.create_repo("acme/m")
    upload(local_store, "acme/m", plan_upload(model_dir), title="Add", author="t")
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    out.mkdir()
    elsewhere.mkdir()
    (out / "onnx").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(InvalidInputError, match="symlink"):
        download_snapshot(local_store, "acme/m", local_dir=out)
    assert list(elsewhere.iterdir()) == []


def test_select_files_follows_huggingface_pattern_rules(local_store: Store, model_dir: Path) -> None:
    local_store.create_repo("acme/m")
    upload(local_store, "acme/m", plan_upload(model_dir), title="Add", author="t")
    entries = local_store.list_files("acme/m")
    assert [e.path for e in select_files(entries, include="onnx/")] == ["onnx/model.onnx"]
    assert [e.path for e in select_files(entries, exclude=["*.json", ".git*"])] == ["onnx/model.onnx"]
    assert len(select_files(entries)) == len(entries)


def test_plan_upload_filters_a_folder_by_relative_path(model_dir: Path) -> None:
    assert [p.path_in_repo for p in plan_upload(model_dir, "v2", include="*.json", exclude="tok*")] == \
        ["v2/config.json"]
    assert [p.path_in_repo for p in plan_upload(model_dir, include="onnx/")] == ["onnx/model.onnx"]
    with pytest.raises(InvalidInputError, match="include/exclude"):
        plan_upload(model_dir, include="*.bin")
