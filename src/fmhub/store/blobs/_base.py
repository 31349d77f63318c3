"""The blob store interface: immutable, content-addressed bytes keyed by their sha256."""

from __future__ import annotations

import abc
import hashlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from fmhub.errors import BlobNotFoundError, IntegrityError, InvalidInputError

__all__ = ["BlobStore", "BlobInfo", "StoredBlob", "CHUNK_SIZE", "Progress", "check_sha256", "hash_file", "copy_hashing"]

#: Read/write unit for streaming; large enough for throughput, small enough for constant memory.
CHUNK_SIZE = 4 * 1024 * 1024

#: Called with the number of bytes just processed (for progress bars).
Progress = Callable[[int], None]

_SHA256 = re.compile(r"[0-9a-f]{64}")


def check_sha256(value: object) -> str:
    """Validate a lowercase hex sha256 digest and return it."""
    if not isinstance(value, str) or not _SHA256.fullmatch(value):
        raise InvalidInputError(f"invalid sha256 {value!r}", hint="expected 64 lowercase hex characters")
    return value


@dataclass(frozen=True)
class BlobInfo:
    """The result of a put: the digest, the size, and whether these bytes were new to the store."""

    sha256: str
    size: int
    created: bool


@dataclass(frozen=True)
class StoredBlob:
    """One blob as listed by :meth:`BlobStore.iter_blobs`; ``mtime`` is a POSIX timestamp."""

    sha256: str
    size: int
    mtime: float


def hash_file(path: Path, progress: Progress | None = None) -> tuple[str, int]:
    """Stream a file through sha256 in constant memory; returns (hex digest, size)."""
    digest = hashlib.sha256()
    size = 0
    buffer = bytearray(CHUNK_SIZE)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buffer):
            digest.update(view[:n])
            size += n
            if progress:
                progress(n)
    return digest.hexdigest(), size


def copy_hashing(src: BinaryIO, dst: BinaryIO, progress: Progress | None = None) -> tuple[str, int]:
    """Copy ``src`` to ``dst`` in chunks, hashing on the way; returns (hex digest, size)."""
    digest = hashlib.sha256()
    size = 0
    readinto = getattr(src, "readinto", None)
    if readinto is not None:
        buffer = bytearray(CHUNK_SIZE)
        view = memoryview(buffer)
        while n := readinto(buffer):
            chunk = view[:n]
            digest.update(chunk)
            dst.write(chunk)
            size += n
            if progress:
                progress(n)
    else:
        while chunk := src.read(CHUNK_SIZE):
            digest.update(chunk)
            dst.write(chunk)
            size += len(chunk)
            if progress:
                progress(len(chunk))
    return digest.hexdigest(), size


def verify_expected(sha256: str, size: int, expected_sha256: str | None, expected_size: int | None) -> None:
    """Raise :class:`IntegrityError` when the bytes received are not the bytes declared."""
    if expected_sha256 is not None and sha256 != expected_sha256:
        raise IntegrityError(f"sha256 mismatch: declared {expected_sha256}, received {sha256}",
                             expected=expected_sha256, actual=sha256)
    if expected_size is not None and size != expected_size:
        raise IntegrityError(f"size mismatch: declared {expected_size} bytes, received {size}",
                             expected=str(expected_size), actual=str(size))


