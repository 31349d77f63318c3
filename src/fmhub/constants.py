"""Environment variables, read in one place.

Nothing is read at import time: :func:`settings` reads the environment on first call and caches the
result, so tests (and the CLI's global options) can point fmhub elsewhere before first use.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Settings", "settings", "ENV_HOME", "ENV_DB_URL", "ENV_BLOB_URL", "ENV_ENDPOINT", "ENV_TOKEN", "ENV_USER",
           "ENV_ENCRYPTION_KEY_FILE", "ENV_SIGNING_KEY"]

ENV_HOME = "FMHUB_HOME"
ENV_DB_URL = "FMHUB_DB_URL"
ENV_BLOB_URL = "FMHUB_BLOB_URL"
ENV_ENDPOINT = "FMHUB_ENDPOINT"
ENV_TOKEN = "FMHUB_TOKEN"
ENV_S3_ENDPOINT = "FMHUB_S3_ENDPOINT_URL"
ENV_USER = "FMHUB_USER"
ENV_ENCRYPTION_KEY_FILE = "FMHUB_ENCRYPTION_KEY_FILE"
ENV_S3_SSE = "FMHUB_S3_SSE"
ENV_S3_SSE_KMS_KEY_ID = "FMHUB_S3_SSE_KMS_KEY_ID"
ENV_SIGNING_KEY = "FMHUB_SIGNING_KEY"


def _default_home() -> Path:
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "fmhub"


@dataclass(frozen=True)
class Settings:
    """Where fmhub keeps things.

    Attributes:
        home: ``$FMHUB_HOME``, default ``$XDG_DATA_HOME/fmhub`` (``~/.local/share/fmhub``).
        db_url: SQLAlchemy URL of the metadata database; default ``sqlite:///<home>/fmhub.db``.
        blob_url: URI of the blob store; default ``file://<home>/blobs``.
        s3_endpoint_url: endpoint of an S3-compatible server (MinIO, Ceph...); ``None`` for AWS.
        endpoint: URL of a remote fmhub server (used by the hub client), if any.
        token: access token for that server, if any.
        user: ``$FMHUB_USER``, the author of commits made on the embedded store (default: the login name).
        encryption_key_file: ``$FMHUB_ENCRYPTION_KEY_FILE``, the key file that encrypts blobs at rest (see
            :mod:`fmhub.store.encryption`); ``None``: blobs are written in clear.
        s3_sse, s3_sse_kms_key_id: ``$FMHUB_S3_SSE`` (``AES256`` or ``aws:kms``) and ``$FMHUB_S3_SSE_KMS_KEY_ID``,
            the bucket's own server-side encryption for S3 blob stores (with or instead of fmhub's).
        signing_key: ``$FMHUB_SIGNING_KEY``, the hub's own private key for attestations (PEM, EC P-256); default
            ``<home>/keys/hub.key``, created (mode 0600) on first use.
    """

    home: Path
    db_url: str
    blob_url: str
    s3_endpoint_url: str | None = None
    endpoint: str | None = None
    token: str | None = None
    user: str | None = None
    encryption_key_file: Path | None = None
    s3_sse: str | None = None
    s3_sse_kms_key_id: str | None = None
    signing_key: Path | None = None

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        home = Path(env.get(ENV_HOME) or _default_home()).expanduser().resolve()
        return cls(
            home=home,
            db_url=env.get(ENV_DB_URL) or f"sqlite:///{home / 'fmhub.db'}",
            blob_url=env.get(ENV_BLOB_URL) or (home / "blobs").as_uri(),
            s3_endpoint_url=env.get(ENV_S3_ENDPOINT) or None,
            endpoint=env.get(ENV_ENDPOINT) or None,
            token=env.get(ENV_TOKEN) or None,
            user=env.get(ENV_USER) or None,
            encryption_key_file=Path(env[ENV_ENCRYPTION_KEY_FILE]).expanduser() if env.get(ENV_ENCRYPTION_KEY_FILE)
            else None,
            s3_sse=env.get(ENV_S3_SSE) or None,
            s3_sse_kms_key_id=env.get(ENV_S3_SSE_KMS_KEY_ID) or None,
            signing_key=Path(env.get(ENV_SIGNING_KEY) or home / "keys" / "hub.key").expanduser(),
        )


@functools.cache
def settings() -> Settings:
    """The process-wide settings, read from the environment once."""
    return Settings.from_env()
