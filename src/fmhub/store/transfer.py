"""Moving files between a local disk and a store: upload a file or folder, download a snapshot.

Downloads land like ``huggingface_hub``'s: in a cache folder keyed by commit
(``$FMHUB_HOME/cache/models--ns--name/snapshots/<commit>/``) or in a ``local_dir`` of the user's
choice; every file is written to a unique temp file beside its target, then renamed, so a
reader never sees a half-written file and an interrupted download resumes cleanly (with ``fsync``,
each file is also flushed to disk before it appears).
"""

from __future__ import annotations

import fnmatch
import functools
import hashlib
import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from fmhub.constants import settings
from fmhub.errors import BlobNotFoundError, EntryNotFoundError, IntegrityError, InvalidInputError, InvalidPathError
from fmhub.store.blobs._base import Progress, hash_file
from fmhub.store.blobs.file import fsync_dir as _fsync_dir
from fmhub.store.objects import AddFile, Commit, TreeEntry
from fmhub.store.paths import validate_folder, validate_path
from fmhub.store.store import DEFAULT_BRANCH, Store

__all__ = ["PlannedFile", "plan_upload", "upload", "download_snapshot", "download_files", "FileFetcher",
           "select_files", "snapshot_folder"]

#: Writes the bytes of one tree entry into an open file, verifying them if it can, and reports progress.
#: A store reads its blob store; a hub client streams ``/resolve/`` (see :func:`download_files`).
FileFetcher = Callable[[TreeEntry, BinaryIO, Progress | None], None]

#: Never uploaded from a folder: version-control and client-cache internals.
_SKIPPED_DIRS = {".git", ".hg", ".svn", "__pycache__"}
_SKIPPED_PREFIXES = (".cache/huggingface/", ".cache/fmhub/")


@dataclass(frozen=True)
class PlannedFile:
    """A local file and the validated path it will have in the repo."""

    local: Path
    path_in_repo: str
    size: int


def plan_upload(local: Path | str, path_in_repo: str | None = None, *, include: str | Iterable[str] | None = None,
                exclude: str | Iterable[str] | None = None) -> list[PlannedFile]:
    """The files an upload of ``local`` (a file or a folder) sends, with their validated repo paths.

    A file goes to ``path_in_repo`` (default: its name); a folder's files go under ``path_in_repo``
    (default: the repo root), keeping their relative paths, as ``huggingface-cli upload`` does.
    ``include`` / ``exclude`` globs match a folder's files by their path relative to the folder
    (``huggingface_hub``'s ``allow_patterns`` / ``ignore_patterns``).
    """
    local = Path(local)
    if local.is_file():
        target = validate_path(path_in_repo if path_in_repo else local.name)
        if not _matches(local.name, _normalize_patterns(include), _normalize_patterns(exclude)):
            raise InvalidInputError(f"{str(local)!r} is excluded by the include/exclude patterns")
        return [PlannedFile(local, target, local.stat().st_size)]
    if not local.is_dir():
        raise InvalidInputError(f"{str(local)!r} does not exist", hint="give a file or folder to upload")
    prefix = "" if path_in_repo in (None, "", ".", "/") else validate_folder(path_in_repo) + "/"
    includes, excludes = _normalize_patterns(include), _normalize_patterns(exclude)
    planned: list[PlannedFile] = []
    for root, dirs, files in os.walk(local):
        dirs[:] = sorted(d for d in dirs if d not in _SKIPPED_DIRS)
        for name in sorted(files):
            path = Path(root) / name
            relative = path.relative_to(local).as_posix()
            if relative.startswith(_SKIPPED_PREFIXES) or not path.is_file():
                continue
            if not _matches(relative, includes, excludes):
                continue
            planned.append(PlannedFile(path, validate_path(prefix + relative), path.stat().st_size))
    if not planned:
        filtered = " matching the include/exclude patterns" if include is not None or exclude is not None else ""
        raise InvalidInputError(f"folder {str(local)!r} holds no files{filtered} to upload")
    return sorted(planned, key=lambda planned_file: planned_file.path_in_repo)


def upload(store: Store, repo_id: str, files: Sequence[PlannedFile], *, repo_type: str = "model",
           revision: str | None = None, title: str, message: str = "", author: str,
           parent_commit: str | None = None, allow_pickle: bool = False, progress: Progress | None = None,
           hash_progress: Progress | None = None) -> Commit:
    """Store the planned files' bytes and commit them in one commit.

    ``allow_pickle`` is :meth:`Store.commit`'s: pickle-based files are refused unless it is set.

    Raises:
        EmptyCommitError: every file is already in the branch with the same content.
    """
    operations = []
    for planned in files:
        info = store.put_file(planned.local, progress=progress, hash_progress=hash_progress)
        operations.append(AddFile(planned.path_in_repo, info.sha256, info.size))
    return store.commit(repo_id, operations, repo_type=repo_type, revision=revision, title=title, message=message,
                        author=author, parent_commit=parent_commit, allow_pickle=allow_pickle)


