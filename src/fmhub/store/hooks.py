"""Write hooks: domains that keep an index of what the store holds (search, lineage) up to date.

Every write the store makes (create, commit, ref, settings, delete) is audited in the transaction that
makes it; after auditing, the store calls each registered :class:`WriteHook` with that transaction and a
:class:`WriteContext`, so an index changes in the same transaction as what it indexes — it can never
describe a commit that rolled back, nor miss one that landed. The store never imports a domain: the
domain registers itself when its package is imported (the store imports the packages listed in
:data:`~fmhub.store._schema.DOMAIN_TABLE_MODULES` before it consults the registry), as storage extensions do.

A hook must not fail on user content (a broken card is indexed as what it is, not raised): an exception
rolls the write back.
"""

from __future__ import annotations

import abc
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, select

from fmhub.store import _schema as t

__all__ = ["WriteHook", "WriteContext", "RepoRow", "register_write_hook", "registered_write_hooks", "repo_states",
           "refs_at", "replay", "bulk_insert", "repo_tables"]

# The store (fmhub.store.Store) is passed in, not imported: the store imports this module.
Store = Any

_REGISTRY: dict[str, WriteHook] = {}

#: Files larger than this are never read by a hook (cards and report cards are small).
MAX_HOOK_READ = 2 * 1024 * 1024


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@dataclass(frozen=True)
class RepoRow:
    """A repo as hooks see it, with its primary key (what indexes reference)."""

    pk: int
    repo_type: str
    repo_id: str
    private: bool
    default_branch: str
    created_at: datetime
    updated_at: datetime


@dataclass
class WriteContext:
    """One write, and read access to what it wrote, in the writing transaction."""

    store: Store
    conn: Connection
    action: str  # the audit action: repo.create | commit | repo.settings | repo.delete | branch.create | ...
    repo_type: str | None
    repo_id: str | None
    ref: str | None
    commit_oid: str | None
    detail: dict[str, Any] = field(default_factory=dict)
    _repo: RepoRow | None = None

    def repo(self) -> RepoRow | None:
        """The written repo (None after ``repo.delete`` or for writes naming no repo)."""
        if self._repo is None and self.repo_type and self.repo_id:
            key = f"{self.repo_type}/{self.repo_id.lower()}"
            row = self.conn.execute(select(t.repos).where(t.repos.c.key == key)).one_or_none()
            if row is not None:
                self._repo = RepoRow(row.pk, row.repo_type, f"{row.namespace}/{row.name}", bool(row.private),
                                     row.default_branch, _aware(row.created_at), _aware(row.updated_at))
        return self._repo

    def commit(self, oid: str) -> tuple[str, list[str], datetime] | None:
        """(tree id, parent oids, created_at) of a commit of the written repo."""
        repo = self.repo()
        if repo is None:
            return None
        row = self.conn.execute(select(t.commits.c.tree_id, t.commits.c.parents, t.commits.c.created_at).where(
            t.commits.c.repo_pk == repo.pk, t.commits.c.oid == oid)).one_or_none()
        return None if row is None else (row.tree_id, json.loads(row.parents), _aware(row.created_at))

    def files(self, oid: str) -> dict[str, tuple[str, int]]:
        """path → (sha256, size) at a commit of the written repo (empty if unknown)."""
        found = self.commit(oid)
        return {} if found is None else self.store._load_tree(self.conn, found[0])

    def head(self, branch: str | None = None) -> str | None:
        """The commit a branch (default: the default branch) of the written repo points at."""
        repo = self.repo()
        if repo is None:
            return None
        return self.conn.execute(select(t.refs.c.commit_oid).where(
            t.refs.c.repo_pk == repo.pk, t.refs.c.kind == "branch",
            t.refs.c.name == (branch or repo.default_branch))).scalar_one_or_none()

    def head_of(self, repo_type: str, repo_id: str) -> str | None:
        """The default branch's head of another repo of this store (None if there is no such repo)."""
        row = self.conn.execute(
            select(t.refs.c.commit_oid).join_from(t.refs, t.repos, t.repos.c.pk == t.refs.c.repo_pk)
            .where(t.repos.c.key == f"{repo_type}/{repo_id.lower()}", t.refs.c.kind == "branch",
                   t.refs.c.name == t.repos.c.default_branch)).first()
        return None if row is None else row[0]

    def read(self, sha256: str, size: int) -> bytes | None:
        """A small file's bytes by its sha256 (None when larger than :data:`MAX_HOOK_READ` or unreadable)."""
        if size > MAX_HOOK_READ:
            return None
        try:
            return b"".join(self.store.iter_blob(sha256))
        except (LookupError, OSError):
            return None


