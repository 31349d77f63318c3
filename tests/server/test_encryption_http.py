"""A hub whose blobs are encrypted at rest serves the Hugging Face protocol unchanged: uploads, downloads,
ranges; a tampered blob answers 422 with a JSON body and none of its bytes."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import httpx
import pytest

from fmhub.constants import settings
from fmhub.store import Store
from fmhub.store.keys import create_key_file

MARKER = b"ward-7-patient-notes "
PAYLOAD = MARKER * 150_000  # ~3 MB: several 1 MiB segments


@pytest.fixture(autouse=True)
def _encryption_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every store of these tests is opened with a key file (before ``local_store`` is opened)."""
    key_file = tmp_path / "keys.json"
    create_key_file(key_file)
    monkeypatch.setenv("FMHUB_ENCRYPTION_KEY_FILE", str(key_file))
    settings.cache_clear()


def test_the_hf_client_round_trips_through_an_encrypted_store(local_store: Store, alice_api, hub_url: str,
                                                              tmp_path: Path) -> None:
    from huggingface_hub import hf_hub_download

    source = tmp_path / "notes.dat"
    source.write_bytes(PAYLOAD)
    alice_api.create_repo("acme/records", private=True)
    alice_api.upload_file(path_or_fileobj=str(source), path_in_repo="notes.dat", repo_id="acme/records")
    path = hf_hub_download("acme/records", "notes.dat", endpoint=hub_url, token=alice_api.token,
                           cache_dir=tmp_path / "cache")
    assert Path(path).read_bytes() == PAYLOAD

    blob_root = Path(local_store.blobs.inner.root)
    assert not any(MARKER in p.read_bytes() for p in blob_root.rglob("*") if p.is_file())

    url = f"{hub_url}/acme/records/resolve/main/notes.dat"
    auth = {"Authorization": f"Bearer {alice_api.token}"}
    mib = 1024 * 1024
    for start, end in [(0, 9), (mib - 5, mib + 5), (2 * mib + 3, len(PAYLOAD) - 1), (123, 2 * mib + 77)]:
        part = httpx.get(url, headers={**auth, "Range": f"bytes={start}-{end}"})
        assert part.status_code == 206 and part.content == PAYLOAD[start:end + 1], (start, end)
    head = httpx.head(url, headers=auth)
    # A regular (not LFS) file: its ETag is git's blob id, as on the Hub, computed from the decrypted bytes.
    git_blob_id = hashlib.sha1(b"blob %d\0" % len(PAYLOAD) + PAYLOAD).hexdigest()
    assert head.headers["ETag"] == f'"{git_blob_id}"'
    assert int(head.headers["Content-Length"]) == len(PAYLOAD)


def test_a_tampered_blob_answers_422_and_serves_nothing(local_store: Store, alice_api, hub_url: str,
                                                        tmp_path: Path) -> None:
    source = tmp_path / "notes.dat"
    source.write_bytes(PAYLOAD)
    alice_api.create_repo("acme/records")
    alice_api.upload_file(path_or_fileobj=str(source), path_in_repo="notes.dat", repo_id="acme/records")
    key = local_store.blobs.key_of(hashlib.sha256(PAYLOAD).hexdigest())
    obj = Path(local_store.blobs.inner.root) / key.object_sha256[:2] / key.object_sha256[2:4] / key.object_sha256
    os.chmod(obj, 0o644)
    raw = bytearray(obj.read_bytes())
    raw[100] ^= 0xFF  # inside segment 0
    obj.write_bytes(bytes(raw))

    response = httpx.get(f"{hub_url}/acme/records/resolve/main/notes.dat")
    assert response.status_code == 422
    body = response.json()
    assert "failed authentication" in body["error"] and MARKER not in response.content


def test_a_revoked_namespace_key_answers_410_and_other_namespaces_still_serve(local_store: Store, alice_api,
                                                                              hub_url: str, tmp_path: Path) -> None:
    from fmhub.store.encryption_scopes import create_namespace_key, revoke_namespace_key

    create_namespace_key(local_store.blobs, "acme")
    source = tmp_path / "notes.dat"
    source.write_bytes(PAYLOAD)
    for repo in ("acme/records", "alice/records"):
        alice_api.create_repo(repo)
    alice_api.upload_file(path_or_fileobj=str(source), path_in_repo="notes.dat", repo_id="acme/records")
    alice_api.upload_file(path_or_fileobj=MARKER, path_in_repo="other.dat", repo_id="alice/records")
    auth = {"Authorization": f"Bearer {alice_api.token}"}
    acme_url = f"{hub_url}/acme/records/resolve/main/notes.dat"
    assert httpx.get(acme_url, headers=auth).content == PAYLOAD  # the server caches its key rows now

    revoke_namespace_key(local_store.blobs, "acme")
    response = httpx.get(acme_url, headers=auth)
    assert response.status_code == 410
    assert "revoked" in response.json()["error"] and MARKER not in response.content
    other = httpx.get(f"{hub_url}/alice/records/resolve/main/other.dat", headers=auth)
    assert other.status_code == 200 and other.content == MARKER
