"""Metadata tables (SQLAlchemy Core). Alembic migrations in ``migrations/`` create and evolve them.

The tables hold names, commits and trees; bytes live in the blob store, keyed by sha256.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

__all__ = ["metadata", "repos", "commits", "trees", "tree_entries", "refs", "blobs", "accounts", "memberships",
           "tokens", "audit_log", "lfs_uploads", "hub_settings", "runs", "run_metrics", "evaluations", "pipeline_steps",
           "SCHEMA_HEAD"]

#: The Alembic revision this code expects; a test keeps it equal to the migrations' head.
SCHEMA_HEAD = "0005"

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

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
    UniqueConstraint("repo_pk", "name"),  # a name is a branch or a tag, never both
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


# -- accounts (0002) ---------------------------------------------------------------------------------

# Users and organizations share one namespace (a repo's namespace is one or the other), as on the Hub.
accounts = Table(
    "accounts",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(8), nullable=False),  # "user" | "org"
    Column("name", String(96), nullable=False),
    Column("key", String(96), nullable=False, unique=True),  # lower(name): names are unique case-insensitively
    Column("fullname", String(255), nullable=True),
    Column("email", String(255), nullable=True),
    Column("is_admin", Boolean, nullable=False, default=False),  # site administrator (users only)
    Column("created_at", DateTime(timezone=True), nullable=False),
)

memberships = Table(
    "memberships",
    metadata,
    Column("org_pk", Integer, ForeignKey("accounts.pk", ondelete="CASCADE"), primary_key=True),
    Column("user_pk", Integer, ForeignKey("accounts.pk", ondelete="CASCADE"), primary_key=True),
    Column("role", String(8), nullable=False),  # "read" | "write" | "admin"
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index(None, "user_pk"),
)

# A token is shown once; the table keeps a lookup prefix of its sha256 (to find the row) and a salted
# sha256 (to check it in constant time), never the token.
tokens = Table(
    "tokens",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("user_pk", Integer, ForeignKey("accounts.pk", ondelete="CASCADE"), nullable=False),
    Column("name", String(96), nullable=False),
    Column("role", String(8), nullable=False),  # "read" | "write"
    Column("lookup", String(16), nullable=False, unique=True),
    Column("salt", String(32), nullable=False),
    Column("hash", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=True),
    Column("last_used_at", DateTime(timezone=True), nullable=True),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    Index(None, "user_pk"),
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

# Server-wide values shared by every worker (e.g. the key that signs LFS upload URLs).
hub_settings = Table(
    "hub_settings",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)


# -- runs (0003) -------------------------------------------------------------------------------------

# A training run: what went in (base model and dataset as repo + commit, the resolved config, the command),
# where it ran (code and library versions, hardware) and what came out (output repo + commit, final
# metrics). Repo ids are copied, not referenced, so a run outlives the repos it names (as audit_log).
runs = Table(
    "runs",
    metadata,
    Column("id", String(32), primary_key=True),  # "r-" + 12 hex
    Column("name", String(255), nullable=False),
    Column("task", String(64), nullable=False),
    Column("status", String(16), nullable=False),  # "running" | "completed" | "failed" | "stopped"
    Column("config", Text, nullable=False),  # JSON object: the resolved config
    Column("command", Text, nullable=False),
    Column("base_model", String(200), nullable=True),
    Column("base_commit", String(40), nullable=True),
    Column("dataset", String(200), nullable=True),
    Column("dataset_commit", String(40), nullable=True),
    Column("output", String(200), nullable=True),
    Column("output_commit", String(40), nullable=True),  # set when the output is published
    Column("code_version", String(64), nullable=False),
    Column("libraries", Text, nullable=False),  # JSON object: name -> version
    Column("hardware", Text, nullable=False),  # JSON object: cpu, cores, ram_gib, gpus
    Column("created_by", String(255), nullable=True),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("ended_at", DateTime(timezone=True), nullable=True),
    Column("summary", Text, nullable=True),  # JSON object: final metrics
    Index(None, "started_at"),
)

# One row per (run, step, metric); only finite values are stored.
run_metrics = Table(
    "run_metrics",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(32), ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("step", Integer, nullable=False),
    Column("epoch", Double, nullable=True),
    Column("key", String(255), nullable=False),
    Column("value", Double, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Index(None, "run_id", "key", "step"),
)


# -- evaluations (0004) ------------------------------------------------------------------------------

# A pushed evaluation report card: which model version was evaluated on which dataset version and split,
# the commit holding the card (eval/<dataset>/<split>/report.json) and its headline metrics, so versions
# can be listed and compared by metric without reading every report.
evaluations = Table(
    "evaluations",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("model", String(200), nullable=False),
    Column("model_commit", String(40), nullable=False),  # the evaluated weights
    Column("card_commit", String(40), nullable=False),  # the commit holding the report
    Column("dataset", String(200), nullable=False),
    Column("dataset_commit", String(40), nullable=False),
    Column("split", String(255), nullable=False),
    Column("task", String(64), nullable=False),
    Column("report_path", String(1000), nullable=False),
    Column("metrics", Text, nullable=False),  # JSON object: flat name -> number
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index(None, "model", "created_at"),
)


# -- pipeline step records (0005) ----------------------------------------------------------------------

# What a pipeline step produced for a key (sha256 of its kind, resolved options and inputs' commits):
# fmhub run skips a step whose key is here and whose output commit still exists.
pipeline_steps = Table(
    "pipeline_steps",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("pipeline", String(200), nullable=False),
    Column("step", String(200), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("output", String(300), nullable=False),  # repo@commit
    Column("metrics", Text, nullable=False),  # JSON
    Column("detail", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
