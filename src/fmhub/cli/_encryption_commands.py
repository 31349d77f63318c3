"""``fmhub encryption``: encryption at rest of the store's blobs (key file, status, migration, key rotation)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fmhub.cli._common import LateProgress, console, human_size, opened_store
from fmhub.constants import ENV_ENCRYPTION_KEY_FILE
from fmhub.errors import EncryptionKeyError
from fmhub.store import Store
from fmhub.store.encryption import EncryptedBlobStore, encryption_status, migrate_to_encrypted, rewrap_keys
from fmhub.store.keys import LocalKeyFile, create_key_file

encryption_app = typer.Typer(
    help="Encryption at rest: every blob AES-256-GCM encrypted with its own data key, wrapped by a key-encryption "
         f"key from the key file ${ENV_ENCRYPTION_KEY_FILE} names. Local only: acts on the store FMHUB_DB_URL / "
         "FMHUB_BLOB_URL / FMHUB_HOME name.",
    no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(encryption_app, name="encryption")


def _encrypted(store: Store) -> EncryptedBlobStore:
    blobs = store.blobs
    assert isinstance(blobs, EncryptedBlobStore)  # open_store always wraps
    return blobs


def _require_key(blobs: EncryptedBlobStore) -> LocalKeyFile:
    if not isinstance(blobs.keys, LocalKeyFile):
        raise EncryptionKeyError(f"{ENV_ENCRYPTION_KEY_FILE} is not set",
                                 hint=f"create a key with `fmhub encryption init PATH`, then export {ENV_ENCRYPTION_KEY_FILE}=PATH")
    return blobs.keys


@encryption_app.command("init")
def init_command(
    key_file: Annotated[Path, typer.Argument(help="Where to create the key file (mode 0600). Keep a backup of it "
                                                  "apart from the store: without it the blobs cannot be read.")],
) -> None:
    """Create a key file holding one new random 256-bit key-encryption key."""
    key_id = create_key_file(key_file)
    console.print(f"created {key_file} (key {key_id}, mode 0600)", highlight=False)
    console.print(f"next: export {ENV_ENCRYPTION_KEY_FILE}={key_file.expanduser().resolve()} — new blobs are then "
                  "encrypted; `fmhub encryption migrate` encrypts those already stored", highlight=False)


@encryption_app.command("status")
def status_command() -> None:
    """How many blobs are encrypted (per key) and how many are still stored in clear."""
    with opened_store() as store:
        blobs = _encrypted(store)
        status = encryption_status(blobs)
        key = blobs.keys.name if blobs.keys else f"none ({ENV_ENCRYPTION_KEY_FILE} is not set)"
    console.print(f"key file: {key}", highlight=False)
    console.print(f"encrypted: {status.encrypted_blobs} blobs ({human_size(status.encrypted_bytes)})", highlight=False)
    for key_id, count in sorted(status.by_key.items()):
        console.print(f"  wrapped with {key_id}: {count}", highlight=False)
    console.print(f"in clear: {status.clear_blobs} blobs ({human_size(status.clear_bytes)})"
                  + (" — run `fmhub encryption migrate`" if status.clear_blobs else ""), highlight=False)


@encryption_app.command("migrate")
def migrate_command() -> None:
    """Encrypt every blob still stored in clear. Resumable: stop it at any point and run it again; every blob
    stays readable throughout."""
    with opened_store() as store, LateProgress("encrypting blobs") as bar:
        blobs = _encrypted(store)
        _require_key(blobs)
        count, size = migrate_to_encrypted(blobs, progress=bar.advance, on_total=bar.start)
    console.print(f"encrypted {count} blobs ({human_size(size)}); none left in clear", highlight=False)


@encryption_app.command("rotate")
def rotate_command(
    retire: Annotated[bool, typer.Option("--retire", help="Afterwards, remove the old keys from the key file "
                                                          "(back it up first: older backups of the store need them).")]
    = False,
) -> None:
    """Add a new key-encryption key and re-wrap every data key with it (rows in the database, not the blobs).
    Resumable: a rerun re-wraps what is left with the current key."""
    with opened_store() as store:
        blobs = _encrypted(store)
        keys = _require_key(blobs)
        old = keys.key_ids()
        new = keys.add_key()
        count = rewrap_keys(blobs)
        if retire:
            count += rewrap_keys(blobs)  # what servers still on the old key wrote meanwhile
            still = {k: n for k, n in encryption_status(blobs).by_key.items() if k != new}
            if still:
                raise EncryptionKeyError(f"{sum(still.values())} data keys are still wrapped with {', '.join(still)}",
                                         hint="run `fmhub encryption rotate --retire` again once every server has "
                                              "picked up the new key (they re-read the key file when it changes)")
            keys.retire(old)
    console.print(f"new key {new}; re-wrapped {count} data keys"
                  + (f"; retired {', '.join(old)}" if retire else f"; old keys kept in {keys.path}"), highlight=False)
