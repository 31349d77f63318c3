"""Schema migrations: the Alembic history matches the tables the code declares, and a database that
is not at that schema is upgraded (embedded SQLite) or refused with the command that fixes it."""

from __future__ import annotations

import socket
import sqlite3
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import UniqueConstraint, inspect, text
from sqlalchemy.engine import make_url

from fmhub.errors import ConfigError, SchemaOutOfDateError
from fmhub.store import Database, open_store
from fmhub.store._db import _alembic_config
from fmhub.store._schema import SCHEMA_HEAD, complete_metadata

metadata = complete_metadata()  # the store's tables and every domain's (accounts, runs, evaluations)

ALEMBIC_TABLE = "alembic_version"
#: Text-search acceleration the migrations create where the database offers it, outside the declared tables:
#: SQLite's FTS5 table (and the shadow tables FTS5 keeps), PostgreSQL's pg_trgm index.
FTS_TABLES = {"search_fts", "search_fts_data", "search_fts_idx", "search_fts_content", "search_fts_docsize",
              "search_fts_config"}
TRGM_INDEX = "ix_search_docs_text_trgm"


def _declared_object(obj, name, type_, reflected, compare_to) -> bool:
    return not (type_ == "table" and name in FTS_TABLES) and not (type_ == "index" and name == TRGM_INDEX)


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_db_url(request: pytest.FixtureRequest) -> str:
    """The URL of an empty database (no fmhub schema yet) on each metadata backend."""
    return request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _describe(conn, table: str) -> dict:
    """What a table looks like in the database, in terms comparable with the declared metadata."""
    inspector = inspect(conn)
    return {
        "columns": [(c["name"], bool(c["nullable"])) for c in inspector.get_columns(table)],
        "primary_key": list(inspector.get_pk_constraint(table)["constrained_columns"]),
        "foreign_keys": sorted((tuple(fk["constrained_columns"]), fk["referred_table"], tuple(fk["referred_columns"]))
                               for fk in inspector.get_foreign_keys(table)),
        "unique": sorted(tuple(u["column_names"]) for u in inspector.get_unique_constraints(table)),
        "indexes": sorted(tuple(i["column_names"]) for i in inspector.get_indexes(table)
                          if not i.get("unique") and i["name"] != TRGM_INDEX),
    }


def _declared(table) -> dict:
    return {
        "columns": [(c.name, bool(c.nullable)) for c in table.columns],
        "primary_key": [c.name for c in table.primary_key.columns],
        "foreign_keys": sorted((tuple(fk.column_keys), fk.referred_table.name,
                                tuple(e.column.name for e in fk.elements)) for fk in table.foreign_key_constraints),
        "unique": sorted({tuple(c.name for c in u.columns) for u in table.constraints
                          if isinstance(u, UniqueConstraint)} | {(c.name,) for c in table.columns if c.unique}),
        "indexes": sorted(tuple(c.name for c in i.columns) for i in table.indexes if not i.unique),
    }


def test_migration_head_is_the_schema_the_code_expects() -> None:
    with Database("sqlite://").engine.connect() as conn:  # any connection: only the scripts are read
        scripts = ScriptDirectory.from_config(_alembic_config(conn))
    assert scripts.get_heads() == [SCHEMA_HEAD]  # one head, and it is SCHEMA_HEAD
    assert [s.revision for s in scripts.walk_revisions()][0] == SCHEMA_HEAD


def test_fresh_upgrade_creates_exactly_the_declared_tables(empty_db_url: str) -> None:
    db = Database(empty_db_url)
    try:
        assert db.current_revision() is None
        assert db.upgrade() == SCHEMA_HEAD
        assert db.current_revision() == SCHEMA_HEAD
        with db.engine.connect() as conn:
            tables = set(inspect(conn).get_table_names())
            if conn.dialect.name == "sqlite":
                assert FTS_TABLES <= tables  # the SQLite the project supports has FTS5
            assert tables - FTS_TABLES == set(metadata.tables) | {ALEMBIC_TABLE}
            for name, table in metadata.tables.items():
                assert _describe(conn, name) == _declared(table), name
            # Alembic's own comparison (types included) finds nothing to migrate
            context = MigrationContext.configure(conn, opts={"compare_type": True,
                                                             "include_object": _declared_object})
            assert compare_metadata(context, metadata) == []
        assert db.upgrade() == SCHEMA_HEAD  # upgrading again is a no-op
    finally:
        db.dispose()


