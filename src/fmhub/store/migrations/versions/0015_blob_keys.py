"""Encryption at rest: the wrapped data key and ciphertext object of each encrypted blob.

Revision ID: 0015
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "blob_keys",
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("object_sha256", sa.String(64), nullable=False),
        sa.Column("segment_size", sa.Integer(), nullable=False),
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("wrapped_key", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sha256", name="pk_blob_keys"),
        sa.UniqueConstraint("object_sha256", name="uq_blob_keys_object_sha256"),
    )
    op.create_index("ix_blob_keys_key_id", "blob_keys", ["key_id"])


def downgrade() -> None:
    op.drop_index("ix_blob_keys_key_id", table_name="blob_keys")
    op.drop_table("blob_keys")
