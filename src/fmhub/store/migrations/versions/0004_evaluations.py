"""Evaluation report cards pushed to model repos.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "evaluations",
        sa.Column("pk", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("model_commit", sa.String(40), nullable=False),
        sa.Column("card_commit", sa.String(40), nullable=False),
        sa.Column("dataset", sa.String(200), nullable=False),
        sa.Column("dataset_commit", sa.String(40), nullable=False),
        sa.Column("split", sa.String(255), nullable=False),
        sa.Column("task", sa.String(64), nullable=False),
        sa.Column("report_path", sa.String(1000), nullable=False),
        sa.Column("metrics", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("pk", name="pk_evaluations"),
    )
    op.create_index("ix_evaluations_model_created_at", "evaluations", ["model", "created_at"])


def downgrade() -> None:
    op.drop_table("evaluations")
