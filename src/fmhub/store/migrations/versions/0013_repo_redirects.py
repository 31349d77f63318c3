"""Redirects from the old names of moved repos (``move_repo``), as the Hub keeps them.

Revision ID: 0013
Revises: 0014
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "repo_redirects",
        sa.Column("key", sa.String(210), nullable=False),
        sa.Column("repo_pk", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["repo_pk"], ["repos.pk"], name="fk_repo_redirects_repo_pk_repos", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("key", name="pk_repo_redirects"),
    )
    op.create_index("ix_repo_redirects_repo_pk", "repo_redirects", ["repo_pk"])


def downgrade() -> None:
    op.drop_index("ix_repo_redirects_repo_pk", table_name="repo_redirects")
    op.drop_table("repo_redirects")
