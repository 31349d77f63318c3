"""Per-namespace encryption keys: each namespace's key wraps the blobs it holds; rotating or revoking one leaves
the others alone; shared blobs stay readable while any holder's key does; key rows are cached for reads."""

from __future__ import annotations

import dataclasses
import hashlib
import io
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import event, select

from fmhub.cli import main as cli
from fmhub.constants import Settings
from fmhub.errors import EncryptionKeyError
from fmhub.store import AddFile, Database, Store, open_store
from fmhub.store import _schema as t
from fmhub.store._db import _alembic_config
from fmhub.store.encryption import encryption_status, rewrap_keys
from fmhub.store.encryption_scopes import create_namespace_key, revoke_namespace_key
from fmhub.store.keys import create_key_file
from fmhub.store.maintenance import fsck
from fmhub.store.rewrite import move_repo

ONLY_ACME = b"acme's own weights " * 100
ONLY_GLOBEX = b"globex's own weights " * 100
SHARED = b"a base model both fine-tune " * 100


def _config(tmp_path: Path, db_url: str | None = None) -> Settings:
    key_file = tmp_path / "keys.json"
    if not key_file.exists():
        create_key_file(key_file)
    config = Settings.from_env({"FMHUB_HOME": str(tmp_path / "home")})
    if db_url:
        config = dataclasses.replace(config, db_url=db_url)
    return dataclasses.replace(config, encryption_key_file=key_file)


def _add(store: Store, repo_id: str, path: str, data: bytes) -> str:
    blob = store.put_bytes(data)
    store.commit(repo_id, [AddFile(path, blob.sha256, blob.size)], title=f"add {path}", author="t")
    return blob.sha256


def _scopes(store: Store, sha256: str) -> dict[str, str]:
    """scope → key id of each wrapped copy of the blob's data key."""
    with store.db.read() as conn:
        return {row.scope: row.key_id for row in conn.execute(
            select(t.blob_keys).where(t.blob_keys.c.sha256 == sha256))}


def _wrapped(store: Store, scope: str) -> dict[str, bytes]:
    with store.db.read() as conn:
        return {row.sha256: bytes(row.wrapped_key) for row in conn.execute(
            select(t.blob_keys).where(t.blob_keys.c.scope == scope))}


@pytest.fixture(params=["sqlite", "postgresql"])
def two_tenants(request: pytest.FixtureRequest, tmp_path: Path):
    """acme (key made before its uploads) and globex (key made after, by the sweep), a shared blob, and a
    namespace on the store-wide key."""
    db_url = None if request.param == "sqlite" else request.getfixturevalue("pg_url")
    config = _config(tmp_path, db_url)
    if db_url:
        db = Database(db_url)
        db.upgrade()
        db.dispose()
    with open_store(config=config) as store:
        for repo in ("acme/m", "globex/m", "public/base"):
            store.create_repo(repo)
        acme_key, _ = create_namespace_key(store.blobs, "Acme")
        shas = {"acme": _add(store, "acme/m", "own.bin", ONLY_ACME),
                "shared": _add(store, "acme/m", "base.bin", SHARED)}
        shas["globex"] = _add(store, "globex/m", "own.bin", ONLY_GLOBEX)
        _add(store, "globex/m", "base.bin", SHARED)
        globex_key, report = create_namespace_key(store.blobs, "globex")
        # Its own blob, the shared one and every repo's initial .gitattributes get a copy under its key; its own
        # blob and the shared one (held by keyed namespaces only) lose their store-wide copy.
        assert (report.wrapped, report.dropped) == (3, 2)
        yield store, config, shas, acme_key, globex_key


