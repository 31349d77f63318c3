"""The accounts domain's tables: users and organizations, memberships, access tokens (migration 0002).

Declared on the store's shared :data:`fmhub.store.metadata`, so the one Alembic history creates them beside
the repos; only :mod:`fmhub.accounts` reads and writes them.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, DateTime, ForeignKey, Index, Integer, String, Table

from fmhub.store import metadata

__all__ = ["accounts", "memberships", "tokens"]

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
    # The token this one was made from (a web session's log-in token): it stops working when that one does.
    Column("parent_pk", Integer, ForeignKey("tokens.pk", ondelete="CASCADE"), nullable=True),
    Index(None, "user_pk"),
    Index(None, "parent_pk"),
)
