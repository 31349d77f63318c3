"""Xorbs (spec: ``xorb.md``): a sequence of chunks, each an 8-byte header then its (compressed) bytes.

Header: ``u8 version (0) | u24 LE compressed size | u8 scheme | u24 LE uncompressed size``. Schemes: 0 none,
1 LZ4 (frame format), 2 byte grouping by 4 then LZ4. A chunk holds at most 128 KiB uncompressed; a
serialized xorb at most 64 MiB. Some clients append a footer (ident ``XETBLOB``, ending with its u32
length); it carries nothing the server needs, and it is checked for shape only.

:class:`XorbValidator` parses a xorb as its bytes stream past (constant memory: at most one chunk is
buffered), decompresses and hashes every chunk, and at the end checks the Merkle root against the hash
the client named. :func:`iter_decoded` reads chunks back from stored bytes.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

import lz4.frame

from fmhub.errors import PayloadTooLargeError, XetObjectError
from fmhub.xet._hashes import chunk_hash, to_hex, xorb_hash

__all__ = ["ChunkInfo", "XorbValidator", "ValidatingReader", "decode_chunk", "iter_decoded", "HEADER_BYTES",
           "MAX_XORB_BYTES", "MAX_CHUNK_BYTES"]

HEADER_BYTES = 8
MAX_CHUNK_BYTES = 128 * 1024
#: The spec's limit on a serialized xorb, plus room for an optional footer.
MAX_XORB_BYTES = 64 * 1024 * 1024 + 1024 * 1024
_NONE, _LZ4, _BG4_LZ4 = 0, 1, 2
_FOOTER_IDENT = b"XETBLOB"
# A compressed chunk may be a little larger than its data (incompressible input); anything far larger is garbage.
_MAX_COMPRESSED = MAX_CHUNK_BYTES + 64 * 1024


@dataclass(frozen=True)
class ChunkInfo:
    """One chunk of a xorb: its hash, its bytes ``[byte_start, byte_end)`` in the serialized xorb (header
    included) and its uncompressed size."""

    hash: bytes
    byte_start: int
    byte_end: int
    size: int


def _ungroup4(data: bytes) -> bytes:
    """Undo byte grouping: groups of every 4th byte (the first ``n % 4`` groups one byte longer) → interleaved."""
    n = len(data)
    out = bytearray(n)
    base, extra = divmod(n, 4)
    offset = 0
    for i in range(4):  # extended-slice assignment: a C loop, no per-byte Python
        length = base + (1 if i < extra else 0)
        out[i::4] = data[offset:offset + length]
        offset += length
    return bytes(out)


def decode_chunk(scheme: int, payload: bytes | memoryview, size: int) -> bytes:
    """A chunk's uncompressed bytes; raises :class:`XetObjectError` if they are not ``size`` bytes."""
    try:
        if scheme == _NONE:
            data = bytes(payload)
        elif scheme in (_LZ4, _BG4_LZ4):
            data = lz4.frame.decompress(payload)
            if scheme == _BG4_LZ4 and len(data) == size:
                data = _ungroup4(data)
        else:
            raise XetObjectError(f"unknown chunk compression scheme {scheme}", hint="use 0 (none), 1 (LZ4) or 2")
    except RuntimeError as exc:  # lz4's error for a corrupt frame
        raise XetObjectError(f"a chunk does not decompress: {exc}") from None
    if len(data) != size:
        raise XetObjectError(f"a chunk decompresses to {len(data)} bytes, its header says {size}")
    return data


def _header(buffer: bytes | bytearray | memoryview, at: int) -> tuple[int, int, int]:
    """(compressed size, scheme, uncompressed size) of the chunk header at ``at``."""
    if buffer[at] != 0:
        raise XetObjectError(f"chunk header version {buffer[at]} at byte {at} is not 0")
    compressed = int.from_bytes(buffer[at + 1:at + 4], "little")
    scheme = buffer[at + 4]
    size = int.from_bytes(buffer[at + 5:at + 8], "little")
    if size == 0 or size > MAX_CHUNK_BYTES or compressed == 0 or compressed > _MAX_COMPRESSED:
        raise XetObjectError(f"chunk at byte {at} declares {compressed} compressed and {size} uncompressed bytes",
                             hint=f"chunks hold 1 to {MAX_CHUNK_BYTES} bytes")
    return compressed, scheme, size


