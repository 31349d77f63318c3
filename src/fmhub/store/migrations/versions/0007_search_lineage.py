"""Search and lineage: a document, tags and metrics per repo (fmhub.search), the lineage graph (fmhub.lineage).

Text search gets the database's own index where it has one: an FTS5 trigram table on SQLite, a pg_trgm GIN
index on PostgreSQL (when the extension can be created; otherwise search scans, correct but slower). The
tables start empty: ``fmhub lineage reindex`` (run by the hub server at start when the index is behind the
store, see ``hub_settings['index.backfill']``) fills them from every repo's cards.

Revision ID: 0007
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0010"
branch_labels = None
depends_on = None

FTS_TABLE = "search_fts"
TRGM_INDEX = "ix_search_docs_text_trgm"


def upgrade() -> None:
    op.create_table(
        "search_docs",
        sa.Column("repo_pk", sa.Integer(), nullable=False),
        sa.Column("repo_type", sa.String(16), nullable=False),
        sa.Column("repo_id", sa.String(200), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("author", sa.String(96), nullable=False),
        sa.Column("private", sa.Boolean(), nullable=False),
        sa.Column("sha", sa.String(40), nullable=True),
        sa.Column("task", sa.String(128), nullable=True),
        sa.Column("library", sa.String(128), nullable=True),
        sa.Column("license", sa.String(128), nullable=True),
        sa.Column("tags", sa.Text(), nullable=False),
        sa.Column("card_data", sa.Text(), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["repo_pk"], ["repos.pk"], name="fk_search_docs_repo_pk_repos", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("repo_pk", name="pk_search_docs"),
    )
    op.create_index("ix_search_docs_repo_type_updated_at", "search_docs", ["repo_type", "updated_at"])
    op.create_index("ix_search_docs_repo_type_created_at", "search_docs", ["repo_type", "created_at"])
    op.create_index("ix_search_docs_repo_type_name", "search_docs", ["repo_type", "name"])
    op.create_index("ix_search_docs_repo_type_task", "search_docs", ["repo_type", "task"])
    op.create_table(
        "search_tags",
        sa.Column("tag", sa.String(255), nullable=False),
        sa.Column("repo_pk", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["repo_pk"], ["repos.pk"], name="fk_search_tags_repo_pk_repos", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("tag", "repo_pk", name="pk_search_tags"),
    )
    op.create_index("ix_search_tags_repo_pk", "search_tags", ["repo_pk"])
    op.create_table(
        "search_metrics",
        sa.Column("pk", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("repo_pk", sa.Integer(), nullable=False),
        sa.Column("model_commit", sa.String(40), nullable=False),
        sa.Column("dataset", sa.String(200), nullable=False),
        sa.Column("split", sa.String(255), nullable=False),
        sa.Column("metric", sa.String(128), nullable=False),
        sa.Column("value", sa.Double(), nullable=False),
        sa.ForeignKeyConstraint(["repo_pk"], ["repos.pk"], name="fk_search_metrics_repo_pk_repos",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("pk", name="pk_search_metrics"),
    )
    op.create_index("ix_search_metrics_metric_dataset_split_value", "search_metrics",
                    ["metric", "dataset", "split", "value"])
    op.create_index("ix_search_metrics_repo_pk", "search_metrics", ["repo_pk"])
    op.create_table(
        "lineage_nodes",
        sa.Column("pk", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("ident", sa.String(1400), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("repo", sa.String(200), nullable=False),
        sa.Column("repo_key", sa.String(210), nullable=True),
        sa.Column("commit", sa.String(40), nullable=False),
        sa.Column("path", sa.String(1000), nullable=False),
        sa.Column("info", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("pk", name="pk_lineage_nodes"),
        sa.UniqueConstraint("ident", name="uq_lineage_nodes_ident"),
    )
    op.create_index("ix_lineage_nodes_repo_key_commit", "lineage_nodes", ["repo_key", "commit"])
    op.create_table(
        "lineage_edges",
        sa.Column("parent", sa.Integer(), nullable=False),
        sa.Column("child", sa.Integer(), nullable=False),
        sa.Column("relation", sa.String(32), nullable=False),
        sa.ForeignKeyConstraint(["parent"], ["lineage_nodes.pk"], name="fk_lineage_edges_parent_lineage_nodes",
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["child"], ["lineage_nodes.pk"], name="fk_lineage_edges_child_lineage_nodes",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("parent", "child", name="pk_lineage_edges"),
    )
    op.create_index("ix_lineage_edges_child_parent", "lineage_edges", ["child", "parent"])

    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        has_fts5 = bind.exec_driver_sql("SELECT sqlite_compileoption_used('ENABLE_FTS5')").scalar()
        if has_fts5:
            op.execute(f"CREATE VIRTUAL TABLE {FTS_TABLE} USING fts5(name, text, tokenize='trigram')")
    elif bind.dialect.name == "postgresql":
        # An extension lives in one schema of the database. Created without SCHEMA it would land in the first
        # schema of this connection's search_path (a per-tenant schema, say), invisible to other schemas and
        # dropped with it; so it goes to `public`, and the operator class is named with the schema it is in.
        try:
            with bind.begin_nested():  # a failed CREATE EXTENSION must not abort the migration's transaction
                bind.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public")
                trgm_schema = bind.exec_driver_sql(
                    "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace"
                    " WHERE e.extname = 'pg_trgm'").scalar_one()
        except sa.exc.DBAPIError:
            pass  # no privilege, no `public` schema or no extension: search scans instead
        else:
            quoted = bind.dialect.identifier_preparer.quote_identifier(trgm_schema)
            op.execute(f"CREATE INDEX {TRGM_INDEX} ON search_docs USING gin (text {quoted}.gin_trgm_ops)")
    # Repos that exist before this revision have no document or lineage yet: mark the index as behind.
    if bind.execute(sa.text("SELECT COUNT(*) FROM repos")).scalar():
        bind.execute(sa.text("INSERT INTO hub_settings (key, value) VALUES ('index.backfill', 'pending')"))


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        op.execute(f"DROP TABLE IF EXISTS {FTS_TABLE}")
    else:
        op.execute(f"DROP INDEX IF EXISTS {TRGM_INDEX}")
    bind.execute(sa.text("DELETE FROM hub_settings WHERE key = 'index.backfill'"))
    op.drop_table("lineage_edges")
    op.drop_table("lineage_nodes")
    op.drop_table("search_metrics")
    op.drop_table("search_tags")
    op.drop_table("search_docs")
