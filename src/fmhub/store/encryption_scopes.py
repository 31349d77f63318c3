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
its repos (the LFS upload grant), so a blob is re-wrapped before the commit that uses it. New blobs are written
wrapped by the store-wide key, then re-wrapped by :func:`sync_scopes` when recorded for a repo (upload grant,
commit, a repo moved to another namespace); a crash in between leaves a store-wide copy that the next
``fmhub encryption key create`` or ``revoke`` sweep of that namespace corrects. Xet xorbs (chunks that files of
any repo may share) stay under the store-wide key.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import delete, insert, select, union
from sqlalchemy.exc import IntegrityError as DBIntegrityError

from fmhub.errors import EncryptionKeyError
from fmhub.store import _schema as t
from fmhub.store.keys import LocalKeyFile
from fmhub.store.paths import validate_repo_id

if TYPE_CHECKING:
    from fmhub.store.encryption import EncryptedBlobStore

__all__ = ["SyncReport", "Revocation", "sync_scopes", "namespace_blobs", "holding_namespaces", "create_namespace_key",
           "revoke_namespace_key"]


@dataclass
class SyncReport:
    wrapped: int = 0  # wrapped copies added
    dropped: int = 0  # wrapped copies removed (their scope holds the blob no more)
    unreadable: int = 0  # blobs no usable key wraps (revoked): nothing to re-wrap them from


def holding_namespaces(conn, sha256: str) -> set[str]:
    """The namespaces (lower case) whose repos hold the blob: a commit names it, or it was uploaded to one."""
    in_trees = (select(t.repos.c.namespace)
                .join(t.commits, t.commits.c.repo_pk == t.repos.c.pk)
                .join(t.tree_entries, t.tree_entries.c.tree_id == t.commits.c.tree_id)
                .where(t.tree_entries.c.blob_sha256 == sha256))
    uploaded = (select(t.repos.c.namespace).join(t.lfs_uploads, t.lfs_uploads.c.repo_pk == t.repos.c.pk)
                .where(t.lfs_uploads.c.sha256 == sha256))
    return {namespace.lower() for namespace in conn.execute(union(in_trees, uploaded)).scalars()}


def namespace_blobs(store: EncryptedBlobStore, namespace: str) -> set[str]:
    """Every blob a namespace's repos hold, and every blob its scope wraps."""
    namespace = namespace.lower()
    repos = select(t.repos.c.pk).where(t.repos.c.namespace.ilike(namespace))
    in_trees = (select(t.tree_entries.c.blob_sha256)
                .join(t.commits, t.commits.c.tree_id == t.tree_entries.c.tree_id)
                .where(t.commits.c.repo_pk.in_(repos)))
    uploaded = select(t.lfs_uploads.c.sha256).where(t.lfs_uploads.c.repo_pk.in_(repos))
    wrapped = select(t.blob_keys.c.sha256).where(t.blob_keys.c.scope == namespace)
    with store.db.read() as conn:
        return set(conn.execute(union(in_trees, uploaded, wrapped)).scalars())


def sync_scopes(store: EncryptedBlobStore, shas: Iterable[str], *,
                progress: Callable[[int], None] | None = None) -> SyncReport:
    """Make the scopes wrapping each blob's data key those of the namespaces holding it (module docstring).

    A blob no namespace holds (uploaded, not yet recorded) and a blob not encrypted are left as they are. A copy
    is removed only once every needed copy exists, so the blob is readable throughout.
    """
    keys = store._require_keys()
    report = SyncReport()
    for sha256 in shas:
        rows = store.rows_of(sha256)
        if progress:
            progress(1)
        if not rows:
            continue
        with store.db.read() as conn:
            holders = holding_namespaces(conn, sha256)
        if not holders:
            continue
        wanted = {namespace if keys.namespace_key_id(namespace) else "" for namespace in holders}
        have = {key.scope: key for key in rows}
        missing = wanted - set(have)
        if missing:
            source = next((key for key in rows if keys.holds(key.key_id)), None)
            if source is None:
                report.unreadable += 1
                continue
            data_key = keys.unwrap(source.key_id, source.wrapped_key, source.context())
            for scope in sorted(missing):
                key_id, wrapped = keys.wrap(data_key, source.context(), scope)
                try:
                    with store.db.write() as conn:
                        conn.execute(insert(t.blob_keys).values(
                            sha256=sha256, scope=scope, size=source.size, object_sha256=source.object_sha256,
                            segment_size=source.segment_size, key_id=key_id, wrapped_key=wrapped,
                            created_at=source.created_at))
                    report.wrapped += 1
                except DBIntegrityError:
                    pass  # a concurrent sync wrapped it first
        extra = set(have) - wanted
        if extra:
            with store.db.write() as conn:
                report.dropped += conn.execute(delete(t.blob_keys).where(
                    t.blob_keys.c.sha256 == sha256, t.blob_keys.c.scope.in_(sorted(extra)))).rowcount
        store.key_cache.forget(sha256)
    return report


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

    First every blob the namespace holds or its key wraps is re-synced, so a blob another namespace also holds is wrapped by
    that namespace's key (or the store-wide one) before this key goes; then the key material leaves the key file.
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
