"""Xet storage over a store: receive xorbs and shards, plan reconstructions, answer dedup queries, and read
Xet files back as plain bytes.

Nothing becomes visible before it is checked: a xorb's chunks are decompressed and hashed as its bytes
stream into the blob store, and its Merkle root must be the hash the client named, or the blob store
discards the bytes. A shard's files are checked term by term against the stored chunk index (xorb exists,
chunk range inside it, sizes, verification hash), their Xet hash recomputed from the chunk hashes, and each
file reassembled (decompressed, streamed through sha256) to prove the sha256 its commit will name.

Access: a term may name a run of chunks only if the uploader's repo received that xorb, or if the run is
covered by terms of files the caller may read (``may_read``, decided by the server's access rules). So
knowing a chunk hash grants nothing, and dedup never reaches content the caller could not download.
"""

from __future__ import annotations

import hashlib
import io
import secrets
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import BinaryIO

from sqlalchemy import Connection, delete, exists, insert, select, update

from fmhub.errors import PayloadTooLargeError, RangeNotSatisfiableError, XetFileNotFoundError, XetObjectError
from fmhub.store import Repo, Store
from fmhub.xet import _tables as x
from fmhub.xet._hashes import file_hash, from_hex, keyed_hash, to_hex, verification_hash
from fmhub.xet._shard import FileEntry, XorbBlock, dedup_shard, read_shard
from fmhub.xet._xorb import ValidatingReader, iter_decoded

__all__ = ["XetStorage", "XetFile", "Reconstruction", "ReconstructionTerm", "FetchRange", "MayRead"]

#: Decides whether the caller may read the file with this sha256 (the server's access rules).
MayRead = Callable[[str], bool]

#: How long a client may deduplicate against a global dedup answer.
DEDUP_ANSWER_SECONDS = 24 * 3600
#: Xorbs named in one dedup answer (the one holding the chunk, and a few more that do).
_DEDUP_XORBS = 4
_READ_PIECE = 1024 * 1024  # bytes read from a stored xorb at a time
_BATCH = 500


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@dataclass(frozen=True)
class XetFile:
    file_hash: str
    sha256: str
    size: int


@dataclass(frozen=True)
class ReconstructionTerm:
    xorb_hash: str
    start: int  # chunk range [start, end)
    end: int
    unpacked_length: int


@dataclass(frozen=True)
class FetchRange:
    """Chunks ``[start, end)`` of a xorb, stored at bytes ``[byte_start, byte_end]`` (end inclusive, as the
    client's Range header wants it) of the blob ``blob_sha256``."""

    xorb_hash: str
    blob_sha256: str
    start: int
    end: int
    byte_start: int
    byte_end: int


@dataclass(frozen=True)
class Reconstruction:
    file: XetFile
    offset_into_first_range: int
    terms: list[ReconstructionTerm]
    fetch: list[FetchRange]


@dataclass(frozen=True)
class _Chunk:
    hash: str
    byte_start: int
    byte_end: int
    unpacked_start: int
    size: int


@dataclass
class _Xorb:
    xorb_hash: str
    blob_sha256: str
    stored_bytes: int
    chunks: list[_Chunk] = field(default_factory=list)