class WriteHook(abc.ABC):
    """What a domain indexing the store's contents answers to the store."""

    #: A short name, unique among hooks.
    name: str

    @abc.abstractmethod
    def after_write(self, context: WriteContext) -> None:
        """Bring the domain's index up to date with one write (called inside the write's transaction)."""


def register_write_hook(hook: WriteHook) -> None:
    """Make the store call ``hook`` after every write (idempotent by name; the last registration wins)."""
    _REGISTRY[hook.name] = hook


def registered_write_hooks() -> list[WriteHook]:
    """Every hook, with each domain package the store knows of imported first."""
    from fmhub.store._schema import complete_metadata

    complete_metadata()
    return list(_REGISTRY.values())


def repo_states(conn: Connection, keys: Iterable[str]) -> dict[str, tuple[bool, str]]:
    """For repo keys (``"<type>/<lower(id)>"``), those that exist: key → (private, namespace)."""
    out: dict[str, tuple[bool, str]] = {}
    wanted = sorted(set(keys))
    for start in range(0, len(wanted), 2000):
        rows = conn.execute(select(t.repos.c.key, t.repos.c.private, t.repos.c.namespace)
                            .where(t.repos.c.key.in_(wanted[start:start + 2000])))
        out.update({key: (bool(private), namespace) for key, private, namespace in rows})
    return out


def refs_at(conn: Connection, pairs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], list[tuple[str, str]]]:
    """The branches and tags pointing at (repo key, commit) pairs: pair → [(kind, name)], sorted."""
    wanted = sorted(set(pairs))
    keys = sorted({key for key, _ in wanted})
    out: dict[tuple[str, str], list[tuple[str, str]]] = {}
    if not wanted:
        return out
    want = set(wanted)
    for start in range(0, len(keys), 2000):
        rows = conn.execute(select(t.repos.c.key, t.refs.c.kind, t.refs.c.name, t.refs.c.commit_oid)
                            .join_from(t.refs, t.repos, t.repos.c.pk == t.refs.c.repo_pk)
                            .where(t.repos.c.key.in_(keys[start:start + 2000])))
        for key, kind, name, oid in rows:
            if (key, oid) in want:
                out.setdefault((key, oid), []).append((kind, name))
    for value in out.values():
        value.sort()
    return out


def replay(store: Store, hooks: Sequence[WriteHook], *, every_commit: bool,
           progress: Callable[[int, int], None] | None = None) -> int:
    """Rebuild indexes: call ``hooks`` with an ``index`` write for each repo (at each commit, oldest first, with
    ``every_commit``; else at the default branch's head), one transaction per repo. Returns the repos replayed."""
    with store.db.read() as conn:
        repos = conn.execute(select(t.repos.c.repo_type, t.repos.c.namespace, t.repos.c.name, t.repos.c.pk)
                             .order_by(t.repos.c.pk)).all()
    for done, repo in enumerate(repos, 1):
        repo_id = f"{repo.namespace}/{repo.name}"
        with store.db.write() as conn:
            if every_commit:
                oids = conn.execute(select(t.commits.c.oid).where(t.commits.c.repo_pk == repo.pk)
                                    .order_by(t.commits.c.generation, t.commits.c.created_at)).scalars().all()
            else:
                context = WriteContext(store, conn, "index", repo.repo_type, repo_id, None, None)
                head = context.head()
                oids = [head] if head else []
            for oid in oids:
                context = WriteContext(store, conn, "index", repo.repo_type, repo_id, None, oid)
                for hook in hooks:
                    hook.after_write(context)
        if progress is not None:
            progress(done, len(repos))
    return len(repos)


