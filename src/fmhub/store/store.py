"""The versioned repository store: repos, commits, trees and refs over a metadata DB and a blob store."""

from __future__ import annotations

import functools
import io
import json
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import Connection, Select, bindparam, case, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError as SQLIntegrityError

from fmhub.errors import (
    AmbiguousRevisionError,
    BlobNotFoundError,
    ConflictError,
    EmptyCommitError,
    EntryNotFoundError,
    IntegrityError,
    InvalidInputError,
    ProtectedRefError,
    RefExistsError,
    RepoExistsError,
    RepoNotFoundError,
    RevisionNotFoundError,
    UnsafeFileError,
)
from fmhub.store import _schema as t
from fmhub.store._cache import ImmutableCache
from fmhub.store._db import Database
from fmhub.store.blobs import BlobInfo, BlobStore, check_sha256
from fmhub.store.blobs._base import CHUNK_SIZE, Progress, hash_file
from fmhub.store.extensions import RefGuard, StorageExtension, registered_extensions, registered_ref_guards
from fmhub.store.hooks import WriteContext, WriteHook, registered_write_hooks
from fmhub.store.objects import (
    AddFile,
    AuditEvent,
    Commit,
    CopyFile,
    DeleteFile,
    DeleteFolder,
    Operation,
    Ref,
    Repo,
    RepoRefs,
    TreeEntry,
    compute_commit_id,
    compute_tree_id,
)
from fmhub.store.paths import (
    validate_folder,
    validate_path,
    validate_ref_name,
    validate_repo_id,
    validate_repo_type,
    validate_stored_path,
)
from fmhub.store.pickles import PickleScan, scan_pickle, scanner
from fmhub.store.safety import validate_safetensors

__all__ = ["Store", "DEFAULT_BRANCH", "GITATTRIBUTES"]

DEFAULT_BRANCH = "main"
_HEX = re.compile(r"[0-9a-f]{7,40}")
#: A pull request's ref (refs.kind "pr"); commits go to it like to a branch while the pull request is open.
PR_REF = re.compile(r"refs/pr/[1-9][0-9]{0,8}")
_MAX_AUTHOR = 255
#: Who a write is attributed to in the audit log when the caller names nobody (a local CLI or script).
LOCAL_ACTOR = "local"

