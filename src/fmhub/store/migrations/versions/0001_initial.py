"""Initial schema: repos, trees, tree entries, commits, refs, blobs.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "repos",
        sa.Column("pk", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("repo_type", sa.String(16), nullable=False),
        sa.Column("namespace", sa.String(96), nullable=False),
        sa.Column("name", sa.String(96), nullable=False),
        sa.Column("key", sa.String(210), nullable=False),
        sa.Column("private", sa.Boolean(), nullable=False),
        sa.Column("default_branch", sa.String(255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("pk", name="pk_repos"),
        sa.UniqueConstraint("key", name="uq_repos_key"),
    )
    op.create_table(
        "trees",
        sa.Column("tree_id", sa.String(64), nullable=False),
        sa.Column("file_count", sa.Integer(), nullable=False),
        sa.Column("total_size", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("tree_id", name="pk_trees"),
    )
    op.create_table(
        "tree_entries",
        sa.Column("tree_id", sa.String(64), nullable=False),
        sa.Column("path", sa.String(1024), nullable=False),
        sa.Column("blob_sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["tree_id"], ["trees.tree_id"], name="fk_tree_entries_tree_id_trees", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("tree_id", "path", name="pk_tree_entries"),
    )
    op.create_index("ix_tree_entries_blob_sha256", "tree_entries", ["blob_sha256"])
    op.create_table(
        "commits",
        sa.Column("repo_pk", sa.Integer(), nullable=False),
        sa.Column("oid", sa.String(40), nullable=False),
        sa.Column("tree_id", sa.String(64), nullable=False),
        sa.Column("parents", sa.Text(), nullable=False),
        sa.Column("author", sa.String(255), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["repo_pk"], ["repos.pk"], name="fk_commits_repo_pk_repos", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["tree_id"], ["trees.tree_id"], name="fk_commits_tree_id_trees"),
        sa.PrimaryKeyConstraint("repo_pk", "oid", name="pk_commits"),
    )
    op.create_index("ix_commits_tree_id", "commits", ["tree_id"])
    op.create_table(
        "refs",
        sa.Column("repo_pk", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("commit_oid", sa.String(40), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["repo_pk"], ["repos.pk"], name="fk_refs_repo_pk_repos", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("repo_pk", "kind", "name", name="pk_refs"),
        sa.UniqueConstraint("repo_pk", "name", name="uq_refs_repo_pk_name"),
    )
    op.create_table(
        "blobs",
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("last_put_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sha256", name="pk_blobs"),
    )


def downgrade() -> None:
    for table in ("blobs", "refs", "commits", "tree_entries", "trees", "repos"):
        op.drop_table(table)
