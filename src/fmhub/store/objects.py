"""The store's value types: repos, commits, tree entries, refs, and commit operations.

Ids follow git's idea: a tree id hashes its sorted entries, and a commit id is a SHA-1 over
(tree, parents, author, time, message), so the 40-hex form Hugging Face clients expect comes out.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

__all__ = [
    "Repo",
    "AuditEvent",
    "Commit",
    "TreeEntry",
    "Ref",
    "RepoRefs",
    "AddFile",
    "DeleteFile",
    "DeleteFolder",
    "CopyFile",
    "Operation",
    "compute_tree_id",
    "compute_commit_id",
]

RepoType = Literal["model", "dataset"]


@dataclass(frozen=True)
class Repo:
    repo_type: str
    repo_id: str
    private: bool
    default_branch: str
    created_at: datetime
    updated_at: datetime

    @property
    def namespace(self) -> str:
        return self.repo_id.split("/", 1)[0]

    @property
    def name(self) -> str:
        return self.repo_id.split("/", 1)[1]


@dataclass(frozen=True)
class AuditEvent:
    """One write as the audit log recorded it."""

    at: datetime
    actor: str
    action: str  # repo.create | repo.settings | repo.delete | commit | branch.create | tag.delete | ...
    repo_type: str | None
    repo_id: str | None
    ref: str | None
    commit_oid: str | None
    detail: dict


@dataclass(frozen=True)
class Commit:
    oid: str
    tree_id: str
    parents: tuple[str, ...]
    author: str
    title: str
    message: str
    created_at: datetime
    generation: int

    @property
    def short_oid(self) -> str:
        return self.oid[:7]


@dataclass(frozen=True)
class TreeEntry:
    """A file in a commit's tree: where it is, which blob holds it, how big it is."""

    path: str
    blob_sha256: str
    size: int


@dataclass(frozen=True)
class Ref:
    kind: Literal["branch", "tag", "pr"]
    name: str
    commit_oid: str
    message: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class RepoRefs:
    branches: list[Ref] = field(default_factory=list)
    tags: list[Ref] = field(default_factory=list)
    pull_requests: list[Ref] = field(default_factory=list)  # refs/pr/N, newest number last


# -- commit operations ------------------------------------------------------------------------------
# Paths are validated by Store.commit (the one place), so these stay plain records.


@dataclass(frozen=True)
class AddFile:
    """Add or replace ``path`` with a blob already in the store (see ``Store.put_*``)."""

    path: str
    blob_sha256: str
    size: int


@dataclass(frozen=True)
class DeleteFile:
    path: str


@dataclass(frozen=True)
class DeleteFolder:
    """Delete every file under ``path/``."""

    path: str


@dataclass(frozen=True)
class CopyFile:
    """Copy ``src_path`` (at ``src_revision``, default: the branch head) to ``dest_path``, no bytes moved."""

    src_path: str
    dest_path: str
    src_revision: str | None = None


Operation = AddFile | DeleteFile | DeleteFolder | CopyFile


def compute_tree_id(entries: Mapping[str, tuple[str, int]]) -> str:
    """sha256 over the entries sorted by UTF-8 path: ``path NUL sha256 SP size LF`` each."""
    digest = hashlib.sha256()
    for path in sorted(entries, key=lambda p: p.encode("utf-8")):
        sha, size = entries[path]
        digest.update(path.encode("utf-8") + b"\0" + f"{sha} {size}\n".encode("ascii"))
    return digest.hexdigest()


def compute_commit_id(
    tree_id: str, parents: Iterable[str], author: str, title: str, message: str, created_at: datetime
) -> str:
    """A git-like commit id: SHA-1 over a canonical text of the commit (40 hex characters)."""
    lines = [f"tree {tree_id}"]
    lines += [f"parent {p}" for p in parents]
    lines.append(f"author {author}")
    lines.append(f"time {created_at.isoformat(timespec='microseconds')}")
    text = "\n".join(lines) + "\n\n" + title + "\n\n" + message
    return hashlib.sha1(text.encode("utf-8"), usedforsecurity=False).hexdigest()
