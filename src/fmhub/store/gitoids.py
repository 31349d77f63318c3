"""Git object ids of stored files: the names git (and so the Hugging Face Hub) gives to file contents.

The store names bytes by sha256; git names a file's contents by the SHA-1 of ``"blob {size}\\0" + bytes``,
and a Git LFS file by the blob id of its pointer text. The Hugging Face protocol answers these ids as the
``oid`` of tree entries and preupload answers, and the client verifies downloads against them. The
content id needs the bytes, so it is computed once per blob (streamed) and kept in ``git_blob_ids``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection

from sqlalchemy import select

from fmhub.store._schema import git_blob_ids
from fmhub.store.store import Store, _upsert

__all__ = ["git_blob_sha1", "lfs_pointer", "lfs_pointer_sha1", "content_git_sha1"]


def git_blob_sha1(data: bytes) -> str:
    """Git's blob id of ``data`` (``git hash-object``)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    """The Git LFS pointer file git stores in place of a large file (spec v1)."""
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


def lfs_pointer_sha1(sha256: str, size: int) -> str:
    """Git's blob id of an LFS file: the id of its pointer text (what ``git ls-tree`` shows)."""
    return git_blob_sha1(lfs_pointer(sha256, size))


def _stream_sha1(store: Store, sha256: str, size: int) -> str:
    digest = hashlib.sha1(b"blob %d\0" % size, usedforsecurity=False)
    for chunk in store.iter_blob(sha256):
        digest.update(chunk)
    return digest.hexdigest()


def content_git_sha1(store: Store, files: dict[str, int] | Collection[tuple[str, int]]) -> dict[str, str]:
    """Git blob ids of the contents of files given as ``{sha256: size}``; computed (streamed) and recorded
    the first time a blob is asked for, read back after that.

    Raises:
        BlobNotFoundError: a blob not yet known here is missing from the store.
    """
    wanted = dict(files) if not isinstance(files, dict) else files
    if not wanted:
        return {}
    found: dict[str, str] = {}
    keys = list(wanted)
    with store.db.read() as conn:
        for start in range(0, len(keys), 500):  # bounded IN lists (SQLite's variable limit)
            rows = conn.execute(select(git_blob_ids.c.sha256, git_blob_ids.c.git_sha1)
                                .where(git_blob_ids.c.sha256.in_(keys[start:start + 500])))
            found.update({row.sha256: row.git_sha1 for row in rows})
    missing = {sha: _stream_sha1(store, sha, wanted[sha]) for sha in keys if sha not in found}
    if missing:
        with store.db.write() as conn:
            _upsert(conn, git_blob_ids, [{"sha256": s, "git_sha1": g} for s, g in missing.items()], key="sha256")
        found.update(missing)
    return found
