"""The bundle format: a POSIX tar whose first member is a manifest of every object, by sha256, size and kind.

Members, in this order::

    manifest.json                          the manifest (below)
    repos/<type>/<namespace>/<name>.json   a repo's settings, refs and records (runs, report cards, lineage, ...)
    trees/<tree id>.json                   a tree's entries (path, sha256, size)
    commits/<type>/<namespace>/<name>/<oid>.json
    blobs/<sha256>                         a file's bytes

The manifest lists every object the bundled versions need, each with ``in_bundle``: false for objects left
out because the receiving hub has them already (``--since``), so a later incremental bundle can be made
against this one's manifest too. A reader trusts nothing: each member must be listed, in the bundle, arrive
once, and hash to its entry; every listed member must arrive.

The tar is written as a stream of bytes (headers by :class:`tarfile.TarInfo`, PAX format), so it goes to a
file or an HTTP response alike, without a temporary copy.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import tarfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fmhub.errors import InvalidInputError

__all__ = ["FORMAT", "VERSION", "MANIFEST", "Entry", "Manifest", "tar_member", "tar_end", "read_manifest_file",
           "json_bytes", "MAX_RECORD", "HashingReader"]

FORMAT = "fmhub-mirror-bundle"
VERSION = 1
MANIFEST = "manifest.json"
#: A record (manifest, repo, tree or commit JSON) larger than this is refused before it is read into memory.
MAX_RECORD = 512 * 1024 * 1024
_BLOCK = 512
_KINDS = ("repo", "tree", "commit", "blob")
_NAME = {
    "blob": re.compile(r"blobs/[0-9a-f]{64}"),
    "tree": re.compile(r"trees/[0-9a-f]{64}\.json"),
    "commit": re.compile(r"commits/(model|dataset)/[^/]{1,96}/[^/]{1,96}/[0-9a-f]{40}\.json"),
    "repo": re.compile(r"repos/(model|dataset)/[^/]{1,96}/[^/]{1,96}\.json"),
}


def json_bytes(value: Any) -> bytes:
    """The canonical JSON of a record (sorted keys, UTF-8): equal records give equal bytes and sha256s."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


@dataclass(frozen=True)
class Entry:
    """One object of a bundle: its member name, kind, sha256 and size, and whether the bundle holds it."""

    name: str
    kind: str
    sha256: str
    size: int
    in_bundle: bool = True

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "sha256": self.sha256, "size": self.size,
                "in_bundle": self.in_bundle}

    @classmethod
    def from_json(cls, data: Any) -> Entry:
        try:
            entry = cls(str(data["name"]), str(data["kind"]), str(data["sha256"]), data["size"],
                        bool(data.get("in_bundle", True)))
        except (KeyError, TypeError) as exc:
            raise InvalidInputError(f"malformed manifest entry {str(data)[:200]}: {exc!r}") from None
        if entry.kind not in _KINDS or not _NAME[entry.kind].fullmatch(entry.name):
            raise InvalidInputError(f"manifest entry {entry.name!r} of kind {entry.kind!r} is not a bundle object")
        if not re.fullmatch(r"[0-9a-f]{64}", entry.sha256) or not isinstance(entry.size, int) or entry.size < 0 \
                or isinstance(entry.size, bool):
            raise InvalidInputError(f"manifest entry {entry.name!r} has an invalid sha256 or size")
        if entry.kind == "blob" and entry.name != f"blobs/{entry.sha256}":
            raise InvalidInputError(f"manifest entry {entry.name!r} names another sha256 ({entry.sha256})")
        return entry


