"""The unmodified huggingface_hub 2.4 client with hf_xet against a live hub: no HF_HUB_DISABLE_XET.

Every test gets a fresh server and a fresh client home (hf_xet caches shards per endpoint, and a port can be
reused), and the client retries little, so a wrong answer fails fast instead of looking like a hang.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from huggingface_hub import hf_hub_download, snapshot_download

from fmhub.store import Store
from fmhub.xet import XetStorage

MB = 1024 * 1024


@pytest.fixture(autouse=True)
def xet_client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hf_env):
    """A fresh hf_xet session with its own cache and few retries, torn down after the test."""
    from huggingface_hub import constants
    from huggingface_hub.utils import _xet

    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("HF_XET_CACHE", str(tmp_path / "hf-home" / "xet"))
    monkeypatch.setenv("HF_XET_CLIENT_RETRY_MAX_ATTEMPTS", "2")
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", False)
    _xet._GLOBAL_XET_HOLDER._session = None  # noqa: SLF001 - a session reads its environment when made
    yield tmp_path / "hf-home" / "xet"
    _xet._GLOBAL_XET_HOLDER._session = None  # noqa: SLF001


@pytest.fixture
def no_xet(monkeypatch: pytest.MonkeyPatch) -> None:
    """HF_HUB_DISABLE_XET=1 as users set it (read once at import, so patch the constant)."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)


