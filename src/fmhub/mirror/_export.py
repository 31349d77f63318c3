"""Export: repo versions of a store as a bundle, streamed (to a file, or to an HTTP response)."""

from __future__ import annotations

import hashlib
import os
import secrets
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from fmhub.errors import BlobNotFoundError, InvalidInputError
from fmhub.mirror._bundle import MANIFEST, Entry, Manifest, json_bytes, tar_end, tar_member
from fmhub.mirror._records import collect_records
from fmhub.store import Store
from fmhub.store.snapshots import RepoSnapshot, collect, commit_to_json, ref_to_json, tree_to_json

__all__ = ["Target", "ExportPlan", "plan_export", "iter_bundle", "write_bundle", "hub_id", "parse_target"]

#: The hub's own id, created once (names the source hub in every bundle's manifest).
_HUB_ID_SETTING = "mirror_hub_id"


@dataclass(frozen=True)
class Target:
    """What to export from a repo: ``revisions`` (branches, tags or commits; none: every branch and tag)."""

    repo_id: str
    repo_type: str = "model"
    revisions: tuple[str, ...] = ()


def parse_target(text: str, repo_type: str = "model") -> Target:
    """``REPO[@REV]`` as the CLI takes it."""
    repo_id, _, revision = text.partition("@")
    if "@" in text and not revision:
        raise InvalidInputError(f"{text!r} names no revision after '@'", hint="write REPO or REPO@REVISION")
    return Target(repo_id, repo_type, (revision,) if revision else ())


def hub_id(store: Store) -> str:
    return store.shared_setting(_HUB_ID_SETTING, lambda: secrets.token_hex(16))


@dataclass
class ExportPlan:
    """The bundle to write: its manifest, the records' bytes, and the blobs to stream (sha256 → size)."""

    manifest: Manifest
    records: dict[str, bytes]
    blobs: dict[str, int]
    skipped: list[Entry] = field(default_factory=list)

    @property
    def blob_bytes(self) -> int:
        return sum(self.blobs.values())

    @property
    def record_bytes(self) -> int:
        return sum(len(data) for data in self.records.values())


