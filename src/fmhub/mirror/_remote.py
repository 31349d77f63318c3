"""Mirroring over the network: pull from another fmhub (its bundle endpoints: history and records included) or
from any server speaking the Hugging Face Hub protocol (files of a revision), and push to another fmhub.

Only what the receiving side lacks travels: a pull asks the other fmhub for the manifest, keeps the objects
this store holds, and asks for a bundle of the rest; a push asks the other fmhub which objects it holds. An
interrupted transfer keeps the blobs it stored (content-addressed, not yet visible), so running it again
fetches only what is still missing.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

from fmhub._version import __version__
from fmhub.client._errors import error_from_response, unreachable
from fmhub.errors import ConfigError, IntegrityError, InvalidInputError
from fmhub.mirror._bundle import FORMAT, VERSION, Entry, Manifest
from fmhub.mirror._export import Target, iter_bundle, plan_export
from fmhub.mirror._import import ImportSummary, import_bundle, present_objects
from fmhub.store import AddFile, DeleteFile, Store
from fmhub.store.blobs import CHUNK_SIZE

__all__ = ["ChunkReader", "Remote", "pull", "push", "PullSummary", "PushSummary", "target_spec", "parse_spec",
           "entries_from", "API"]

#: Seconds a transfer may wait for the next bytes (a bundle of a large model streams for long).
_TIMEOUT = httpx.Timeout(600.0, connect=10.0)
API = "/api/fmhub/mirror"


def target_spec(target: Target) -> str:
    """A target as the endpoints take it: ``model/acme/clf`` or ``model/acme/clf@v1``."""
    return f"{target.repo_type}/{target.repo_id}" + (f"@{target.revisions[0]}" if target.revisions else "")


def parse_spec(spec: object) -> Target:
    """The inverse of :func:`target_spec` (what the server reads from a request)."""
    if not isinstance(spec, str) or spec.count("/") < 2:
        raise InvalidInputError(f"invalid repo {str(spec)[:200]!r}", hint="write <model|dataset>/<namespace>/<name>[@rev]")
    repo_type, rest = spec.split("/", 1)
    if repo_type not in ("model", "dataset"):
        raise InvalidInputError(f"invalid repo type {repo_type!r}", hint="model or dataset")
    repo_id, _, revision = rest.partition("@")
    return Target(repo_id, repo_type, (revision,) if revision else ())


class ChunkReader(io.RawIOBase):
    """A readable file over an iterator of byte chunks (a response body, a request body), read once."""

    def __init__(self, chunks: Iterator[bytes], progress: Callable[[int], None] | None = None) -> None:
        self._chunks = chunks
        self._pending = memoryview(b"")
        self._progress = progress

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._pending = memoryview(chunk)
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        if self._progress:
            self._progress(n)
        return n


class GitBlobReader(io.RawIOBase):
    """Passes bytes through while computing their git blob id (sha1 of ``blob <size>\\0`` + bytes): how the
    Hugging Face protocol names regular (non-LFS) files, so they are verified too."""

    def __init__(self, src: io.RawIOBase, size: int) -> None:
        self._src = src
        self._sha1 = hashlib.sha1(f"blob {size}\0".encode(), usedforsecurity=False)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = self._src.readinto(buffer) or 0
        if n:
            self._sha1.update(memoryview(buffer)[:n])
        return n

    def git_oid(self) -> str:
        return self._sha1.hexdigest()


class Remote:
    """An HTTP client for another hub's mirror endpoints (the token goes to that hub only)."""

    def __init__(self, url: str, token: str | None = None) -> None:
        url = url.strip().rstrip("/")
        if not url.startswith(("http://", "https://")):
            raise InvalidInputError(f"{url!r} is not an http(s) URL", hint="give --from/--to like http://hub:8000")
        self.url = url
        self.token = token or None
        self.client = httpx.Client(timeout=_TIMEOUT, follow_redirects=True,
                                   headers={"User-Agent": f"fmhub/{__version__}"})

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> Remote:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            headers = {**self.headers(), **kwargs.pop("headers", {})}
            response = self.client.request(method, self.url + path, headers=headers, **kwargs)
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise unreachable(self.url, exc) from exc
        if response.is_error:
            raise error_from_response(response, token_given=self.token is not None)
        return response

    def speaks_mirror(self) -> bool:
        """Whether the server is an fmhub with the mirror endpoints (else: the Hugging Face protocol only)."""
        try:
            response = self.client.get(self.url + API, headers=self.headers())
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise unreachable(self.url, exc) from exc
        try:
            body = response.json() if response.status_code == 200 else {}
        except ValueError:
            return False
        return isinstance(body, dict) and body.get("format") == FORMAT and body.get("version") == VERSION


