"""Xet storage: xorbs and their chunk index, Xet files and their terms, shards (the fmhub.xet domain).

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "xet_xorbs",
        sa.Column("xorb_hash", sa.String(64), nullable=False),
        sa.Column("blob_sha256", sa.String(64), nullable=False),
        sa.Column("stored_bytes", sa.BigInteger(), nullable=False),
        sa.Column("unpacked_bytes", sa.BigInteger(), nullable=False),
        sa.Column("chunk_count", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("xorb_hash", name="pk_xet_xorbs"),
    )
    op.create_index("ix_xet_xorbs_blob_sha256", "xet_xorbs", ["blob_sha256"])
    op.create_table(
        "xet_chunks",
        sa.Column("xorb_hash", sa.String(64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("chunk_hash", sa.String(64), nullable=False),
        sa.Column("byte_start", sa.BigInteger(), nullable=False),
        sa.Column("byte_end", sa.BigInteger(), nullable=False),
        sa.Column("unpacked_start", sa.BigInteger(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["xorb_hash"], ["xet_xorbs.xorb_hash"], name="fk_xet_chunks_xorb_hash_xet_xorbs",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("xorb_hash", "position", name="pk_xet_chunks"),
    )
    op.create_index("ix_xet_chunks_chunk_hash", "xet_chunks", ["chunk_hash"])
    op.create_table(
        "xet_files",
        sa.Column("file_hash", sa.String(64), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("shard_sha256", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("file_hash", name="pk_xet_files"),
    )
    op.create_index("ix_xet_files_sha256", "xet_files", ["sha256"])
    op.create_table(
        "xet_terms",
        sa.Column("file_hash", sa.String(64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("xorb_hash", sa.String(64), nullable=False),
        sa.Column("chunk_start", sa.Integer(), nullable=False),
        sa.Column("chunk_end", sa.Integer(), nullable=False),
        sa.Column("unpacked_start", sa.BigInteger(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["file_hash"], ["xet_files.file_hash"], name="fk_xet_terms_file_hash_xet_files",
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["xorb_hash"], ["xet_xorbs.xorb_hash"], name="fk_xet_terms_xorb_hash_xet_xorbs"),
        sa.PrimaryKeyConstraint("file_hash", "position", name="pk_xet_terms"),
    )
    op.create_index("ix_xet_terms_xorb_hash", "xet_terms", ["xorb_hash"])
    op.create_table(
        "xet_shards",
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("uploaded_by", sa.String(255), nullable=False),
        sa.Column("repo_type", sa.String(16), nullable=False),
        sa.Column("repo_id", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sha256", name="pk_xet_shards"),
    )


def downgrade() -> None:
    op.drop_table("xet_shards")
    op.drop_table("xet_terms")
    op.drop_table("xet_files")
    op.drop_table("xet_chunks")
    op.drop_table("xet_xorbs")
