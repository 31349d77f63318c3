"""Blob stores by URI scheme (``file://``, ``s3://``), as MLflow picks artifact repositories."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlparse

from fmhub.errors import ConfigError
from fmhub.store.blobs._base import CHUNK_SIZE, BlobInfo, BlobStore, Progress, StoredBlob, check_sha256, hash_file
from fmhub.store.blobs.file import FileBlobStore

__all__ = ["BlobStore", "BlobInfo", "StoredBlob", "FileBlobStore", "open_blob_store", "check_sha256", "hash_file",
           "Progress", "CHUNK_SIZE"]


def _open_s3(url: str, **options: object) -> BlobStore:
    from fmhub.store.blobs.s3 import S3BlobStore  # boto3 is imported only when S3 is used

    return S3BlobStore.from_url(url, **options)


_SCHEMES: dict[str, Callable[..., BlobStore]] = {
    "file": FileBlobStore.from_url,
    "s3": _open_s3,
}


def open_blob_store(url: str, **options: object) -> BlobStore:
    """Open the blob store a URI names.

    Args:
        url: ``file:///abs/path`` or ``s3://bucket/prefix``.
        options: backend options, e.g. ``s3_endpoint_url`` for S3-compatible servers.
    """
    scheme = urlparse(url).scheme
    opener = _SCHEMES.get(scheme)
    if opener is None:
        raise ConfigError(f"unsupported blob store URL {url!r}", hint=f"use one of: {', '.join(s + '://' for s in _SCHEMES)}")
    return opener(url, **options)