def test_each_namespace_key_wraps_what_it_holds(two_tenants) -> None:
    store, _, shas, acme_key, globex_key = two_tenants
    assert _scopes(store, shas["acme"]) == {"acme": acme_key}
    assert _scopes(store, shas["globex"]) == {"globex": globex_key}
    assert _scopes(store, shas["shared"]) == {"acme": acme_key, "globex": globex_key}
    status = encryption_status(store.blobs)
    assert status.encrypted_blobs == 4  # and the repos' shared .gitattributes, which public/base holds too
    assert (status.scopes["acme"].blobs, status.scopes["acme"].exclusive) == (3, 1)
    assert (status.scopes[""].blobs, status.scopes[""].exclusive) == (1, 0)
    for repo in ("acme/m", "globex/m"):
        assert store.read_bytes(repo, "base.bin") == SHARED
    assert fsck(store).ok


def test_rotating_one_namespace_leaves_the_other_untouched(two_tenants) -> None:
    store, _, shas, acme_key, globex_key = two_tenants
    globex_before = _wrapped(store, "globex")
    keys = store.blobs.keys
    new = keys.add_key("acme")
    assert rewrap_keys(store.blobs, scope="acme") == 3  # own, shared, .gitattributes
    keys.retire([acme_key])
    assert _scopes(store, shas["acme"]) == {"acme": new}
    assert _wrapped(store, "globex") == globex_before  # not one byte of the other tenant's rows changed
    assert keys.namespace_key_id("globex") == globex_key and globex_key in keys.key_ids()
    assert store.read_bytes("acme/m", "own.bin") == ONLY_ACME
    assert store.read_bytes("globex/m", "own.bin") == ONLY_GLOBEX
    assert store.read_bytes("acme/m", "base.bin") == SHARED


def test_revoking_a_namespace_key_shreds_only_its_own_blobs(two_tenants) -> None:
    store, config, shas, acme_key, _ = two_tenants
    # public/base holds the shared blob too: after revocation it is readable through the store-wide key.
    blob = store.put_bytes(SHARED)
    store.commit("public/base", [AddFile("base.bin", blob.sha256, blob.size)], title="add", author="t")
    assert set(_scopes(store, shas["shared"])) == {"", "acme", "globex"}
    globex_before = _wrapped(store, "globex")

    done = revoke_namespace_key(store.blobs, "acme")
    assert (done.key_ids, done.shredded, done.kept) == ([acme_key], 1, 2)  # kept: shared, .gitattributes
    assert _wrapped(store, "globex") == globex_before
    with pytest.raises(EncryptionKeyError, match="revoked") as caught:
        store.read_bytes("acme/m", "own.bin")
    assert "crypto-shredding" in caught.value.hint
    assert store.read_bytes("acme/m", "base.bin") == SHARED  # another namespace holds it
    assert store.read_bytes("globex/m", "own.bin") == ONLY_GLOBEX
    assert store.read_bytes("public/base", "base.bin") == SHARED
    report = fsck(store)  # shredded on purpose is not damage, but it is said
    assert report.ok and [w for w in report.warnings if shas["acme"] in w and "revoked" in w]

    # In a fresh process too (nothing cached), and the key material is gone from the file.
    with open_store(config=config) as again:
        with pytest.raises(EncryptionKeyError, match="revoked"):
            again.read_bytes("acme/m", "own.bin")
        assert acme_key not in config.encryption_key_file.read_text().split('"revoked"')[0]
        # acme's later uploads use the store-wide key; the same bytes uploaded again are readable again.
        sha = _add(again, "acme/m", "own-again.bin", ONLY_ACME)
        assert sha == shas["acme"] and set(_scopes(again, sha)) == {""}
        assert again.read_bytes("acme/m", "own-again.bin") == ONLY_ACME
        assert fsck(again).ok