@dataclass
class PullSummary:
    source: str
    protocol: str  # fmhub | hf
    imported: ImportSummary | None = None
    files_fetched: int = 0
    bytes_fetched: int = 0
    files_present: int = 0
    bytes_present: int = 0
    commits: list[str] = field(default_factory=list)  # hf: the commits made here, one per revision


@dataclass
class PushSummary:
    destination: str
    objects_sent: int
    bytes_sent: int
    objects_skipped: int
    bytes_skipped: int
    answer: dict[str, Any]


def pull(store: Store, url: str, targets: Sequence[Target], *, token: str | None = None, force: bool = False,
         protocol: str = "auto", allow_pickle: bool = False, progress: Callable[[int], None] | None = None,
         on_total: Callable[[int], None] | None = None, actor: str | None = None) -> PullSummary:
    """Bring ``targets`` from the hub at ``url`` into ``store``, fetching only what the store lacks.

    Args:
        protocol: ``fmhub`` (history, refs and records, by bundle), ``hf`` (the files of each revision, as one
            commit here), or ``auto``: fmhub when the server has the mirror endpoints.
        allow_pickle: store pickle-based files (found by content); refused otherwise, as on upload.
        on_total: called with the bytes about to be fetched, once known.
    """
    if not targets:
        raise InvalidInputError("nothing to pull", hint="name at least one REPO[@REV]")
    if protocol not in ("auto", "fmhub", "hf"):
        raise InvalidInputError(f"--protocol {protocol!r}", hint="auto, fmhub or hf")
    with Remote(url, token) as remote:
        if protocol == "auto":
            protocol = "fmhub" if remote.speaks_mirror() else "hf"
        if protocol == "fmhub":
            return _pull_bundle(store, remote, targets, force=force, allow_pickle=allow_pickle, progress=progress,
                                on_total=on_total, actor=actor)
    return _pull_hf(store, url, targets, token=token, allow_pickle=allow_pickle, progress=progress,
                    on_total=on_total, actor=actor)


def _pull_bundle(store: Store, remote: Remote, targets: Sequence[Target], *, force: bool, allow_pickle: bool,
                 progress: Callable[[int], None] | None, on_total: Callable[[int], None] | None,
                 actor: str | None) -> PullSummary:
    specs = [target_spec(t) for t in targets]
    manifest = Manifest.from_bytes(remote.send("POST", f"{API}/manifest", json={"repos": specs}).content,
                                   where=f"{remote.url}{API}/manifest")
    have = present_objects(store, manifest.objects)
    if on_total:
        on_total(sum(e.size for e in manifest.objects if e.name not in have))
    summary = PullSummary(remote.url, "fmhub")
    try:
        with remote.client.stream("POST", remote.url + f"{API}/export", headers=remote.headers(),
                                  json={"repos": specs, "have": sorted(have)}) as response:
            if response.is_error:
                response.read()
                raise error_from_response(response, token_given=remote.token is not None)
            reader = ChunkReader(response.iter_raw(CHUNK_SIZE))
            summary.imported = import_bundle(store, io.BufferedReader(reader, CHUNK_SIZE), force=force,
                                             allow_pickle=allow_pickle, progress=progress, actor=actor)
    except httpx.HTTPError as exc:
        raise unreachable(remote.url, exc) from exc
    return summary


