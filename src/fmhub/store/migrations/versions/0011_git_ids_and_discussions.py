"""Git blob ids of stored files (the Hugging Face protocol's ``oid`` of regular files); discussions and pull
requests with their events.

Revision ID: 0011
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("refs") as batch:  # a branch and a tag may share a name, as on the Hub
        batch.drop_constraint("uq_refs_repo_pk_name", type_="unique")
    op.create_table(
        "git_blob_ids",
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("git_sha1", sa.String(40), nullable=False),
        sa.PrimaryKeyConstraint("sha256", name="pk_git_blob_ids"),
    )
    op.create_table(
        "discussions",
        sa.Column("pk", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("repo_pk", sa.Integer(), nullable=False),
        sa.Column("num", sa.Integer(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("author", sa.String(255), nullable=False),
        sa.Column("is_pull_request", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("target_branch", sa.String(255), nullable=True),
        sa.Column("base_commit", sa.String(40), nullable=True),
        sa.Column("merge_commit", sa.String(40), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["repo_pk"], ["repos.pk"], name="fk_discussions_repo_pk_repos", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("pk", name="pk_discussions"),
        sa.UniqueConstraint("repo_pk", "num", name="uq_discussions_repo_pk_num"),
    )
    op.create_table(
        "discussion_events",
        sa.Column("pk", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("discussion_pk", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("author", sa.String(255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("content", sa.Text(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("edits", sa.Integer(), nullable=False),
        sa.Column("hidden", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["discussion_pk"], ["discussions.pk"],
                                name="fk_discussion_events_discussion_pk_discussions", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("pk", name="pk_discussion_events"),
    )
    op.create_index("ix_discussion_events_discussion_pk", "discussion_events", ["discussion_pk"])
    op.create_table(
        "xet_xorb_uploaders",
        sa.Column("xorb_hash", sa.String(64), nullable=False),
        sa.Column("uploader", sa.String(255), nullable=False),
        sa.Column("uploaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["xorb_hash"], ["xet_xorbs.xorb_hash"],
                                name="fk_xet_xorb_uploaders_xorb_hash_xet_xorbs", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("xorb_hash", "uploader", name="pk_xet_xorb_uploaders"),
    )


def downgrade() -> None:
    op.drop_table("xet_xorb_uploaders")
    op.drop_index("ix_discussion_events_discussion_pk", table_name="discussion_events")
    op.drop_table("discussion_events")
    op.drop_table("discussions")
    op.drop_table("git_blob_ids")
    with op.batch_alter_table("refs") as batch:
        batch.create_unique_constraint("uq_refs_repo_pk_name", ["repo_pk", "name"])
