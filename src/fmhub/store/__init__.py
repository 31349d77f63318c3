"""The versioned repository store: repos, commits, trees, refs and content-addressed blobs.

It knows nothing of HTTP or ML. Metadata lives behind a SQLAlchemy URL (SQLite by default,
PostgreSQL for teams), blobs behind a URI (``file://`` by default, ``s3://``). Other domains (accounts,
runs, evaluations) keep their own tables in the same database: they declare them on :data:`metadata` and
read and write them through :class:`Database`'s transactions, never through the store's tables.

Example:
    >>> from fmhub.store import open_store, AddFile
    >>> with open_store() as store:                       # $FMHUB_HOME, created on first use
    ...     store.create_repo("me/tiny-bert", exist_ok=True)
    ...     blob = store.put_bytes(b'{"hidden_size": 32}')
    ...     store.commit("me/tiny-bert", [AddFile("config.json", blob.sha256, blob.size)],
    ...                  title="Add config", author="me")
"""

from __future__ import annotations

from fmhub.constants import Settings, settings
from fmhub.store._db import Database
from fmhub.store._schema import SCHEMA_HEAD, complete_metadata, metadata
from fmhub.store.blobs import BlobInfo, BlobStore, open_blob_store
from fmhub.store.encryption import EncryptedBlobStore
from fmhub.store.keys import LocalKeyFile
from fmhub.store.objects import (
    AddFile,
    AuditEvent,
    Commit,
    CopyFile,
    DeleteFile,
    DeleteFolder,
    Operation,
    Ref,
    Repo,
    RepoRefs,
    TreeEntry,
)
from fmhub.store.paths import REPO_TYPES, validate_path, validate_ref_name, validate_repo_id, validate_repo_type
from fmhub.store.store import DEFAULT_BRANCH, Store

__all__ = [
    "open_store",
    "Store",
    "Database",
    "metadata",
    "complete_metadata",
    "SCHEMA_HEAD",
    "BlobStore",
    "BlobInfo",
    "open_blob_store",
    "Repo",
    "AuditEvent",
    "Commit",
    "TreeEntry",
    "Ref",
    "RepoRefs",
    "AddFile",
    "DeleteFile",
    "DeleteFolder",
    "CopyFile",
    "Operation",
    "DEFAULT_BRANCH",
    "REPO_TYPES",
    "validate_path",
    "validate_repo_id",
    "validate_ref_name",
    "validate_repo_type",
]


def open_store(db_url: str | None = None, blob_url: str | None = None, *, config: Settings | None = None,
               auto_upgrade: bool | None = None) -> Store:
    """Open the store the arguments (or ``FMHUB_DB_URL`` / ``FMHUB_BLOB_URL`` / ``FMHUB_HOME``) name.

    Args:
        db_url: SQLAlchemy URL of the metadata database (default: SQLite under ``$FMHUB_HOME``).
        blob_url: URI of the blob store (default: ``file://$FMHUB_HOME/blobs``).
        config: settings to take defaults from (default: read from the environment once).
        auto_upgrade: create the schema in an empty database on first use (default: SQLite only).
    """
    config = config or settings()
    options = {name: value for name, value in (("s3_endpoint_url", config.s3_endpoint_url), ("s3_sse", config.s3_sse),
                                               ("s3_sse_kms_key_id", config.s3_sse_kms_key_id)) if value}
    db = Database(db_url or config.db_url, auto_upgrade=auto_upgrade)
    blobs = open_blob_store(blob_url or config.blob_url, **options)
    keys = LocalKeyFile(config.encryption_key_file) if config.encryption_key_file else None
    # Wrapped even without a key: a store whose blobs are encrypted then says which key it needs.
    return Store(db, EncryptedBlobStore(blobs, db, keys))
