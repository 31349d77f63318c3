"""The store's metadata tables (SQLAlchemy Core), and the one ``MetaData`` every domain declares its tables on.

The store owns repos, commits, trees, refs, blobs, LFS upload grants, hub settings and the audit log: names,
commits and trees; bytes live in the blob store, keyed by sha256. Other domains own their tables and declare
them on :data:`metadata` in their own package (accounts in ``fmhub.accounts``, runs and pipeline step records
in ``fmhub.runs``, the evaluations index in ``fmhub.evaluations``), listed in :data:`DOMAIN_TABLE_MODULES`.
Alembic migrations in ``migrations/`` create and evolve all of them (one database, one schema version).
"""

from __future__ import annotations

import importlib

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

__all__ = ["metadata", "complete_metadata", "DOMAIN_TABLE_MODULES", "repos", "commits", "trees", "tree_entries",
           "refs", "blobs", "blob_keys", "audit_log", "lfs_uploads", "blob_scans", "hub_settings", "git_blob_ids",
           "discussions", "discussion_events", "repo_redirects", "SCHEMA_HEAD"]

#: The Alembic revision this code expects; a test keeps it equal to the migrations' head.
SCHEMA_HEAD = "0013"

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

#: The modules declaring the other domains' tables on :data:`metadata`. Named, not imported: the store sits
#: below those domains and never depends on them; only :func:`complete_metadata` (for Alembic's view of the
#: whole schema, and the migration tests) loads them.
DOMAIN_TABLE_MODULES = ("fmhub.accounts._tables", "fmhub.runs._tables", "fmhub.evaluations._tables",
                        "fmhub.xet._tables", "fmhub.signing._tables", "fmhub.search._tables",
                        "fmhub.lineage._tables")


def complete_metadata() -> MetaData:
    """:data:`metadata` with every domain's tables declared on it (what the migrations create)."""
    for module in DOMAIN_TABLE_MODULES:
        importlib.import_module(module)
    return metadata