#: Like the Hugging Face Hub, a new repo starts with one commit holding a .gitattributes that marks
#: weight and data formats as LFS, so git clients of the same repo behave.
GITATTRIBUTES = b"".join(
    f"{pattern} filter=lfs diff=lfs merge=lfs -text\n".encode()
    for pattern in (
        "*.7z", "*.arrow", "*.bin", "*.bz2", "*.ckpt", "*.ftz", "*.gz", "*.h5", "*.joblib", "*.lfs.*",
        "*.mlmodel", "*.model", "*.msgpack", "*.npy", "*.npz", "*.onnx", "*.ot", "*.parquet", "*.pb",
        "*.pickle", "*.pkl", "*.pt", "*.pth", "*.rar", "*.safetensors", "saved_model/**/*", "*.tar.*",
        "*.tar", "*.tflite", "*.tgz", "*.wasm", "*.xz", "*.zip", "*.zst", "*tfevents*",
    )
)


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime) -> datetime:
    """Everything fmhub stores is UTC: SQLite hands back naive datetimes, PostgreSQL the session's zone."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _repo_key(repo_type: str, repo_id: str) -> str:
    return f"{repo_type}/{repo_id.lower()}"


def _check_author(author: str) -> str:
    if not isinstance(author, str) or not author.strip() or len(author) > _MAX_AUTHOR:
        raise InvalidInputError(f"invalid author {author!r}", hint=f"give a name of 1 to {_MAX_AUTHOR} characters")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in author):
        raise InvalidInputError(f"invalid author {author!r}: control characters are not allowed")
    return author


@dataclass(frozen=True)
class _Statements:
    """The statements of the hottest reads, built once: building a select costs more than running it."""

    repo_by_key: Select
    ref_commit: Select


@functools.cache
def _statements() -> _Statements:
    return _Statements(
        repo_by_key=select(t.repos).where(t.repos.c.key == bindparam("key")),
        ref_commit=select(t.refs.c.commit_oid).where(t.refs.c.repo_pk == bindparam("repo_pk"),
                                                     t.refs.c.kind == bindparam("kind"),
                                                     t.refs.c.name == bindparam("name")),
    )


def _pair(row) -> tuple[str, int] | None:
    return None if row is None else (row[0], row[1])


def _upsert(conn: Connection, table, values: dict | list[dict], *, key: str | tuple[str, ...],
            update_columns: Sequence[str] = (),
            returning: bool = False):
    """INSERT … ON CONFLICT DO UPDATE/NOTHING on SQLite and PostgreSQL alike.

    With ``returning``, the result holds the key of each row actually inserted (drivers disagree on
    ``rowcount`` for ON CONFLICT DO NOTHING; RETURNING is exact on both).
    """
    # the dialect's module is the one the engine loaded already (importing both would cost PostgreSQL's on SQLite)
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    stmt = dialect_insert(table)
    keys = [key] if isinstance(key, str) else list(key)
    if update_columns:
        stmt = stmt.on_conflict_do_update(index_elements=keys, set_={c: stmt.excluded[c] for c in update_columns})
    else:
        stmt = stmt.on_conflict_do_nothing(index_elements=keys)
    if returning:
        stmt = stmt.returning(*(table.c[k] for k in keys))
    return conn.execute(stmt, values)


class Store:
    """Versioned model and dataset repositories.

    Every method that names a repo takes ``repo_id`` and ``repo_type`` (``"model"`` by default), as
    ``huggingface_hub`` does. Reads return immutable value objects; writes are single transactions.

    Example:
        >>> store = open_store()                                    # embedded: $FMHUB_HOME
        >>> store.create_repo("me/tiny-bert")
        >>> blob = store.put_bytes(b'{"hidden_size": 32}')
        >>> store.commit("me/tiny-bert", [AddFile("config.json", blob.sha256, blob.size)],
        ...              title="Add config", author="me")
    """

    def __init__(self, db: Database, blobs: BlobStore) -> None:
        self.db = db
        self.blobs = blobs
        self._extension_list: list[StorageExtension] | None = None
        self._guard_list: list[RefGuard] | None = None
        self._hook_list: list[WriteHook] | None = None
        # Commits and trees never change once written: many small reads (every from_pretrained asks for
        # several small files) skip their queries. Branches still resolve on every call.
        self._commits: ImmutableCache[Commit] = ImmutableCache(4096)
        self._entries: ImmutableCache[tuple[str, int] | None] = ImmutableCache(65536)

    @property
    def reads_locally(self) -> bool:
        """Whether a metadata read and a blob read stay on this machine (SQLite and a local blob folder):
        short enough that a server may do a small one without handing it to a thread."""
        return self.db.dialect == "sqlite" and self.blobs.local_path("0" * 64) is not None

    def close(self) -> None:
        self.blobs.close()
        self.db.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- repos ----------------------------------------------------------------------------------

    def create_repo(self, repo_id: str, *, repo_type: str = "model", private: bool = False,
                    exist_ok: bool = False, author: str = "fmhub", actor: str | None = None) -> Repo:
        """Create a repo with an initial commit (``.gitattributes``) on ``main``.

        ``actor`` is who the audit log names (default: ``author``).
        """
        repo_id = validate_repo_id(repo_id)
        repo_type = validate_repo_type(repo_type)
        author = _check_author(author)
        blob = self.put_bytes(GITATTRIBUTES)
        now = _now()
        try:
            with self.db.write() as conn:
                existing = self._repo_row(conn, repo_type, repo_id, required=False)
                if existing is not None:
                    if exist_ok:
                        return self._repo(existing)
                    raise RepoExistsError(repo_type, existing.namespace + "/" + existing.name)
                namespace, name = repo_id.split("/")
                # A moved repo's old name is free for a new repo, which takes it back from the redirect.
                conn.execute(delete(t.repo_redirects).where(t.repo_redirects.c.key == _repo_key(repo_type, repo_id)))
                repo_pk = conn.execute(
                    insert(t.repos).values(
                        repo_type=repo_type, namespace=namespace, name=name, key=_repo_key(repo_type, repo_id),
                        private=private, default_branch=DEFAULT_BRANCH, created_at=now, updated_at=now,
                    )
                ).inserted_primary_key[0]
                entries = {".gitattributes": (blob.sha256, blob.size)}
                self._touch_blobs(conn, {blob.sha256: blob.size})
                tree_id = self._save_tree(conn, entries)
                oid = self._insert_commit(conn, repo_pk, tree_id, [], author, "initial commit", "", now, 1)
                conn.execute(insert(t.refs).values(repo_pk=repo_pk, kind="branch", name=DEFAULT_BRANCH,
                                                   commit_oid=oid, created_at=now, updated_at=now))
                self._audit(conn, actor or author, "repo.create", repo_type, repo_id, ref=DEFAULT_BRANCH,
                            commit_oid=oid, detail={"private": private})
                return self._repo(self._repo_row(conn, repo_type, repo_id))
        except SQLIntegrityError:
            with self.db.read() as conn:
                if self._repo_row(conn, repo_type, repo_id, required=False) is None:
                    raise  # not a lost race for the name: a real bug, do not disguise it
            if exist_ok:  # a concurrent create of the same id won the race
                return self.get_repo(repo_id, repo_type=repo_type)
            raise RepoExistsError(repo_type, repo_id) from None

    def get_repo(self, repo_id: str, *, repo_type: str = "model") -> Repo:
        repo_id = validate_repo_id(repo_id)
        repo_type = validate_repo_type(repo_type)
        with self.db.read() as conn:
            return self._repo(self._repo_row(conn, repo_type, repo_id))

    def list_repos(self, *, repo_type: str | None = None, author: str | None = None, search: str | None = None,
                   limit: int | None = None) -> list[Repo]:
        """Repos sorted by id; ``author`` matches the namespace, ``search`` a substring of the id."""
        query = select(t.repos).order_by(t.repos.c.key)
        if repo_type is not None:
            query = query.where(t.repos.c.repo_type == validate_repo_type(repo_type))
        if author:
            query = query.where(func.lower(t.repos.c.namespace) == author.lower())
        if search:
            pattern = "%" + search.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            repo_id = func.lower(t.repos.c.namespace + "/" + t.repos.c.name)
            query = query.where(repo_id.like(pattern, escape="\\"))
        if limit is not None:
            if limit < 1:
                raise InvalidInputError(f"limit must be positive, got {limit}")
            query = query.limit(limit)
        with self.db.read() as conn:
            return [self._repo(row) for row in conn.execute(query)]

    def update_repo(self, repo_id: str, *, repo_type: str = "model", private: bool | None = None,
                    actor: str | None = None) -> Repo:
        repo_id = validate_repo_id(repo_id)
        repo_type = validate_repo_type(repo_type)
        with self.db.write() as conn:
            row = self._repo_row(conn, repo_type, repo_id)
            if private is not None:
                conn.execute(update(t.repos).where(t.repos.c.pk == row.pk).values(private=private, updated_at=_now()))
                self._audit(conn, actor, "repo.settings", repo_type, repo_id, detail={"private": private})
            return self._repo(self._repo_row(conn, repo_type, repo_id))

    def delete_repo(self, repo_id: str, *, repo_type: str = "model", actor: str | None = None) -> None:
        """Delete a repo's refs and commits. Its blobs stay until ``gc`` finds them unreferenced."""
        repo_id = validate_repo_id(repo_id)
        repo_type = validate_repo_type(repo_type)
        with self.db.write() as conn:
            row = self._repo_row(conn, repo_type, repo_id)
            conn.execute(delete(t.refs).where(t.refs.c.repo_pk == row.pk))
            conn.execute(delete(t.commits).where(t.commits.c.repo_pk == row.pk))
            conn.execute(delete(t.repo_redirects).where(t.repo_redirects.c.repo_pk == row.pk))
            conn.execute(delete(t.repos).where(t.repos.c.pk == row.pk))
            self._audit(conn, actor, "repo.delete", repo_type, f"{row.namespace}/{row.name}")

    # -- blobs ----------------------------------------------------------------------------------

    def put_file(self, path: Path | str, *, progress: Progress | None = None,
                 hash_progress: Progress | None = None) -> BlobInfo:
        """Store a local file's bytes (streamed, verified, deduplicated).

        The file is hashed first and its blob's gc clock restarted *before* the bytes are written,
        so a concurrent ``gc`` can never delete content this upload is about to rely on.

        Args:
            progress: called with byte counts while the bytes are stored.
            hash_progress: called with byte counts while the file is hashed.
        """
        path = Path(path)
        if not path.is_file():
            raise InvalidInputError(f"{str(path)!r} is not a file")
        sha256, size = hash_file(path, hash_progress)
        self._record_blob(BlobInfo(sha256, size, created=False))
        return self.blobs.put_file(path, expected_sha256=sha256, expected_size=size, progress=progress)

    def put_stream(self, stream: BinaryIO, *, expected_sha256: str | None = None, expected_size: int | None = None,
                   progress: Progress | None = None) -> BlobInfo:
        """Store bytes read from a stream; when declared, sha256 and size must match or nothing is kept."""
        info = self.blobs.put_stream(stream, expected_sha256=expected_sha256, expected_size=expected_size,
                                     progress=progress)
        self._record_blob(info)
        return info

    def put_bytes(self, data: bytes) -> BlobInfo:
        return self.put_stream(io.BytesIO(data))

    def _record_blob(self, info: BlobInfo) -> None:
        with self.db.write() as conn:
            self._touch_blobs(conn, {info.sha256: info.size})

    @staticmethod
    def _touch_blobs(conn: Connection, sizes: dict[str, int]) -> None:
        """Restart the gc grace clock of these blobs (takes their row locks on PostgreSQL)."""
        if sizes:
            now = _now()
            rows = [{"sha256": sha, "size": size, "last_put_at": now} for sha, size in sorted(sizes.items())]
            _upsert(conn, t.blobs, rows, key="sha256", update_columns=("last_put_at",))

    # -- revisions ------------------------------------------------------------------------------

    def resolve_revision(self, repo_id: str, revision: str | None = None, *, repo_type: str = "model") -> Commit:
        """The commit a revision names: a branch, a tag, a full commit id or a unique prefix (≥ 7 hex).

        ``refs/heads/NAME`` and ``refs/tags/NAME`` restrict the lookup to branches or tags.
        """
        repo_id = validate_repo_id(repo_id)
        repo_type = validate_repo_type(repo_type)
        with self.db.read() as conn:
            repo = self._repo_row(conn, repo_type, repo_id)
            return self._resolve(conn, repo, revision)

    def _resolve(self, conn: Connection, repo, revision: str | None) -> Commit:
        repo_id = f"{repo.namespace}/{repo.name}"
        if revision is None:
            revision = repo.default_branch
        if not isinstance(revision, str) or not revision or len(revision) > 1024:
            raise RevisionNotFoundError(repo_id, str(revision)[:80])
        kinds: tuple[str, ...] = ("branch", "tag")
        name = revision
        if revision.startswith("refs/heads/"):
            kinds, name = ("branch",), revision[len("refs/heads/"):]
        elif revision.startswith("refs/tags/"):
            kinds, name = ("tag",), revision[len("refs/tags/"):]
        elif PR_REF.fullmatch(revision):
            kinds = ("pr",)
        for kind in kinds:
            oid = conn.execute(_statements().ref_commit,
                               {"repo_pk": repo.pk, "kind": kind, "name": name}).scalar_one_or_none()
            if oid is not None:
                return self._commit(conn, repo.pk, oid)
        if len(kinds) == 2 and _HEX.fullmatch(revision.lower()):
            prefix = revision.lower()
            query = select(t.commits.c.oid).where(t.commits.c.repo_pk == repo.pk)
            query = query.where(t.commits.c.oid == prefix) if len(prefix) == 40 else \
                query.where(t.commits.c.oid.like(prefix + "%")).limit(10)
            matches = list(conn.execute(query).scalars())
            if len(matches) == 1:
                return self._commit(conn, repo.pk, matches[0])
            if len(matches) > 1:
                raise AmbiguousRevisionError(repo_id, revision, matches)
        raise RevisionNotFoundError(repo_id, revision)

    def get_commit(self, repo_id: str, oid: str, *, repo_type: str = "model") -> Commit:
        return self.resolve_revision(repo_id, oid, repo_type=repo_type)

    def list_commits(self, repo_id: str, revision: str | None = None, *, repo_type: str = "model",
                     limit: int | None = None) -> list[Commit]:
        """History from a revision, newest first, following first parents (like ``git log --first-parent``)."""
        repo_id = validate_repo_id(repo_id)
        repo_type = validate_repo_type(repo_type)
        with self.db.read() as conn:
            repo = self._repo_row(conn, repo_type, repo_id)
            head = self._resolve(conn, repo, revision)
            by_oid = {
                row.oid: row for row in conn.execute(
                    select(t.commits).where(t.commits.c.repo_pk == repo.pk,
                                            t.commits.c.generation <= head.generation)
                )
            }
        history: list[Commit] = []
        oid: str | None = head.oid
        while oid is not None and (limit is None or len(history) < limit):
            commit = self._commit_from_row(by_oid[oid])
            history.append(commit)
            oid = commit.parents[0] if commit.parents else None
        return history

    # -- trees ----------------------------------------------------------------------------------

    def list_files(self, repo_id: str, revision: str | None = None, *, repo_type: str = "model",
                   folder: str | None = None) -> list[TreeEntry]:
        """Every file at a revision (recursively), sorted by path; ``folder`` restricts to files under it."""
        repo_id = validate_repo_id(repo_id)
        repo_type = validate_repo_type(repo_type)
        prefix = None if folder in (None, "", "/") else validate_folder(folder) + "/"
        with self.db.read() as conn:
            repo = self._repo_row(conn, repo_type, repo_id)
            commit = self._resolve(conn, repo, revision)
            entries = [TreeEntry(path, sha, size) for path, (sha, size) in self._load_tree(conn, commit.tree_id).items()
                       if prefix is None or path.startswith(prefix)]
        if prefix is not None and not entries:
            raise EntryNotFoundError(repo_id, revision or repo.default_branch, folder)
        return sorted(entries, key=lambda e: e.path)

    def get_entry(self, repo_id: str, path: str, revision: str | None = None, *, repo_type: str = "model",
                  check: Callable[[Repo], None] | None = None) -> tuple[Commit, TreeEntry]:
        """The commit a revision resolves to and the file at ``path`` in it.

        ``check(repo)`` runs first, in the same read (the HTTP layer's access check: a private repo the
        caller may not see raises exactly as a missing one, before revision or path are looked at).
        """
        repo_id = validate_repo_id(repo_id)
        repo_type = validate_repo_type(repo_type)
        path = validate_path(path)
        with self.db.read() as conn:
            repo = self._repo_row(conn, repo_type, repo_id)
            if check is not None:
                check(self._repo(repo))
            commit = self._resolve(conn, repo, revision)
            found = self._entries.get((commit.tree_id, path), lambda: _pair(conn.execute(
                select(t.tree_entries.c.blob_sha256, t.tree_entries.c.size)
                .where(t.tree_entries.c.tree_id == commit.tree_id, t.tree_entries.c.path == path)).one_or_none()))
        if found is None:
            raise EntryNotFoundError(repo_id, revision or repo.default_branch, path)
        return commit, TreeEntry(path, found[0], found[1])

    def read_bytes(self, repo_id: str, path: str, revision: str | None = None, *, repo_type: str = "model") -> bytes:
        """A small file's whole content (use :meth:`iter_file` to stream large ones)."""
        _, entry = self.get_entry(repo_id, path, revision, repo_type=repo_type)
        return b"".join(self.iter_blob(entry.blob_sha256))

    # -- commits --------------------------------------------------------------------------------

    def commit(self, repo_id: str, operations: Sequence[Operation], *, repo_type: str = "model",
               revision: str | None = None, title: str, message: str = "", author: str,
               parent_commit: str | None = None, allow_empty: bool = False, allow_pickle: bool = False,
               actor: str | None = None) -> Commit:
        """Apply operations to a branch head and record a new commit, atomically.

        Args:
            operations: ``AddFile`` (blob already stored), ``DeleteFile``, ``DeleteFolder``, ``CopyFile``,
                applied in order.
            revision: the branch to commit to (default: the repo's default branch).
            parent_commit: the head the caller based its change on; if the branch moved since,
                :class:`ConflictError` is raised and nothing is written (no lost update).
            allow_empty: record a commit even when the tree does not change.
            allow_pickle: store files holding a pickle (found by content: plain pickles, ``torch.save``
                archives, ``.npy`` object arrays, joblib, tar archives of them, whatever their names);
                refused by default because loading them can run code. fmhub reports them as unsafe, with
                the imports found, and never loads them.
            actor: who the audit log names (default: ``author``).

        ``.safetensors`` files are validated (header, offsets, sizes) before anything is written.

        Raises:
            ConflictError, EntryNotFoundError, BlobNotFoundError, EmptyCommitError, InvalidInputError
            (incl. UnsafeFileError, InvalidWeightsError).
        """
        repo_id = validate_repo_id(repo_id)
        repo_type = validate_repo_type(repo_type)
        author = _check_author(author)
        title = (title or "").strip()
        if not title:
            raise InvalidInputError("a commit needs a title (summary)", hint="pass a message with -m")
        if not operations and not allow_empty:
            raise InvalidInputError("no operations to commit")
        ops = [self._validated_op(op) for op in operations]
        self._check_safety(ops, allow_pickle=allow_pickle)
        with self.db.write() as conn:
            repo = self._repo_row(conn, repo_type, repo_id)
            branch = repo.default_branch if revision is None else revision
            if branch.startswith("refs/heads/"):
                branch = branch[len("refs/heads/"):]
            kind = "pr" if PR_REF.fullmatch(branch) else "branch"
            ref = conn.execute(
                select(t.refs).where(t.refs.c.repo_pk == repo.pk, t.refs.c.kind == kind, t.refs.c.name == branch)
                .with_for_update()
            ).one_or_none()
            if kind == "pr":
                self._check_pr_open(conn, repo.pk, branch)
            if ref is None:
                self._resolve(conn, repo, branch)  # raises RevisionNotFoundError for names that are nothing
                raise InvalidInputError(f"{branch!r} is not a branch of {repo_id!r}; commits go to branches",
                                        hint="create a branch from it first: fmhub branch create")
            if parent_commit is not None and parent_commit.lower() != ref.commit_oid:
                raise ConflictError(
                    f"branch {branch!r} of {repo_id!r} moved: expected head {parent_commit}, found {ref.commit_oid}",
                    expected=parent_commit, actual=ref.commit_oid,
                )
            head = self._commit(conn, repo.pk, ref.commit_oid)
            now = max(_now(), head.created_at)  # read under the branch lock: a child is never older than its parent
            old_tree = self._load_tree(conn, head.tree_id)
            tree = self._apply(conn, repo, branch, old_tree, ops)
            if tree == old_tree and not allow_empty:
                raise EmptyCommitError(repo_id, branch)
            added = {sha: size for (sha, size) in (tree[p] for p in tree if old_tree.get(p) != tree[p])}
            self._touch_blobs(conn, added)
            self._check_blobs_present(added)
            tree_id = self._save_tree(conn, tree)
            oid = self._insert_commit(conn, repo.pk, tree_id, [head.oid], author, title, message, now,
                                      head.generation + 1)
            self._guard_ref(conn, repo_type, repo_id, "branch", branch, oid, tree)
            moved = conn.execute(
                update(t.refs).where(t.refs.c.repo_pk == repo.pk, t.refs.c.kind == kind, t.refs.c.name == branch,
                                     t.refs.c.commit_oid == head.oid).values(commit_oid=oid, updated_at=now)
            ).rowcount
            if moved != 1:  # compare-and-swap lost: another writer moved the branch under us
                raise ConflictError(f"branch {branch!r} of {repo_id!r} moved during the commit", expected=head.oid)
            conn.execute(update(t.repos).where(t.repos.c.pk == repo.pk).values(updated_at=now))
            self._audit(conn, actor or author, "commit", repo_type, repo_id, ref=branch, commit_oid=oid,
                        detail={"title": title[:200], "files": len(ops)})
            if kind == "pr":  # the pull request's timeline shows the commit
                number = int(branch.rsplit("/", 1)[1])
                discussion_pk = conn.execute(select(t.discussions.c.pk).where(
                    t.discussions.c.repo_pk == repo.pk, t.discussions.c.num == number)).scalar_one()
                conn.execute(insert(t.discussion_events).values(
                    discussion_pk=discussion_pk, kind="commit", author=author, created_at=now, content=oid,
                    detail=title[:1000], edits=0, hidden=False))
                # A draft (opened empty) becomes open with its first commit, as on the Hub.
                conn.execute(update(t.discussions).where(t.discussions.c.pk == discussion_pk).values(
                    updated_at=now, status=case((t.discussions.c.status == "draft", "open"),
                                                else_=t.discussions.c.status)))
            made = self._commit(conn, repo.pk, oid)
        self.blobs.bind_scopes(list(added))  # per-namespace encryption keys wrap what the namespace now holds
        return made

    @staticmethod
    def _check_pr_open(conn: Connection, repo_pk: int, ref_name: str) -> None:
        status = conn.execute(select(t.discussions.c.status).where(
            t.discussions.c.repo_pk == repo_pk, t.discussions.c.num == int(ref_name.rsplit("/", 1)[1]))).scalar()
        if status not in ("open", "draft"):
            raise InvalidInputError(f"pull request {ref_name} is {status or 'missing'}: commits go to open ones",
                                    hint="reopen it first, or open a new pull request")

    @staticmethod
    def _validated_op(op: Operation) -> Operation:
        if isinstance(op, AddFile):
            if not isinstance(op.size, int) or op.size < 0:
                raise InvalidInputError(f"invalid size {op.size!r} for {op.path!r}")
            return AddFile(validate_path(op.path), check_sha256(op.blob_sha256), op.size)
        if isinstance(op, DeleteFile):
            # Deleting takes any name a store holds, so a file an older version let in can go.
            return DeleteFile(validate_stored_path(op.path))
        if isinstance(op, DeleteFolder):
            return DeleteFolder(validate_folder(op.path, stored=True))
        if isinstance(op, CopyFile):
            return CopyFile(validate_path(op.src_path), validate_path(op.dest_path), op.src_revision)
        raise InvalidInputError(f"unknown commit operation {op!r}")

    def _check_safety(self, ops: list[Operation], *, allow_pickle: bool) -> None:
        """Validate every added ``.safetensors`` header (reads only it); scan every other added file for a
        pickle by its content, whatever its name, and refuse it unless allowed."""
        for op in ops:
            if isinstance(op, AddFile) and op.path.lower().endswith(".safetensors"):
                sha = op.blob_sha256
                validate_safetensors(op.path, op.size, lambda start, end: b"".join(self.iter_blob(sha, start, end)))
        added = {op.blob_sha256: op for op in ops if isinstance(op, AddFile) and
                 not op.path.lower().endswith(".safetensors")}
        found = self.scan_blobs({sha: op.size for sha, op in added.items()})
        if not allow_pickle:
            for sha, op in added.items():
                if found[sha] is not None:
                    raise UnsafeFileError(op.path, found[sha].names)  # type: ignore[union-attr]

    def scan_blobs(self, sizes: dict[str, int]) -> dict[str, PickleScan | None]:
        """The pickle in each blob (None: none), scanned once per blob by content and recorded."""
        known = self.pickle_scans(list(sizes))
        fresh = {sha: scan_pickle(size, lambda start, end, sha=sha: b"".join(self.iter_blob(sha, start, end)))
                 for sha, size in sizes.items() if sha not in known}
        if fresh:
            now = _now()
            with self.db.write() as conn:
                _upsert(conn, t.blob_scans, [
                    {"sha256": sha, "scanner": scanner(), "scanned_at": now,
                     "pickle_imports": None if scan is None else json.dumps([list(i) for i in scan.imports])}
                    for sha, scan in fresh.items()], key="sha256")
        return {**known, **fresh}

    def pickle_scans(self, shas: Sequence[str]) -> dict[str, PickleScan | None]:
        """The recorded scans of these blobs (a blob never scanned, e.g. stored by an older fmhub, is absent)."""
        found: dict[str, PickleScan | None] = {}
        with self.db.read() as conn:
            for start in range(0, len(shas), 500):
                rows = conn.execute(select(t.blob_scans.c.sha256, t.blob_scans.c.pickle_imports)
                                    .where(t.blob_scans.c.sha256.in_(shas[start:start + 500])))
                for sha, imports in rows:
                    found[sha] = None if imports is None else PickleScan(tuple(tuple(i) for i in json.loads(imports)))
        return found

    def _apply(self, conn: Connection, repo, branch: str, old: dict[str, tuple[str, int]],
               ops: list[Operation]) -> dict[str, tuple[str, int]]:
        repo_id = f"{repo.namespace}/{repo.name}"
        tree = dict(old)
        for op in ops:
            if isinstance(op, AddFile):
                tree[op.path] = (op.blob_sha256, op.size)
            elif isinstance(op, DeleteFile):
                if tree.pop(op.path, None) is None:
                    raise EntryNotFoundError(repo_id, branch, op.path)
            elif isinstance(op, DeleteFolder):
                doomed = [p for p in tree if p.startswith(op.path + "/")]
                if not doomed:
                    raise EntryNotFoundError(repo_id, branch, op.path + "/")
                for p in doomed:
                    del tree[p]
            elif isinstance(op, CopyFile):
                source = tree if op.src_revision is None else \
                    self._load_tree(conn, self._resolve(conn, repo, op.src_revision).tree_id)
                if op.src_path not in source:
                    raise EntryNotFoundError(repo_id, op.src_revision or branch, op.src_path)
                tree[op.dest_path] = source[op.src_path]
        for path in tree:  # a path cannot be both a file and a folder
            parts = path.split("/")
            for i in range(1, len(parts)):
                parent = "/".join(parts[:i])
                if parent in tree:
                    raise InvalidInputError(f"{path!r} would be inside {parent!r}, which is a file",
                                            hint=f"delete {parent!r} first or pick another path")
        return tree

    def _check_blobs_present(self, sizes: dict[str, int]) -> None:
        for sha, size in sizes.items():
            actual = self.blob_size(sha)
            if actual is None:
                raise BlobNotFoundError(sha)
            if actual != size:
                raise IntegrityError(f"blob {sha} holds {actual} bytes, the commit declares {size}",
                                     expected=str(size), actual=str(actual))

    # -- refs -----------------------------------------------------------------------------------

    def list_refs(self, repo_id: str, *, repo_type: str = "model") -> RepoRefs:
        repo_id = validate_repo_id(repo_id)
        repo_type = validate_repo_type(repo_type)
        with self.db.read() as conn:
            repo = self._repo_row(conn, repo_type, repo_id)
            rows = conn.execute(select(t.refs).where(t.refs.c.repo_pk == repo.pk).order_by(t.refs.c.name)).all()
        refs = RepoRefs()
        for row in rows:
            ref = Ref(row.kind, row.name, row.commit_oid, row.message, _aware(row.created_at), _aware(row.updated_at))
            {"branch": refs.branches, "tag": refs.tags, "pr": refs.pull_requests}[row.kind].append(ref)
        return refs

    def create_branch(self, repo_id: str, branch: str, *, revision: str | None = None, repo_type: str = "model",
                      exist_ok: bool = False, actor: str | None = None) -> Ref:
        """Create ``branch`` at ``revision`` (default: the default branch's head)."""
        return self._create_ref(repo_id, repo_type, "branch", branch, revision, None, exist_ok, actor)

    def create_tag(self, repo_id: str, tag: str, *, revision: str | None = None, message: str | None = None,
                   repo_type: str = "model", exist_ok: bool = False, actor: str | None = None) -> Ref:
        """Create an immutable ``tag`` at ``revision``; an existing tag is never moved."""
        return self._create_ref(repo_id, repo_type, "tag", tag, revision, message, exist_ok, actor)

    def _create_ref(self, repo_id: str, repo_type: str, kind: str, name: str, revision: str | None,
                    message: str | None, exist_ok: bool, actor: str | None) -> Ref:
        repo_id = validate_repo_id(repo_id)
        repo_type = validate_repo_type(repo_type)
        now = _now()
        with self.db.write() as conn:
            repo = self._repo_row(conn, repo_type, repo_id)
            target = self._resolve(conn, repo, revision)  # a missing revision is reported before a bad name
            name = validate_ref_name(name)
            existing = conn.execute(  # a branch and a tag may share a name (as in git); revisions try the branch first
                select(t.refs).where(t.refs.c.repo_pk == repo.pk, t.refs.c.kind == kind, t.refs.c.name == name)
            ).one_or_none()
            if existing is not None:
                if exist_ok and existing.kind == kind and existing.commit_oid == target.oid:
                    return Ref(kind, name, existing.commit_oid, existing.message, _aware(existing.created_at),
                               _aware(existing.updated_at))
                raise RefExistsError(existing.kind, name)
            if self._ref_guards():
                self._guard_ref(conn, repo_type, repo_id, kind, name, target.oid, self._load_tree(conn, target.tree_id))
            conn.execute(insert(t.refs).values(repo_pk=repo.pk, kind=kind, name=name, commit_oid=target.oid,
                                               message=message, created_at=now, updated_at=now))
            conn.execute(update(t.repos).where(t.repos.c.pk == repo.pk).values(updated_at=now))
            self._audit(conn, actor, f"{kind}.create", repo_type, repo_id, ref=name, commit_oid=target.oid)
        return Ref(kind, name, target.oid, message, now, now)  # type: ignore[arg-type]

    def delete_branch(self, repo_id: str, branch: str, *, repo_type: str = "model", actor: str | None = None) -> None:
        """Delete a branch (never the default branch). Its commits stay reachable by id until gc."""
        self._delete_ref(repo_id, repo_type, "branch", branch, actor)

    def delete_tag(self, repo_id: str, tag: str, *, repo_type: str = "model", actor: str | None = None) -> None:
        """Delete a tag (tags are otherwise immutable: an existing tag is never moved)."""
        self._delete_ref(repo_id, repo_type, "tag", tag, actor)

    def _delete_ref(self, repo_id: str, repo_type: str, kind: str, name: str, actor: str | None) -> None:
        repo_id = validate_repo_id(repo_id)
        repo_type = validate_repo_type(repo_type)
        with self.db.write() as conn:
            repo = self._repo_row(conn, repo_type, repo_id)
            if kind == "branch" and name == repo.default_branch:
                raise ProtectedRefError(f"Cannot delete refs/heads/{name}: it is the default branch of {repo_id!r}")
            doomed = conn.execute(
                select(t.refs.c.commit_oid).where(t.refs.c.repo_pk == repo.pk, t.refs.c.kind == kind,
                                                  t.refs.c.name == name)
            ).scalar_one_or_none()
            if doomed is None:
                raise RevisionNotFoundError(repo_id, f"{kind} {name}")
            conn.execute(
                delete(t.refs).where(t.refs.c.repo_pk == repo.pk, t.refs.c.kind == kind, t.refs.c.name == name))
            conn.execute(update(t.repos).where(t.repos.c.pk == repo.pk).values(updated_at=_now()))
            self._audit(conn, actor, f"{kind}.delete", repo_type, repo_id, ref=name, commit_oid=doomed)

    # -- upload grants --------------------------------------------------------------------------

    def record_upload(self, repo_id: str, sha256: str, *, repo_type: str = "model") -> None:
        """Remember that ``sha256``'s bytes were uploaded to this repo, so its commits may reference it.

        Content addressing must not become an access path: a commit that names a blob by its sha256
        alone (an LFS pointer) is accepted only if the repo received those bytes, or if the caller can
        already read a repo that holds them (:meth:`repos_holding_blob`).
        """
        repo_id = validate_repo_id(repo_id)
        sha256 = check_sha256(sha256)
        with self.db.write() as conn:
            repo = self._repo_row(conn, validate_repo_type(repo_type), repo_id)
            _upsert(conn, t.lfs_uploads, {"repo_pk": repo.pk, "sha256": sha256, "uploaded_at": _now()},
                    key=("repo_pk", "sha256"), update_columns=("uploaded_at",))
        self.blobs.bind_scopes([sha256])

    def has_upload(self, repo_id: str, sha256: str, *, repo_type: str = "model") -> bool:
        with self.db.read() as conn:
            repo = self._repo_row(conn, validate_repo_type(repo_type), validate_repo_id(repo_id))
            return conn.execute(select(t.lfs_uploads.c.sha256).where(
                t.lfs_uploads.c.repo_pk == repo.pk, t.lfs_uploads.c.sha256 == sha256)).first() is not None

    def repos_holding_blob(self, sha256: str, *, limit: int = 100) -> list[Repo]:
        """Repos with at least one commit whose tree holds the blob (any revision, not only heads)."""
        sha256 = check_sha256(sha256)
        holding = (select(t.commits.c.repo_pk).join(t.tree_entries, t.tree_entries.c.tree_id == t.commits.c.tree_id)
                   .where(t.tree_entries.c.blob_sha256 == sha256).distinct())
        with self.db.read() as conn:
            rows = conn.execute(select(t.repos).where(t.repos.c.pk.in_(holding)).order_by(t.repos.c.key)
                                .limit(limit)).all()
        return [self._repo(row) for row in rows]

    def blobs_in_trees(self, candidates: Sequence[str]) -> set[str]:
        """Which of these sha256s some stored tree names (what a commit may still need)."""
        found: set[str] = set()
        with self.db.read() as conn:
            for i in range(0, len(candidates), 500):
                batch = list(candidates[i:i + 500])
                found |= set(conn.execute(select(t.tree_entries.c.blob_sha256)
                                          .where(t.tree_entries.c.blob_sha256.in_(batch)).distinct()).scalars())
        return found

    # -- server settings ------------------------------------------------------------------------

    def shared_setting(self, key: str, create: Callable[[], str]) -> str:
        """A server-wide value, created once by whichever process asks first (e.g. a signing key)."""
        with self.db.read() as conn:
            value = conn.execute(select(t.hub_settings.c.value).where(t.hub_settings.c.key == key)).scalar()
        if value is not None:
            return value
        with self.db.write() as conn:
            value = conn.execute(select(t.hub_settings.c.value).where(t.hub_settings.c.key == key)).scalar()
            if value is None:
                value = create()
                conn.execute(insert(t.hub_settings).values(key=key, value=value))
            return value

    # -- audit ----------------------------------------------------------------------------------

    def _audit(self, conn: Connection, actor: str | None, action: str, repo_type: str | None, repo_id: str | None,
               *, ref: str | None = None, commit_oid: str | None = None, detail: dict | None = None) -> None:
        """Record a write in the transaction that makes it: the trail and the change land together, and so do
        the indexes the registered write hooks keep (search, lineage)."""
        conn.execute(insert(t.audit_log).values(
            at=_now(), actor=(actor or LOCAL_ACTOR)[:_MAX_AUTHOR], action=action, repo_type=repo_type,
            repo_id=repo_id, ref=ref, commit_oid=commit_oid,
            detail=json.dumps(detail, sort_keys=True) if detail else None))
        if self._hook_list is None:
            self._hook_list = registered_write_hooks()
        if self._hook_list:
            context = WriteContext(self, conn, action, repo_type, repo_id, ref, commit_oid, dict(detail or {}))
            for hook in self._hook_list:
                hook.after_write(context)

    def audit_events(self, *, repo_id: str | None = None, repo_type: str | None = None, actor: str | None = None,
                     action: str | None = None, since: datetime | None = None, limit: int = 100) -> list[AuditEvent]:
        """Writes, newest first, filtered by repo, actor, action (``commit``, ``repo.create``...) or time."""
        if limit < 1:
            raise InvalidInputError(f"limit must be positive, got {limit}")
        query = select(t.audit_log).order_by(t.audit_log.c.pk.desc()).limit(limit)
        if repo_id is not None:
            query = query.where(func.lower(t.audit_log.c.repo_id) == validate_repo_id(repo_id).lower())
        if repo_type is not None:
            query = query.where(t.audit_log.c.repo_type == validate_repo_type(repo_type))
        if actor is not None:
            query = query.where(func.lower(t.audit_log.c.actor) == actor.lower())
        if action is not None:
            query = query.where(t.audit_log.c.action == action)
        if since is not None:
            query = query.where(t.audit_log.c.at >= since)
        with self.db.read() as conn:
            return [AuditEvent(_aware(r.at), r.actor, r.action, r.repo_type, r.repo_id, r.ref, r.commit_oid,
                               json.loads(r.detail) if r.detail else {}) for r in conn.execute(query)]

    # -- rows → objects -------------------------------------------------------------------------

    @staticmethod
    def _repo_row(conn: Connection, repo_type: str, repo_id: str, *, required: bool = True):
        row = conn.execute(_statements().repo_by_key, {"key": _repo_key(repo_type, repo_id)}).one_or_none()
        if row is None and required:
            raise RepoNotFoundError(repo_type, repo_id)
        return row

    @staticmethod
    def _repo(row) -> Repo:
        return Repo(row.repo_type, f"{row.namespace}/{row.name}", bool(row.private), row.default_branch,
                    _aware(row.created_at), _aware(row.updated_at))

    def _commit(self, conn: Connection, repo_pk: int, oid: str) -> Commit:
        return self._commits.get((repo_pk, oid), lambda: self._commit_from_row(conn.execute(
            select(t.commits).where(t.commits.c.repo_pk == repo_pk, t.commits.c.oid == oid)).one()))

    @staticmethod
    def _commit_from_row(row) -> Commit:
        return Commit(row.oid, row.tree_id, tuple(json.loads(row.parents)), row.author, row.title, row.message,
                      _aware(row.created_at), row.generation)

    @staticmethod
    def _load_tree(conn: Connection, tree_id: str) -> dict[str, tuple[str, int]]:
        rows = conn.execute(select(t.tree_entries.c.path, t.tree_entries.c.blob_sha256, t.tree_entries.c.size)
                            .where(t.tree_entries.c.tree_id == tree_id))
        return {path: (sha, size) for path, sha, size in rows}

    @staticmethod
    def _save_tree(conn: Connection, tree: dict[str, tuple[str, int]]) -> str:
        tree_id = compute_tree_id(tree)
        inserted = _upsert(conn, t.trees, {"tree_id": tree_id, "file_count": len(tree),
                                           "total_size": sum(size for _, size in tree.values())},
                           key="tree_id", returning=True).first()
        if inserted is not None:  # identical trees (across commits and repos) are stored once
            conn.execute(insert(t.tree_entries), [
                {"tree_id": tree_id, "path": path, "blob_sha256": sha, "size": size}
                for path, (sha, size) in tree.items()
            ])
        return tree_id

    @staticmethod
    def _insert_commit(conn: Connection, repo_pk: int, tree_id: str, parents: list[str], author: str, title: str,
                       message: str, created_at: datetime, generation: int) -> str:
        oid = compute_commit_id(tree_id, parents, author, title, message, created_at)
        conn.execute(insert(t.commits).values(repo_pk=repo_pk, oid=oid, tree_id=tree_id, parents=json.dumps(parents),
                                              author=author, title=title, message=message, created_at=created_at,
                                              generation=generation))
        return oid

    def iter_file(self, entry: TreeEntry, start: int = 0, end: int | None = None, *,
                  chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
        """Stream a file's bytes (or the ``[start, end)`` range) in chunks of ``chunk_size``."""
        return self.iter_blob(entry.blob_sha256, start, end, chunk_size=chunk_size)

    # -- ref guards (domains' rules on refs, e.g. signature policies) ---------------------------

    def _ref_guards(self) -> list[RefGuard]:
        if self._guard_list is None:
            self._guard_list = registered_ref_guards()
        return self._guard_list

    def _guard_ref(self, conn: Connection, repo_type: str, repo_id: str, kind: str, name: str, commit_oid: str,
                   tree: dict[str, tuple[str, int]]) -> None:
        for guard in self._ref_guards():
            guard.check_ref_move(self, conn, repo_type=repo_type, repo_id=repo_id, kind=kind, name=name,
                                 commit_oid=commit_oid, tree=tree)

    # -- files held by storage extensions ------------------------------------------------------

    def _extensions(self) -> list[StorageExtension]:
        if self._extension_list is None:
            self._extension_list = registered_extensions()
        return self._extension_list

    def blob_size(self, sha256: str) -> int | None:
        """The size of the file with this sha256, stored as a blob or held by a storage extension; None if
        the store has no such file."""
        try:
            return self.blobs.size(sha256)
        except BlobNotFoundError:
            pass
        for extension in self._extensions():
            size = extension.blob_size(self, sha256)
            if size is not None:
                return size
        return None

    def iter_blob(self, sha256: str, start: int = 0, end: int | None = None, *,
                  chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
        """Stream the bytes ``[start, end)`` of the file with this sha256, wherever the store holds it.

        Raises:
            BlobNotFoundError: neither the blob store nor a storage extension holds it.
        """
        try:
            return self.blobs.iter_chunks(sha256, start, end, chunk_size=chunk_size)
        except BlobNotFoundError:
            for extension in self._extensions():
                size = extension.blob_size(self, sha256)
                if size is not None:
                    stop = size if end is None else min(end, size)
                    return extension.iter_blob(self, sha256, min(start, stop), stop, chunk_size)
            raise