def plan_export(store: Store, targets: Sequence[Target], *, since: Manifest | None = None,
                have: Iterable[str] = ()) -> ExportPlan:
    """Collect what the targets need and decide what goes into the bundle: all but the objects ``since`` lists
    (a previous bundle's manifest) and those named in ``have`` (what the receiving hub says it holds).

    Raises:
        RepoNotFoundError, RevisionNotFoundError: a target that is not in the store.
        BlobNotFoundError: the store lacks a file a version needs (``fmhub fsck`` tells more).
    """
    if not targets:
        raise InvalidInputError("nothing to export", hint="name at least one REPO[@REV]")
    known = ({entry.name for entry in since.objects} if since else set()) | set(have)
    snapshots: list[RepoSnapshot] = []
    merged: dict[tuple[str, str], RepoSnapshot] = {}
    for target in targets:
        snapshot = collect(store, target.repo_id, target.revisions, repo_type=target.repo_type)
        key = (snapshot.repo.repo_type, snapshot.repo.repo_id)
        if key in merged:  # the same repo named twice (two revisions): one record holding both
            previous = merged[key]
            seen = {c.oid for c in previous.commits}
            previous.commits = sorted(previous.commits + [c for c in snapshot.commits if c.oid not in seen],
                                      key=lambda c: (c.generation, c.created_at, c.oid))
            previous.trees.update(snapshot.trees)
            previous.refs += [r for r in snapshot.refs if r not in previous.refs]
        else:
            merged[key] = snapshot
            snapshots.append(snapshot)
    records: dict[str, bytes] = {}
    kinds: dict[str, str] = {}
    blobs: dict[str, int] = {}
    for snapshot in snapshots:
        repo = snapshot.repo
        prefix = f"{repo.repo_type}/{repo.repo_id}"
        oids = [c.oid for c in snapshot.commits]
        record = {"repo_type": repo.repo_type, "repo_id": repo.repo_id, "private": repo.private,
                  "default_branch": repo.default_branch, "created_at": repo.created_at.isoformat(),
                  "refs": [ref_to_json(ref) for ref in snapshot.refs], "commits": oids,
                  "records": collect_records(store, repo.repo_type, repo.repo_id, oids)}
        records[f"repos/{prefix}.json"], kinds[f"repos/{prefix}.json"] = json_bytes(record), "repo"
        for tree_id, tree in snapshot.trees.items():
            records[f"trees/{tree_id}.json"], kinds[f"trees/{tree_id}.json"] = json_bytes(tree_to_json(tree_id, tree)), "tree"
        for commit in snapshot.commits:
            name = f"commits/{prefix}/{commit.oid}.json"
            records[name], kinds[name] = json_bytes(commit_to_json(commit)), "commit"
        blobs.update(snapshot.blobs())
    entries: list[Entry] = []
    for name, data in records.items():
        in_bundle = kinds[name] == "repo" or name not in known  # repo records carry the refs: always sent
        entries.append(Entry(name, kinds[name], hashlib.sha256(data).hexdigest(), len(data), in_bundle))
    for sha, size in sorted(blobs.items()):
        name = f"blobs/{sha}"
        entries.append(Entry(name, "blob", sha, size, name not in known))
    sending = {e.sha256: e.size for e in entries if e.kind == "blob" and e.in_bundle}
    for sha, size in sending.items():
        actual = store.blob_size(sha)
        if actual is None:
            raise BlobNotFoundError(sha)
        if actual != size:
            raise InvalidInputError(f"blob {sha} holds {actual} bytes, its trees say {size}",
                                    hint="run `fmhub fsck` on this hub")
    manifest = Manifest(hub_id(store), [f"{s.repo.repo_type}/{s.repo.repo_id}" for s in snapshots], entries,
                        since=[hashlib.sha256(since.to_bytes()).hexdigest()] if since else [])
    kept = {e.name for e in entries if e.in_bundle}
    return ExportPlan(manifest, {n: d for n, d in records.items() if n in kept}, sending,
                      [e for e in entries if not e.in_bundle])


def iter_bundle(store: Store, plan: ExportPlan, *, progress: Callable[[int], None] | None = None) -> Iterator[bytes]:
    """The bundle's bytes, in order (records first, then blobs, each streamed from the store)."""
    written = 0
    order = sorted(plan.records, key=lambda n: ({"repos": 0, "trees": 1, "commits": 2}[n.split("/", 1)[0]], n))
    manifest = plan.manifest.to_bytes()
    members = [(MANIFEST, len(manifest), [manifest])]
    members += [(name, len(plan.records[name]), [plan.records[name]]) for name in order]
    for name, size, chunks in members:
        for piece in tar_member(name, size, chunks):
            written += len(piece)
            yield piece
        if progress:
            progress(size)
    for sha, size in plan.blobs.items():
        for piece in tar_member(f"blobs/{sha}", size, _lazy(store, sha, progress)):
            written += len(piece)
            yield piece
    yield tar_end(written)


def _lazy(store: Store, sha: str, progress: Callable[[int], None] | None) -> Iterator[bytes]:
    for chunk in store.iter_blob(sha):  # opened only when the member is reached
        if progress:
            progress(len(chunk))
        yield chunk


def write_bundle(store: Store, plan: ExportPlan, path: Path, *, progress: Callable[[int], None] | None = None) -> int:
    """Write the bundle to ``path`` atomically (a temp file beside it, renamed once complete); returns its size."""
    path = Path(path)
    if path.is_dir():
        raise InvalidInputError(f"--to {path} is a folder", hint="give a file name, e.g. --to models.fmbundle")
    if not path.parent.is_dir():
        raise InvalidInputError(f"--to {path}: folder {path.parent} does not exist")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    size = 0
    try:
        with os.fdopen(fd, "wb", buffering=0) as out:
            for piece in iter_bundle(store, plan, progress=progress):
                out.write(piece)
                size += len(piece)
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return size