def _file(path: Path, size: int) -> tuple[Path, str]:
    """Random bytes (nothing dedups within the file), written and hashed in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "wb") as out:
        for _ in range(size // MB):
            block = os.urandom(MB)
            out.write(block)
            digest.update(block)
    return path, digest.hexdigest()


def _sha(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _blob_bytes(store: Store) -> int:
    return sum(b.size for b in store.blobs.iter_blobs())


def test_upload_file_and_download_back_through_xet(alice_api, hub_url: str, local_store: Store, tmp_path,
                                                   xet_client, tokens) -> None:
    path, sha = _file(tmp_path / "weights.dat", 10 * MB)
    alice_api.create_repo("alice/xet", private=True)
    alice_api.upload_file(path_or_fileobj=str(path), path_in_repo="weights.dat", repo_id="alice/xet")
    entry = {e.path: e for e in local_store.list_files("alice/xet")}["weights.dat"]
    assert entry.blob_sha256 == sha and entry.size == 10 * MB
    assert XetStorage(local_store).file_by_sha256(sha) is not None  # it came through Xet, not LFS
    assert not local_store.blobs.exists(sha)  # held as chunks in xorbs, not as a second copy
    assert list(xet_client.glob("*/shard-cache"))  # this test's own client home was used

    got = hf_hub_download("alice/xet", "weights.dat", endpoint=hub_url, token=tokens.alice,
                          cache_dir=tmp_path / "dl")
    assert _sha(got) == sha
    folder = snapshot_download("alice/xet", endpoint=hub_url, token=tokens.alice, cache_dir=tmp_path / "snap")
    assert _sha(Path(folder) / "weights.dat") == sha


def test_upload_folder_small_and_large_files(alice_api, hub_url: str, local_store: Store, tmp_path,
                                            tokens) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text('{"hidden_size": 32}')
    _, sha_a = _file(folder / "a.dat", 12 * MB)
    (folder / "sub").mkdir()
    _, sha_b = _file(folder / "sub" / "b.dat", 11 * MB)
    alice_api.create_repo("alice/folder")
    alice_api.upload_folder(folder_path=folder, repo_id="alice/folder")
    files = {e.path: e.blob_sha256 for e in local_store.list_files("alice/folder")}
    assert files["a.dat"] == sha_a and files["sub/b.dat"] == sha_b
    # A public repo: anonymous readers get a Xet read token too.
    out = snapshot_download("alice/folder", endpoint=hub_url, token=False, local_dir=tmp_path / "back")
    assert _sha(Path(out) / "a.dat") == sha_a and _sha(Path(out) / "sub" / "b.dat") == sha_b
    assert (Path(out) / "config.json").read_text() == '{"hidden_size": 32}'


@pytest.mark.slow
def test_a_200_mb_file_goes_up_and_down(alice_api, hub_url: str, local_store: Store, tmp_path, tokens) -> None:
    path, sha = _file(tmp_path / "big.dat", 200 * MB)
    alice_api.create_repo("alice/big")
    alice_api.upload_file(path_or_fileobj=str(path), path_in_repo="big.dat", repo_id="alice/big")
    path.unlink()
    assert _sha(hf_hub_download("alice/big", "big.dat", endpoint=hub_url, token=tokens.alice,
                                cache_dir=tmp_path / "dl")) == sha


def test_xet_uploaded_files_download_through_plain_http(alice_api, hub_url: str, local_store: Store, tmp_path,
                                                       tokens, no_xet) -> None:
    """An LFS-era client (HF_HUB_DISABLE_XET=1) or curl gets the bytes, reassembled by the hub as they stream."""
    import httpx
    from huggingface_hub import constants

    path, sha = _file(tmp_path / "w.dat", 10 * MB)
    constants.HF_HUB_DISABLE_XET = False
    alice_api.upload_file(path_or_fileobj=str(path), path_in_repo="w.dat",
                          repo_id=alice_api.create_repo("alice/mixed").split("/", 3)[-1])
    constants.HF_HUB_DISABLE_XET = True
    assert XetStorage(local_store).file_by_sha256(sha) is not None
    assert _sha(hf_hub_download("alice/mixed", "w.dat", endpoint=hub_url, token=tokens.alice,
                                cache_dir=tmp_path / "lfs-dl")) == sha
    ranged = httpx.get(f"{hub_url}/alice/mixed/resolve/main/w.dat", headers={"Range": "bytes=5000000-5000099"})
    assert ranged.status_code == 206 and ranged.content == path.read_bytes()[5_000_000:5_000_100]


def test_lfs_uploaded_files_download_through_a_xet_client(alice_api, hub_url: str, local_store: Store, tmp_path,
                                                         tokens, no_xet) -> None:
    """Files that came through LFS (or fmhub's own client) carry no Xet hash: a Xet client downloads them
    with a plain GET."""
    import httpx
    from huggingface_hub import constants

    path, sha = _file(tmp_path / "w.dat", 10 * MB)
    alice_api.create_repo("alice/lfs")
    alice_api.upload_file(path_or_fileobj=str(path), path_in_repo="w.dat", repo_id="alice/lfs")
    assert local_store.blobs.exists(sha) and XetStorage(local_store).file_by_sha256(sha) is None
    head = httpx.head(f"{hub_url}/alice/lfs/resolve/main/w.dat")
    assert "x-xet-hash" not in head.headers
    constants.HF_HUB_DISABLE_XET = False
    assert _sha(hf_hub_download("alice/lfs", "w.dat", endpoint=hub_url, cache_dir=tmp_path / "xet-dl",
                                token=False)) == sha


def test_a_second_version_sends_and_stores_only_changed_chunks(alice_api, hub_url: str, local_store: Store,
                                                              tmp_path, tokens) -> None:
    path, _ = _file(tmp_path / "v1.dat", 16 * MB)
    alice_api.create_repo("alice/dedup")
    alice_api.upload_file(path_or_fileobj=str(path), path_in_repo="model.dat", repo_id="alice/dedup")
    stored_v1 = _blob_bytes(local_store)
    data = bytearray(path.read_bytes())
    for offset in (1 * MB, 7 * MB + 12345, 13 * MB):  # three small edits, as a fine-tune changes a few tensors
        data[offset:offset + 4096] = os.urandom(4096)
    v2 = tmp_path / "v2.dat"
    v2.write_bytes(bytes(data))
    alice_api.upload_file(path_or_fileobj=str(v2), path_in_repo="model.dat", repo_id="alice/dedup")
    added = _blob_bytes(local_store) - stored_v1
    # Three edited regions touch a handful of ~64 KiB chunks (a chunk boundary may move once or twice): far
    # below the 16 MiB a whole-file upload would add.
    assert added < 0.05 * len(data), added
    assert _sha(hf_hub_download("alice/dedup", "model.dat", endpoint=hub_url, token=tokens.alice,
                                cache_dir=tmp_path / "dl")) == hashlib.sha256(data).hexdigest()
    old = local_store.list_commits("alice/dedup")[1].oid
    assert _sha(hf_hub_download("alice/dedup", "model.dat", revision=old, endpoint=hub_url, token=tokens.alice,
                                cache_dir=tmp_path / "dl-old")) == _sha(path)


def test_global_dedup_answers_are_understood_by_the_client(alice_api, hub_url: str, local_store: Store,
                                                          tmp_path, tokens, monkeypatch) -> None:
    """A second machine (an empty client cache) uploading a file the hub mostly has: the client asks the hub
    (GET /v1/chunks/…), reads its answer shard and sends only what is new."""
    from huggingface_hub.utils import _xet

    path, _ = _file(tmp_path / "v1.dat", 16 * MB)
    alice_api.create_repo("alice/shared")
    alice_api.upload_file(path_or_fileobj=str(path), path_in_repo="a.dat", repo_id="alice/shared")
    stored = _blob_bytes(local_store)
    answers: list[bool] = []
    original = XetStorage.dedup_answer

    def counted(self, *args, **kwargs):
        answer = original(self, *args, **kwargs)
        answers.append(answer is not None)
        return answer

    monkeypatch.setattr(XetStorage, "dedup_answer", counted)  # the live server runs in this process
    monkeypatch.setenv("HF_XET_CACHE", str(tmp_path / "second-machine"))
    _xet._GLOBAL_XET_HOLDER._session = None  # noqa: SLF001 - a fresh client, knowing nothing
    data = path.read_bytes() + os.urandom(MB)  # the same weights, one more MiB
    v2 = tmp_path / "v2.dat"
    v2.write_bytes(data)
    alice_api.upload_file(path_or_fileobj=str(v2), path_in_repo="b.dat", repo_id="alice/shared")
    assert any(answers)  # the client asked, and the hub answered with a shard
    added = _blob_bytes(local_store) - stored
    assert added < 4 * MB, added  # the new MiB (and a chunk or two around the seam), not 17 MiB
    assert _sha(hf_hub_download("alice/shared", "b.dat", endpoint=hub_url, token=tokens.alice,
                                cache_dir=tmp_path / "dl")) == hashlib.sha256(data).hexdigest()


def test_reupload_after_deleting_the_repo_uses_the_uploaders_grant(alice_api, hub_url: str, tokens,
                                                                    local_store: Store, tmp_path) -> None:
    """The client remembers uploaded xorbs (its shard cache) and names them without sending them again. After
    the repo they went to is deleted, the same user's next upload of the same bytes must still work (issue 28,
    measured with the client's own suite); another user sharing that cache must not borrow them."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    path, digest = _file(tmp_path / "w.bin.parquet", 2 * MB)
    alice_api.create_repo("alice/first", private=True)
    alice_api.upload_file(path_or_fileobj=str(path), path_in_repo="w.parquet", repo_id="alice/first")
    alice_api.delete_repo("alice/first")
    alice_api.create_repo("alice/second", private=True)  # private: carol cannot read the bytes anywhere
    alice_api.upload_file(path_or_fileobj=str(path), path_in_repo="w.parquet", repo_id="alice/second")
    assert _sha(hf_hub_download("alice/second", "w.parquet", endpoint=hub_url, token=tokens.alice,
                                cache_dir=tmp_path / "dl")) == digest
    carol = HfApi(endpoint=hub_url, token=tokens.carol)
    carol.create_repo("carol/borrowed")
    with pytest.raises((HfHubHTTPError, RuntimeError, OSError)):  # same client cache, but carol never had the bytes
        carol.upload_file(path_or_fileobj=str(path), path_in_repo="w.parquet", repo_id="carol/borrowed")
    assert {e.path for e in local_store.list_files("carol/borrowed")} == {".gitattributes"}
