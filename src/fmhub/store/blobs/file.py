"""``file://`` blob store: ``<root>/ab/cd/<sha256>``, written crash-safely.

A write goes to a unique temporary file under ``<root>/tmp/``, is fsynced, renamed into place and the
directory fsynced, so a crash leaves either nothing visible or the complete, verified blob.
"""

from __future__ import annotations

import io
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote, urlparse

from fmhub.errors import BlobNotFoundError, ConfigError
from fmhub.store.blobs._base import (
    CHUNK_SIZE,
    BlobInfo,
    BlobStore,
    Progress,
    StoredBlob,
    check_sha256,
    copy_hashing,
    verify_expected,
)

__all__ = ["FileBlobStore", "fsync_dir"]

_HEX = frozenset("0123456789abcdef")


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FileBlobStore(BlobStore):
    """Blobs in a local folder (the embedded default)."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).expanduser().resolve()
        self.url = self.root.as_uri()
        self._tmp = self.root / "tmp"
        self._tmp.mkdir(parents=True, exist_ok=True)

    @classmethod
    def from_url(cls, url: str, **_: object) -> FileBlobStore:
        parsed = urlparse(url)
        if parsed.netloc not in ("", "localhost") or not parsed.path:
            raise ConfigError(f"invalid file blob URL {url!r}", hint="use file:///absolute/path")
        return cls(unquote(parsed.path))

    def _path(self, sha256: str) -> Path:
        check_sha256(sha256)
        return self.root / sha256[:2] / sha256[2:4] / sha256

    # -- reads ----------------------------------------------------------------------------------

    def exists(self, sha256: str) -> bool:
        return self._path(sha256).is_file()

    def size(self, sha256: str) -> int:
        try:
            return self._path(sha256).stat().st_size
        except FileNotFoundError:
            raise BlobNotFoundError(sha256) from None

    def local_path(self, sha256: str) -> Path | None:
        return self._path(sha256)

    def iter_chunks(self, sha256: str, start: int = 0, end: int | None = None, *,
                    chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
        try:
            f = open(self._path(sha256), "rb", buffering=0)
        except FileNotFoundError:
            raise BlobNotFoundError(sha256) from None
        return self._read_range(f, start, end, chunk_size)

    @staticmethod
    def _read_range(f: BinaryIO, start: int, end: int | None, chunk_size: int) -> Iterator[bytes]:
        with f:
            f.seek(start)
            remaining = None if end is None else max(0, end - start)
            while remaining is None or remaining > 0:
                chunk = f.read(chunk_size if remaining is None else min(chunk_size, remaining))
                if not chunk:
                    return
                if remaining is not None:
                    remaining -= len(chunk)
                yield chunk

    def download(self, sha256: str, dest: BinaryIO, progress: Progress | None = None) -> int:
        try:
            src = open(self._path(sha256), "rb")
        except FileNotFoundError:
            raise BlobNotFoundError(sha256) from None
        with src:
            try:
                dest_fd = dest.fileno()
            except (AttributeError, io.UnsupportedOperation):  # an in-memory or wrapped destination
                copied = 0
                while chunk := src.read(CHUNK_SIZE):
                    dest.write(chunk)
                    copied += len(chunk)
                    if progress:
                        progress(len(chunk))
                return copied
            size = os.fstat(src.fileno()).st_size
            dest.flush()
            offset = 0
            # copy_file_range/sendfile keep the bytes in the kernel: no Python-level copy.
            while offset < size:
                n = os.sendfile(dest_fd, src.fileno(), offset, min(size - offset, 64 * CHUNK_SIZE))
                if n == 0:
                    break
                offset += n
                if progress:
                    progress(n)
        return offset

    def iter_blobs(self) -> Iterator[StoredBlob]:
        for level1 in sorted(self.root.iterdir()):
            if len(level1.name) != 2 or not set(level1.name) <= _HEX or not level1.is_dir():
                continue
            for level2 in sorted(level1.iterdir()):
                if not level2.is_dir():
                    continue
                for entry in os.scandir(level2):
                    name = entry.name
                    if len(name) == 64 and set(name) <= _HEX and name.startswith(level1.name + level2.name):
                        st = entry.stat()
                        yield StoredBlob(name, st.st_size, st.st_mtime)

    # -- writes ---------------------------------------------------------------------------------

    def _write(self, src: BinaryIO, *, expected_sha256: str | None, expected_size: int | None,
               progress: Progress | None) -> BlobInfo:
        fd, tmp_name = tempfile.mkstemp(dir=self._tmp, prefix="upload-", suffix=".part")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                sha256, size = copy_hashing(src, out, progress)
                out.flush()
                os.fsync(out.fileno())
            verify_expected(sha256, size, expected_sha256, expected_size)
            final = self._path(sha256)
            if final.is_file():
                tmp.unlink()
                return BlobInfo(sha256, size, created=False)
            created_dirs = not final.parent.is_dir()
            final.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(tmp, 0o444)  # immutable once visible
            os.replace(tmp, final)  # atomic; a concurrent writer of the same bytes replaces identical content
            fsync_dir(final.parent)
            if created_dirs:
                fsync_dir(final.parent.parent)
                fsync_dir(self.root)
            return BlobInfo(sha256, size, created=True)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def put_named(self, name: str, src: BinaryIO) -> int:
        fd, tmp_name = tempfile.mkstemp(dir=self._tmp, prefix="object-", suffix=".part")
        tmp = Path(tmp_name)
        try:
            size = 0
            with os.fdopen(fd, "wb") as out:
                readinto = getattr(src, "readinto", None)
                if readinto is not None:  # one reused buffer: the encrypting reader seals straight into it
                    buffer = bytearray(CHUNK_SIZE)
                    view = memoryview(buffer)
                    while n := readinto(buffer):
                        out.write(view[:n])
                        size += n
                else:
                    while chunk := src.read(CHUNK_SIZE):
                        out.write(chunk)
                        size += len(chunk)
                out.flush()
                os.fsync(out.fileno())
            final = self._path(name)
            final.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(tmp, 0o444)
            os.replace(tmp, final)
            fsync_dir(final.parent)
            return size
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def delete(self, sha256: str) -> None:
        path = self._path(sha256)
        try:
            path.unlink()
        except FileNotFoundError:
            return
        fsync_dir(path.parent)

    def clean_temporary(self, older_than_seconds: float, *, dry_run: bool = False) -> tuple[int, int]:
        cutoff = time.time() - older_than_seconds
        removed = freed = 0
        for entry in os.scandir(self._tmp):
            try:
                info = entry.stat()
                if info.st_mtime < cutoff:
                    if not dry_run:
                        os.unlink(entry.path)
                    removed += 1
                    freed += info.st_size
            except FileNotFoundError:
                continue
        return removed, freed

    def temporary_files(self) -> list[str]:
        return sorted(e.name for e in os.scandir(self._tmp))
