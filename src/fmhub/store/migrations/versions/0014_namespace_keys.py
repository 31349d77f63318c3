"""Per-namespace encryption keys: a blob's data key may be wrapped once per key scope.

``blob_keys`` gains ``scope`` (``""``: the store-wide key; else a namespace with a key of its own) and its
primary key becomes (sha256, scope): a blob that repos of two namespaces hold keeps one ciphertext object
and one data key, wrapped by each namespace's key, so it stays readable while either key holds. Existing
rows become store-wide rows.

Revision ID: 0014
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0011"
branch_labels = None
depends_on = None

_COPY = "blob_keys_0014_copy"
_COLUMNS = "sha256, size, object_sha256, segment_size, key_id, wrapped_key, created_at"


def _copy_table() -> None:
    op.create_table(
        _COPY,
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("object_sha256", sa.String(64), nullable=False),
        sa.Column("segment_size", sa.Integer(), nullable=False),
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("wrapped_key", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("scope", sa.String(96), nullable=False),
    )


def upgrade() -> None:
    # Copy out, recreate, copy back: changing a primary key in place is not portable (SQLite).
    _copy_table()
    op.execute(f"INSERT INTO {_COPY} ({_COLUMNS}, scope) SELECT {_COLUMNS}, '' FROM blob_keys")
    op.drop_index("ix_blob_keys_key_id", table_name="blob_keys")
    op.drop_table("blob_keys")
    op.create_table(
        "blob_keys",
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("scope", sa.String(96), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("object_sha256", sa.String(64), nullable=False),
        sa.Column("segment_size", sa.Integer(), nullable=False),
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("wrapped_key", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sha256", "scope", name="pk_blob_keys"),
    )
    op.create_index("ix_blob_keys_key_id", "blob_keys", ["key_id"])
    op.create_index("ix_blob_keys_object_sha256", "blob_keys", ["object_sha256"])
    op.create_index("ix_blob_keys_scope", "blob_keys", ["scope"])
    op.execute(f"INSERT INTO blob_keys ({_COLUMNS}, scope) SELECT {_COLUMNS}, scope FROM {_COPY}")
    op.drop_table(_COPY)


def downgrade() -> None:
    # One row per blob again: the store-wide row where there is one, else one namespace's (the old code unwraps
    # it with the key file's key of that id, as long as the namespace's key was not revoked).
    _copy_table()
    op.execute(f"INSERT INTO {_COPY} ({_COLUMNS}, scope) SELECT {_COLUMNS}, scope FROM blob_keys")
    for name in ("ix_blob_keys_scope", "ix_blob_keys_object_sha256", "ix_blob_keys_key_id"):
        op.drop_index(name, table_name="blob_keys")
    op.drop_table("blob_keys")
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
    op.execute(f"INSERT INTO blob_keys ({_COLUMNS}) SELECT {_COLUMNS} FROM {_COPY} c WHERE c.scope = "
               f"(SELECT MIN(d.scope) FROM {_COPY} d WHERE d.sha256 = c.sha256)")
    op.drop_table(_COPY)
