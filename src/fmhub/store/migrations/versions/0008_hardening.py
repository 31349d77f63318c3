"""Hardening (issue 29): tokens made from another token (web sessions) name it and stop working when it
does; what the pickle scanner found in each blob.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Batch mode: SQLite adds a column with a foreign key by rebuilding the table.
    with op.batch_alter_table("tokens") as batch:
        batch.add_column(sa.Column("parent_pk", sa.Integer(), nullable=True))
        batch.create_foreign_key("fk_tokens_parent_pk_tokens", "tokens", ["parent_pk"], ["pk"], ondelete="CASCADE")
        batch.create_index("ix_tokens_parent_pk", ["parent_pk"])
    op.create_table(
        "blob_scans",
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("pickle_imports", sa.Text(), nullable=True),
        sa.Column("scanner", sa.String(64), nullable=False),
        sa.Column("scanned_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sha256", name="pk_blob_scans"),
    )


def downgrade() -> None:
    op.drop_table("blob_scans")
    with op.batch_alter_table("tokens") as batch:
        batch.drop_index("ix_tokens_parent_pk")
        batch.drop_constraint("fk_tokens_parent_pk_tokens", type_="foreignkey")
        batch.drop_column("parent_pk")
