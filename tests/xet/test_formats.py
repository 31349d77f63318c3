"""Xet formats: hashes in their wire form, xorb validation while streaming, shard parsing and writing."""

from __future__ import annotations

import io
import os
import struct

import lz4.frame
import pytest
from _xet_writer import BOOKEND, TAG, chunk_bytes, chunks_of, file_upload, make_shard, make_xorb

from fmhub.errors import XetObjectError
from fmhub.xet import from_hex, to_hex
from fmhub.xet._hashes import keyed_hash
from fmhub.xet._shard import FileEntry, XorbBlock, dedup_shard, read_shard
from fmhub.xet._xorb import ValidatingReader, XorbValidator, _ungroup4, decode_chunk


def test_hash_wire_form_reverses_each_word() -> None:
    raw = bytes(range(32))
    assert to_hex(raw) == "07060504030201000f0e0d0c0b0a090817161514131211101f1e1d1c1b1a1918"
    assert from_hex(to_hex(raw)) == raw
    for bad in ("xyz", "A" * 64, "0" * 63):
        with pytest.raises(XetObjectError):
            from_hex(bad)


def test_byte_grouping_is_undone_for_every_length() -> None:
    for n in range(0, 13):
        data = bytes(range(n))
        grouped = b"".join(data[i::4] for i in range(4))  # what a client's BG4 step produces
        assert _ungroup4(grouped) == data
    payload = lz4.frame.compress(b"".join(os.urandom(1)[:0] + bytes(range(9))[i::4] for i in range(4)))
    assert decode_chunk(2, payload, 9) == bytes(range(9))


def _stream(data: bytes, expected: bytes, piece: int = 1000) -> list:
    validator = XorbValidator(expected)
    for i in range(0, len(data), piece):
        validator.feed(data[i:i + piece])
    return validator.finish()


def test_a_xorb_validates_in_any_split_and_indexes_its_chunks() -> None:
    pieces = chunks_of(os.urandom(200_000) + bytes(100_000), 40_000)
    xorb = make_xorb(pieces)
    for piece in (1, 7, 4096, len(xorb.data)):
        chunks = _stream(xorb.data, xorb.hash, piece)
        assert [c.hash for c in chunks] == [h for h, _, _ in xorb.chunks]
        assert chunks[0].byte_start == 0 and chunks[-1].byte_end == len(xorb.data)
        assert all(a.byte_end == b.byte_start for a, b in zip(chunks, chunks[1:]))


@pytest.mark.parametrize("damage", ["flip", "truncate", "version", "scheme", "wrong-hash", "empty", "size"])
def test_a_bad_xorb_is_refused(damage: str) -> None:
    xorb = make_xorb(chunks_of(os.urandom(100_000), 30_000))
    data, expected = bytearray(xorb.data), xorb.hash
    if damage == "flip":
        data[len(data) // 2] ^= 0xFF
    elif damage == "truncate":
        del data[-10:]
    elif damage == "version":
        data[0] = 1
    elif damage == "scheme":
        data[4] = 9
    elif damage == "wrong-hash":
        expected = make_xorb([b"other"]).hash
    elif damage == "empty":
        data = bytearray()
    elif damage == "size":
        data[5:8] = (200_000).to_bytes(3, "little")  # over the 128 KiB chunk limit
    with pytest.raises(XetObjectError):
        _stream(bytes(data), expected)


def test_the_validating_reader_raises_before_eof_reaches_the_writer() -> None:
    xorb = make_xorb([b"a" * 1000, b"b" * 1000])
    reader = ValidatingReader(io.BytesIO(xorb.data[:-1]), xorb.hash)
    with pytest.raises(XetObjectError):
        io.BufferedReader(reader).read()
    good = ValidatingReader(io.BytesIO(xorb.data), xorb.hash)
    assert io.BufferedReader(good).read() == xorb.data and len(good.chunks) == 2


def test_a_footer_after_the_chunks_is_accepted_only_when_well_formed() -> None:
    xorb = make_xorb([b"x" * 5000])
    footer = b"XETBLOB" + bytes(20)
    footer += struct.pack("<I", len(footer))
    assert len(_stream(xorb.data + footer, xorb.hash)) == 1
    with pytest.raises(XetObjectError):
        _stream(xorb.data + b"XETBLOB" + bytes(10), xorb.hash)


def test_an_uncompressed_chunk_must_hold_its_size() -> None:
    with pytest.raises(XetObjectError):
        decode_chunk(0, b"abc", 4)
    assert chunk_bytes(b"abc", scheme=0)[8:] == b"abc"


def test_shards_parse_and_every_truncation_is_refused() -> None:
    upload = file_upload(os.urandom(150_000))
    items = list(read_shard(io.BytesIO(upload.shard)))
    assert isinstance(items[0], FileEntry) and isinstance(items[1], XorbBlock)
    assert items[0].sha256.hex() == upload.sha256 and items[0].file_hash == upload.file_hash
    assert len(items[0].terms) == 1 and items[0].terms[0].end == len(upload.xorb.chunks)
    for cut in (10, 48, 100, len(upload.shard) - 48, len(upload.shard) - 1):
        with pytest.raises(XetObjectError):
            list(read_shard(io.BytesIO(upload.shard[:cut])))
    with pytest.raises(XetObjectError):
        list(read_shard(io.BytesIO(b"X" + upload.shard[1:])))  # tag
    with pytest.raises(XetObjectError):
        list(read_shard(io.BytesIO(upload.shard + b"junk")))


def test_a_file_without_verification_entries_is_refused() -> None:
    xorb = make_xorb([b"z" * 100])
    shard = bytearray(make_shard([(b"\x01" * 32, [(xorb, 0, 1)], "00" * 32)], []))
    shard[48 + 32:48 + 36] = struct.pack("<I", 1 << 30)  # metadata flag only
    with pytest.raises(XetObjectError):
        list(read_shard(io.BytesIO(bytes(shard))))


def test_a_dedup_answer_is_a_shard_the_parser_reads_back() -> None:
    xorb = make_xorb([b"a" * 100, b"b" * 200])
    key = os.urandom(32)
    keyed = [(keyed_hash(h, key), start, size) for h, start, size in xorb.chunks]
    answer = dedup_shard([(xorb.hash, keyed, len(xorb.data))], key, 3600)
    assert answer.startswith(TAG)
    assert answer[48:96] == BOOKEND  # no files
    footer = answer[-200:]
    assert footer[9 * 8:9 * 8 + 32] == key
    blocks = [item for item in read_shard(io.BytesIO(answer))]
    assert blocks[0].xorb == xorb.hash and [c[0] for c in blocks[0].chunks] == [k for k, _, _ in keyed]