def test_downgrade_to_base_and_upgrade_again(empty_db_url: str) -> None:
    db = Database(empty_db_url)
    try:
        db.upgrade()
        with db.engine.connect() as conn, conn.begin():
            command.downgrade(_alembic_config(conn), "base")
        with db.engine.connect() as conn:
            assert set(inspect(conn).get_table_names()) <= {ALEMBIC_TABLE}
        assert db.current_revision() is None
        assert db.upgrade() == SCHEMA_HEAD
    finally:
        db.dispose()


def test_empty_sqlite_is_upgraded_on_first_use(sqlite_url: str, tmp_path: Path) -> None:
    db_file = Path(make_url(sqlite_url).database)
    assert not db_file.exists()
    with open_store(sqlite_url, (tmp_path / "blobs").as_uri()) as store:
        store.create_repo("acme/bert")
        assert [r.repo_id for r in store.list_repos()] == ["acme/bert"]
    assert Database(sqlite_url).current_revision() == SCHEMA_HEAD


def test_sqlite_auto_upgrade_can_be_turned_off(sqlite_url: str, tmp_path: Path) -> None:
    with open_store(sqlite_url, (tmp_path / "blobs").as_uri(), auto_upgrade=False) as store:
        with pytest.raises(SchemaOutOfDateError, match="fmhub db upgrade"):
            store.list_repos()
    assert Database(sqlite_url).current_revision() is None


def test_a_foreign_sqlite_database_is_not_touched(sqlite_url: str, tmp_path: Path) -> None:
    db_file = make_url(sqlite_url).database
    with sqlite3.connect(db_file) as conn:
        conn.execute("CREATE TABLE someone_elses (x)")
    with open_store(sqlite_url, (tmp_path / "blobs").as_uri()) as store:
        with pytest.raises(SchemaOutOfDateError) as error:
            store.list_repos()
    assert error.value.current is None and error.value.head == SCHEMA_HEAD
    with sqlite3.connect(db_file) as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert tables == {"someone_elses"}


def test_postgresql_is_never_upgraded_implicitly(pg_url: str, tmp_path: Path) -> None:
    with open_store(pg_url, (tmp_path / "blobs").as_uri()) as store:
        with pytest.raises(SchemaOutOfDateError) as error:
            store.create_repo("acme/bert")
        assert "fmhub db upgrade" in str(error.value)
        assert error.value.current is None and error.value.head == SCHEMA_HEAD
        with store.db.engine.connect() as conn:
            assert inspect(conn).get_table_names() == []
    # an explicit opt-in upgrades it
    with open_store(pg_url, (tmp_path / "blobs").as_uri(), auto_upgrade=True) as store:
        store.create_repo("acme/bert")
        assert store.db.current_revision() == SCHEMA_HEAD


def test_a_schema_from_another_version_is_refused(empty_db_url: str, tmp_path: Path) -> None:
    db = Database(empty_db_url)
    db.upgrade()
    with db.engine.begin() as conn:
        conn.execute(text(f"UPDATE {ALEMBIC_TABLE} SET version_num = 'ffff'"))
    db.dispose()
    with open_store(empty_db_url, (tmp_path / "blobs").as_uri(), auto_upgrade=True) as store:
        with pytest.raises(SchemaOutOfDateError) as error:
            store.list_repos()
    assert error.value.current == "ffff" and "ffff" in str(error.value) and SCHEMA_HEAD in str(error.value)
    assert "fmhub db upgrade" in str(error.value)


