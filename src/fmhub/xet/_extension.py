"""The Xet domain as a storage extension of the store: Xet files read, counted, checked and collected
through :mod:`fmhub.store.extensions`, so ``resolve``, ``fmhub download``, ``fsck`` and ``gc`` treat a file
uploaded through Xet like any other, without the store knowing Xet."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from sqlalchemy import Connection

from fmhub.store import Store
from fmhub.store.extensions import StorageExtension
from fmhub.xet._storage import XetStorage

__all__ = ["XetExtension"]


class XetExtension(StorageExtension):
    name = "xet"

    def blob_size(self, store: Store, sha256: str) -> int | None:
        found = XetStorage(store).file_by_sha256(sha256)
        return None if found is None else found.size

    def iter_blob(self, store: Store, sha256: str, start: int, end: int, chunk_size: int) -> Iterator[bytes]:
        xet = XetStorage(store)
        found = xet.file_by_sha256(sha256)
        if found is None:
            return iter(())
        return _rechunk(xet.iter_file(found, start, end), chunk_size)

    def held_blobs(self, store: Store) -> dict[str, int]:
        return XetStorage(store).held_files()

    def referenced_blobs(self, conn: Connection, candidates: Sequence[str]) -> set[str]:
        return XetStorage.referenced_blobs(conn, candidates)

    def collect(self, store: Store, *, grace_seconds: float, dry_run: bool) -> dict[str, int]:
        return XetStorage(store).collect(grace_seconds=grace_seconds, dry_run=dry_run)

    def check(self, store: Store, *, verify: bool) -> list[tuple[str, str, str]]:
        return XetStorage(store).check(verify=verify)


def _rechunk(pieces: Iterator[bytes], size: int) -> Iterator[bytes]:
    """Chunks are ~64 KiB; readers asked for ``size``-byte pieces (fewer writes, fewer thread hops)."""
    buffer = bytearray()
    for piece in pieces:
        buffer += piece
        if len(buffer) >= size:
            yield bytes(buffer)
            buffer.clear()
    if buffer:
        yield bytes(buffer)