repos = Table(
    "repos",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("repo_type", String(16), nullable=False),
    Column("namespace", String(96), nullable=False),
    Column("name", String(96), nullable=False),
    # repo ids are unique case-insensitively, as on the Hugging Face Hub: "<type>/<lower(id)>"
    Column("key", String(210), nullable=False, unique=True),
    Column("private", Boolean, nullable=False, default=False),
    Column("default_branch", String(255), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

trees = Table(
    "trees",
    metadata,
    Column("tree_id", String(64), primary_key=True),  # sha256 over the sorted entries
    Column("file_count", Integer, nullable=False),
    Column("total_size", BigInteger, nullable=False),
)

tree_entries = Table(
    "tree_entries",
    metadata,
    Column("tree_id", String(64), ForeignKey("trees.tree_id", ondelete="CASCADE"), primary_key=True),
    Column("path", String(1024), primary_key=True),
    Column("blob_sha256", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Index(None, "blob_sha256"),
)

commits = Table(
    "commits",
    metadata,
    Column("repo_pk", Integer, ForeignKey("repos.pk", ondelete="CASCADE"), primary_key=True),
    Column("oid", String(40), primary_key=True),
    Column("tree_id", String(64), ForeignKey("trees.tree_id"), nullable=False),
    Column("parents", Text, nullable=False),  # JSON list of parent oids, first parent first
    Column("author", String(255), nullable=False),
    Column("title", Text, nullable=False),
    Column("message", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("generation", Integer, nullable=False),  # 1 + max(parent generation); orders history
    Index(None, "tree_id"),
)

refs = Table(
    "refs",
    metadata,
    Column("repo_pk", Integer, ForeignKey("repos.pk", ondelete="CASCADE"), primary_key=True),
    Column("kind", String(8), primary_key=True),  # "branch" | "tag"
    Column("name", String(255), primary_key=True),
    Column("commit_oid", String(40), nullable=False),
    Column("message", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # A name may be a branch and a tag at once (as in git and on the Hub); the kind is part of the key.
)

# One row per blob the store has been asked to hold: last_put_at is the grace clock for gc, so a blob
# uploaded (or re-uploaded as a dedup hit) just before a commit is never collected under it.
blobs = Table(
    "blobs",
    metadata,
    Column("sha256", String(64), primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("last_put_at", DateTime(timezone=True), nullable=False),
)


# Encryption at rest (fmhub.store.encryption): for each blob held encrypted, the ciphertext object that holds
# it (under a random name) and its data key, wrapped by key-encryption key ``key_id`` of key scope ``scope``
# ("": the store-wide key; else a namespace with a key of its own). A blob that repos of several scopes hold has
# one object and one data key, wrapped once per scope (the object and size repeat in each row). Rotation
# rewrites these rows, never the objects.
blob_keys = Table(
    "blob_keys",
    metadata,
    Column("sha256", String(64), primary_key=True),
    Column("scope", String(96), primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("object_sha256", String(64), nullable=False, index=True),
    Column("segment_size", Integer, nullable=False),
    Column("key_id", String(64), nullable=False, index=True),
    Column("wrapped_key", LargeBinary, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index(None, "scope"),
)

# Every write, in the transaction that made it: who, what, which repo, which ref and commit, when.
# Repo ids are copied, not referenced, so the trail outlives deleted repos.
audit_log = Table(
    "audit_log",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor", String(255), nullable=False),
    Column("action", String(32), nullable=False),
    Column("repo_type", String(16), nullable=True),
    Column("repo_id", String(200), nullable=True),
    Column("ref", String(255), nullable=True),
    Column("commit_oid", String(40), nullable=True),
    Column("detail", Text, nullable=True),
    Index(None, "at"),
    Index(None, "repo_type", "repo_id"),
)

# LFS objects uploaded for a repo: a commit may reference an existing blob only if its repo received
# it (or it is already in a tree the caller can read), so knowing a sha256 grants no access to bytes.
lfs_uploads = Table(
    "lfs_uploads",
    metadata,
    Column("repo_pk", Integer, ForeignKey("repos.pk", ondelete="CASCADE"), primary_key=True),
    Column("sha256", String(64), primary_key=True),
    Column("uploaded_at", DateTime(timezone=True), nullable=False),
)

# What the pickle scanner found in a blob, once per blob (blobs are immutable): ``pickle_imports`` is a
# JSON list of [module, name, safety] (NULL: no pickle). Read to mark files unsafe (securityFileStatus).
blob_scans = Table(
    "blob_scans",
    metadata,
    Column("sha256", String(64), primary_key=True),
    Column("pickle_imports", Text, nullable=True),
    Column("scanner", String(64), nullable=False),
    Column("scanned_at", DateTime(timezone=True), nullable=False),
)

# Server-wide values shared by every worker (e.g. the key that signs LFS upload URLs).
hub_settings = Table(
    "hub_settings",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)


# The git blob id (sha1 over "blob {size}\0" + bytes) of files stored by sha256, computed once on first
# demand: the Hugging Face protocol names regular files by it (tree ``oid``, preupload ``oid``), and the
# client verifies downloads against it. Content-identified, so a row never changes.
git_blob_ids = Table(
    "git_blob_ids",
    metadata,
    Column("sha256", String(64), primary_key=True),
    Column("git_sha1", String(40), nullable=False),
)


# Discussions and pull requests of a repo, numbered from 1 per repo as on the Hub. A pull request's commits
# live on the ref ``refs/pr/{num}`` (refs.kind "pr"); ``base_commit`` is the target branch's head when it was
# opened (the merge base), ``merge_commit`` the commit its merge made on the target branch.
discussions = Table(
    "discussions",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("repo_pk", Integer, ForeignKey("repos.pk", ondelete="CASCADE"), nullable=False),
    Column("num", Integer, nullable=False),
    Column("title", Text, nullable=False),
    Column("author", String(255), nullable=False),
    Column("is_pull_request", Boolean, nullable=False),
    Column("status", String(16), nullable=False),  # open | closed | merged | draft
    Column("target_branch", String(255), nullable=True),
    Column("base_commit", String(40), nullable=True),
    Column("merge_commit", String(40), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("repo_pk", "num"),
)

# What happened in a discussion, in order: comments (editable, hideable), status and title changes, commits
# pushed to a pull request's ref.
discussion_events = Table(
    "discussion_events",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("discussion_pk", Integer, ForeignKey("discussions.pk", ondelete="CASCADE"), nullable=False),
    Column("kind", String(16), nullable=False),  # comment | status-change | title-change | commit
    Column("author", String(255), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("content", Text, nullable=True),  # comment text, new status, new title, commit oid
    Column("detail", Text, nullable=True),  # old title, commit title
    Column("edits", Integer, nullable=False, default=0),
    Column("hidden", Boolean, nullable=False, default=False),
    Index(None, "discussion_pk"),
)


# The old names of moved (renamed) repos: requests naming one are redirected to the repo's current name, as
# on the Hub. Keyed like ``repos.key`` ("<type>/<lower(id)>"); the repo's pk, so a chain of moves needs no
# update. A repo created under an old name takes it back (its row is deleted).
repo_redirects = Table(
    "repo_redirects",
    metadata,
    Column("key", String(210), primary_key=True),
    Column("repo_pk", Integer, ForeignKey("repos.pk", ondelete="CASCADE"), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index(None, "repo_pk"),
)
