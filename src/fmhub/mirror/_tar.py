"""Reading a tar as a stream, one member after another, with each member's bytes read straight from the source.

:mod:`tarfile`'s stream mode (``r|``) copies every chunk several times through its internal buffer (joins and
slices of multi-megabyte ``bytes``), which costs more CPU than hashing the data. This reader parses headers with
:class:`tarfile.TarInfo` (checksums included) and hands out a reader per member whose ``readinto`` fills the
caller's buffer from the source directly. POSIX (ustar) headers and PAX extended headers (long names, sizes over
8 GiB) are understood: what fmhub writes. Anything else (links, devices, GNU extensions) is reported as such.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

__all__ = ["Member", "iter_members", "TarReadError"]

_BLOCK = 512


class TarReadError(ValueError):
    """The stream is not a tar fmhub reads, or it ends early."""


@dataclass
class Member:
    name: str
    size: int
    is_file: bool
    reader: MemberReader


class MemberReader(io.RawIOBase):
    """The bytes of one member, read from the source on demand (at most its size)."""

    def __init__(self, source: Any, size: int, name: str) -> None:
        self._source = source
        self.remaining = size
        self._name = name

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.remaining <= 0:
            return 0
        view = memoryview(buffer).cast("B")
        n = self._source.readinto(view[:min(len(view), self.remaining)])
        if not n:
            raise TarReadError(f"unexpected end of data in {self._name} ({self.remaining} bytes missing)")
        self.remaining -= n
        return n

    def skip(self) -> None:
        buffer = bytearray(min(self.remaining, 1 << 20) or 1)
        while self.remaining > 0:
            self.readinto(buffer)


def _read_exactly(source: Any, size: int, what: str) -> bytes:
    data = bytearray(size)
    view, got = memoryview(data), 0
    while got < size:
        n = source.readinto(view[got:])
        if not n:
            if got == 0 and what == "header":
                return b""
            raise TarReadError(f"unexpected end of data in a tar {what}")
        got += n
    return bytes(data)


def _pax_records(data: bytes) -> dict[str, str]:
    """``"%d %s=%s\\n"`` records of a PAX extended header."""
    records: dict[str, str] = {}
    pos = 0
    while pos < len(data) and data[pos:pos + 1] != b"\0":
        space = data.find(b" ", pos)
        if space < 0:
            raise TarReadError("a malformed PAX header")
        try:
            length = int(data[pos:space])
        except ValueError:
            raise TarReadError("a malformed PAX header") from None
        if length <= 0 or pos + length > len(data):
            raise TarReadError("a malformed PAX header")
        key, _, value = data[space + 1:pos + length - 1].partition(b"=")
        records[key.decode("utf-8", "replace")] = value.decode("utf-8", "replace")
        pos += length
    return records


def iter_members(source: Any) -> Iterator[Member]:
    """The members of the tar read from ``source`` (anything with ``readinto``), in order. Each member's reader must
    be read (or left) before the next member is asked for: what is left of it is skipped then."""
    pax: dict[str, str] = {}
    while True:
        block = _read_exactly(source, _BLOCK, "header")
        if not block:
            raise TarReadError("the stream ends without the tar's end blocks")
        if block == b"\0" * _BLOCK:
            return  # the end of the archive (a second zero block and the record padding may follow)
        try:
            info = tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
        except tarfile.HeaderError as exc:
            raise TarReadError(f"an invalid tar header ({exc})") from None
        if info.type in (tarfile.XHDTYPE, tarfile.XGLTYPE):
            data = _read_exactly(source, info.size, "PAX header")
            _read_exactly(source, -info.size % _BLOCK, "padding")
            if info.type == tarfile.XHDTYPE:
                pax = _pax_records(data)
            continue
        name, size = pax.get("path", info.name), info.size
        if "size" in pax:
            try:
                size = int(pax["size"])
            except ValueError:
                raise TarReadError("a malformed PAX size") from None
        pax = {}
        is_file = info.type in (tarfile.REGTYPE, tarfile.AREGTYPE)
        data_size = size if is_file or info.type not in (tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.DIRTYPE) else 0
        reader = MemberReader(source, data_size, name)
        yield Member(name, size, is_file, reader)
        reader.skip()
        _read_exactly(source, -data_size % _BLOCK, "padding")
