"""Git blob ids of stored files (the Hugging Face protocol's ``oid`` of regular files).

Revision ID: 0011
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "git_blob_ids",
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("git_sha1", sa.String(40), nullable=False),
        sa.PrimaryKeyConstraint("sha256", name="pk_git_blob_ids"),
    )


def downgrade() -> None:
    op.drop_table("git_blob_ids")
