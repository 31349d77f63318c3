"""The metadata database: engines by URL, write transactions that serialize, migrations.

SQLite (the embedded default) runs in WAL mode with a busy timeout, and every write transaction
starts with ``BEGIN IMMEDIATE`` so concurrent writers queue instead of failing on lock upgrade.
PostgreSQL writers lock the rows they change (``SELECT … FOR UPDATE``) and update refs with
compare-and-swap.
"""

from __future__ import annotations

import contextlib
import os
import weakref
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError
from sqlalchemy.pool import QueuePool, StaticPool

from fmhub.errors import ConfigError, SchemaOutOfDateError
from fmhub.store._schema import SCHEMA_HEAD

__all__ = ["Database", "normalize_db_url"]

_SQLITE_BUSY_TIMEOUT_S = 60.0
_WRITE = "fmhub_write"


def normalize_db_url(url: str) -> str:
    """Accept the URLs people type: ``postgresql://`` means psycopg 3 (the driver fmhub ships)."""
    for plain in ("postgresql://", "postgres://"):
        if url.startswith(plain):
            return "postgresql+psycopg://" + url[len(plain):]
    return url


def _alembic_config(connection: Connection):  # -> alembic.config.Config; imported lazily (slow import)
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", "fmhub.store:migrations")
    config.attributes["connection"] = connection
    return config


def _dispose_after_fork(engine: Engine) -> None:
    """In a forked child, forget (without closing) the parent's pooled connections: SQLite handles must
    not cross a fork. A weak reference, so registering does not keep engines alive."""
    ref = weakref.ref(engine)

    def _after_fork() -> None:
        if (alive := ref()) is not None:
            alive.dispose(close=False)

    os.register_at_fork(after_in_child=_after_fork)


class Database:
    """A SQLAlchemy engine plus fmhub's transaction rules.

    Args:
        url: SQLAlchemy URL (``sqlite:///path.db``, ``postgresql+psycopg://user@host/db``).
        auto_upgrade: create the schema on first use of an empty database. Default: only for SQLite
            (the embedded store); servers are upgraded explicitly with ``fmhub db upgrade``.
    """

    def __init__(self, url: str, *, auto_upgrade: bool | None = None) -> None:
        url = normalize_db_url(url)
        try:
            parsed = make_url(url)
        except ArgumentError as exc:
            raise ConfigError(f"invalid database URL {url!r}: {exc}", hint="e.g. sqlite:////abs/path.db") from None
        self.url = url
        self.dialect = parsed.get_backend_name()
        if self.dialect == "sqlite":
            self.engine = self._sqlite_engine(parsed)
        elif self.dialect == "postgresql":
            try:
                self.engine = create_engine(parsed, pool_pre_ping=True, pool_size=5, max_overflow=10)
            except (NoSuchModuleError, ImportError) as exc:
                raise ConfigError(f"cannot use {url!r}: {exc}", hint="use postgresql+psycopg://…") from None
        else:
            raise ConfigError(f"unsupported database {self.dialect!r}", hint="use sqlite:///… or postgresql+psycopg://…")
        self._auto_upgrade = self.dialect == "sqlite" if auto_upgrade is None else auto_upgrade
        self._schema_checked = False

    @staticmethod
    def _sqlite_engine(parsed) -> Engine:
        database = parsed.database
        if database and database != ":memory:":
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        if not database or database == ":memory:":
            # An in-memory database lives as long as its one connection: share that connection.
            engine = create_engine(parsed, poolclass=StaticPool,
                                   connect_args={"timeout": _SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False})
        else:
            # A pool: opening a connection (and its PRAGMAs) costs ~0.3 ms, most of a small read. Sized for
            # the server's thread pool; a forked child drops the parent's connections (see _after_fork).
            engine = create_engine(parsed, poolclass=QueuePool, pool_size=8, max_overflow=64,
                                   connect_args={"timeout": _SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False})
            _dispose_after_fork(engine)

        @event.listens_for(engine, "connect")
        def _connect(dbapi_connection, _record) -> None:
            dbapi_connection.isolation_level = None  # we issue BEGIN ourselves (below)
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={int(_SQLITE_BUSY_TIMEOUT_S * 1000)}")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _begin(conn: Connection) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(_WRITE) else "BEGIN")

        return engine

    # -- transactions ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def read(self) -> Iterator[Connection]:
        """A read transaction (a consistent snapshot)."""
        self.ensure_schema()
        with self._translate(), self.engine.connect() as conn, conn.begin():
            yield conn

    @contextlib.contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction; on SQLite it holds the write lock from its first statement."""
        self.ensure_schema()
        with self._translate(), self.engine.connect().execution_options(**{_WRITE: True}) as conn, conn.begin():
            yield conn

    @contextlib.contextmanager
    def _translate(self) -> Iterator[None]:
        try:
            yield
        except OperationalError as exc:
            raise ConfigError(
                f"metadata database {self.safe_url} is unavailable: {' '.join(str(exc.orig).split())}",
                hint="check FMHUB_DB_URL and that the database server is running",
            ) from exc

    @property
    def safe_url(self) -> str:
        return make_url(self.url).render_as_string(hide_password=True)

    # -- schema ---------------------------------------------------------------------------------

    def current_revision(self) -> str | None:
        """The schema's revision, read from Alembic's version table (importing Alembic to read one row would cost
        every command that opens the store more than the query itself)."""
        with self._translate(), self.engine.connect() as conn:
            if not inspect(conn).has_table("alembic_version"):
                return None
            versions = sorted(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())
        return ",".join(versions) or None  # several rows (branches) never equal SCHEMA_HEAD

    def ensure_schema(self) -> None:
        """Check (once per process) that the schema is current; create it for an empty embedded store."""
        if self._schema_checked:
            return
        current = self.current_revision()
        if current != SCHEMA_HEAD:
            if current is None and self._auto_upgrade and not self._has_tables():
                self.upgrade()
            else:
                raise SchemaOutOfDateError(current, SCHEMA_HEAD)
        self._schema_checked = True

    def _has_tables(self) -> bool:
        with self._translate(), self.engine.connect() as conn:
            return bool(inspect(conn).get_table_names())

    def upgrade(self, revision: str = "head") -> str | None:
        """Run Alembic migrations up to ``revision``; returns the new current revision."""
        from alembic import command

        with self._translate(), self.engine.connect().execution_options(**{_WRITE: True}) as conn:
            with conn.begin():
                command.upgrade(_alembic_config(conn), revision)
        self._schema_checked = False
        return self.current_revision()

    def dispose(self) -> None:
        self.engine.dispose()