def test_uploads_and_moves_rewrap_for_the_namespace_that_holds_the_blob(two_tenants) -> None:
    store, _, _, acme_key, _ = two_tenants
    blob = store.put_bytes(b"uploaded, not committed yet")
    assert set(_scopes(store, blob.sha256)) == {""}
    store.record_upload("acme/m", blob.sha256)  # the LFS upload grant: acme holds it from now on
    assert _scopes(store, blob.sha256) == {"acme": acme_key}

    store.create_repo("acme/moving")
    sha = _add(store, "acme/moving", "x.bin", b"moves to the store-wide namespace")
    assert set(_scopes(store, sha)) == {"acme"}
    move_repo(store, "acme/moving", "public/moved")
    assert set(_scopes(store, sha)) == {""}
    assert store.read_bytes("public/moved", "x.bin") == b"moves to the store-wide namespace"


def _count_key_queries(store: Store) -> list[str]:
    seen: list[str] = []

    @event.listens_for(store.db.engine, "before_cursor_execute")
    def _record(conn, cursor, statement, *args) -> None:
        if "blob_keys" in statement:
            seen.append(statement)

    return seen


def test_key_rows_are_cached_for_reads_and_invalidated_on_rotation(tmp_path: Path) -> None:
    config = _config(tmp_path)
    with open_store(config=config) as store, open_store(config=config) as admin:
        store.create_repo("acme/m")
        _add(store, "acme/m", "w.bin", b"weights " * 1000)
        _, entry = store.get_entry("acme/m", "w.bin")
        store.blobs.key_cache.clear()
        queries = _count_key_queries(store)

        def download() -> bytes:  # what the HF file route does: local_path, then the byte stream
            assert store.blobs.local_path(entry.blob_sha256) is None
            return b"".join(store.iter_file(entry))

        assert download() == b"weights " * 1000
        assert len(queries) == 1  # once for local_path; iter_chunks found the rows cached
        download()
        download()
        assert len(queries) == 1

        # A rotation in this process forgets the rows it re-wrapped.
        store.blobs.keys.add_key()
        rewrap_keys(store.blobs)
        queries.clear()
        download()
        assert len([q for q in queries if q.lstrip().upper().startswith("SELECT")]) == 1

        # Another process rotates and retires the key this one has cached: the read looks again, once.
        old = store.blobs.keys.current_key_id
        admin.blobs.keys.add_key()
        rewrap_keys(admin.blobs)
        admin.blobs.keys.retire([old])
        queries.clear()
        assert download() == b"weights " * 1000
        assert len(queries) == 1
        download()
        assert len(queries) == 1


def test_the_key_cache_is_bounded(tmp_path: Path) -> None:
    config = _config(tmp_path)
    with open_store(config=config) as store:
        store.blobs.key_cache._size = 3
        store.create_repo("acme/m")
        for i in range(6):
            _add(store, "acme/m", f"{i}.bin", f"file {i}".encode())
        for i in range(6):
            assert store.read_bytes("acme/m", f"{i}.bin") == f"file {i}".encode()
        assert len(store.blobs.key_cache) == 3


def test_migration_0014_keeps_encrypted_blobs_readable_both_ways(tmp_path: Path) -> None:
    config = _config(tmp_path)
    with open_store(config=config) as store:
        store.create_repo("acme/m")
        _add(store, "acme/m", "w.bin", b"before the migration")
        create_namespace_key(store.blobs, "acme")
        _add(store, "acme/m", "v.bin", b"wrapped by acme")
        _add(store, "acme/m", "u.bin", b"wrapped by acme only")
    db = Database(config.db_url)
    with db.engine.begin() as conn:
        command.downgrade(_alembic_config(conn), "0011")
    with db.engine.begin() as conn:
        command.upgrade(_alembic_config(conn), "head")
    db.dispose()
    with open_store(config=config) as store:
        for path, data in {"w.bin": b"before the migration", "v.bin": b"wrapped by acme"}.items():
            assert store.read_bytes("acme/m", path) == data
        assert fsck(store).ok