class XetStorage:
    """The Xet domain over one store.

    Example:
        >>> xet = XetStorage(store)
        >>> inserted = xet.receive_xorb(xorb_hex, body, repo=repo)
        >>> xet.receive_shard(shard_file, repo=repo, actor="alice", may_read=lambda sha256: False)
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self.db = store.db

    # -- xorbs ----------------------------------------------------------------------------------

    def receive_xorb(self, xorb_hex: str, body: BinaryIO, *, repo: Repo, uploader: str | None = None) -> bool:
        """Validate a serialized xorb while storing it; returns False if the store already had it.

        Either way ``repo`` (and ``uploader``, for later uploads to other repos) is granted the xorb (its
        uploader proved to hold every chunk), so its shards
        may name any of its chunks.

        Raises:
            XetObjectError: malformed, or its chunks do not hash to ``xorb_hex``; nothing is stored.
        """
        raw = from_hex(xorb_hex, "xorb hash")
        known = self._xorb(xorb_hex)
        reader = ValidatingReader(body, raw)
        if known is None:
            blob = self.store.put_stream(io.BufferedReader(reader, _READ_PIECE))
            blob_sha256, stored = blob.sha256, blob.size
        else:  # check the bytes (they earn the grant), keep the copy we have
            with io.BufferedReader(reader, _READ_PIECE) as drain:
                while drain.read(_READ_PIECE):
                    pass
            blob_sha256, stored = known.blob_sha256, known.stored_bytes
        chunks = reader.chunks or []
        now = _now()
        inserted = False
        with self.db.write() as conn:
            if conn.execute(select(x.xet_xorbs.c.xorb_hash).where(x.xet_xorbs.c.xorb_hash == xorb_hex)).first():
                conn.execute(update(x.xet_xorbs).where(x.xet_xorbs.c.xorb_hash == xorb_hex)
                             .values(last_seen_at=now))
            else:
                conn.execute(insert(x.xet_xorbs).values(
                    xorb_hash=xorb_hex, blob_sha256=blob_sha256, stored_bytes=stored,
                    unpacked_bytes=sum(c.size for c in chunks), chunk_count=len(chunks), created_at=now,
                    last_seen_at=now))
                rows, unpacked = [], 0
                for position, chunk in enumerate(chunks):
                    rows.append({"xorb_hash": xorb_hex, "position": position, "chunk_hash": to_hex(chunk.hash),
                                 "byte_start": chunk.byte_start, "byte_end": chunk.byte_end,
                                 "unpacked_start": unpacked, "size": chunk.size})
                    unpacked += chunk.size
                conn.execute(insert(x.xet_chunks), rows)
                inserted = True
            if uploader:
                if conn.dialect.name == "postgresql":  # the engine's dialect module, loaded already
                    from sqlalchemy.dialects.postgresql import insert as dialect_insert
                else:
                    from sqlalchemy.dialects.sqlite import insert as dialect_insert
                conn.execute(dialect_insert(x.xet_xorb_uploaders).values(
                    xorb_hash=xorb_hex, uploader=uploader.lower(), uploaded_at=now).on_conflict_do_nothing())
        self.store.record_upload(repo.repo_id, blob_sha256, repo_type=repo.repo_type)
        return inserted

    def uploaded_by(self, xorb_hex: str, user: str | None) -> bool:
        """Whether ``user`` once uploaded this xorb's bytes."""
        if not user:
            return False
        with self.db.read() as conn:
            return conn.execute(select(x.xet_xorb_uploaders.c.xorb_hash).where(
                x.xet_xorb_uploaders.c.xorb_hash == xorb_hex,
                x.xet_xorb_uploaders.c.uploader == user.lower())).first() is not None

    def _xorb(self, xorb_hex: str, *, with_chunks: bool = False) -> _Xorb | None:
        with self.db.read() as conn:
            return self._load_xorb(conn, xorb_hex, with_chunks=with_chunks)

    @staticmethod
    def _load_xorb(conn: Connection, xorb_hex: str, *, with_chunks: bool) -> _Xorb | None:
        row = conn.execute(select(x.xet_xorbs).where(x.xet_xorbs.c.xorb_hash == xorb_hex)).one_or_none()
        if row is None:
            return None
        xorb = _Xorb(row.xorb_hash, row.blob_sha256, row.stored_bytes)
        if with_chunks:
            c = x.xet_chunks.c
            xorb.chunks = [_Chunk(r.chunk_hash, r.byte_start, r.byte_end, r.unpacked_start, r.size) for r in
                           conn.execute(select(c.chunk_hash, c.byte_start, c.byte_end, c.unpacked_start, c.size)
                                        .where(c.xorb_hash == xorb_hex).order_by(c.position))]
        return xorb

    # -- shards ---------------------------------------------------------------------------------

    def receive_shard(self, shard: BinaryIO, *, repo: Repo, actor: str, may_read: MayRead,
                      max_file_bytes: int | None = None) -> int:
        """Validate an uploaded shard, then record its files for ``repo``; returns how many are new.

        ``shard`` must be seekable (it is read twice: to check, then into the blob store). A commit to
        ``repo`` may then name each file by its sha256.

        Raises:
            XetObjectError: anything malformed or inconsistent, or a term naming chunks the caller may not
                read; nothing is recorded.
        """
        files: list[FileEntry] = []
        checks = _ShardCheck(self, repo, may_read, max_file_bytes, actor=actor)
        for item in read_shard(shard):
            if isinstance(item, FileEntry):
                files.append(item)
            else:
                checks.xorb_block(item)
        accepted = [checks.file(entry) for entry in files]
        for entry, xet_file, known in accepted:
            if not known:
                self._check_sha256(entry, xet_file)
        shard.seek(0)
        blob = self.store.put_stream(shard)
        now = _now()
        new = 0
        with self.db.write() as conn:
            named = sorted({term.xorb for entry in files for term in entry.terms} |
                           {item.xorb for item in checks.blocks})
            for i in range(0, len(named), _BATCH):  # gc may have collected a xorb since it was checked
                batch = [to_hex(h) for h in named[i:i + _BATCH]]
                present = set(conn.execute(select(x.xet_xorbs.c.xorb_hash).where(
                    x.xet_xorbs.c.xorb_hash.in_(batch)).with_for_update()).scalars())
                if missing := [h for h in batch if h not in present]:
                    raise XetObjectError(f"xorb {missing[0]} was removed while the shard was checked",
                                         hint="upload the files again")
                conn.execute(update(x.xet_xorbs).where(x.xet_xorbs.c.xorb_hash.in_(batch)).values(last_seen_at=now))
            if conn.execute(select(x.xet_shards.c.sha256).where(x.xet_shards.c.sha256 == blob.sha256)).first() is None:
                conn.execute(insert(x.xet_shards).values(sha256=blob.sha256, size=blob.size, uploaded_by=actor,
                                                         repo_type=repo.repo_type, repo_id=repo.repo_id,
                                                         created_at=now))
            for entry, xet_file, known in accepted:
                if known or conn.execute(select(x.xet_files.c.file_hash).where(
                        x.xet_files.c.file_hash == xet_file.file_hash)).first():
                    conn.execute(update(x.xet_files).where(x.xet_files.c.file_hash == xet_file.file_hash)
                                 .values(last_seen_at=now))
                    continue
                conn.execute(insert(x.xet_files).values(file_hash=xet_file.file_hash, sha256=xet_file.sha256,
                                                        size=xet_file.size, shard_sha256=blob.sha256,
                                                        created_at=now, last_seen_at=now))
                rows, offset = [], 0
                for position, term in enumerate(entry.terms):
                    rows.append({"file_hash": xet_file.file_hash, "position": position, "xorb_hash": to_hex(term.xorb),
                                 "chunk_start": term.start, "chunk_end": term.end, "unpacked_start": offset,
                                 "size": term.size})
                    offset += term.size
                conn.execute(insert(x.xet_terms), rows)
                new += 1
        for _, xet_file, _ in accepted:
            self.store.record_upload(repo.repo_id, xet_file.sha256, repo_type=repo.repo_type)
        return new

    def _check_sha256(self, entry: FileEntry, xet_file: XetFile) -> None:
        digest = hashlib.sha256()
        for piece in self._iter_terms(list(_terms_of(entry)), 0, xet_file.size):
            digest.update(piece)
        if digest.hexdigest() != xet_file.sha256:
            raise XetObjectError(f"file {xet_file.file_hash} reassembles to sha256 {digest.hexdigest()}, "
                                 f"not the {xet_file.sha256} its shard declares")

    # -- files ----------------------------------------------------------------------------------

    def file_by_sha256(self, sha256: str) -> XetFile | None:
        """A Xet file holding these bytes (the oldest, if several chunkings do), or None."""
        f = x.xet_files.c
        with self.db.read() as conn:
            row = conn.execute(select(f.file_hash, f.sha256, f.size).where(f.sha256 == sha256)
                               .order_by(f.created_at, f.file_hash).limit(1)).one_or_none()
        return None if row is None else XetFile(row.file_hash, row.sha256, row.size)

    def file_by_hash(self, file_hex: str) -> XetFile | None:
        from_hex(file_hex, "file hash")
        f = x.xet_files.c
        with self.db.read() as conn:
            row = conn.execute(select(f.file_hash, f.sha256, f.size).where(f.file_hash == file_hex)).one_or_none()
        return None if row is None else XetFile(row.file_hash, row.sha256, row.size)

    def _terms(self, file_hex: str) -> list[tuple[str, int, int, int]]:
        """(xorb hash, chunk start, chunk end, size) of each term of a stored file, in order."""
        t = x.xet_terms.c
        with self.db.read() as conn:
            return [(r.xorb_hash, r.chunk_start, r.chunk_end, r.size) for r in conn.execute(
                select(t.xorb_hash, t.chunk_start, t.chunk_end, t.size).where(t.file_hash == file_hex)
                .order_by(t.position))]

    def iter_file(self, xet_file: XetFile, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """The bytes ``[start, end)`` of a Xet file, decompressed from its xorbs as they stream."""
        end = xet_file.size if end is None else min(end, xet_file.size)
        return self._iter_terms(self._terms(xet_file.file_hash), start, end)

    def _iter_terms(self, terms: list[tuple[str, int, int, int]], start: int, end: int) -> Iterator[bytes]:
        position = 0
        cache: dict[str, _Xorb] = {}
        for xorb_hex, first, last, size in terms:
            if position + size <= start:
                position += size
                continue
            if position >= end:
                return
            xorb = cache.get(xorb_hex) or self._xorb(xorb_hex, with_chunks=True)
            if xorb is None:
                raise XetObjectError(f"xorb {xorb_hex} of a Xet file is missing", hint="run `fmhub fsck`")
            cache.clear()
            cache[xorb_hex] = xorb
            chunks = xorb.chunks[first:last]
            # Skip whole chunks before `start`: only the chunks that hold wanted bytes are read.
            skip = 0
            while skip < len(chunks) and position + chunks[skip].size <= start:
                position += chunks[skip].size
                skip += 1
            wanted, reach = [], position
            for chunk in chunks[skip:]:
                if reach >= end:
                    break
                wanted.append(chunk)
                reach += chunk.size
            pieces = self.store.blobs.iter_chunks(xorb.blob_sha256, wanted[0].byte_start, wanted[-1].byte_end,
                                                  chunk_size=_READ_PIECE)
            for data in iter_decoded(pieces, first + skip, [c.size for c in wanted]):
                lo, hi = max(start - position, 0), min(end - position, len(data))
                position += len(data)
                if lo < hi:
                    yield data if (lo, hi) == (0, len(data)) else data[lo:hi]
            position += sum(c.size for c in chunks[skip + len(wanted):])

    # -- reconstruction -------------------------------------------------------------------------

    def reconstruction(self, file_hex: str, byte_range: tuple[int, int] | None, *,
                       may_read: MayRead) -> Reconstruction:
        """What a client fetches to rebuild the file, or the bytes ``[start, end)`` of it (end exclusive).

        Raises:
            XetFileNotFoundError: no such file, or one the caller may not read (the same answer).
            RangeNotSatisfiableError: the range starts at or past the end of the file.
        """
        xet_file = self.file_by_hash(file_hex)
        if xet_file is None or not may_read(xet_file.sha256):
            raise XetFileNotFoundError(file_hex)
        start, end = byte_range if byte_range else (0, xet_file.size)
        end = min(end, xet_file.size)
        if start >= xet_file.size or start >= end:
            raise RangeNotSatisfiableError(xet_file.size)
        xorbs: dict[str, _Xorb] = {}
        terms: list[ReconstructionTerm] = []
        wanted: dict[str, list[tuple[int, int]]] = {}
        offset = position = 0
        for xorb_hex, first, last, size in self._terms(file_hex):
            if position + size <= start:
                position += size
                continue
            if position >= end:
                break
            if xorb_hex not in xorbs:
                xorb = self._xorb(xorb_hex, with_chunks=True)
                if xorb is None:
                    raise XetObjectError(f"xorb {xorb_hex} of file {file_hex} is missing", hint="run `fmhub fsck`")
                xorbs[xorb_hex] = xorb
            chunks = xorbs[xorb_hex].chunks
            lo, hi = first, last
            while position + chunks[lo].size <= start:  # leading chunks before the range
                position += chunks[lo].size
                lo += 1
            if not terms:
                offset = start - position
            covered = position
            hi = lo
            while hi < last and covered < end:
                covered += chunks[hi].size
                hi += 1
            terms.append(ReconstructionTerm(xorb_hex, lo, hi, sum(c.size for c in chunks[lo:hi])))
            wanted.setdefault(xorb_hex, []).append((lo, hi))
            position += sum(c.size for c in chunks[lo:last])
        fetch = []
        for xorb_hex, ranges in wanted.items():
            xorb = xorbs[xorb_hex]
            for lo, hi in _merged(ranges):
                fetch.append(FetchRange(xorb_hex, xorb.blob_sha256, lo, hi, xorb.chunks[lo].byte_start,
                                        xorb.chunks[hi - 1].byte_end - 1))
        return Reconstruction(xet_file, offset, terms, fetch)

    def xorb_blob(self, xorb_hex: str) -> tuple[str, int] | None:
        """(blob sha256, serialized size) of a stored xorb."""
        xorb = self._xorb(xorb_hex)
        return None if xorb is None else (xorb.blob_sha256, xorb.stored_bytes)

    # -- global dedup ---------------------------------------------------------------------------

    def dedup_answer(self, chunk_hex: str, *, repo: Repo, may_read: MayRead) -> bytes | None:
        """A shard naming xorbs that hold this chunk, or None.

        Only xorbs holding it in a run the caller may reference are named; in them, chunk hashes the caller
        may not reference are replaced by random bytes, and the others keyed with a fresh per-answer key
        (the spec's HMAC protection): a client learns which of its own chunks the hub has, nothing else.
        """
        from_hex(chunk_hex, "chunk hash")
        c = x.xet_chunks.c
        with self.db.read() as conn:
            hits = conn.execute(select(c.xorb_hash, c.position).where(c.chunk_hash == chunk_hex)
                                .limit(64)).all()
        key = secrets.token_bytes(32)
        blocks = []
        access = _Access(self, repo, may_read)
        for xorb_hex, position in hits:
            if len(blocks) >= _DEDUP_XORBS:
                break
            allowed = access.intervals(xorb_hex)
            if not any(lo <= position < hi for lo, hi in allowed):
                continue
            xorb = self._xorb(xorb_hex, with_chunks=True)
            if xorb is None:
                continue
            chunks = [(keyed_hash(from_hex(ch.hash), key) if any(lo <= i < hi for lo, hi in allowed)
                       else secrets.token_bytes(32), ch.unpacked_start, ch.size) for i, ch in enumerate(xorb.chunks)]
            blocks.append((from_hex(xorb_hex), chunks, xorb.stored_bytes))
        return dedup_shard(blocks, key, DEDUP_ANSWER_SECONDS) if blocks else None

    # -- what the store asks (see fmhub.store.extensions) -----------------------------------------

    def held_files(self) -> dict[str, int]:
        f = x.xet_files.c
        with self.db.read() as conn:
            return {sha: size for sha, size in conn.execute(select(f.sha256, f.size))}

    @staticmethod
    def referenced_blobs(conn: Connection, candidates: Iterable[str]) -> set[str]:
        batch = list(candidates)
        return (set(conn.execute(select(x.xet_xorbs.c.blob_sha256).where(x.xet_xorbs.c.blob_sha256.in_(batch)))
                    .scalars())
                | set(conn.execute(select(x.xet_shards.c.sha256).where(x.xet_shards.c.sha256.in_(batch))).scalars()))

    def collect(self, *, grace_seconds: float, dry_run: bool) -> dict[str, int]:
        """Forget files no tree names, then xorbs no file uses, then shards none of whose files is left
        (each only once older than the grace period); the blob gc then reclaims their bytes."""
        cutoff = _now() - timedelta(seconds=grace_seconds)
        f, xo, sh, te = x.xet_files.c, x.xet_xorbs.c, x.xet_shards.c, x.xet_terms.c
        with self.db.read() as conn:
            old = {r.file_hash: r.sha256 for r in conn.execute(select(f.file_hash, f.sha256)
                                                                 .where(f.last_seen_at < cutoff))}
        in_trees = self.store.blobs_in_trees(sorted(set(old.values())))
        dead_files = [h for h, sha in old.items() if sha not in in_trees]
        counts = {"xet files": len(dead_files), "xet xorbs": 0, "xet shards": 0}
        with self.db.write() as conn:
            if not dry_run:
                for i in range(0, len(dead_files), _BATCH):
                    batch = dead_files[i:i + _BATCH]
                    conn.execute(delete(x.xet_terms).where(te.file_hash.in_(batch)))
                    conn.execute(delete(x.xet_files).where(f.file_hash.in_(batch)))
            unused = ~exists().where(te.xorb_hash == xo.xorb_hash)
            dead_xorbs = list(conn.execute(select(xo.xorb_hash).where(xo.last_seen_at < cutoff, unused)).scalars())
            counts["xet xorbs"] = len(dead_xorbs)
            orphan = ~exists().where(f.shard_sha256 == sh.sha256)
            dead_shards = list(conn.execute(select(sh.sha256).where(sh.created_at < cutoff, orphan)).scalars())
            counts["xet shards"] = len(dead_shards)
            if not dry_run:
                for i in range(0, len(dead_xorbs), _BATCH):
                    batch = dead_xorbs[i:i + _BATCH]
                    conn.execute(delete(x.xet_chunks).where(x.xet_chunks.c.xorb_hash.in_(batch)))
                    conn.execute(delete(x.xet_xorb_uploaders).where(x.xet_xorb_uploaders.c.xorb_hash.in_(batch)))
                    conn.execute(delete(x.xet_xorbs).where(xo.xorb_hash.in_(batch)))
                for i in range(0, len(dead_shards), _BATCH):
                    conn.execute(delete(x.xet_shards).where(sh.sha256.in_(dead_shards[i:i + _BATCH])))
        return counts

    def check(self, *, verify: bool) -> list[tuple[str, str, str]]:
        """fsck's view of the Xet records: every xorb's blob there and the right size, every file's terms
        inside stored xorbs and adding up to its size; with ``verify``, every file reassembled and hashed."""
        problems: list[tuple[str, str, str]] = []
        with self.db.read() as conn:
            xorbs = {r.xorb_hash: r for r in conn.execute(select(x.xet_xorbs))}
            chunk_counts = dict(conn.execute(select(x.xet_chunks.c.xorb_hash, x.xet_chunks.c.position)
                                             .order_by(x.xet_chunks.c.position)).all())
            files = list(conn.execute(select(x.xet_files)))
            shards = list(conn.execute(select(x.xet_shards.c.sha256, x.xet_shards.c.size)))
        for xorb in xorbs.values():
            size = self.store.blob_size(xorb.blob_sha256)
            if size is None:
                problems.append(("missing-blob", xorb.blob_sha256, f"xorb {xorb.xorb_hash} needs it"))
            elif size != xorb.stored_bytes:
                problems.append(("size-mismatch", xorb.blob_sha256, f"xorb {xorb.xorb_hash} is {xorb.stored_bytes} "
                                                                    f"bytes, the blob {size}"))
            if chunk_counts.get(xorb.xorb_hash, -1) + 1 != xorb.chunk_count:
                problems.append(("bad-xorb", xorb.xorb_hash, "its chunk index does not match its chunk count"))
        for sha, size in shards:
            if self.store.blob_size(sha) != size:
                problems.append(("missing-blob", sha, "a Xet shard record needs it"))
        for row in files:
            terms = self._terms(row.file_hash)
            bad = [t for t in terms if t[0] not in xorbs or not 0 <= t[1] < t[2] <= xorbs[t[0]].chunk_count]
            if bad or sum(t[3] for t in terms) != row.size:
                problems.append(("bad-xet-file", row.file_hash, "its terms name missing chunks or do not add up "
                                                                "to its size"))
                continue
            if verify:
                digest = hashlib.sha256()
                try:
                    for piece in self._iter_terms(terms, 0, row.size):
                        digest.update(piece)
                except XetObjectError as exc:
                    problems.append(("corrupt-blob", row.sha256, f"Xet file {row.file_hash}: {exc.message}"))
                    continue
                if digest.hexdigest() != row.sha256:
                    problems.append(("corrupt-blob", row.sha256, f"Xet file {row.file_hash} reassembles to "
                                                                 f"{digest.hexdigest()}"))
        return problems


def _terms_of(entry: FileEntry) -> Iterator[tuple[str, int, int, int]]:
    for term in entry.terms:
        yield to_hex(term.xorb), term.start, term.end, term.size


def _merged(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Overlapping or touching chunk ranges of one xorb as one fetch each."""
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


class _Access:
    """Which chunk runs of a xorb the caller may reference, for a write to ``repo``.

    All of it if ``repo`` received the xorb or ``actor`` once uploaded it; otherwise the runs that terms of
    files the caller may read (or files uploaded to ``repo``, not committed yet) cover.
    """

    def __init__(self, xet: XetStorage, repo: Repo, may_read: MayRead, actor: str | None = None) -> None:
        self._xet = xet
        self._repo = repo
        self._actor = actor
        self._may_read = may_read
        self._intervals: dict[str, list[tuple[int, int]]] = {}
        self._readable: dict[str, bool] = {}

    def _file_readable(self, sha256: str) -> bool:
        if sha256 not in self._readable:
            store = self._xet.store
            self._readable[sha256] = store.has_upload(self._repo.repo_id, sha256, repo_type=self._repo.repo_type) \
                or self._may_read(sha256)
        return self._readable[sha256]

    def intervals(self, xorb_hex: str) -> list[tuple[int, int]]:
        if xorb_hex in self._intervals:
            return self._intervals[xorb_hex]
        store = self._xet.store
        found = self._xet.xorb_blob(xorb_hex)
        result: list[tuple[int, int]] = []
        if found is not None and (store.has_upload(self._repo.repo_id, found[0], repo_type=self._repo.repo_type)
                                  or self._xet.uploaded_by(xorb_hex, self._actor)):
            result = [(0, 2**31)]
        elif found is not None:
            t, f = x.xet_terms.c, x.xet_files.c
            with self._xet.db.read() as conn:
                runs = conn.execute(select(t.chunk_start, t.chunk_end, f.sha256)
                                    .join(x.xet_files, f.file_hash == t.file_hash)
                                    .where(t.xorb_hash == xorb_hex)).all()
            result = _merged([(lo, hi) for lo, hi, sha in runs if self._file_readable(sha)])
        self._intervals[xorb_hex] = result
        return result

    def covers(self, xorb_hex: str, lo: int, hi: int) -> bool:
        return any(a <= lo and hi <= b for a, b in self.intervals(xorb_hex))


class _ShardCheck:
    """The checks of one uploaded shard, against the stored chunk index."""

    def __init__(self, xet: XetStorage, repo: Repo, may_read: MayRead, max_file_bytes: int | None, *,
                 actor: str | None = None) -> None:
        self._xet = xet
        self._access = _Access(xet, repo, may_read, actor)
        self._max_file_bytes = max_file_bytes
        self._xorbs: dict[str, _Xorb] = {}
        self.blocks: list[XorbBlock] = []

    def _xorb(self, raw: bytes) -> _Xorb:
        xorb_hex = to_hex(raw)
        if xorb_hex not in self._xorbs:
            xorb = self._xet._xorb(xorb_hex, with_chunks=True)
            if xorb is None:
                raise XetObjectError(f"the shard names xorb {xorb_hex}, which was not uploaded",
                                     hint="upload every xorb before the shard")
            if len(self._xorbs) >= 8:  # terms visit xorbs mostly in order: keep a few, not all
                self._xorbs.pop(next(iter(self._xorbs)))
            self._xorbs[xorb_hex] = xorb
        return self._xorbs[xorb_hex]

    def xorb_block(self, block: XorbBlock) -> None:
        xorb = self._xorb(block.xorb)
        declared = [(to_hex(h), start, size) for h, start, size in block.chunks]
        stored = [(c.hash, c.unpacked_start, c.size) for c in xorb.chunks]
        if declared != stored:
            raise XetObjectError(f"the shard describes xorb {xorb.xorb_hash} differently from its uploaded chunks")
        self.blocks.append(block)

    def file(self, entry: FileEntry) -> tuple[FileEntry, XetFile, bool]:
        """(entry, the file it makes, whether the store already has that file)."""
        file_hex = to_hex(entry.file_hash)
        leaves: list[tuple[bytes, int]] = []
        for term in entry.terms:
            xorb = self._xorb(term.xorb)
            if term.end > len(xorb.chunks):
                raise XetObjectError(f"a term names chunks [{term.start}, {term.end}) of xorb {xorb.xorb_hash}, "
                                     f"which has {len(xorb.chunks)}")
            chunks = xorb.chunks[term.start:term.end]
            if sum(c.size for c in chunks) != term.size:
                raise XetObjectError(f"a term of file {file_hex} declares {term.size} bytes, its chunks hold "
                                     f"{sum(c.size for c in chunks)}")
            raw = [from_hex(c.hash) for c in chunks]
            if term.verification != verification_hash(raw):
                raise XetObjectError(f"a term of file {file_hex} has a wrong verification hash")
            if not self._access.covers(xorb.xorb_hash, term.start, term.end):
                raise XetObjectError(f"file {file_hex} names chunks of xorb {xorb.xorb_hash} that this upload "
                                     "may not use", hint="upload the data itself (its xorbs) to this repo")
            leaves.extend(zip(raw, (c.size for c in chunks), strict=True))
        if file_hash(leaves) != entry.file_hash:
            raise XetObjectError(f"the chunks of file {file_hex} hash to {to_hex(file_hash(leaves))}")
        if entry.sha256 is None:
            raise XetObjectError(f"file {file_hex} has no sha256")
        sha256 = entry.sha256.hex()
        size = sum(size for _, size in leaves)
        if self._max_file_bytes is not None and size > self._max_file_bytes:
            raise PayloadTooLargeError(f"file {file_hex} is {size} bytes, over this hub's limit of "
                                       f"{self._max_file_bytes}")
        known = self._xet.file_by_hash(file_hex)
        if known is not None and (known.sha256, known.size) != (sha256, size):
            raise XetObjectError(f"file {file_hex} is stored with sha256 {known.sha256}, the shard says {sha256}")
        return entry, XetFile(file_hex, sha256, size), known is not None
