"""Shards (spec: ``shard.md``): the upload record of files and new xorbs, and the answer to dedup queries.

Layout: a 48-byte header (tag, version 2, footer size), the file info section (per file: a header, its
terms, one verification entry per term, a metadata extension holding the sha256; then a bookend), the
CAS info section (per xorb: a header and one entry per chunk; then a bookend), then, when the header's
footer size is not 0, lookup tables and a 200-byte footer. Every entry is 48 bytes; integers are
little-endian. An uploaded shard is read as a stream (:func:`read_shard`); a dedup answer is written by
:func:`dedup_shard`.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO

from fmhub.errors import XetObjectError

__all__ = ["Term", "FileEntry", "XorbBlock", "read_shard", "dedup_shard", "ENTRY_BYTES"]

ENTRY_BYTES = 48
_TAG = bytes([72, 70, 82, 101, 112, 111, 77, 101, 116, 97, 68, 97, 116, 97, 0, 85, 105, 103, 69, 106, 123,
              129, 87, 131, 165, 189, 217, 92, 205, 209, 74, 169])
_HEADER_VERSION, _FOOTER_VERSION, _FOOTER_BYTES = 2, 1, 200
_BOOKEND = b"\xff" * 32
_WITH_VERIFICATION, _WITH_METADATA = 1 << 31, 1 << 30
#: Limits on what one shard may declare (each entry is validated against the store, so keep them sane).
MAX_TERMS_PER_FILE = 10_000_000
MAX_CHUNKS_PER_XORB = 1_000_000


@dataclass(frozen=True)
class Term:
    """A run of chunks ``[start, end)`` of one xorb; ``size`` is their uncompressed total as the client claims."""

    xorb: bytes
    size: int
    start: int
    end: int
    verification: bytes | None = None


@dataclass(frozen=True)
class FileEntry:
    file_hash: bytes
    terms: tuple[Term, ...]
    sha256: bytes | None  # the real sha256 digest (the shard stores it word-swapped, as every hash)


@dataclass(frozen=True)
class XorbBlock:
    """A CAS info block: a xorb the shard declares new, with its chunks (hash, unpacked offset, size)."""

    xorb: bytes
    chunks: tuple[tuple[bytes, int, int], ...]
    unpacked_bytes: int
    stored_bytes: int


def _read(f: BinaryIO, n: int, what: str) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise XetObjectError(f"the shard ends inside {what}", hint="the upload was truncated")
    return data


def _swap_words(raw: bytes) -> bytes:
    """Hashes are stored as four u64 words: the sha256's bytes come back in hex order when each is reversed."""
    return b"".join(raw[i:i + 8][::-1] for i in range(0, 32, 8))


