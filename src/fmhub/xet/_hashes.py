"""The Xet protocol's hashes (spec: ``hashing.md``): chunk hashes, Merkle roots of xorbs and files,
term verification hashes, and the HMAC that protects chunk hashes in global dedup answers.

Every hash is 32 raw bytes. On the wire (URL paths, JSON) a hash is written as four little-endian u64
words, each as 16 hex digits: :func:`to_hex` and :func:`from_hex` convert.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from blake3 import blake3

from fmhub.errors import XetObjectError

__all__ = ["HASH_BYTES", "to_hex", "from_hex", "chunk_hash", "xorb_hash", "file_hash", "verification_hash",
           "keyed_hash", "ZERO_HASH"]

HASH_BYTES = 32
ZERO_HASH = bytes(HASH_BYTES)

# The keys the spec fixes (hashing.md): data (chunk) hashes, internal Merkle nodes, term verification.
_DATA_KEY = bytes([102, 151, 245, 119, 91, 149, 80, 222, 49, 53, 203, 172, 165, 151, 24, 28, 157, 228, 33, 16,
                   155, 235, 43, 88, 180, 208, 176, 75, 147, 173, 242, 41])
_INTERNAL_NODE_KEY = bytes([1, 126, 197, 199, 165, 71, 41, 150, 253, 148, 102, 102, 180, 138, 2, 230, 93, 221, 83,
                            111, 55, 199, 109, 210, 248, 99, 82, 230, 74, 83, 113, 63])
_VERIFICATION_KEY = bytes([127, 24, 87, 214, 206, 86, 237, 102, 18, 127, 249, 19, 231, 165, 195, 243, 164, 205, 38,
                           213, 181, 219, 73, 230, 65, 36, 152, 127, 40, 251, 148, 195])

# A Merkle node's children: at least 2, at most 9; a group also ends after a child whose last u64 word is
# divisible by 4 (so groups average 4 children and the tree shape depends only on the hashes).
_MIN_GROUP, _MAX_GROUP, _BRANCHING = 2, 9, 4
_HEX = re.compile(r"[0-9a-f]{64}")


def to_hex(raw: bytes) -> str:
    """The wire form of a hash: each 8-byte word little-endian, printed as 16 hex digits."""
    return "".join(raw[i:i + 8][::-1].hex() for i in range(0, HASH_BYTES, 8))


def from_hex(text: str, what: str = "hash") -> bytes:
    """The raw bytes of a wire-form hash; a malformed one is a :class:`XetObjectError` (400)."""
    if not isinstance(text, str) or not _HEX.fullmatch(text):
        raise XetObjectError(f"invalid {what} {str(text)[:80]!r}", hint="expected 64 lowercase hex characters")
    raw = bytes.fromhex(text)
    return b"".join(raw[i:i + 8][::-1] for i in range(0, HASH_BYTES, 8))


def chunk_hash(data: bytes | memoryview) -> bytes:
    """The hash of one chunk's (uncompressed) bytes."""
    return blake3(data, key=_DATA_KEY).digest()


def keyed_hash(raw: bytes, key: bytes) -> bytes:
    """``HMAC(raw, key)`` as Xet defines it (a keyed BLAKE3): protects chunk hashes in dedup answers."""
    return blake3(raw, key=key).digest()


def _merge(group: Sequence[tuple[bytes, int]]) -> tuple[bytes, int]:
    text = "".join(f"{to_hex(h)} : {size}\n" for h, size in group)
    return blake3(text.encode(), key=_INTERNAL_NODE_KEY).digest(), sum(size for _, size in group)


def _cut(nodes: Sequence[tuple[bytes, int]], start: int) -> int:
    """End (exclusive) of the group that starts at ``start``."""
    remaining = len(nodes) - start
    if remaining <= _MIN_GROUP:
        return len(nodes)
    end = start + min(_MAX_GROUP, remaining)
    for i in range(start + _MIN_GROUP, end):
        if int.from_bytes(nodes[i][0][24:32], "little") % _BRANCHING == 0:
            return i + 1
    return end


def _root(leaves: Sequence[tuple[bytes, int]]) -> bytes:
    nodes = list(leaves)
    while len(nodes) > 1:
        merged, start = [], 0
        while start < len(nodes):
            end = _cut(nodes, start)
            merged.append(_merge(nodes[start:end]))
            start = end
        nodes = merged
    return nodes[0][0]


def xorb_hash(chunks: Sequence[tuple[bytes, int]]) -> bytes:
    """A xorb's hash: the Merkle root over its chunks' (hash, uncompressed size)."""
    return _root(chunks) if chunks else ZERO_HASH


def file_hash(chunks: Sequence[tuple[bytes, int]]) -> bytes:
    """A file's Xet hash: the Merkle root over all its chunks, then keyed with a zero key."""
    return keyed_hash(_root(chunks), ZERO_HASH) if chunks else ZERO_HASH


def verification_hash(chunk_hashes: Sequence[bytes]) -> bytes:
    """A term's verification hash: keyed BLAKE3 over the raw hashes of the chunks it covers."""
    return blake3(b"".join(chunk_hashes), key=_VERIFICATION_KEY).digest()