class XorbValidator:
    """Feed a serialized xorb in pieces; :meth:`finish` checks it and returns its chunks.

    Args:
        expected: the raw xorb hash the client named (the upload URL's hash).
    """

    def __init__(self, expected: bytes) -> None:
        self._expected = expected
        self._pending = bytearray()
        self._offset = 0  # position in the xorb of self._pending[0]
        self._footer = False
        self.chunks: list[ChunkInfo] = []

    def feed(self, data: bytes | memoryview) -> None:
        self._pending += data
        if self._footer:
            return
        pending, at = self._pending, 0
        while len(pending) - at >= HEADER_BYTES:
            if pending[at] == _FOOTER_IDENT[0]:
                self._footer = True
                break
            compressed, scheme, size = _header(pending, at)
            end = at + HEADER_BYTES + compressed
            if end > len(pending):
                break
            payload = memoryview(pending)[at + HEADER_BYTES:end]
            try:
                data_hash = chunk_hash(decode_chunk(scheme, payload, size))
            finally:
                payload.release()
            self.chunks.append(ChunkInfo(data_hash, self._offset + at, self._offset + end, size))
            at = end
        del pending[:at]  # once per feed: a deletion per chunk would move the buffer ~16 times per MB
        self._offset += at

    def finish(self) -> list[ChunkInfo]:
        if self._footer:
            self._check_footer(bytes(self._pending))
        elif self._pending:
            raise XetObjectError(f"the xorb ends inside a chunk ({len(self._pending)} bytes left over)",
                                 hint="the upload was truncated")
        if not self.chunks:
            raise XetObjectError("the xorb holds no chunk")
        actual = xorb_hash([(c.hash, c.size) for c in self.chunks])
        if actual != self._expected:
            raise XetObjectError(f"the xorb's chunks hash to {to_hex(actual)}, not {to_hex(self._expected)}",
                                 hint="the xorb was corrupted in transit; upload it again")
        return self.chunks

    @staticmethod
    def _check_footer(footer: bytes) -> None:
        if not footer.startswith(_FOOTER_IDENT) or len(footer) < len(_FOOTER_IDENT) + 4 or \
                int.from_bytes(footer[-4:], "little") != len(footer) - 4:
            raise XetObjectError("the xorb's trailing bytes are neither a chunk nor a well-formed footer")


class ValidatingReader(io.RawIOBase):
    """A stream over ``src`` that validates the xorb its bytes form while they are read through it.

    The blob store reads it until EOF; a bad xorb raises before EOF is returned, so the store never makes
    the bytes visible.
    """

    def __init__(self, src: BinaryIO, expected: bytes, limit: int = MAX_XORB_BYTES) -> None:
        self._src = src
        self._limit = limit
        self.validator = XorbValidator(expected)
        self.received = 0
        self.chunks: list[ChunkInfo] | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        n = self._src.readinto(buffer)
        if not n:
            self.chunks = self.validator.finish()
            return 0
        self.received += n
        if self.received > self._limit:
            raise PayloadTooLargeError(f"a xorb is over {self._limit} bytes", hint="xorbs hold at most 64 MiB")
        view = memoryview(buffer)[:n]
        self.validator.feed(view)
        view.release()
        return n


def iter_decoded(pieces: Iterable[bytes], first_chunk: int, sizes: list[int]) -> Iterator[bytes]:
    """Decode consecutive chunks from the stored bytes of a chunk range (``pieces`` start at a header).

    ``sizes`` are the chunks' uncompressed sizes as indexed at upload; a stored xorb that no longer
    matches them (corrupted on disk) raises rather than serving wrong bytes.
    """
    pending = bytearray()
    index = 0
    for piece in pieces:
        pending += piece
        at = 0
        while index < len(sizes) and len(pending) - at >= HEADER_BYTES:
            compressed, scheme, size = _header(pending, at)
            end = at + HEADER_BYTES + compressed
            if end > len(pending):
                break
            if size != sizes[index]:
                raise XetObjectError(f"stored chunk {first_chunk + index} is {size} bytes, indexed as {sizes[index]}")
            yield decode_chunk(scheme, bytes(pending[at + HEADER_BYTES:end]), size)
            index += 1
            at = end
        del pending[:at]
    if index != len(sizes):
        raise XetObjectError(f"stored xorb ended after {index} of {len(sizes)} chunks")