def _normalize_patterns(patterns: str | Iterable[str] | None) -> list[str] | None:
    if patterns is None:
        return None
    if isinstance(patterns, str):
        patterns = [patterns]
    # Like huggingface_hub: "folder/" means everything below the folder.
    return [p + "*" if p.endswith("/") else p for p in patterns]


def _matches(path: str, includes: list[str] | None, excludes: list[str] | None) -> bool:
    return (includes is None or any(fnmatch.fnmatch(path, p) for p in includes)) and \
        not (excludes and any(fnmatch.fnmatch(path, p) for p in excludes))


def select_files(entries: Iterable[TreeEntry], include: str | Iterable[str] | None = None,
                 exclude: str | Iterable[str] | None = None) -> list[TreeEntry]:
    """Entries matching any ``include`` glob (all when None) and no ``exclude`` glob (fnmatch rules)."""
    includes, excludes = _normalize_patterns(include), _normalize_patterns(exclude)
    return [entry for entry in entries if _matches(entry.path, includes, excludes)]


def snapshot_folder(cache_dir: Path, repo_id: str, repo_type: str, commit_oid: str) -> Path:
    """Where a commit's snapshot lives in the cache (``huggingface_hub``'s layout)."""
    return cache_dir / f"{repo_type}s--{repo_id.replace('/', '--')}" / "snapshots" / commit_oid


def _file_matches(path: Path, entry: TreeEntry, *, check_hash: bool) -> bool:
    try:
        if path.stat().st_size != entry.size:
            return False
    except FileNotFoundError:
        return False
    if not check_hash:
        return True
    return hash_file(path)[0] == entry.blob_sha256


@functools.cache
def _umask() -> int:
    try:  # Linux reports it without changing it
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o22)  # elsewhere reading the umask means setting it; restore at once
    os.umask(mask)
    return mask


def _from_store(store: Store, *, verify: bool) -> FileFetcher:
    """Fetch files from a store's blobs; with ``verify``, hash what is written against the commit."""

    def fetch(entry: TreeEntry, out: BinaryIO, progress: Progress | None) -> None:
        if not verify:
            try:
                store.blobs.download(entry.blob_sha256, out, progress)
                return
            except BlobNotFoundError:  # held by a storage extension (e.g. Xet chunks): streamed below
                pass
        # Stream through sha256 so what lands on disk is proven to be what was committed.
        digest = hashlib.sha256()
        for chunk in store.iter_file(entry):
            digest.update(chunk)
            out.write(chunk)
            if progress:
                progress(len(chunk))
        if digest.hexdigest() != entry.blob_sha256:
            error = IntegrityError(f"{entry.path}: stored bytes hash to {digest.hexdigest()}, expected "
                                   f"{entry.blob_sha256}", expected=entry.blob_sha256, actual=digest.hexdigest())
            error.hint = "the hub's copy is damaged: `fmhub fsck` lists every damaged blob"
            raise error

    return fetch