class BlobStore(abc.ABC):
    """Immutable bytes keyed by sha256.

    A blob becomes visible only once complete and verified; writers of the same content never
    conflict (both succeed, one copy remains). Implementations choose a URI scheme and register it in
    :mod:`fmhub.store.blobs`.
    """

    #: The URI this store was opened from (``file:///...``, ``s3://bucket/prefix``).
    url: str

    @abc.abstractmethod
    def exists(self, sha256: str) -> bool: ...

    @abc.abstractmethod
    def size(self, sha256: str) -> int:
        """Size in bytes. Raises BlobNotFoundError."""

    def put_file(self, path: Path, *, expected_sha256: str | None = None, expected_size: int | None = None,
                 progress: Progress | None = None) -> BlobInfo:
        """Store a local file. Content already present is hashed but not written again.

        When the caller declares both ``expected_sha256`` and ``expected_size`` it vouches for them:
        if that blob already exists the file is not read at all; otherwise the bytes written are
        verified against the claim before they become visible.
        """
        path = Path(path)
        if expected_sha256 is not None and expected_size is not None:
            sha256, size = check_sha256(expected_sha256), expected_size
        else:
            # Hash first: content already stored costs one local read and no write (dedup).
            sha256, size = hash_file(path)
            verify_expected(sha256, size, expected_sha256, expected_size)
        if self._holds(sha256, size):
            if progress:
                progress(size)
            return BlobInfo(sha256, size, created=False)
        with open(path, "rb", buffering=0) as src:
            # The write re-hashes, so a file changed since it was hashed is caught, not stored.
            return self._write(src, expected_sha256=sha256, expected_size=size, progress=progress)

    def put_stream(self, stream: BinaryIO, *, expected_sha256: str | None = None, expected_size: int | None = None,
                   progress: Progress | None = None) -> BlobInfo:
        """Store bytes read from a stream until EOF, in constant memory."""
        if expected_sha256 is not None:
            check_sha256(expected_sha256)
        return self._write(stream, expected_sha256=expected_sha256, expected_size=expected_size, progress=progress)

    def _holds(self, sha256: str, size: int) -> bool:
        try:
            return self.size(sha256) == size
        except BlobNotFoundError:
            return False

    @abc.abstractmethod
    def _write(self, src: BinaryIO, *, expected_sha256: str | None, expected_size: int | None,
               progress: Progress | None) -> BlobInfo:
        """Stream ``src`` into a temporary object, verify it, then make it visible at its digest, atomically.

        Identical content already visible is kept (``created=False``); nothing partial is ever visible.
        """

    def put_named(self, name: str, src: BinaryIO) -> int:
        """Store bytes under a name the caller chose (64 hex digits), atomically, without hashing them.

        For layers that authenticate their bytes themselves (encryption at rest: AES-GCM); returns the
        size. The object is visible only once complete; an existing object of that name is replaced.
        """
        raise NotImplementedError(f"{type(self).__name__} cannot store named objects")

    @abc.abstractmethod
    def iter_chunks(self, sha256: str, start: int = 0, end: int | None = None, *,
                    chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
        """Yield the bytes ``[start, end)`` of a blob in chunks of ``chunk_size``. Raises BlobNotFoundError."""

    @abc.abstractmethod
    def download(self, sha256: str, dest: BinaryIO, progress: Progress | None = None) -> int:
        """Write a whole blob into an open file as fast as the backend allows; returns bytes written."""

    def local_path(self, sha256: str) -> Path | None:
        """A local filesystem path holding the blob (for sendfile), or None for remote backends."""
        return None

    @abc.abstractmethod
    def delete(self, sha256: str) -> None:
        """Remove a blob; a missing blob is not an error."""

    @abc.abstractmethod
    def iter_blobs(self) -> Iterator[StoredBlob]:
        """Every visible blob."""

    @abc.abstractmethod
    def clean_temporary(self, older_than_seconds: float, *, dry_run: bool = False) -> tuple[int, int]:
        """Remove leftovers of interrupted writes older than the given age; returns how many and their bytes
        (``dry_run``: what would be removed, removing nothing)."""

    @abc.abstractmethod
    def temporary_files(self) -> list[str]:
        """Names of leftovers of interrupted writes (never visible as blobs)."""

    def rehash(self, sha256: str, progress: Progress | None = None) -> tuple[str, int]:
        """Read a blob back and hash it; returns (actual sha256, actual size)."""
        digest = hashlib.sha256()
        size = 0
        for chunk in self.iter_chunks(sha256):
            digest.update(chunk)
            size += len(chunk)
            if progress:
                progress(len(chunk))
        return digest.hexdigest(), size

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release clients or handles."""

    def bind_scopes(self, shas: list[str]) -> None:  # noqa: B027 - optional hook
        """Told after these blobs were recorded for a repo (an upload grant, a commit, a repo moved): encryption at
        rest re-wraps their data keys for the namespaces holding them. Nothing to do for plain stores."""
