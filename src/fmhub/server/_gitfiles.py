"""What git files of a revision say about its paths, as the Hugging Face Hub reads them.

- ``.gitattributes``: paths with ``filter=lfs`` are LFS files (uploaded through LFS/Xet, described with an
  ``lfs`` block and the pointer's blob id), as are files of at least :data:`LFS_THRESHOLD` bytes and, at
  upload, files whose first bytes are binary.
- ``.gitignore`` (at the repo root): matching paths are skipped at upload (preupload's ``shouldIgnore``).

Patterns follow git's wildmatch rules (``pathspec``). Both files are small and content-identified, so
their parsed form is cached by blob sha256.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pathspec

from fmhub.errors import FmhubError
from fmhub.store import Repo, Store, TreeEntry
from fmhub.store.store import GITATTRIBUTES
from fmhub.store.gitoids import content_git_sha1, lfs_pointer, lfs_pointer_sha1
from fmhub.store.pickles import security_file_status
from fmhub.store.safety import is_pickle_path
from fmhub.xet import XetStorage

__all__ = ["LFS_THRESHOLD", "GitRules", "git_rules", "rules_for_revision", "rules_for_commit", "describe_files", "is_binary_sample",
           "security_statuses"]

#: Files at least this large are LFS files whatever their name, as on the Hub (10 MB).
LFS_THRESHOLD = 10 * 1024 * 1024
#: Larger git files are not parsed (the Hub's own limits are of this order); their rules are ignored.
_MAX_RULES_FILE = 1024 * 1024
_NEVER_LFS = frozenset({".gitattributes", ".gitignore"})
_CACHE: dict[tuple[str, str], pathspec.PathSpec] = {}
_CACHE_SIZE = 512
_EMPTY = pathspec.GitIgnoreSpec.from_lines([])


def _lfs_lines(text: str) -> list[str]:
    """``.gitattributes`` lines → gitignore-style lines: ``pattern`` where filter=lfs is set, ``!pattern``
    where it is unset (``-filter``, ``!filter`` or another filter), later lines winning as in git."""
    lines = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        pattern, *attributes = line.split()
        if pattern.startswith("!"):  # negative patterns are forbidden in .gitattributes: git ignores them
            continue
        for attribute in attributes:
            if attribute == "filter=lfs":
                lines.append(pattern)
            elif attribute in ("-filter", "!filter") or attribute.startswith("filter="):
                lines.append("!" + pattern)
    return lines


def _spec(store: Store, entry: TreeEntry | None, kind: str) -> pathspec.PathSpec:
    if entry is None or entry.size > _MAX_RULES_FILE:
        return _EMPTY
    key = (kind, entry.blob_sha256)
    if key not in _CACHE:
        try:
            text = b"".join(store.iter_file(entry)).decode("utf-8", "replace")
        except FmhubError:
            return _EMPTY
        lines = _lfs_lines(text) if kind == "attributes" else text.splitlines()
        if len(_CACHE) >= _CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))
        try:
            _CACHE[key] = pathspec.GitIgnoreSpec.from_lines(lines)
        except (ValueError, TypeError):  # a malformed pattern: the file gives no rules, like git would skip it
            _CACHE[key] = _EMPTY
    return _CACHE[key]


_DEFAULT_LFS = pathspec.GitIgnoreSpec.from_lines(_lfs_lines(GITATTRIBUTES.decode()))


@dataclass(frozen=True)
class GitRules:
    """The LFS and ignore rules of one revision."""

    lfs: pathspec.PathSpec
    ignore: pathspec.PathSpec

    def is_lfs(self, path: str, size: int) -> bool:
        """Whether the Hub describes this stored file as an LFS file."""
        if path in _NEVER_LFS or size == 0:  # an empty file is never stored as LFS, as on the Hub
            return False
        return size >= LFS_THRESHOLD or self.lfs.match_file(path)

    def ignored(self, path: str) -> bool:
        return path not in _NEVER_LFS and self.ignore.match_file(path)


def git_rules(store: Store, files: Iterable[TreeEntry], *, gitignore: bytes | None = None) -> GitRules:
    """The rules of a revision whose root files include ``files`` (only the root git files are read).

    ``gitignore``: a ``.gitignore`` being uploaded in the same commit, whose rules then apply instead.
    """
    found = {e.path: e for e in files if e.path in _NEVER_LFS}
    ignore = _spec(store, found.get(".gitignore"), "ignore")
    if ".gitattributes" not in found:
        # Deleting .gitattributes does not turn git's LFS pointers back into files: without one, a revision's
        # files stay described by the rules every repo starts with (what most of them were stored under).
        return GitRules(_DEFAULT_LFS, ignore)
    if gitignore is not None:
        try:
            ignore = pathspec.GitIgnoreSpec.from_lines(gitignore.decode("utf-8", "replace").splitlines())
        except (ValueError, TypeError):
            ignore = _EMPTY
    return GitRules(_spec(store, found.get(".gitattributes"), "attributes"), ignore)


def rules_for_revision(store: Store, repo_id: str, revision: str, repo_type: str) -> GitRules:
    """The rules of a revision, looking its root git files up by path."""
    entries = []
    for path in _NEVER_LFS:
        try:
            entries.append(store.get_entry(repo_id, path, revision, repo_type=repo_type)[1])
        except LookupError:
            continue
    return git_rules(store, entries)


_COMMIT_RULES: dict[tuple[str, str, str], GitRules] = {}


def rules_for_commit(store: Store, repo: Repo, commit_oid: str) -> GitRules:
    """:func:`rules_for_revision` of a commit, remembered (a commit never changes; downloads ask per file)."""
    key = (repo.repo_type, repo.repo_id.lower(), commit_oid)
    rules = _COMMIT_RULES.get(key)
    if rules is None:
        rules = rules_for_revision(store, repo.repo_id, commit_oid, repo.repo_type)
        if len(_COMMIT_RULES) >= _CACHE_SIZE:
            _COMMIT_RULES.clear()  # simplest bound; a clear is safe while other threads read
        _COMMIT_RULES[key] = rules
    return rules


def is_binary_sample(sample: bytes) -> bool:
    """Whether a file's first bytes look binary: a NUL byte, or not UTF-8 (a sequence cut at the end of the
    sample is allowed)."""
    if b"\0" in sample:
        return True
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start < len(sample) - 3 or exc.reason != "unexpected end of data"
    return False


def security_statuses(store: Store, entries: list[TreeEntry]) -> dict[str, dict[str, Any]]:
    """The Hub's ``securityFileStatus`` of the files holding a pickle (stored only with --allow-pickle; fmhub
    never loads them), by path. The client reads the ``avScan`` and ``pickleImportScan`` keys.

    The scan recorded when the file was committed names the imports found; a file stored by an older
    fmhub, never scanned, is marked by its pickle-like name alone (without an import list).
    """
    scans = store.pickle_scans(sorted({e.blob_sha256 for e in entries}))
    statuses: dict[str, dict[str, Any]] = {}
    for entry in entries:
        if entry.blob_sha256 in scans:
            scan = scans[entry.blob_sha256]
            if scan is not None:
                statuses[entry.path] = security_file_status(scan)
        elif is_pickle_path(entry.path):
            statuses[entry.path] = {"status": "unsafe", "avScan": {"virusFound": False, "virusNames": None},
                                    "pickleImportScan": None}
    return statuses


def describe_files(store: Store, entries: list[TreeEntry], rules: GitRules) -> list[dict[str, Any]]:
    """Files as the Hub's tree and paths-info describe them (``huggingface_hub.RepoFile``): ``oid`` is
    git's blob id (of the pointer for LFS files), ``lfs`` carries the sha256."""
    lfs = {e.path for e in entries if rules.is_lfs(e.path, e.size)}
    sha1 = content_git_sha1(store, {e.blob_sha256: e.size for e in entries if e.path not in lfs})
    xet = XetStorage(store)
    statuses = security_statuses(store, entries)
    items = []
    for entry in entries:
        item: dict[str, Any] = {"type": "file", "size": entry.size, "path": entry.path, "sha256": entry.blob_sha256}
        if entry.path in lfs:
            item["oid"] = lfs_pointer_sha1(entry.blob_sha256, entry.size)
            item["lfs"] = {"oid": entry.blob_sha256, "size": entry.size,
                           "pointerSize": len(lfs_pointer(entry.blob_sha256, entry.size))}
            if xet_file := xet.file_by_sha256(entry.blob_sha256):  # the client then downloads it through Xet
                item["xetHash"] = xet_file.file_hash
        else:
            item["oid"] = sha1[entry.blob_sha256]
        if status := statuses.get(entry.path):
            item["securityFileStatus"] = status
        items.append(item)
    return items