def _pull_hf(store: Store, url: str, targets: Sequence[Target], *, token: str | None, allow_pickle: bool,
             progress: Callable[[int], None] | None, on_total: Callable[[int], None] | None,
             actor: str | None) -> PullSummary:
    """Files of each revision through the Hugging Face protocol (``huggingface_hub`` lists them), each missing
    file streamed straight into the store and verified, then one commit here per revision."""
    try:
        from huggingface_hub import HfApi
        from huggingface_hub.errors import HfHubHTTPError
    except ModuleNotFoundError:
        raise ConfigError("pulling from a Hugging Face protocol server needs huggingface_hub",
                          hint="pip install huggingface_hub (or 'fmhub[ml]')") from None
    api = HfApi(endpoint=url.rstrip("/"), token=token or False)
    summary = PullSummary(url.rstrip("/"), "hf")
    plans = []
    for target in targets:
        revision = target.revisions[0] if target.revisions else None
        try:
            info = api.repo_info(target.repo_id, repo_type=target.repo_type, revision=revision, files_metadata=True)
        except HfHubHTTPError as exc:
            raise InvalidInputError(f"{url}: cannot read {target.repo_type} {target.repo_id}"
                                    f"{'@' + revision if revision else ''}: {str(exc).splitlines()[0]}",
                                    hint="check the repo id, revision and --token") from None
        files = []
        for sibling in info.siblings or []:
            lfs = getattr(sibling, "lfs", None)
            sha256 = lfs.sha256 if lfs is not None else None
            files.append((sibling.rfilename, sha256, int(sibling.size or (lfs.size if lfs else 0) or 0),
                          None if lfs is not None else getattr(sibling, "blob_id", None)))
        plans.append((target, revision, info, files))
    todo = [(t, f) for t, _, _, files in plans for f in files if f[1] is None or store.blob_size(f[1]) != f[2]]
    if on_total:
        on_total(sum(f[2] for _, f in todo))
    with Remote(url, token) as remote:
        for target, revision, info, files in plans:
            operations = []
            for path, sha256, size, git_oid in files:
                if sha256 is not None and store.blob_size(sha256) == size:
                    summary.files_present += 1
                    summary.bytes_present += size
                    operations.append(AddFile(path, sha256, size))
                    continue
                prefix = "datasets/" if target.repo_type == "dataset" else ""
                file_url = f"{remote.url}/{prefix}{target.repo_id}/resolve/{info.sha}/{quote(path, safe='/')}"
                try:
                    with remote.client.stream("GET", file_url, headers=remote.headers()) as response:
                        if response.is_error:
                            response.read()
                            raise error_from_response(response, token_given=remote.token is not None)
                        reader = GitBlobReader(ChunkReader(response.iter_raw(CHUNK_SIZE), progress), size)
                        blob = store.put_stream(reader, expected_sha256=sha256,
                                                expected_size=size if sha256 else None)
                except httpx.HTTPError as exc:
                    raise unreachable(remote.url, exc) from exc
                if sha256 is None and git_oid and reader.git_oid() != git_oid:  # a regular (non-LFS) file
                    raise IntegrityError(f"{target.repo_id}/{path}: received bytes whose git blob id is "
                                         f"{reader.git_oid()}, the server lists {git_oid}",
                                         expected=git_oid, actual=reader.git_oid())
                summary.files_fetched += 1
                summary.bytes_fetched += blob.size
                operations.append(AddFile(path, blob.sha256, blob.size))
            summary.commits.append(_commit_files(store, target, info, operations, url, allow_pickle, actor))
    return summary


def _commit_files(store: Store, target: Target, info: Any, operations: list[AddFile], url: str, allow_pickle: bool,
                  actor: str | None) -> str:
    """One commit on the local repo's default branch making its files those of the remote revision."""
    store.create_repo(target.repo_id, repo_type=target.repo_type, private=bool(getattr(info, "private", False)),
                      exist_ok=True, author=actor or "fmhub-mirror")
    wanted = {op.path for op in operations}
    current = store.list_files(target.repo_id, repo_type=target.repo_type)
    deletions = [DeleteFile(e.path) for e in current if e.path not in wanted]
    same = {(e.path, e.blob_sha256) for e in current} == {(op.path, op.blob_sha256) for op in operations}
    if same:
        return store.resolve_revision(target.repo_id, repo_type=target.repo_type).oid
    commit = store.commit(target.repo_id, [*deletions, *operations], repo_type=target.repo_type,
                          title=f"Mirror of {target.repo_id}@{info.sha[:12]}",
                          message=f"Pulled from {url.rstrip('/')} ({target.repo_type} {target.repo_id}, commit {info.sha}).",
                          author=actor or "fmhub-mirror", allow_pickle=allow_pickle)
    return commit.oid


def push(store: Store, url: str, targets: Sequence[Target], *, token: str | None = None, force: bool = False,
         progress: Callable[[int], None] | None = None,
         on_total: Callable[[int], None] | None = None) -> PushSummary:
    """Send ``targets`` to the fmhub at ``url``: the objects it lacks, in one bundle it imports atomically.

    Needs a write token of the destination with write rights on each repo's namespace.
    """
    with Remote(url, token) as remote:
        if not remote.speaks_mirror():
            raise ConfigError(f"{remote.url} has no fmhub mirror endpoints",
                              hint="push goes to an fmhub server; for another hub, export a bundle instead")
        full = plan_export(store, targets)
        listed = [e.to_json() for e in full.manifest.objects if e.kind != "repo"]
        answer = remote.send("POST", f"{API}/have", json={"objects": listed}).json()
        have = {str(name) for name in answer.get("have", [])} if isinstance(answer, dict) else set()
        plan = plan_export(store, targets, have=have)
        if on_total:
            on_total(plan.blob_bytes + plan.record_bytes)
        skipped = [e for e in plan.manifest.objects if not e.in_bundle]
        body = iter_bundle(store, plan, progress=progress)
        response = remote.send("POST", f"{API}/import", params={"force": "true"} if force else None, content=body,
                               headers={"Content-Type": "application/x-tar"})
        return PushSummary(remote.url, sum(1 for e in plan.manifest.objects if e.in_bundle),
                           plan.blob_bytes + plan.record_bytes, len(skipped), sum(e.size for e in skipped),
                           response.json())


def entries_from(items: object) -> list[Entry]:
    if not isinstance(items, list) or len(items) > 1_000_000:
        raise InvalidInputError("objects must be a list of manifest entries")
    return [Entry.from_json(item) for item in items]
