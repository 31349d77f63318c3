"""Per-namespace encryption keys: which key scopes wrap a blob's data key, and keeping that true.

A namespace (a user or an organization) may have a key-encryption key of its own
(``fmhub encryption key create --namespace ORG``). Blobs stay content-addressed and stored once: a blob keeps
one ciphertext object and one data key, and ``blob_keys`` holds one wrapped copy of that data key per *key
scope* that needs it — the scope of every namespace whose repos hold the blob (its own key's scope if it has
one, else the store-wide scope ``""``). So

- a blob only ``acme``'s repos hold is wrapped by ``acme``'s key alone: revoking that key (crypto-shredding)
  makes it unreadable, and rotating it re-wraps only ``acme``'s rows;
- a blob ``acme`` and ``globex`` both hold is wrapped by both keys and stays readable while either holds,
  which is the only choice that keeps it readable to the tenant whose key was not revoked (the bytes are
  theirs too).

A blob is "held" by a namespace when a commit of one of its repos names it, or when it was uploaded to one of
its repos (the LFS upload grant), so a blob is re-wrapped before the commit that uses it. New blobs are
written wrapped by the store-wide key, then re-wrapped by :func:`fmhub.store.encryption.sync_scopes` when
recorded for a repo (upload grant, commit, a repo moved to another namespace); a crash in between leaves a
store-wide copy that the next ``fmhub encryption key create`` or ``revoke`` sweep of that namespace corrects.
Xet xorbs (chunks that files of any repo may share) stay under the store-wide key.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import func, select, union

from fmhub.errors import EncryptionKeyError
from fmhub.store import _schema as t
from fmhub.store.encryption import EncryptedBlobStore, SyncReport, sync_scopes
from fmhub.store.keys import LocalKeyFile
from fmhub.store.paths import validate_repo_id

__all__ = ["Revocation", "namespace_blobs", "create_namespace_key", "revoke_namespace_key"]


def namespace_blobs(store: EncryptedBlobStore, namespace: str) -> set[str]:
    """Every blob a namespace's repos hold, and every blob its scope wraps."""
    namespace = namespace.lower()
    repos = select(t.repos.c.pk).where(func.lower(t.repos.c.namespace) == namespace)  # not LIKE: '_' is a name char
    in_trees = (select(t.tree_entries.c.blob_sha256)
                .join(t.commits, t.commits.c.tree_id == t.tree_entries.c.tree_id)
                .where(t.commits.c.repo_pk.in_(repos)))
    uploaded = select(t.lfs_uploads.c.sha256).where(t.lfs_uploads.c.repo_pk.in_(repos))
    wrapped = select(t.blob_keys.c.sha256).where(t.blob_keys.c.scope == namespace)
    with store.db.read() as conn:
        return set(conn.execute(union(in_trees, uploaded, wrapped)).scalars())


def _local_keys(store: EncryptedBlobStore) -> LocalKeyFile:
    keys = store._require_keys()
    if not isinstance(keys, LocalKeyFile):
        raise EncryptionKeyError(f"the key provider {keys.name} manages its keys itself",
                                 hint="create, rotate and revoke namespace keys in the provider's own console")
    return keys


def _namespace(namespace: str) -> str:
    return validate_repo_id(f"{namespace}/x").split("/")[0].lower()


def create_namespace_key(store: EncryptedBlobStore, namespace: str, *,
                         progress: Callable[[int], None] | None = None,
                         on_total: Callable[[int], None] | None = None) -> tuple[str, SyncReport]:
    """Give a namespace a key-encryption key of its own and re-wrap every blob its repos hold with it (the
    store-wide copy of a blob only this namespace holds is dropped). Returns (key id, what changed).

    Rerunning after an interruption is safe: the key stays, and :func:`sync_scopes` carries on.
    """
    keys, namespace = _local_keys(store), _namespace(namespace)
    key_id = keys.namespace_key_id(namespace) or keys.create_namespace_key(namespace)
    blobs = sorted(namespace_blobs(store, namespace))
    if on_total:
        on_total(len(blobs))
    return key_id, sync_scopes(store, blobs, progress=progress)


@dataclass(frozen=True)
class Revocation:
    namespace: str
    key_ids: list[str]
    shredded: int  # blobs now unreadable: only this namespace held them
    shredded_bytes: int
    kept: int  # blobs this namespace's key wrapped that other namespaces hold too: still readable


def revoke_namespace_key(store: EncryptedBlobStore, namespace: str) -> Revocation:
    """Destroy a namespace's key-encryption keys (crypto-shredding).

    First every blob the namespace holds or its key wraps is re-synced, so a blob another namespace also holds is
    wrapped by that namespace's key (or the store-wide one) before this key goes; then the key material leaves the
    key file.
    The blobs only this namespace held become unreadable (reads name the revocation); the namespace's later
    blobs use the store-wide key, unless it is given a new key of its own.
    """
    keys, namespace = _local_keys(store), _namespace(namespace)
    if keys.namespace_key_id(namespace) is None:
        raise EncryptionKeyError(f"namespace {namespace!r} has no encryption key of its own",
                                 hint="`fmhub encryption status` lists the namespaces that have one")
    wrapped = sorted(namespace_blobs(store, namespace))  # also those a crash left under the store-wide key
    sync_scopes(store, wrapped)
    shredded = kept = shredded_bytes = 0
    with store.db.read() as conn:
        for sha256 in wrapped:
            rows = conn.execute(select(t.blob_keys.c.scope, t.blob_keys.c.size)
                                .where(t.blob_keys.c.sha256 == sha256)).all()
            if [row.scope for row in rows] == [namespace]:
                shredded += 1
                shredded_bytes += rows[0].size
            elif any(row.scope == namespace for row in rows):
                kept += 1
    key_ids = keys.revoke_namespace(namespace)
    store.key_cache.clear()
    return Revocation(namespace, key_ids, shredded, shredded_bytes, kept)
