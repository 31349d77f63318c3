"""The signing domain's tables: trusted public keys per namespace, hub attestations, signature policies
(migration 0010).

Declared on the store's shared :data:`fmhub.store.metadata`, so the one Alembic history creates them beside
the repos; only :mod:`fmhub.signing` reads and writes them. No private key is ever stored: the hub's own key
lives in a file (``FMHUB_SIGNING_KEY``), users' keys on their machines.
"""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Index, Integer, String, Table, Text, UniqueConstraint

from fmhub.store import metadata

__all__ = ["signing_keys", "attestations", "signing_policies"]

# A public key an organization (or user namespace) trusts to sign its model versions. Revoking keeps the row
# (revoked_at): signatures by it fail from then on, and the history shows when and by whom.
signing_keys = Table(
    "signing_keys",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("namespace", String(96), nullable=False),  # lower-cased org or user name
    Column("fingerprint", String(64), nullable=False),  # sha256 of the public key's PEM
    Column("name", String(96), nullable=False),
    Column("public_key", Text, nullable=False),  # PEM (SubjectPublicKeyInfo)
    Column("created_by", String(96), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_by", String(96), nullable=True),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    UniqueConstraint("namespace", "fingerprint"),
)

# An in-toto statement the hub signed (a DSSE envelope, JSON) about a repo commit it produced or indexed:
# kind train | optimize | evaluate. subject_path: the card's path for evaluate (several cards per commit).
attestations = Table(
    "attestations",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("repo_type", String(16), nullable=False),
    Column("repo_id", String(200), nullable=False),
    Column("commit", String(40), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("subject_path", String(1000), nullable=False),
    Column("envelope", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index(None, "repo_type", "repo_id", "commit"),
)

# A namespace's rule: a ref matching ref_pattern (fnmatch, e.g. "prod" or "release-*") of its model repos only
# moves to a commit carrying a valid signature by one of the namespace's trusted keys.
signing_policies = Table(
    "signing_policies",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("namespace", String(96), nullable=False),
    Column("ref_pattern", String(255), nullable=False),
    Column("created_by", String(96), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("namespace", "ref_pattern"),
)