def bulk_insert(conn: Connection, table: Any, rows: Sequence[dict[str, Any]], *,
                skip_conflicts: Sequence[str] = ()) -> None:
    """Insert many rows of an index table in one ``executemany`` straight to the driver (no per-row statement
    compilation: what backfills and bulk seeding need), converting values as SQLAlchemy would store them.

    With ``skip_conflicts`` (the columns of a unique key), rows already present are skipped (``ON CONFLICT DO
    NOTHING`` on SQLite and PostgreSQL alike).
    """
    if not rows:
        return
    from sqlalchemy import Boolean, DateTime

    columns = list(rows[0])
    sqlite = conn.dialect.name == "sqlite"
    marker = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    convert: list[tuple[int, Callable[[Any], Any]]] = []
    to_text = _sqlite_time({})  # one cache for every time column: rows often carry the same time twice
    for i, name in enumerate(columns):
        kind = table.c[name].type
        if sqlite and isinstance(kind, DateTime):  # SQLAlchemy's SQLite storage format: naive UTC text
            convert.append((i, to_text))
        elif sqlite and isinstance(kind, Boolean):
            convert.append((i, lambda v: None if v is None else int(bool(v))))
    quoted = ", ".join(conn.dialect.identifier_preparer.quote(c) for c in columns)
    sql = f"INSERT INTO {table.name} ({quoted}) VALUES ({', '.join([marker] * len(columns))})"
    if skip_conflicts:
        sql += f" ON CONFLICT ({', '.join(skip_conflicts)}) DO NOTHING"
    # one C-level itemgetter per row, then only the columns that need converting (this loop is a bulk load's
    # Python cost: a generator per row made it ~a third of seeding's CPU time)
    getter = itemgetter(*columns)
    values: list[Any] = [getter(row) for row in rows] if len(columns) > 1 else [(row[columns[0]],) for row in rows]
    if convert:
        for n, value in enumerate(values):
            value = list(value)
            for i, conversion in convert:
                value[i] = conversion(value[i])
            values[n] = tuple(value)  # SQLAlchemy passes tuples (or dicts) to the driver, nothing else
    conn.exec_driver_sql(sql, values)
    if conn.dialect.name == "postgresql":
        _keep_statistics(conn, table.name, len(values))


# Rows a bulk load adds to a table before its first ANALYZE through a connection.
_ANALYZE_FIRST = 5000


def _keep_statistics(conn: Connection, table: str, added: int) -> None:
    """Analyze ``table`` once bulk loads through this connection have grown it by as many rows as it held at its
    previous analyze (at least :data:`_ANALYZE_FIRST`).

    PostgreSQL plans from statistics that autovacuum refreshes only after a load commits, and then at its next
    round: until then a table a bulk load has grown is planned as if it were nearly empty, and the batched, indexed
    ``ident IN (…)`` look-ups that bulk loads run between inserts turn into scans of the whole table (seeding 100,000
    repos fell from ~6,000 to ~300 repos/s). Doubling thresholds cost a logarithmic number of analyzes, each over a
    fixed-size sample; ``ANALYZE`` inside the load's transaction counts the rows it has inserted.
    """
    state: dict[str, list[int]] = conn.info.setdefault("fmhub.analyze", {})
    grown = state.setdefault(table, [0, _ANALYZE_FIRST])  # rows added since the last analyze, and the threshold
    grown[0] += added
    if grown[0] < grown[1]:
        return
    conn.exec_driver_sql(f"ANALYZE {conn.dialect.identifier_preparer.quote(table)}")
    rows = conn.exec_driver_sql("SELECT reltuples FROM pg_class WHERE oid = %s::regclass", (table,)).scalar()
    grown[:] = [0, max(_ANALYZE_FIRST, int(rows or 0))]


def _sqlite_time(cache: dict[datetime, str]) -> Callable[[datetime | None], str | None]:
    """A datetime as SQLAlchemy stores it in SQLite (naive UTC, ``YYYY-MM-DD HH:MM:SS.ffffff``), each distinct
    value formatted once (a batch repeats its write time on every row)."""

    def convert(value: datetime | None) -> str | None:
        if value is None:
            return None
        text = cache.get(value)
        if text is None:
            text = cache[value] = value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
        return text

    return convert


def repo_tables() -> tuple[Any, Any]:
    """The store's ``repos`` and ``refs`` tables, for an index to join its rows with repos' states and refs in one
    query (read only: every write goes through :class:`~fmhub.store.Store`)."""
    return t.repos, t.refs