@dataclass
class Manifest:
    """What a bundle holds: the hub it came from, the repos, and every object's identity."""

    hub_id: str
    repos: list[str]
    objects: list[Entry] = field(default_factory=list)
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    since: list[str] = field(default_factory=list)  # the bundles (their manifests' sha256) this one was made since

    def to_bytes(self) -> bytes:
        return json_bytes({"format": FORMAT, "version": VERSION, "hub_id": self.hub_id, "repos": self.repos,
                           "created_at": self.created_at.isoformat(), "since": self.since,
                           "objects": [entry.to_json() for entry in self.objects]})

    @classmethod
    def from_bytes(cls, data: bytes, *, where: str = MANIFEST) -> Manifest:
        try:
            raw = json.loads(data)
        except ValueError as exc:
            raise InvalidInputError(f"{where} is not JSON: {exc}", hint="give a bundle made by fmhub mirror export")
        if not isinstance(raw, dict) or raw.get("format") != FORMAT:
            raise InvalidInputError(f"{where} is not an fmhub mirror manifest",
                                    hint="give a bundle made by fmhub mirror export (or its manifest.json)")
        if raw.get("version") != VERSION:
            raise InvalidInputError(f"{where} is bundle format version {raw.get('version')!r}; this fmhub reads "
                                    f"version {VERSION}", hint="export the bundle with a matching fmhub")
        objects = [Entry.from_json(item) for item in raw.get("objects") or []]
        names = [entry.name for entry in objects]
        if len(set(names)) != len(names):
            raise InvalidInputError(f"{where} lists an object twice")
        try:
            created = datetime.fromisoformat(raw["created_at"])
        except (KeyError, TypeError, ValueError):
            raise InvalidInputError(f"{where} has no valid created_at") from None
        return cls(str(raw.get("hub_id", "")), [str(r) for r in raw.get("repos") or []], objects, created,
                   [str(s) for s in raw.get("since") or []])


def tar_member(name: str, size: int, chunks: Iterable[bytes], mtime: float = 0) -> Iterator[bytes]:
    """One tar member: its header, its bytes (checked to add up to ``size``), then the padding to a block."""
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = int(mtime)
    info.mode = 0o444
    yield info.tobuf(format=tarfile.PAX_FORMAT)
    written = 0
    for chunk in chunks:
        written += len(chunk)
        if written > size:
            break
        yield chunk
    if written != size:
        raise InvalidInputError(f"{name}: the store gave {written} bytes, {size} expected",
                                hint="run `fmhub fsck` on the exporting hub")
    if size % _BLOCK:
        yield b"\0" * (_BLOCK - size % _BLOCK)


def tar_end(written: int) -> bytes:
    """The end of a tar: two zero blocks, padded to tar's 10 KiB record (``written``: bytes so far)."""
    end = written + 2 * _BLOCK
    record = tarfile.RECORDSIZE
    return b"\0" * (2 * _BLOCK + (-end % record))


def read_manifest_file(path: Path) -> Manifest:
    """The manifest of a bundle file, or a manifest file itself (what ``--since`` takes)."""
    try:
        with open(path, "rb") as f:
            head = f.read(1)
            f.seek(0)
            if head in (b"{", b" ", b"\n"):
                data = f.read(MAX_RECORD + 1)
                if len(data) > MAX_RECORD:
                    raise InvalidInputError(f"{path} is larger than a manifest can be")
                return Manifest.from_bytes(data, where=str(path))
            try:
                with tarfile.open(fileobj=f, mode="r|") as tar:
                    member = tar.next()
                    if member is None or member.name != MANIFEST or not member.isfile() or member.size > MAX_RECORD:
                        raise InvalidInputError(f"{path} does not start with a manifest",
                                                hint="give a bundle made by fmhub mirror export")
                    reader = tar.extractfile(member)
                    assert reader is not None
                    return Manifest.from_bytes(reader.read(), where=f"{path}:{MANIFEST}")
            except tarfile.TarError as exc:
                raise InvalidInputError(f"{path} is neither a bundle nor a manifest: {exc}",
                                        hint="give a bundle made by fmhub mirror export (or its manifest.json)") from None
    except OSError as exc:
        raise InvalidInputError(f"cannot read {path}: {exc.strerror}") from None


class HashingReader(io.RawIOBase):
    """A readable over ``src`` that hashes (unless ``hashing`` is off: the reader hashes itself) and counts what
    passes."""

    def __init__(self, src: Any, progress: Callable[[int], None] | None = None, *, hashing: bool = True) -> None:
        self._src = src
        self.digest = hashlib.sha256()
        self.size = 0
        self._progress = progress
        self._hashing = hashing

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = self._src.readinto(buffer)
        if n:
            if self._hashing:
                self.digest.update(memoryview(buffer)[:n])
            self.size += n
            if self._progress:
                self._progress(n)
        return n or 0