def test_cli_namespace_keys(tmp_path: Path, monkeypatch, capsys) -> None:
    config = _config(tmp_path)
    monkeypatch.setenv("FMHUB_HOME", str(config.home))
    monkeypatch.setenv("FMHUB_ENCRYPTION_KEY_FILE", str(config.encryption_key_file))
    with open_store(config=config) as store:
        store.create_repo("acme/m")
        store.create_repo("globex/m")
        _add(store, "acme/m", "own.bin", ONLY_ACME)
        _add(store, "globex/m", "own.bin", ONLY_GLOBEX)

    assert cli(["encryption", "key", "create", "--namespace", "acme"]) == 0
    assert "2 data keys wrapped" in capsys.readouterr().out  # its file and its .gitattributes
    assert cli(["encryption", "key", "create", "--namespace", "acme"]) == 0  # a rerun keeps the key
    assert "already has key" in capsys.readouterr().out
    assert cli(["encryption", "key", "create", "--namespace", "no/such"]) == 2
    assert "--namespace" in capsys.readouterr().err
    assert cli(["encryption", "rotate", "--namespace", "acme", "--retire"]) == 0
    assert "for namespace acme; re-wrapped 2 data keys; retired" in capsys.readouterr().out
    assert cli(["encryption", "status"]) == 0
    out = capsys.readouterr().out
    assert "namespace acme" in out and "1 only under it" in out
    assert cli(["encryption", "key", "revoke", "--namespace", "acme", "--yes"]) == 0
    assert "1 blobs" in capsys.readouterr().out
    assert cli(["encryption", "status"]) == 0
    assert "unreadable" in capsys.readouterr().out
    assert cli(["download", "acme/m", "--local-dir", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "revoked" in err and "Traceback" not in err
    assert cli(["download", "globex/m", "--local-dir", str(tmp_path / "out2")]) == 0
    assert (tmp_path / "out2" / "own.bin").read_bytes() == ONLY_GLOBEX


@pytest.mark.parametrize("size", [0, 1, 64, 65, 200, 640])
def test_the_encrypting_reader_gives_the_same_object_however_it_is_read(size: int, monkeypatch) -> None:
    from fmhub.store import encryption

    monkeypatch.setattr(encryption.secrets, "token_bytes", lambda n: b"\x07" * n)
    data, key = bytes(range(256)) * 3, b"k" * 32
    data = data[:size]

    def reader():
        return encryption._EncryptingReader(io.BufferedReader(io.BytesIO(data)), key, 64, None)

    whole = reader().read()
    for piece in (1, 7, 80, 81, 4096):  # smaller than, equal to, larger than a sealed segment (64 + 16)
        pieces, r = [], reader()
        while chunk := r.read(piece):
            assert len(chunk) <= piece
            pieces.append(chunk)
        assert b"".join(pieces) == whole
        pieces, r, buffer = [], reader(), bytearray(piece)
        while n := r.readinto(buffer):
            pieces.append(bytes(buffer[:n]))
        assert b"".join(pieces) == whole
        assert r.hexdigest() == hashlib.sha256(data).hexdigest() and r.size == size
    assert len(whole) == encryption._HEADER.size + size + max(1, -(-size // 64)) * 16


def test_a_server_with_cached_key_rows_honours_a_revocation_made_elsewhere(tmp_path: Path) -> None:
    config = _config(tmp_path)
    with open_store(config=config) as server, open_store(config=config) as admin:
        server.create_repo("acme/m")
        create_namespace_key(admin.blobs, "acme")
        blob = server.put_bytes(ONLY_ACME)  # store-wide until recorded for acme
        assert b"".join(server.blobs.iter_chunks(blob.sha256)) == ONLY_ACME  # the server caches its [""] row
        admin.record_upload("acme/m", blob.sha256)  # admin re-wraps it for acme and drops the store-wide row
        assert set(_scopes(admin, blob.sha256)) == {"acme"}
        revoke_namespace_key(admin.blobs, "acme")
        with pytest.raises(EncryptionKeyError, match="revoked"):  # not read through its stale store-wide row
            b"".join(server.blobs.iter_chunks(blob.sha256))
