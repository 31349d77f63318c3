"""Import: read a bundle as a stream, verify every object, then make it visible in one transaction.

Blobs are written as they arrive, each verified against the manifest before it becomes a blob (a blob no
tree names is only unreferenced content: ``gc`` collects it after its grace period). Records are held in
memory and checked (ids recomputed). Nothing else is written until the whole bundle has arrived and
checked out; then repos, trees, commits, refs and the records that travel with them are written in one
database transaction. An interrupted import therefore leaves nothing visible, and running it again
completes it (blobs already stored are only hashed, not written again).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, BinaryIO

from fmhub.errors import IntegrityError, InvalidInputError, SignatureError
from fmhub.mirror._bundle import MANIFEST, MAX_RECORD, Entry, HashingReader, Manifest
from fmhub.mirror._records import RECORD_KINDS, apply_records
from fmhub.mirror._tar import Member, TarReadError, iter_members
from fmhub.signing import SIGNATURE_FILE, TrustedKey, check_files, read_signature
from fmhub.store import Repo, Store
from fmhub.store.blobs import CHUNK_SIZE
from fmhub.store.objects import Commit
from fmhub.store.snapshots import (RefUpdate, RepoSnapshot, apply, check_safety, commit_from_json, held_commits,
                                   held_trees, missing_objects, ref_from_json, tree_from_json)

__all__ = ["ImportSummary", "import_bundle", "present_objects"]

_HINT = "the bundle was damaged or altered in transit: export it again; nothing was imported"


@dataclass
class ImportSummary:
    """What an import received, skipped as already present, and applied."""

    hub_id: str = ""
    repos: list[str] = field(default_factory=list)
    blobs_written: int = 0
    bytes_written: int = 0
    blobs_present: int = 0
    bytes_present: int = 0
    objects_not_sent: int = 0  # left out of an incremental bundle (the hub has them)
    commits_added: int = 0
    refs: list[RefUpdate] = field(default_factory=list)
    records_added: dict[str, int] = field(default_factory=lambda: {kind: 0 for kind in RECORD_KINDS})
    signatures_verified: int = 0

    @property
    def conflicts(self) -> list[RefUpdate]:
        return [ref for ref in self.refs if ref.outcome == "conflict"]

    def to_json(self) -> dict[str, Any]:
        return {"hub_id": self.hub_id, "repos": self.repos, "blobs_written": self.blobs_written,
                "bytes_written": self.bytes_written, "blobs_present": self.blobs_present,
                "bytes_present": self.bytes_present, "objects_not_sent": self.objects_not_sent,
                "commits_added": self.commits_added, "records_added": self.records_added,
                "signatures_verified": self.signatures_verified,
                "refs": [{"repo": r.repo, "kind": r.kind, "name": r.name, "old": r.old, "new": r.new,
                          "outcome": r.outcome, "detail": r.detail} for r in self.refs]}


def _corrupt(name: str, detail: str) -> IntegrityError:
    error = IntegrityError(f"bundle object {name} is corrupt: {detail}")
    error.hint = _HINT
    return error


def _read_record(reader: HashingReader, size: int) -> bytes:
    """A small member's bytes (the member's reader stops at its size)."""
    data = bytearray()
    buffer = bytearray(min(CHUNK_SIZE, max(size, 1)))
    while n := reader.readinto(buffer):
        data += buffer[:n]
    return bytes(data)


def _drain(reader: HashingReader) -> None:
    buffer = bytearray(CHUNK_SIZE)
    while reader.readinto(buffer):
        pass


def _receive(store: Store, members: Iterator[Member], manifest: Manifest, summary: ImportSummary,
             progress: Callable[[int], None] | None) -> dict[str, bytes]:
    """Read every member after the manifest: blobs into the store, records into memory; all verified."""
    entries = {entry.name: entry for entry in manifest.objects}
    records: dict[str, bytes] = {}
    seen: set[str] = set()
    name = MANIFEST
    try:
        for member in members:
            name = member.name
            entry = entries.get(name)
            if entry is None:
                raise _corrupt(name, "the manifest does not list it")
            if not entry.in_bundle:
                raise _corrupt(name, "the manifest says it was left out of the bundle")
            if name in seen:
                raise _corrupt(name, "it appears twice")
            if not member.is_file:
                raise _corrupt(name, "it is not a regular file")
            if member.size != entry.size:
                raise _corrupt(name, f"it holds {member.size} bytes, the manifest says {entry.size}")
            seen.add(name)
            source = member.reader
            if entry.kind == "blob":
                _receive_blob(store, source, entry, summary, progress)
                continue
            if entry.size > MAX_RECORD:
                raise _corrupt(name, f"a record of {entry.size} bytes is larger than any fmhub writes")
            reader = HashingReader(source, progress)
            data = _read_record(reader, entry.size)
            if reader.size != entry.size or reader.digest.hexdigest() != entry.sha256:
                raise _corrupt(name, f"its bytes hash to {reader.digest.hexdigest()} ({reader.size} bytes), the "
                                     f"manifest says {entry.sha256} ({entry.size} bytes)")
            records[name] = data
    except TarReadError as exc:
        raise InvalidInputError(f"the bundle is truncated or damaged at {name}: {exc}", hint=_HINT) from None
    missing = [e.name for e in manifest.objects if e.in_bundle and e.name not in seen]
    if missing:
        raise InvalidInputError(f"the bundle is truncated: {len(missing)} object(s) the manifest lists did not "
                                f"arrive, first {missing[0]}", hint=_HINT)
    return records


def _receive_blob(store: Store, source: BinaryIO, entry: Entry, summary: ImportSummary,
                  progress: Callable[[int], None] | None) -> None:
    if store.blob_size(entry.sha256) == entry.size:  # already here: verify the bundle's copy, keep ours
        reader = HashingReader(source, progress)
        _drain(reader)
        if reader.digest.hexdigest() != entry.sha256 or reader.size != entry.size:
            raise _corrupt(entry.name, f"its bytes hash to {reader.digest.hexdigest()} ({reader.size} bytes)")
        summary.blobs_present += 1
        summary.bytes_present += entry.size
        return
    try:  # the blob store hashes what it writes and keeps it only if it is what the manifest says
        store.put_stream(HashingReader(source, progress, hashing=False), expected_sha256=entry.sha256,
                         expected_size=entry.size)
    except IntegrityError as exc:
        raise _corrupt(entry.name, exc.message) from None
    summary.blobs_written += 1
    summary.bytes_written += entry.size


def _parse(name: str, data: bytes) -> Any:
    try:
        return json.loads(data)
    except ValueError as exc:
        raise _corrupt(name, f"not JSON ({exc})") from None


def _snapshots(records: dict[str, bytes]) -> list[tuple[RepoSnapshot, dict[str, Any]]]:
    """The repos, commits and trees the records describe, each checked against its name and id."""
    trees: dict[str, dict[str, tuple[str, int]]] = {}
    commits: dict[str, dict[str, Commit]] = {}
    repos: list[tuple[str, dict[str, Any]]] = []
    for name, data in records.items():
        try:
            if name.startswith("trees/"):
                tree_id, tree = tree_from_json(_parse(name, data))
                if name != f"trees/{tree_id}.json":
                    raise _corrupt(name, f"it holds tree {tree_id}")
                trees[tree_id] = tree
            elif name.startswith("commits/"):
                commit = commit_from_json(_parse(name, data))
                prefix, oid = name.rsplit("/", 1)
                if oid != f"{commit.oid}.json":
                    raise _corrupt(name, f"it holds commit {commit.oid}")
                commits.setdefault(prefix.removeprefix("commits/"), {})[commit.oid] = commit
            else:
                repos.append((name, _parse(name, data)))
        except IntegrityError as exc:
            if exc.message.startswith("bundle object"):
                raise
            raise _corrupt(name, exc.message) from None
        except InvalidInputError as exc:
            raise InvalidInputError(f"bundle object {name}: {exc.message}", hint=_HINT) from None
    out = []
    for name, raw in repos:
        try:
            repo_type, repo_id = str(raw["repo_type"]), str(raw["repo_id"])
            if name != f"repos/{repo_type}/{repo_id}.json":
                raise ValueError(f"it describes {repo_type}/{repo_id}")
            created = datetime.fromisoformat(raw["created_at"]).astimezone(UTC)
            repo = Repo(repo_type, repo_id, bool(raw["private"]), str(raw["default_branch"]), created, created)
            refs = [ref_from_json(item) for item in raw["refs"]]
            mine = commits.get(f"{repo_type}/{repo_id}", {})
            listed = [str(oid) for oid in raw["commits"]]
            held = [mine[oid] for oid in listed if oid in mine]
            wanted_trees = {c.tree_id for c in held}
            snapshot = RepoSnapshot(repo, held, {tid: trees[tid] for tid in wanted_trees if tid in trees}, refs)
            out.append((snapshot, dict(raw.get("records") or {})))
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInputError(f"bundle object {name} is malformed: {exc}", hint=_HINT) from None
    return out


def _verify_signatures(store: Store, snapshot: RepoSnapshot, keys: Sequence[TrustedKey]) -> int:
    """Each incoming ref's commit must carry ``model.sig`` by a trusted key over exactly its files."""
    checked = 0
    by_oid = {c.oid: c for c in snapshot.commits}
    for ref in snapshot.refs:
        where = f"{snapshot.repo.repo_id}@{ref.name}"
        commit = by_oid.get(ref.commit_oid)
        if commit is None:  # already on this hub; its tree is there
            files = {e.path: (e.blob_sha256, e.size) for e in store.list_files(
                snapshot.repo.repo_id, ref.commit_oid, repo_type=snapshot.repo.repo_type)}
        else:
            files = snapshot.trees.get(commit.tree_id) or {}
        if SIGNATURE_FILE not in files:
            raise SignatureError(f"{where} ({ref.commit_oid[:12]}) carries no {SIGNATURE_FILE}; nothing was imported",
                                 reason="missing", item=where,
                                 hint="sign the version on the exporting side (fmhub sign), or import without "
                                      "--verify-signatures")
        sha, _size = files[SIGNATURE_FILE]
        signed = read_signature(b"".join(store.iter_blob(sha)), keys)
        check_files(signed, {path: entry[0] for path, entry in files.items()}, where=where)
        checked += 1
    return checked


