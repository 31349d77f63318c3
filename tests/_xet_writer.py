"""A minimal Xet writer for tests: what a client sends (xorbs and shards), built from the spec by hand.

It cuts fixed-size chunks (the server does not care how chunks were cut), compresses them with LZ4 and
serializes xorbs and shards exactly as ``shard.md`` and ``xorb.md`` say, so tests can send the server
well-formed objects and precisely broken ones. The real client's compatibility is tested separately.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

import lz4.frame

from fmhub.xet import chunk_hash, file_hash, to_hex, verification_hash, xorb_hash

TAG = bytes([72, 70, 82, 101, 112, 111, 77, 101, 116, 97, 68, 97, 116, 97, 0, 85, 105, 103, 69, 106, 123,
             129, 87, 131, 165, 189, 217, 92, 205, 209, 74, 169])
BOOKEND = b"\xff" * 32 + bytes(16)


@dataclass
class Xorb:
    data: bytes  # serialized
    hash: bytes
    chunks: list[tuple[bytes, int, int]]  # (chunk hash, unpacked start, size)

    @property
    def hex(self) -> str:
        return to_hex(self.hash)


@dataclass
class XetUpload:
    xorb: Xorb
    file_hash: bytes
    sha256: str
    shard: bytes

    @property
    def file_hex(self) -> str:
        return to_hex(self.file_hash)


def chunks_of(data: bytes, size: int = 64 * 1024) -> list[bytes]:
    return [data[i:i + size] for i in range(0, len(data), size)]


def chunk_bytes(piece: bytes, scheme: int = 1) -> bytes:
    payload = lz4.frame.compress(piece) if scheme == 1 else piece
    return struct.pack("<B", 0) + len(payload).to_bytes(3, "little") + struct.pack("<B", scheme) + \
        len(piece).to_bytes(3, "little") + payload


def make_xorb(pieces: list[bytes], scheme: int = 1) -> Xorb:
    chunks, offset = [], 0
    for piece in pieces:
        chunks.append((chunk_hash(piece), offset, len(piece)))
        offset += len(piece)
    return Xorb(b"".join(chunk_bytes(p, scheme) for p in pieces), xorb_hash([(h, s) for h, _, s in chunks]), chunks)


def _words(raw: bytes) -> bytes:
    return b"".join(raw[i:i + 8][::-1] for i in range(0, 32, 8))


def make_shard(files: list[tuple[bytes, list[tuple[Xorb, int, int]], str]], new_xorbs: list[Xorb],
               *, verification: bool = True) -> bytes:
    """files: (file hash, terms as (xorb, chunk start, chunk end), sha256 hex); new_xorbs: CAS blocks."""
    out = bytearray(TAG + struct.pack("<QQ", 2, 0))
    for fhash, terms, sha256 in files:
        out += fhash + struct.pack("<II", (1 << 31) | (1 << 30), len(terms)) + bytes(8)
        for xorb, start, end in terms:
            size = sum(s for _, _, s in xorb.chunks[start:end])
            out += xorb.hash + struct.pack("<IIII", 0, size, start, end)
        for xorb, start, end in terms:
            check = verification_hash([h for h, _, _ in xorb.chunks[start:end]]) if verification else bytes(32)
            out += check + bytes(16)
        out += _words(bytes.fromhex(sha256)) + bytes(16)
    out += BOOKEND
    for xorb in new_xorbs:
        unpacked = sum(s for _, _, s in xorb.chunks)
        out += xorb.hash + struct.pack("<IIII", 0, len(xorb.chunks), unpacked, len(xorb.data))
        for h, start, size in xorb.chunks:
            out += h + struct.pack("<II", start, size) + bytes(8)
    out += BOOKEND
    return bytes(out)


def file_upload(data: bytes, chunk_size: int = 64 * 1024) -> XetUpload:
    """One xorb holding the whole file, and the shard that registers the file."""
    xorb = make_xorb(chunks_of(data, chunk_size))
    fhash = file_hash([(h, s) for h, _, s in xorb.chunks])
    sha256 = hashlib.sha256(data).hexdigest()
    return XetUpload(xorb, fhash, sha256, make_shard([(fhash, [(xorb, 0, len(xorb.chunks))], sha256)], [xorb]))
