"""Encryption at rest: no plaintext on disk or in the bucket, tampering detected, ranges, rotation, migration."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest
from sqlalchemy import func, select

from fmhub.cli import main as cli
from fmhub.constants import Settings
from fmhub.errors import EncryptionKeyError, TamperedBlobError
from fmhub.store import AddFile, Database, Store, open_store
from fmhub.store import _schema as t
from fmhub.store.encryption import EncryptedBlobStore, encryption_status, migrate_to_encrypted, rewrap_keys
from fmhub.store.keys import LocalKeyFile, create_key_file
from fmhub.store.maintenance import fsck

#: Text no ciphertext may contain; repeated so a clear copy of any part of it would be found.
MARKER = b"PATIENT-RECORD-4711 confidential weights "


def _encrypted_settings(settings: Settings, tmp_path: Path) -> Settings:
    key_file = tmp_path / "keys.json"
    if not key_file.exists():
        create_key_file(key_file)
    return dataclasses.replace(settings, encryption_key_file=key_file)


@pytest.fixture
def encrypted_store(backend_urls: Settings, tmp_path: Path):
    config = _encrypted_settings(backend_urls, tmp_path)
    db = Database(config.db_url)
    db.upgrade()
    db.dispose()
    with open_store(config=config) as store:
        yield store, config


def _add(store: Store, repo_id: str, path: str, data: bytes):
    blob = store.put_bytes(data)
    return store.commit(repo_id, [AddFile(path, blob.sha256, blob.size)], title=f"add {path}", author="t")


def _stored_objects(store: Store) -> list[bytes]:
    """Every object the backend holds, as raw bytes (the folder's files, or the bucket's objects)."""
    inner = store.blobs.inner  # type: ignore[attr-defined]
    if inner.url.startswith("file:"):
        return [p.read_bytes() for p in Path(inner.root).rglob("*") if p.is_file()]
    client = inner._client
    keys = [o["Key"] for page in client.get_paginator("list_objects_v2").paginate(Bucket=inner.bucket)
            for o in page.get("Contents", [])]
    return [client.get_object(Bucket=inner.bucket, Key=k)["Body"].read() for k in keys]


def test_no_plaintext_on_disk_or_in_the_bucket(encrypted_store) -> None:
    store, _ = encrypted_store
    data = MARKER * 70_000  # ~2.9 MB: several segments
    store.create_repo("acme/secret", private=True)
    _add(store, "acme/secret", "weights.dat", data)
    _add(store, "acme/secret", "notes.txt", MARKER)

    assert store.read_bytes("acme/secret", "weights.dat") == data
    assert store.read_bytes("acme/secret", "notes.txt") == MARKER
    objects = _stored_objects(store)
    assert objects and all(MARKER[:20] not in obj for obj in objects)
    # Names say nothing either: no object is named by the plaintext's sha256.
    assert all(hashlib.sha256(obj).hexdigest() != hashlib.sha256(data).hexdigest() for obj in objects)
    assert encryption_status(store.blobs).clear_blobs == 0
    assert fsck(store).ok


def _object_path(store: Store, sha256: str) -> Path:
    key = store.blobs.key_of(sha256)
    inner = store.blobs.inner
    return Path(inner.root) / key.object_sha256[:2] / key.object_sha256[2:4] / key.object_sha256


def _flip(path: Path, offset: int) -> None:
    os.chmod(path, 0o644)
    raw = bytearray(path.read_bytes())
    raw[offset] ^= 0x01
    path.write_bytes(bytes(raw))


def test_a_tampered_segment_is_detected_and_nothing_of_it_is_served(tmp_path: Path) -> None:
    config = _encrypted_settings(Settings.from_env({"FMHUB_HOME": str(tmp_path / "home")}), tmp_path)
    with open_store(config=config) as store:
        store.create_repo("acme/m")
        data = os.urandom(3 * 1024 * 1024 + 100)
        _add(store, "acme/m", "w.dat", data)
        sha = hashlib.sha256(data).hexdigest()
        path = _object_path(store, sha)
        _flip(path, 16 + 1024 * 1024 + 16 + 5)  # a byte of segment 1

        chunks = store.blobs.iter_chunks(sha)  # segment 0 is fine: the first bytes come
        with pytest.raises(TamperedBlobError) as caught:
            b"".join(chunks)
        assert caught.value.segment == 1 and sha in str(caught.value)

        _flip(path, 16 + 5)  # now segment 0 too: the read fails before yielding anything
        with pytest.raises(TamperedBlobError):
            store.blobs.iter_chunks(sha)
        problems = fsck(store).problems
        assert [(p.kind, p.subject) for p in problems] == [("corrupt-blob", sha)]


def test_truncated_or_extended_objects_are_detected(tmp_path: Path) -> None:
    config = _encrypted_settings(Settings.from_env({"FMHUB_HOME": str(tmp_path / "home")}), tmp_path)
    with open_store(config=config) as store:
        store.create_repo("acme/m")
        a, b = os.urandom(2 * 1024 * 1024), os.urandom(100)
        _add(store, "acme/m", "a.dat", a)
        _add(store, "acme/m", "b.dat", b)
        sha_a, sha_b = hashlib.sha256(a).hexdigest(), hashlib.sha256(b).hexdigest()
        path_a, path_b = _object_path(store, sha_a), _object_path(store, sha_b)
        os.chmod(path_a, 0o644)
        path_a.write_bytes(path_a.read_bytes()[:-10])  # truncated
        os.chmod(path_b, 0o644)
        path_b.write_bytes(path_b.read_bytes() + b"x")  # extended
        with pytest.raises(TamperedBlobError):
            b"".join(store.blobs.iter_chunks(sha_a))
        assert store.read_bytes("acme/m", "b.dat") == b  # reads stop at the recorded end...
        assert {p.subject for p in fsck(store).problems} == {sha_a, sha_b}  # ...fsck sees both


@pytest.mark.parametrize("size", [0, 1, 63, 64, 65, 640, 1000])
def test_every_range_decrypts_exactly(tmp_path: Path, size: int) -> None:
    config = Settings.from_env({"FMHUB_HOME": str(tmp_path / "home")})
    key_file = tmp_path / "k.json"
    create_key_file(key_file)
    with open_store(config=config) as plain:
        store = EncryptedBlobStore(plain.blobs.inner, plain.db, LocalKeyFile(key_file), segment_size=64)
        data = os.urandom(size)
        info = store.put_stream(io.BytesIO(data))
        assert info.created and store.size(info.sha256) == size
        assert b"".join(store.iter_chunks(info.sha256)) == data
        rng = random.Random(size)
        for _ in range(60):
            start = rng.randrange(0, size + 1)
            end = rng.randrange(start, size + 2)
            got = b"".join(store.iter_chunks(info.sha256, start, end, chunk_size=rng.choice([1, 7, 64, 1000])))
            assert got == data[start:end], (start, end)
        again = store.put_stream(io.BytesIO(data))  # dedup: the same content is stored once
        assert not again.created
        with plain.db.read() as conn:
            assert conn.execute(select(func.count()).select_from(t.blob_keys)).scalar() == 1


def test_rotation_rewraps_keys_and_keeps_every_file_readable(tmp_path: Path, monkeypatch) -> None:
    home, key_file = tmp_path / "home", tmp_path / "keys.json"
    monkeypatch.setenv("FMHUB_HOME", str(home))
    assert cli(["encryption", "init", str(key_file)]) == 0
    assert key_file.stat().st_mode & 0o777 == 0o600
    monkeypatch.setenv("FMHUB_ENCRYPTION_KEY_FILE", str(key_file))
    files = {f"f{i}.dat": os.urandom(1000 + i) for i in range(5)}
    config = Settings.from_env(dict(os.environ))
    with open_store(config=config) as store:
        store.create_repo("acme/m")
        for path, data in files.items():
            _add(store, "acme/m", path, data)
        old = store.blobs.keys.current_key_id

    assert cli(["encryption", "rotate", "--retire"]) == 0
    with open_store(config=config) as store:
        new = store.blobs.keys.current_key_id
        assert new != old and store.blobs.keys.key_ids() == [new]
        assert set(encryption_status(store.blobs).by_key) == {new}
        for path, data in files.items():
            assert store.read_bytes("acme/m", path) == data
        assert fsck(store).ok


def test_a_server_still_on_the_old_key_picks_up_the_rotation(tmp_path: Path) -> None:
    config = _encrypted_settings(Settings.from_env({"FMHUB_HOME": str(tmp_path / "home")}), tmp_path)
    with open_store(config=config) as server, open_store(config=config) as admin:
        server.create_repo("acme/m")
        _add(server, "acme/m", "a.dat", b"before")
        new = admin.blobs.keys.add_key()
        rewrap_keys(admin.blobs)
        time.sleep(0.01)
        _add(server, "acme/m", "b.dat", b"after the rotation")  # wrapped with the new key, not the old one
        assert set(encryption_status(admin.blobs).by_key) == {new}


def test_a_missing_or_wrong_key_is_an_error_naming_the_fix(tmp_path: Path, monkeypatch, capsys) -> None:
    home = tmp_path / "home"
    config = _encrypted_settings(Settings.from_env({"FMHUB_HOME": str(home)}), tmp_path)
    with open_store(config=config) as store:
        store.create_repo("acme/m")
        _add(store, "acme/m", "w.dat", b"weights")

    without = dataclasses.replace(config, encryption_key_file=None)
    with open_store(config=without) as store:
        with pytest.raises(EncryptionKeyError, match="no key-encryption key") as caught:
            store.read_bytes("acme/m", "w.dat")
        assert "FMHUB_ENCRYPTION_KEY_FILE" in caught.value.hint
        with pytest.raises(EncryptionKeyError):  # nor does it write in clear beside encrypted blobs
            store.put_bytes(b"new")

    other = tmp_path / "other.json"
    create_key_file(other)
    with open_store(config=dataclasses.replace(config, encryption_key_file=other)) as store:
        with pytest.raises(EncryptionKeyError, match="does not hold"):
            store.read_bytes("acme/m", "w.dat")

    os.chmod(config.encryption_key_file, 0o644)
    with pytest.raises(EncryptionKeyError, match="chmod 600"):
        open_store(config=config)
    os.chmod(config.encryption_key_file, 0o600)

    monkeypatch.setenv("FMHUB_HOME", str(home))
    monkeypatch.delenv("FMHUB_ENCRYPTION_KEY_FILE", raising=False)
    assert cli(["download", "acme/m", "--local-dir", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "FMHUB_ENCRYPTION_KEY_FILE" in err and "Traceback" not in err
    key_material = config.encryption_key_file.read_text()
    assert key_material.split('"keys"')[1][10:40] not in err


def _clear_store_with_files(home: Path, count: int, size: int) -> dict[str, bytes]:
    files = {f"part-{i:03d}.dat": os.urandom(size) + MARKER for i in range(count)}
    with open_store(config=Settings.from_env({"FMHUB_HOME": str(home)})) as store:
        store.create_repo("acme/big")
        blobs = [store.put_bytes(data) for data in files.values()]
        store.commit("acme/big", [AddFile(p, b.sha256, b.size) for p, b in zip(files, blobs)], title="add",
                     author="t")
    return files


def test_migration_survives_a_crash_at_each_step_and_a_rerun_completes(tmp_path: Path) -> None:
    home = tmp_path / "home"
    files = _clear_store_with_files(home, 6, 5000)
    config = _encrypted_settings(Settings.from_env({"FMHUB_HOME": str(home)}), tmp_path)

    class Crash(BaseException):
        pass

    with open_store(config=config) as store:
        blobs = store.blobs
        real_delete = blobs.inner.delete
        calls = {"n": 0}

        def crash_on_second_delete(sha256: str) -> None:  # after a blob's row is committed, before its clear copy goes
            calls["n"] += 1
            if calls["n"] == 2:
                raise Crash
            real_delete(sha256)

        blobs.inner.delete = crash_on_second_delete
        with pytest.raises(Crash):
            migrate_to_encrypted(blobs)
        blobs.inner.delete = real_delete
        for path, data in files.items():  # every file readable mid-way
            assert store.read_bytes("acme/big", path) == data

        real_write = blobs.db.write

        def crash_before_the_row():  # after the ciphertext object is written, before its row
            raise Crash

        blobs.db.write = crash_before_the_row
        with pytest.raises(Crash):
            migrate_to_encrypted(blobs)
        blobs.db.write = real_write

        migrate_to_encrypted(blobs)
        assert encryption_status(blobs).clear_blobs == 0
        for path, data in files.items():
            assert store.read_bytes("acme/big", path) == data
        report = fsck(store)
        assert report.ok
        # The ciphertext written before the crash, never recorded, is a leftover that gc removes.
        assert [w for w in report.warnings if "never recorded" in w] != []
        assert blobs.clean_temporary(0, dry_run=True)[0] == 1 and blobs.clean_temporary(0)[0] == 1
        assert fsck(store).warnings == []
    assert all(MARKER[:20] not in p.read_bytes() for p in (home / "blobs").rglob("*") if p.is_file())


def test_kill_9_during_migration_then_rerun(tmp_path: Path) -> None:
    home = tmp_path / "home"
    files = _clear_store_with_files(home, 40, 2_000_000)
    config = _encrypted_settings(Settings.from_env({"FMHUB_HOME": str(home)}), tmp_path)
    env = {**os.environ, "FMHUB_HOME": str(home), "FMHUB_ENCRYPTION_KEY_FILE": str(config.encryption_key_file)}
    command = [sys.executable, "-m", "fmhub", "encryption", "migrate"]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    db = Database(config.db_url)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        with db.read() as conn:
            if conn.execute(select(func.count()).select_from(t.blob_keys)).scalar() >= 3:
                break
        time.sleep(0.01)
    killed = proc.poll() is None
    if killed:
        proc.send_signal(signal.SIGKILL)
    proc.wait()
    db.dispose()
    with open_store(config=config) as store:
        for path, data in files.items():  # readable right after the kill
            assert store.read_bytes("acme/big", path) == data
    assert subprocess.run(command, env=env, capture_output=True).returncode == 0
    with open_store(config=config) as store:
        assert encryption_status(store.blobs).clear_blobs == 0
        for path, data in files.items():
            assert store.read_bytes("acme/big", path) == data
        assert fsck(store).ok
    assert killed, "the migration finished before it could be killed: make the store bigger"


def test_s3_server_side_encryption_is_passed_through(s3_endpoint: str, s3_blob_url: str, tmp_path: Path) -> None:
    config = Settings(home=tmp_path, db_url=f"sqlite:///{tmp_path / 'db.sqlite'}", blob_url=s3_blob_url,
                      s3_endpoint_url=s3_endpoint, s3_sse="AES256")
    with open_store(config=config) as store:
        info = store.put_bytes(b"x" * 100)
        inner = store.blobs.inner
        head = boto3.client("s3", endpoint_url=s3_endpoint).head_object(Bucket=inner.bucket,
                                                                        Key=inner._key(info.sha256))
        assert head["ServerSideEncryption"] == "AES256"
