"""Pickle detection by content: is there a pickle in this file, whatever it is called, and what does it import?

A name is only a convention: ``torch.load`` reads a pickle named ``model.pth.tar`` and ``numpy.load`` one
named ``weights.npy``. So every file a commit adds (except a ``.safetensors`` file, whose header is
validated instead) is read by its content:

- a zip archive (``torch.save``'s format, ``.npz``): each member that is a pickle or an ``.npy``;
- a tar archive (old checkpoints, ``*.pth.tar`` by hand): each member, routed again;
- an ``.npy`` file: the pickle after the header when the array holds objects;
- anything else: the byte stream from the start, as ``pickle.load`` would read it (plain pickles,
  joblib, the legacy ``torch.save`` format's run of pickles).

The opcodes are read by `picklescan <https://github.com/mmaitre314/picklescan>`_ (the scanner the
Hugging Face Hub runs; it never unpickles), which lists the globals a pickle imports and grades them
innocuous, suspicious or dangerous. fmhub routes by content first (``bench/pickle_scan_bench.py``:
picklescan alone, asked without a file extension, misses object arrays in ``.npy`` files and anything in
tar archives). A stream that imports nothing cannot run code when loaded, so it is not counted: random
bytes, JSON and text never are.

Example:
    >>> found = scan_pickle(blob.size, lambda start, end: b"".join(blobs.iter_chunks(sha, start, end)))
    >>> found.imports if found else "no pickle"
    ('collections.OrderedDict', 'torch._utils._rebuild_tensor_v2')
"""

from __future__ import annotations

import functools
import io
import logging
import warnings
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any, BinaryIO

from fmhub.errors import UnsafeFileError
from fmhub.store.safety import ReadRange

__all__ = ["PickleScan", "scan_pickle", "scan_stream", "check_local_file", "security_file_status", "scanner"]

_log = logging.getLogger(__name__)

_MAX_DEPTH = 2  # a tar in a tar is read; deeper nesting is not something a loader unpacks
_MAX_TAR_MEMBERS = 10_000
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")
_NPY_MAGIC = b"\x93NUMPY"
_READ_CHUNK = 1 << 20
_SAFETY_RANK = {"innocuous": 0, "suspicious": 1, "dangerous": 2}


@functools.cache
def scanner() -> str:
    """The scanner and its version, recorded with each scan (read when first scanning, not when the store is
    imported: looking up an installed package's version reads the environment's package metadata)."""
    return f"picklescan {version('picklescan')}"


@dataclass(frozen=True)
class PickleScan:
    """The pickle found in a file: its imports as ``(module, name, safety)``, safety one of
    ``innocuous`` / ``suspicious`` / ``dangerous`` (picklescan's grades), sorted."""

    imports: tuple[tuple[str, str, str], ...]

    @property
    def highest_safety_level(self) -> str:
        return max((safety for *_, safety in self.imports), key=_SAFETY_RANK.__getitem__, default="innocuous")

    @property
    def names(self) -> list[str]:
        return [f"{module}.{name}" for module, name, _ in self.imports]


class _RangeFile(io.RawIOBase):
    """A seekable read-only file over ``read(start, end)`` (a blob, fetched by ranges as it is read)."""

    def __init__(self, size: int, read: ReadRange) -> None:
        self._size, self._read, self._pos = size, read, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer) -> int:  # type: ignore[override]
        end = min(self._size, self._pos + len(buffer))
        if end <= self._pos:
            return 0
        data = self._read(self._pos, end)
        buffer[: len(data)] = data
        self._pos += len(data)
        return len(data)


def scan_pickle(size: int, read: ReadRange) -> PickleScan | None:
    """The pickle in a file of ``size`` bytes read through ``read(start, end)``, or None if it holds none."""
    return scan_stream(io.BufferedReader(_RangeFile(size, read), buffer_size=_READ_CHUNK))


def scan_stream(stream: BinaryIO) -> PickleScan | None:
    """The pickle in a seekable binary stream (read from its current position), or None."""
    _quiet_scanner()
    found: set[tuple[str, str, str]] = set()
    _scan(stream, found, depth=0)
    return PickleScan(tuple(sorted(found))) if found else None


@functools.cache
def _quiet_scanner() -> None:
    # picklescan logs a warning for every file that is not a pickle ("could not parse ... as pickle"): here
    # that is most files, and the answer is in the result. Its logger keeps errors only.
    logging.getLogger("picklescan").setLevel(logging.CRITICAL)


def _scan(stream: BinaryIO, found: set[tuple[str, str, str]], depth: int) -> None:
    start = stream.tell()
    head = stream.read(512)
    stream.seek(start)
    with warnings.catch_warnings():  # pickletools warns about odd escapes in text it reads as protocol-0 strings
        warnings.simplefilter("ignore")
        _scan_routed(stream, head, found, depth)


def _scan_routed(stream: BinaryIO, head: bytes, found: set[tuple[str, str, str]], depth: int) -> None:
    from picklescan.scanner import scan_numpy, scan_pickle_bytes, scan_zip_bytes

    try:
        if head.startswith(_ZIP_MAGICS):
            result = scan_zip_bytes(stream, "<zip>")
        elif head.startswith(_NPY_MAGIC):
            result = scan_numpy(stream, "<npy>")
        elif len(head) >= 262 and head[257:262] == b"ustar" and depth < _MAX_DEPTH:
            _scan_tar(stream, found, depth)
            return
        else:
            result = scan_pickle_bytes(stream, "<file>")
    except Exception as error:  # noqa: BLE001 - a damaged archive or header is no pickle a loader would run
        _log.debug("pickle scan stopped: %s", error)
        return
    found.update((g.module, g.name, g.safety.value.lower()) for g in result.globals)


def _scan_tar(stream: BinaryIO, found: set[tuple[str, str, str]], depth: int) -> None:
    import tarfile  # here: only a tar archive needs it

    try:
        with tarfile.open(fileobj=stream, mode="r:") as archive:
            for count, member in enumerate(archive):
                if count >= _MAX_TAR_MEMBERS:
                    break
                if member.isfile():
                    inner = archive.extractfile(member)
                    if inner is not None:
                        _scan(inner, found, depth + 1)  # type: ignore[arg-type]
    except tarfile.TarError as error:
        _log.debug("tar scan stopped: %s", error)


def check_local_file(path_in_repo: str, source: Path | str | bytes, *, allow_pickle: bool) -> None:
    """Refuse a local file (or bytes) holding a pickle before it is hashed or sent, unless allowed.

    The store checks again on commit; this only spares uploading gigabytes it would refuse.

    Raises:
        UnsafeFileError: naming the imports found.
    """
    if allow_pickle or path_in_repo.lower().endswith(".safetensors"):  # safetensors: its header is validated
        return
    if isinstance(source, bytes):
        found = scan_stream(io.BytesIO(source))
    else:
        with open(source, "rb") as handle:
            found = scan_stream(handle)
    if found is not None:
        raise UnsafeFileError(path_in_repo, found.names)


def security_file_status(scan: PickleScan | None) -> dict[str, Any]:
    """The Hugging Face Hub's ``securityFileStatus`` of a file (``siblings[]`` / ``paths-info``)."""
    av_scan = {"virusFound": False, "virusNames": None}
    if scan is None:
        return {"status": "safe", "avScan": av_scan, "pickleImportScan": None}
    return {
        "status": "unsafe",
        "avScan": av_scan,
        "pickleImportScan": {
            "highestSafetyLevel": scan.highest_safety_level,
            "imports": [{"module": m, "name": n, "safety": s} for m, n, s in scan.imports],
        },
    }
