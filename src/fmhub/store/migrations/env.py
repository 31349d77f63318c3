"""Alembic environment: fmhub runs migrations programmatically on a connection it passes in."""

from __future__ import annotations

from alembic import context

from fmhub.store._schema import complete_metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - fmhub always passes a connection
    raise RuntimeError("run migrations with: fmhub db upgrade")

context.configure(
    connection=connection,
    target_metadata=complete_metadata(),  # every domain's tables, for autogenerate
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
