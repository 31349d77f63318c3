"""Signed model versions: trusted public keys per namespace, hub attestations, signature policies.

Revision ID: 0010
Revises: 0015
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "signing_keys",
        sa.Column("pk", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("namespace", sa.String(96), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("name", sa.String(96), nullable=False),
        sa.Column("public_key", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(96), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_by", sa.String(96), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("pk", name="pk_signing_keys"),
        sa.UniqueConstraint("namespace", "fingerprint", name="uq_signing_keys_namespace_fingerprint"),
    )
    op.create_table(
        "attestations",
        sa.Column("pk", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("repo_type", sa.String(16), nullable=False),
        sa.Column("repo_id", sa.String(200), nullable=False),
        sa.Column("commit", sa.String(40), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("subject_path", sa.String(1000), nullable=False),
        sa.Column("envelope", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("pk", name="pk_attestations"),
    )
    op.create_index("ix_attestations_repo_type_repo_id_commit", "attestations", ["repo_type", "repo_id", "commit"])
    op.create_table(
        "signing_policies",
        sa.Column("pk", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("namespace", sa.String(96), nullable=False),
        sa.Column("ref_pattern", sa.String(255), nullable=False),
        sa.Column("created_by", sa.String(96), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("pk", name="pk_signing_policies"),
        sa.UniqueConstraint("namespace", "ref_pattern", name="uq_signing_policies_namespace_ref_pattern"),
    )


def downgrade() -> None:
    op.drop_table("signing_policies")
    op.drop_index("ix_attestations_repo_type_repo_id_commit", table_name="attestations")
    op.drop_table("attestations")
    op.drop_table("signing_keys")
