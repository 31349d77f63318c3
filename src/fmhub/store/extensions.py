"""Storage extensions: domains that keep some files' bytes in a form of their own, beside the blob store.

A commit names every file by its sha256. Most files are blobs (their bytes under their sha256); a domain
may instead hold a file as pieces of other blobs (Xet: chunks in xorbs, so versions share their unchanged
chunks). Such a domain registers a :class:`StorageExtension`, and the store then:

- reads those files through it (downloads, ranges, safetensors checks on commit);
- counts them as present when a commit or ``fsck`` asks for the file;
- asks it, in ``gc``, which stored blobs it still needs, after letting it collect its own records;
- lets it add its own checks to ``fsck``.

The store never imports a domain: a domain registers itself when its package is imported, and the store
imports the domains listed in :data:`~fmhub.store._schema.DOMAIN_TABLE_MODULES` (which it names already for
their tables) before it consults the registry, so an extension is active wherever the store is opened.
"""

from __future__ import annotations

import abc
import importlib
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import Connection

# The store (fmhub.store.Store) is passed in, not imported: the store imports this module.
Store = Any

__all__ = ["StorageExtension", "register_extension", "registered_extensions", "RefGuard", "register_ref_guard",
           "registered_ref_guards"]

_REGISTRY: dict[str, StorageExtension] = {}
_GUARDS: dict[str, RefGuard] = {}


class StorageExtension(abc.ABC):
    """What a domain holding files in its own form answers to the store."""

    #: A short name, unique among extensions (also how fsck names its problems' source).
    name: str

    @abc.abstractmethod
    def blob_size(self, store: Store, sha256: str) -> int | None:
        """The size of the file with this sha256 if this extension holds it, else None."""

    @abc.abstractmethod
    def iter_blob(self, store: Store, sha256: str, start: int, end: int, chunk_size: int) -> Iterator[bytes]:
        """The bytes ``[start, end)`` of a file this extension holds (``end`` within its size)."""

    @abc.abstractmethod
    def held_blobs(self, store: Store) -> dict[str, int]:
        """Every file this extension holds: sha256 → size (fsck counts them as present)."""

    @abc.abstractmethod
    def referenced_blobs(self, conn: Connection, candidates: Sequence[str]) -> set[str]:
        """Which of these stored blobs the extension still needs (gc keeps them)."""

    @abc.abstractmethod
    def collect(self, store: Store, *, grace_seconds: float, dry_run: bool) -> dict[str, int]:
        """Drop the extension's records that no commit needs and that are older than the grace period,
        before the store collects blobs; returns counts to report (e.g. ``{"xet files": 2}``)."""

    @abc.abstractmethod
    def check(self, store: Store, *, verify: bool) -> list[tuple[str, str, str]]:
        """fsck: (kind, subject, detail) per inconsistency; with ``verify``, re-read the files' bytes."""


def register_extension(extension: StorageExtension) -> None:
    """Make the store consult ``extension`` (idempotent by name; the last registration wins)."""
    _REGISTRY[extension.name] = extension


def registered_extensions() -> list[StorageExtension]:
    """Every extension, with each domain package the store knows of imported first."""
    from fmhub.store._schema import complete_metadata

    complete_metadata()  # imports the domains' table modules, hence their packages, which register
    return list(_REGISTRY.values())


class RefGuard(abc.ABC):
    """A domain's rule on refs: asked, inside the write transaction, before a branch or tag is created or a
    branch moves to a new commit (signature policies: ``prod`` only moves to signed commits)."""

    #: A short name, unique among guards.
    name: str

    @abc.abstractmethod
    def check_ref_move(self, store: Store, conn: Connection, *, repo_type: str, repo_id: str, kind: str, name: str,
                       commit_oid: str, tree: dict[str, tuple[str, int]]) -> None:
        """Raise an :class:`~fmhub.errors.FmhubError` to refuse ref ``name`` (``kind`` branch | tag) of
        ``repo_id`` pointing at ``commit_oid``, whose files are ``tree`` (path → (sha256, size)); nothing is
        written then."""


def register_ref_guard(guard: RefGuard) -> None:
    """Make the store ask ``guard`` before refs move (idempotent by name)."""
    _GUARDS[guard.name] = guard


#: The modules registering ref guards when imported. Named, not imported, as the domain tables are: the store sits
#: below those domains (and their packages import their parts on first use, so naming the package is not enough).
DOMAIN_GUARD_MODULES = ("fmhub.signing._trust",)


def registered_ref_guards() -> list[RefGuard]:
    """Every ref guard, with each domain package the store knows of imported first."""
    from fmhub.store._schema import complete_metadata

    complete_metadata()
    for module in DOMAIN_GUARD_MODULES:
        importlib.import_module(module)
    return list(_GUARDS.values())