def import_bundle(store: Store, source: BinaryIO, *, force: bool = False, allow_pickle: bool = False,
                  trust: Sequence[TrustedKey] | None = None,
                  progress: Callable[[int], None] | None = None,
                  on_manifest: Callable[[Manifest], None] | None = None,
                  authorize: Callable[[str, str], None] | None = None, actor: str | None = None) -> ImportSummary:
    """Import a bundle read from ``source`` (a file or a response body, read once, front to back).

    Args:
        force: move refs even where this hub's branch is not an ancestor of the incoming one (or a tag differs).
        allow_pickle: accept pickle-based files (found by content), as a commit would; refused otherwise. New
            ``.safetensors`` files are validated as on commit either way.
        trust: verify that each incoming ref's version is signed by one of these keys (``model.sig``) before
            anything becomes visible.
        progress: called with byte counts as members are read.
        on_manifest: called with the manifest once it is read (before any object).
        authorize: called with (repo type, repo id) of each repo the bundle writes, before any object is read
            (a hub server's write check); raising refuses the bundle.

    Raises:
        IntegrityError: an object does not match the manifest (named in the message); nothing is visible.
        InvalidInputError: not a bundle, truncated, or needing objects this hub lacks (incremental bundles);
            UnsafeFileError (a pickle, without ``allow_pickle``) and InvalidWeightsError are kinds of it.
        SignatureError: with ``trust``, a version that is not signed by a trusted key.
    """
    summary = ImportSummary()
    members = iter_members(source)
    try:
        first = next(members, None)
        if first is None or first.name != MANIFEST or not first.is_file or first.size > MAX_RECORD:
            raise InvalidInputError("not a bundle: it does not start with manifest.json",
                                    hint="give a file made by fmhub mirror export")
        data = _read_record(HashingReader(first.reader), first.size)
    except TarReadError as exc:
        raise InvalidInputError(f"not a bundle: {exc}", hint="give a file made by fmhub mirror export") from None
    manifest = Manifest.from_bytes(data)
    summary.hub_id, summary.repos = manifest.hub_id, list(manifest.repos)
    if authorize is not None:
        for entry in manifest.objects:
            if entry.kind == "repo":
                repo_type, repo_id = entry.name.removeprefix("repos/").removesuffix(".json").split("/", 1)
                authorize(repo_type, repo_id)
    if on_manifest:
        on_manifest(manifest)
    records = _receive(store, members, manifest, summary, progress)
    snapshots = _snapshots(records)
    absent = [e.name for e in manifest.objects if e.kind == "blob" and not e.in_bundle
              and store.blob_size(e.sha256) != e.size]
    summary.objects_not_sent = sum(1 for e in manifest.objects if not e.in_bundle)
    if absent:
        raise InvalidInputError(f"this incremental bundle needs {len(absent)} file(s) this hub lacks, first "
                                f"{absent[0]}", hint="import the bundle it was made --since first")
    for snapshot, _ in snapshots:
        lacking = missing_objects(store, snapshot)
        if lacking:
            raise InvalidInputError(f"{snapshot.repo.repo_id}: the bundle's trees name {len(lacking)} file(s) it "
                                    f"neither holds nor lists, first {lacking[0]}", hint=_HINT)
    for snapshot, _ in snapshots:
        check_safety(store, snapshot, allow_pickle=allow_pickle)
    if trust is not None:
        for snapshot, _ in snapshots:
            summary.signatures_verified += _verify_signatures(store, snapshot, trust)
    with store.db.write() as conn:  # everything becomes visible at once, or nothing does
        for snapshot, repo_records in snapshots:
            applied = apply(store, conn, snapshot, force=force, actor=actor)
            summary.commits_added += applied.commits_added
            summary.refs += applied.refs
            for kind, count in apply_records(conn, repo_records, snapshot.repo.repo_type,
                                                 snapshot.repo.repo_id).items():
                summary.records_added[kind] += count
    return summary


def present_objects(store: Store, entries: Sequence[Entry]) -> set[str]:
    """The names of these bundle objects this store already holds: blobs (sha256 and size), trees, and commits of
    the named repo. What a pull or push leaves out of the bundle it asks for (so an interrupted transfer resumes
    with what is still missing)."""
    have = {e.name for e in entries if e.kind == "blob" and store.blob_size(e.sha256) == e.size}
    trees = {e.name.removeprefix("trees/").removesuffix(".json"): e.name for e in entries if e.kind == "tree"}
    have |= {trees[tree_id] for tree_id in held_trees(store, list(trees))}
    commits: dict[str, dict[str, str]] = {}
    for e in entries:
        if e.kind == "commit":
            prefix, oid = e.name.removeprefix("commits/").rsplit("/", 1)
            commits.setdefault(prefix, {})[oid.removesuffix(".json")] = e.name
    for prefix, by_oid in commits.items():
        repo_type, repo_id = prefix.split("/", 1)
        have |= {by_oid[oid] for oid in held_commits(store, repo_type, repo_id, list(by_oid))}
    return have
