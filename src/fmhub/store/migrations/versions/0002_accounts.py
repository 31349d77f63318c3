"""Accounts, organizations, tokens, the audit log, LFS upload grants and hub settings.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("pk", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("name", sa.String(96), nullable=False),
        sa.Column("key", sa.String(96), nullable=False),
        sa.Column("fullname", sa.String(255), nullable=True),
        sa.Column("email", sa.String(255), nullable=True),
        sa.Column("is_admin", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("pk", name="pk_accounts"),
        sa.UniqueConstraint("key", name="uq_accounts_key"),
    )
    op.create_table(
        "memberships",
        sa.Column("org_pk", sa.Integer(), nullable=False),
        sa.Column("user_pk", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(8), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["org_pk"], ["accounts.pk"], name="fk_memberships_org_pk_accounts",
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_pk"], ["accounts.pk"], name="fk_memberships_user_pk_accounts",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("org_pk", "user_pk", name="pk_memberships"),
    )
    op.create_index("ix_memberships_user_pk", "memberships", ["user_pk"])
    op.create_table(
        "tokens",
        sa.Column("pk", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("user_pk", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(96), nullable=False),
        sa.Column("role", sa.String(8), nullable=False),
        sa.Column("lookup", sa.String(16), nullable=False),
        sa.Column("salt", sa.String(32), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["user_pk"], ["accounts.pk"], name="fk_tokens_user_pk_accounts", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("pk", name="pk_tokens"),
        sa.UniqueConstraint("lookup", name="uq_tokens_lookup"),
    )
    op.create_index("ix_tokens_user_pk", "tokens", ["user_pk"])
    op.create_table(
        "audit_log",
        sa.Column("pk", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("repo_type", sa.String(16), nullable=True),
        sa.Column("repo_id", sa.String(200), nullable=True),
        sa.Column("ref", sa.String(255), nullable=True),
        sa.Column("commit_oid", sa.String(40), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("pk", name="pk_audit_log"),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    op.create_index("ix_audit_log_repo_type_repo_id", "audit_log", ["repo_type", "repo_id"])
    op.create_table(
        "lfs_uploads",
        sa.Column("repo_pk", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("uploaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["repo_pk"], ["repos.pk"], name="fk_lfs_uploads_repo_pk_repos", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("repo_pk", "sha256", name="pk_lfs_uploads"),
    )
    op.create_table(
        "hub_settings",
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_hub_settings"),
    )


def downgrade() -> None:
    for table in ("hub_settings", "lfs_uploads", "audit_log", "tokens", "memberships", "accounts"):
        op.drop_table(table)