def read_shard(f: BinaryIO) -> Iterator[FileEntry | XorbBlock]:
    """Parse an uploaded shard, yielding each file entry, then each xorb block.

    Raises:
        XetObjectError: a bad tag or version, a truncated section, missing verification or metadata
            entries, or trailing bytes where none may be.
    """
    header = _read(f, ENTRY_BYTES, "its header")
    if header[:32] != _TAG:
        raise XetObjectError("not a Xet shard (wrong header tag)")
    version, footer_size = struct.unpack("<QQ", header[32:48])
    if version != _HEADER_VERSION:
        raise XetObjectError(f"shard header version {version} is not {_HEADER_VERSION}")
    if footer_size not in (0, _FOOTER_BYTES):
        raise XetObjectError(f"shard footer size {footer_size} is neither 0 nor {_FOOTER_BYTES}")
    while True:
        entry = _read(f, ENTRY_BYTES, "the file info section")
        if entry[:32] == _BOOKEND:
            break
        flags, count = struct.unpack("<II", entry[32:40])
        if not flags & _WITH_VERIFICATION or not flags & _WITH_METADATA:
            raise XetObjectError("every file of an uploaded shard needs verification and metadata entries")
        if count == 0 or count > MAX_TERMS_PER_FILE:
            raise XetObjectError(f"a file of the shard declares {count} terms")
        raw_terms = [_read(f, ENTRY_BYTES, "a file's terms") for _ in range(count)]
        verifications = [_read(f, ENTRY_BYTES, "a file's verification entries")[:32] for _ in range(count)]
        sha256 = _swap_words(_read(f, ENTRY_BYTES, "a file's metadata extension")[:32])
        terms = []
        for raw, check in zip(raw_terms, verifications, strict=True):
            _flags, size, start, end = struct.unpack("<IIII", raw[32:48])
            if end <= start or size == 0:
                raise XetObjectError(f"a term declares chunks [{start}, {end}) and {size} bytes")
            terms.append(Term(raw[:32], size, start, end, check))
        yield FileEntry(entry[:32], tuple(terms), sha256)
    while True:
        entry = _read(f, ENTRY_BYTES, "the CAS info section")
        if entry[:32] == _BOOKEND:
            break
        _flags, count, unpacked, stored = struct.unpack("<IIII", entry[32:48])
        if count == 0 or count > MAX_CHUNKS_PER_XORB:
            raise XetObjectError(f"a xorb block of the shard declares {count} chunks")
        chunks = []
        for _ in range(count):
            raw = _read(f, ENTRY_BYTES, "a xorb block")
            start, size = struct.unpack("<II", raw[32:40])
            chunks.append((raw[:32], start, size))
        yield XorbBlock(entry[:32], tuple(chunks), unpacked, stored)
    rest = f.read()
    if footer_size == 0:
        if rest:
            raise XetObjectError(f"{len(rest)} bytes follow the shard's last section, which declares no footer")
    elif len(rest) < _FOOTER_BYTES or struct.unpack("<Q", rest[-_FOOTER_BYTES:][:8])[0] != _FOOTER_VERSION:
        raise XetObjectError("the shard's footer is missing or of another version")


def _truncated(raw: bytes) -> int:
    return int.from_bytes(raw[:8], "little")


def dedup_shard(blocks: Sequence[tuple[bytes, Sequence[tuple[bytes, int, int]], int]], key: bytes,
                expiry_seconds: int) -> bytes:
    """A global dedup answer: no files, the given xorb blocks with their chunk hashes already keyed by
    ``key`` (the footer names it, so the client keys its own hashes to match), and full lookup tables.

    Args:
        blocks: per xorb, (xorb hash, [(keyed chunk hash, unpacked offset, size)], serialized size).
        key: the per-answer HMAC key.
        expiry_seconds: how long the client may keep deduplicating against this answer.
    """
    out = bytearray(_TAG + struct.pack("<QQ", _HEADER_VERSION, _FOOTER_BYTES))
    file_info_offset = len(out)
    out += _BOOKEND + bytes(16)
    xorb_info_offset = len(out)
    xorb_lookup: list[tuple[int, int]] = []
    chunk_lookup: list[tuple[int, int, int]] = []
    index = 0
    unpacked_total = stored_total = 0
    for xorb, chunks, stored in blocks:
        unpacked = sum(size for _, _, size in chunks)
        out += xorb + struct.pack("<IIII", 0, len(chunks), unpacked, stored)
        xorb_lookup.append((_truncated(xorb), index))
        for position, (chunk, start, size) in enumerate(chunks):
            out += chunk + struct.pack("<II", start, size) + bytes(8)
            chunk_lookup.append((_truncated(chunk), index, position))
        index += 1 + len(chunks)
        unpacked_total += unpacked
        stored_total += stored
    out += _BOOKEND + bytes(16)
    file_lookup_offset = xorb_lookup_offset = len(out)  # no files
    for truncated, position in sorted(xorb_lookup):
        out += struct.pack("<QI", truncated, position)
    chunk_lookup_offset = len(out)
    for truncated, position, offset in sorted(chunk_lookup):
        out += struct.pack("<QII", truncated, position, offset)
    footer_offset = len(out)
    now = int(time.time())
    out += struct.pack("<9Q", _FOOTER_VERSION, file_info_offset, xorb_info_offset, file_lookup_offset, 0,
                       xorb_lookup_offset, len(xorb_lookup), chunk_lookup_offset, len(chunk_lookup))
    out += key + struct.pack("<QQ", now, now + expiry_seconds) + bytes(48)
    out += struct.pack("<4Q", stored_total, unpacked_total, stored_total, footer_offset)
    assert len(out) - footer_offset == _FOOTER_BYTES
    return bytes(out)
