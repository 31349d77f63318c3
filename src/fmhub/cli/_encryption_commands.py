"""``fmhub encryption``: encryption at rest of the store's blobs (key file, status, migration, key rotation)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fmhub.cli._common import LateProgress, console, human_size, opened_store
from fmhub.constants import ENV_ENCRYPTION_KEY_FILE
from fmhub.errors import EncryptionKeyError, InvalidInputError, InvalidRepoIdError
from fmhub.store import Store
from fmhub.store.encryption import EncryptedBlobStore, encryption_status, migrate_to_encrypted, rewrap_keys
from fmhub.store.encryption_scopes import create_namespace_key, revoke_namespace_key
from fmhub.store.keys import LocalKeyFile, create_key_file
from fmhub.store.paths import validate_repo_id

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
    """How many blobs are encrypted (per key, and per namespace with a key of its own) and how many are still
    stored in clear."""
    with opened_store() as store:
        blobs = _encrypted(store)
        status = encryption_status(blobs)
        key = blobs.keys.name if blobs.keys else f"none ({ENV_ENCRYPTION_KEY_FILE} is not set)"
        revoked = _revoked(blobs)
    console.print(f"key file: {key}", highlight=False)
    console.print(f"encrypted: {status.encrypted_blobs} blobs ({human_size(status.encrypted_bytes)})", highlight=False)
    for scope in status.scopes.values():
        label = "store-wide key" if not scope.scope else f"namespace {scope.scope}"
        current = f"current {scope.current_key}" if scope.current_key else "key revoked"
        exclusive = ""
        if scope.scope:
            exclusive = f", {scope.exclusive} only under it ({human_size(scope.exclusive_bytes)})"
            if scope.current_key is None:
                exclusive += ": unreadable"
        console.print(f"  {label} ({current}): {scope.blobs} data keys{exclusive}", highlight=False)
        for key_id, count in sorted(scope.by_key.items()):
            note = f" ({revoked[key_id]})" if key_id in revoked else ""
            console.print(f"    wrapped with {key_id}: {count}{note}", highlight=False)
    console.print(f"in clear: {status.clear_blobs} blobs ({human_size(status.clear_bytes)})"
                  + (" — run `fmhub encryption migrate`" if status.clear_blobs else ""), highlight=False)


def _revoked(blobs: EncryptedBlobStore) -> dict[str, str]:
    if blobs.keys is None:
        return {}
    return {key_id: why for key_id in {key.key_id for key in blobs.key_rows()}
            if (why := blobs.keys.revocation(key_id)) is not None}


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
    namespace: Annotated[str | None, typer.Option("--namespace", help="Rotate this namespace's own key (made with "
                                                  "`fmhub encryption key create`) instead of the store-wide key; "
                                                  "no other namespace's rows are touched.")] = None,
    retire: Annotated[bool, typer.Option("--retire", help="Afterwards, remove the old keys from the key file "
                                                          "(back it up first: older backups of the store need them).")]
    = False,
) -> None:
    """Add a new key-encryption key and re-wrap every data key of its scope with it (rows in the database, not
    the blobs). Resumable: a rerun re-wraps what is left with the current key.

    (The issue named it `fmhub keys rotate`; `fmhub keys` manages the signing keys, so rotation lives here.)"""
    with opened_store() as store:
        blobs = _encrypted(store)
        keys = _require_key(blobs)
        scope = _scope(namespace)
        if scope and keys.namespace_key_id(scope) is None:
            raise EncryptionKeyError(f"namespace {scope!r} has no encryption key of its own",
                                     hint=f"create one with: fmhub encryption key create --namespace {scope}")
        old = [key_id for key_id in keys.key_ids() if keys.owner(key_id) == scope]
        new = keys.add_key(scope)
        count = rewrap_keys(blobs, scope=scope)
        if retire:
            count += rewrap_keys(blobs, scope=scope)  # what servers still on the old key wrote meanwhile
            still = {k: n for k, n in encryption_status(blobs).scopes[scope].by_key.items() if k != new}
            if still:
                raise EncryptionKeyError(f"{sum(still.values())} data keys are still wrapped with {', '.join(still)}",
                                         hint="run `fmhub encryption rotate --retire` again once every server has "
                                              "picked up the new key (they re-read the key file when it changes)")
            keys.retire(old)
    console.print(f"new key {new}" + (f" for namespace {scope}" if scope else "") + f"; re-wrapped {count} data keys"
                  + (f"; retired {', '.join(old)}" if retire else f"; old keys kept in {keys.path}"), highlight=False)


def _scope(namespace: str | None) -> str:
    if namespace is None:
        return ""
    try:
        return validate_repo_id(f"{namespace}/x").split("/")[0].lower()
    except InvalidRepoIdError:
        raise InvalidInputError(f"--namespace {namespace!r} is not a user or organization name",
                                hint="letters, digits, '.', '_' and '-', as in a repo id's first part") from None


key_app = typer.Typer(
    help="Per-namespace key-encryption keys: a user or organization whose blobs are wrapped by a key of its own, "
         "so it can be rotated or revoked (crypto-shredding) without touching any other namespace.",
    no_args_is_help=True)
encryption_app.add_typer(key_app, name="key")


@key_app.command("create")
def key_create_command(
    namespace: Annotated[str, typer.Option("--namespace", help="The user or organization that gets a key of its "
                                                              "own.")],
) -> None:
    """Give a namespace its own key-encryption key, and re-wrap the blobs its repos hold with it. A blob other
    namespaces hold too stays wrapped by their keys as well, so it stays readable to them. Resumable: a rerun
    keeps the key and finishes the re-wrapping."""
    scope = _scope(namespace)
    with opened_store() as store, LateProgress(f"re-wrapping {scope}'s blobs") as bar:
        blobs = _encrypted(store)
        existed = _require_key(blobs).namespace_key_id(scope)
        key_id, report = create_namespace_key(blobs, scope, progress=bar.advance, on_total=bar.start)
    if existed:
        console.print(f"namespace {scope} already has key {key_id} (rotate it with: fmhub encryption rotate "
                      f"--namespace {scope}); its blobs were checked", highlight=False)
    console.print(f"namespace {scope}: key {key_id}; {report.wrapped} data keys wrapped with it, "
                  f"{report.dropped} store-wide copies dropped", highlight=False)
    if report.unreadable:
        console.print(f"{report.unreadable} blobs could not be re-wrapped: no key that wraps them is held",
                      highlight=False)


@key_app.command("revoke")
def key_revoke_command(
    namespace: Annotated[str, typer.Option("--namespace", help="The namespace whose keys are destroyed.")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Destroy a namespace's key-encryption keys (crypto-shredding): the blobs only its repos hold become
    unreadable for good (unless a backup of the key file is restored); blobs other namespaces hold too stay
    readable through their keys. Its later uploads use the store-wide key."""
    scope = _scope(namespace)
    if not yes:
        typer.confirm(f"destroy namespace {scope}'s encryption keys? The blobs only its repos hold become "
                      "unreadable for good", abort=True)
    with opened_store() as store:
        blobs = _encrypted(store)
        _require_key(blobs)
        done = revoke_namespace_key(blobs, scope)
    console.print(f"revoked {', '.join(done.key_ids)} of namespace {scope}: {done.shredded} blobs "
                  f"({human_size(done.shredded_bytes)}) are now unreadable; {done.kept} shared with other namespaces "
                  "stay readable", highlight=False)