@pytest.mark.parametrize("url", [
    "not a url",
    "mysql://user@localhost/fmhub",
    "oracle://user@localhost/fmhub",
    "postgresql+nosuchdriver://user@localhost/fmhub",
])
def test_bad_database_urls_are_config_errors(url: str) -> None:
    with pytest.raises(ConfigError) as error:
        Database(url)
    assert isinstance(error.value, ValueError) and error.value.hint


def test_plain_postgresql_urls_mean_psycopg() -> None:
    for url in ("postgresql://u@h/db", "postgres://u@h/db"):
        db = Database(url)
        assert db.url == "postgresql+psycopg://u@h/db" and db.dialect == "postgresql"
        db.dispose()


def test_an_unreachable_database_is_a_config_error_without_the_password(tmp_path: Path) -> None:
    url = f"postgresql+psycopg://fmhub:s3cret-pw@127.0.0.1:{_free_port()}/fmhub?connect_timeout=5"
    with open_store(url, (tmp_path / "blobs").as_uri()) as store:
        with pytest.raises(ConfigError) as error:
            store.list_repos()
    assert "unavailable" in str(error.value) and "s3cret-pw" not in str(error.value)


def test_a_bad_blob_url_is_a_config_error(sqlite_url: str) -> None:
    with pytest.raises(ConfigError):
        open_store(sqlite_url, "ftp://example.com/blobs")


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:"])
def test_in_memory_sqlite_is_upgraded_on_first_use(url: str, tmp_path: Path) -> None:
    with open_store(url, (tmp_path / "blobs").as_uri()) as store:
        store.create_repo("acme/bert")
        assert [r.repo_id for r in store.list_repos()] == ["acme/bert"]


def test_pg_trgm_lives_outside_the_schema_that_first_needed_it(pg_admin_engine, tmp_path: Path) -> None:
    """Two stores in two schemas of one database: the trigram extension is not created inside the first one's
    schema (where the second could not see its operator class, and dropping the first would take it along)."""
    import uuid

    schemas = ["fmhub_test_" + uuid.uuid4().hex[:12] for _ in range(2)]
    with pg_admin_engine.connect() as conn:
        for schema in schemas:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        urls = [make_url(str(pg_admin_engine.url.render_as_string(hide_password=False)))
                .update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)
                for schema in schemas]
        for index, url in enumerate(urls):
            with open_store(url, (tmp_path / f"blobs{index}").as_uri(), auto_upgrade=True) as store:
                store.create_repo(f"acme/bert{index}")
        with pg_admin_engine.connect() as conn:
            home = conn.execute(text("SELECT n.nspname FROM pg_extension e JOIN pg_namespace n"
                                     " ON n.oid = e.extnamespace WHERE e.extname = 'pg_trgm'")).scalar()
            if home is None:
                pytest.skip("the pg_trgm extension is not available on this PostgreSQL server")
            assert home not in schemas
            indexed = {row[0] for row in conn.execute(text(
                "SELECT schemaname FROM pg_indexes WHERE indexname = :name"), {"name": TRGM_INDEX})}
            assert set(schemas) <= indexed
            conn.execute(text(f'DROP SCHEMA "{schemas[0]}" CASCADE'))
        schemas = schemas[1:]
        with open_store(urls[1], (tmp_path / "blobs1").as_uri()) as store:
            store.create_repo("acme/bert2")  # writes its search document through the trigram index
            assert [repo.repo_id for repo in store.list_repos()] == ["acme/bert1", "acme/bert2"]
        with pg_admin_engine.connect() as conn:
            assert conn.execute(text("SELECT COUNT(*) FROM pg_indexes WHERE indexname = :name AND schemaname = :s"),
                                {"name": TRGM_INDEX, "s": schemas[0]}).scalar() == 1
    finally:
        with pg_admin_engine.connect() as conn:
            for schema in schemas:
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