def _write_atomically(fetch: FileFetcher, entry: TreeEntry, target: Path, *, fsync: bool,
                      progress: Progress | None) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".incomplete")
    try:
        with os.fdopen(fd, "wb") as out:
            fetch(entry, out, progress)
            if fsync:
                out.flush()
                os.fsync(out.fileno())
        os.chmod(tmp_name, 0o666 & ~_umask())  # mkstemp makes 0600; downloads get the user's usual mode
        os.replace(tmp_name, target)
        if fsync:
            _fsync_dir(target.parent)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def download_snapshot(store: Store, repo_id: str, *, revision: str | None = None, repo_type: str = "model",
                      filenames: Sequence[str] | None = None, local_dir: Path | str | None = None,
                      cache_dir: Path | str | None = None, include: str | Iterable[str] | None = None,
                      exclude: str | Iterable[str] | None = None, verify: bool = False, fsync: bool = False,
                      progress: Progress | None = None,
                      on_plan: Callable[[Commit, list[TreeEntry]], None] | None = None) -> Path:
    """Download the files of a revision and return the folder holding them.

    Args:
        filenames: only these files (globs allowed); each must match a file, or nothing is fetched.
        local_dir: put the files here (kept in sync: files already present with the same content
            are not downloaded again). Default: the snapshot cache under ``cache_dir``.
        cache_dir: snapshot cache root (default ``$FMHUB_HOME/cache``).
        include / exclude: glob patterns on repo paths (``*.json``, ``onnx/``).
        verify: re-hash the bytes while writing them (the store already verified them on upload).
        fsync: flush every file (and its folder) to disk before it appears, so it survives a power
            loss. Off by default, as in ``huggingface_hub`` and git checkouts: a download is a copy
            that can be fetched again, and a file cut short by a crash fails the size (cache) or
            sha256 (``local_dir``) check and is fetched again. The store's own blobs are always fsynced.
        progress: called with byte counts as files are written.
        on_plan: called once with the resolved commit and the files about to be fetched.
    """
    commit = store.resolve_revision(repo_id, revision, repo_type=repo_type)
    files = store.list_files(repo_id, commit.oid, repo_type=repo_type)
    return download_files(_from_store(store, verify=verify), repo_id, commit, files, repo_type=repo_type,
                          revision=revision, filenames=filenames, local_dir=local_dir, cache_dir=cache_dir,
                          include=include, exclude=exclude, fsync=fsync, progress=progress, on_plan=on_plan)


def _refuse_unsafe_names(entries: Sequence[TreeEntry]) -> None:
    # Defence in depth: a store written by an older fmhub (or a hub of another make) may hold names the
    # path policy now refuses, such as '.git/hooks/post-checkout'; none of them is written to disk.
    unsafe: list[str] = []
    for entry in entries:
        try:
            validate_path(entry.path)
        except InvalidPathError as error:
            unsafe.append(f"{entry.path!r} ({error.reason})")
    if unsafe:
        raise InvalidInputError(
            f"the revision holds {len(unsafe)} file(s) whose names are unsafe to write to disk: "
            + "; ".join(unsafe[:5]) + (" ..." if len(unsafe) > 5 else ""),
            hint="leave them out with --exclude (for example --exclude '.git/*'), "
                 "and ask the repo's owner to delete them")


def download_files(fetch: FileFetcher, repo_id: str, commit: Commit, files: Sequence[TreeEntry], *,
                   repo_type: str = "model", revision: str | None = None, filenames: Sequence[str] | None = None,
                   local_dir: Path | str | None = None, cache_dir: Path | str | None = None,
                   include: str | Iterable[str] | None = None, exclude: str | Iterable[str] | None = None,
                   fsync: bool = False, progress: Progress | None = None,
                   on_plan: Callable[[Commit, list[TreeEntry]], None] | None = None) -> Path:
    """The disk side of a download, whatever the bytes' source: select, plan, write each file atomically.

    ``files`` is the commit's whole tree; ``fetch`` writes one entry's bytes (a store's blobs in
    :func:`download_snapshot`, HTTP in the hub client). Other arguments are :func:`download_snapshot`'s;
    ``revision`` only names the revision in errors.
    """
    if filenames and include is not None:
        raise InvalidInputError("give file names or include patterns, not both", hint="use only include globs")
    entries = select_files(files, list(filenames) if filenames else include, exclude)
    if filenames:
        missing = [name for name in filenames if not select_files(entries, name)]
        if missing:
            raise EntryNotFoundError(repo_id, revision or DEFAULT_BRANCH, ", ".join(missing))
    _refuse_unsafe_names(entries)
    if local_dir is not None:
        root = Path(local_dir).expanduser()
        check_hash = True
    else:
        if cache_dir is None:
            cache_dir = settings().home / "cache"
        root = snapshot_folder(Path(cache_dir), repo_id, repo_type, commit.oid)
        check_hash = False  # a cache snapshot is keyed by commit and written atomically: size suffices
    if root.exists() and not root.is_dir():
        raise InvalidInputError(f"{str(root)!r} exists and is not a folder", hint="pick another --local-dir")
    todo = [e for e in entries if not _file_matches(root / e.path, e, check_hash=check_hash)]
    if on_plan:
        on_plan(commit, todo)
    root.mkdir(parents=True, exist_ok=True)
    resolved_root = root.resolve()
    for entry in todo:
        target = root / entry.path  # entry paths were validated when committed: relative, no '..'
        if not target.resolve().is_relative_to(resolved_root):  # a symlink planted in local_dir
            raise InvalidInputError(f"{str(target)!r} leads outside {str(root)!r} through a symlink",
                                    hint="remove the symlink or pick another --local-dir")
        _write_atomically(fetch, entry, target, fsync=fsync, progress=progress)
    return root
