"""The Xet domain's tables (migration 0006): xorbs and their chunk index, Xet files and their terms, shards.

Declared on the store's shared :data:`fmhub.store.metadata`; only :mod:`fmhub.xet` reads and writes them.
The bytes live in the blob store: each xorb and each shard as the blob of its serialized bytes (keyed by
their sha256, as every blob). Hashes are kept in their wire form (64 hex characters).

``last_seen_at`` is the gc grace clock: an upload (or a shard naming the xorb) restarts it, so gc never
collects what an upload in flight is about to reference.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, ForeignKey, Index, Integer, String, Table

from fmhub.store import metadata

__all__ = ["xet_xorbs", "xet_chunks", "xet_files", "xet_terms", "xet_shards", "xet_xorb_uploaders"]

xet_xorbs = Table(
    "xet_xorbs",
    metadata,
    Column("xorb_hash", String(64), primary_key=True),
    Column("blob_sha256", String(64), nullable=False),  # the serialized xorb, in the blob store
    Column("stored_bytes", BigInteger, nullable=False),  # serialized size
    Column("unpacked_bytes", BigInteger, nullable=False),  # sum of the chunks' uncompressed sizes
    Column("chunk_count", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_seen_at", DateTime(timezone=True), nullable=False),
    Index(None, "blob_sha256"),
)

# One row per chunk of each xorb: where its bytes sit in the serialized xorb (header included), its
# uncompressed size and offset, and its hash (the dedup index: looked up by hash).
xet_chunks = Table(
    "xet_chunks",
    metadata,
    Column("xorb_hash", String(64), ForeignKey("xet_xorbs.xorb_hash", ondelete="CASCADE"), primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("chunk_hash", String(64), nullable=False),
    Column("byte_start", BigInteger, nullable=False),
    Column("byte_end", BigInteger, nullable=False),
    Column("unpacked_start", BigInteger, nullable=False),
    Column("size", Integer, nullable=False),
    Index(None, "chunk_hash"),
)

# A file uploaded through Xet: its Xet hash, the sha256 and size a commit names it by, and the shard that
# registered it. Several Xet hashes may name the same bytes (a client may cut chunks differently).
xet_files = Table(
    "xet_files",
    metadata,
    Column("file_hash", String(64), primary_key=True),
    Column("sha256", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("shard_sha256", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_seen_at", DateTime(timezone=True), nullable=False),
    Index(None, "sha256"),
)

# A file's reconstruction: in order, runs of chunks [chunk_start, chunk_end) of a xorb; unpacked_start is
# where the run begins in the file.
xet_terms = Table(
    "xet_terms",
    metadata,
    Column("file_hash", String(64), ForeignKey("xet_files.file_hash", ondelete="CASCADE"), primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("xorb_hash", String(64), ForeignKey("xet_xorbs.xorb_hash"), nullable=False),
    Column("chunk_start", Integer, nullable=False),
    Column("chunk_end", Integer, nullable=False),
    Column("unpacked_start", BigInteger, nullable=False),
    Column("size", BigInteger, nullable=False),
    Index(None, "xorb_hash"),
)

# Each accepted shard, kept as a blob: the upload record the files came from.
xet_shards = Table(
    "xet_shards",
    metadata,
    Column("sha256", String(64), primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("uploaded_by", String(255), nullable=False),
    Column("repo_type", String(16), nullable=False),
    Column("repo_id", String(200), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)


# Who proved to hold each xorb's bytes by uploading it (migration 0011). The client remembers what it
# uploaded (its shard cache, per endpoint) and later names those xorbs without sending them; a repo's own
# grant (lfs_uploads) goes with the repo when it is deleted, this one stays with the user, so re-uploading
# the same bytes to a new repo works, and never for another user.
xet_xorb_uploaders = Table(
    "xet_xorb_uploaders",
    metadata,
    Column("xorb_hash", String(64), ForeignKey("xet_xorbs.xorb_hash", ondelete="CASCADE"), primary_key=True),
    Column("uploader", String(255), primary_key=True),
    Column("uploaded_at", DateTime(timezone=True), nullable=False),
)
