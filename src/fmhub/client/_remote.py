"""``RemoteHub``: the Hub interface over HTTP to an fmhub server, in the Hugging Face Hub protocol.

Reads use ``/api/{models|datasets}/…`` and ``/{repo}/resolve/{commit}/{path}`` (streamed to a temp file
beside the target, hashed on the way, checked against the tree's sha256, then renamed). Writes send
every file through the Git LFS batch API — batch, a streamed PUT of the file (constant memory), verify —
then one NDJSON commit of ``lfsFile`` / ``deletedFile`` / ``deletedFolder`` lines. No file is inlined
as base64, so size limits on commit bodies never apply and no Xet client is involved.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO
from urllib.parse import quote

import httpx

from fmhub._version import __version__
from fmhub.client._base import CommitOperation, Hub, PullRequestDetails, RepoInfo, UploadFile
from fmhub.client._errors import error_from_response, unreachable
from fmhub.errors import (
    ConfigError,
    EmptyCommitError,
    EntryNotFoundError,
    FmhubError,
    IntegrityError,
    InvalidInputError,
    PayloadTooLargeError,
    PipelineStepNotFoundError,
    RefExistsError,
    RepoExistsError,
)
from fmhub.signing import AttestationRecord, SigningPolicy, TrustedKey
from fmhub.store.blobs import CHUNK_SIZE, Progress, hash_file
from fmhub.store.objects import (
    AddFile,
    Commit,
    CopyFile,
    DeleteFile,
    DeleteFolder,
    Ref,
    Repo,
    RepoRefs,
    TreeEntry,
    compute_tree_id,
)
from fmhub.store.paths import (
    REPO_TYPES,
    validate_folder,
    validate_path,
    validate_ref_name,
    validate_repo_id,
    validate_repo_type,
    validate_stored_path,
)
from fmhub.store.discussions import Discussion, DiscussionEvent, FileChange
from fmhub.store.pickles import check_local_file
from fmhub.store.store import DEFAULT_BRANCH
from fmhub.store.transfer import FileFetcher, download_files

if TYPE_CHECKING:  # each record type is imported by the methods that build it: a command opening the hub to read
    # a repo or verify a signature loads no runs, evaluations nor search (and no YAML cards)
    from fmhub.evaluations import EvaluationInfo
    from fmhub.runs import Environment, MetricPoint, PipelineStepRecord, RunInfo, StepMetrics
    from fmhub.search import SearchQuery, SearchResult

#: Descendants per page when following every page of an impact answer (the server allows up to 10,000).
_IMPACT_PAGE = 5000

__all__ = ["RemoteHub"]

_LFS_JSON = "application/vnd.git-lfs+json"
#: Objects per LFS batch request (the hub accepts up to 10,000).
_BATCH_SIZE = 1000
#: What the server does not report (a ref's creation time, with today's protocol) reads as this.
UNKNOWN_TIME = datetime.fromtimestamp(0, UTC)
#: A PUT of many GB, and the server's final fsync, may take long: only a silent peer is given up on.
_TRANSFER_TIMEOUT = httpx.Timeout(600.0, connect=10.0)
#: Steps of metric values per request (the hub accepts up to 10,000).
_METRICS_PER_REQUEST = 1000


def _event_fields(event: dict[str, Any]) -> tuple[str | None, str | None, int, bool]:
    """(content, detail, edits, hidden) of a discussion event as the Hub's JSON describes it."""
    data = event.get("data") or {}
    if event.get("type") == "comment":
        return (data.get("latest") or {}).get("raw"), None, int(data.get("numEdits") or 0), bool(data.get("hidden"))
    if event.get("type") == "status-change":
        return data.get("status"), None, 0, False
    if event.get("type") == "commit":
        return data.get("oid"), data.get("subject"), 0, False
    return data.get("to"), data.get("from"), 0, False


def _time(value: object) -> datetime:
    if not isinstance(value, str) or not value:
        return UNKNOWN_TIME
    parsed = datetime.fromisoformat(value)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _etag_sha256(response: httpx.Response) -> str | None:
    """The sha256 the server says the file has (fmhub's ETag is the blob's sha256), if it says one."""
    value = response.headers.get("x-linked-etag") or response.headers.get("etag") or ""
    value = value.removeprefix("W/").strip('"').lower()
    return value if len(value) == 64 and all(c in "0123456789abcdef" for c in value) else None


def _file_chunks(path: Path, progress: Progress | None) -> Iterator[bytes]:
    """A file's bytes in chunks, for a streamed request body: memory stays constant whatever its size."""
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK_SIZE):
            yield chunk
            if progress:
                progress(len(chunk))


def _corrupt(path: str, actual: str, size: int, entry: TreeEntry) -> IntegrityError:
    error = IntegrityError(f"{path}: received {size} bytes hashing to {actual}, the commit has "
                           f"{entry.size} bytes with sha256 {entry.blob_sha256}",
                           expected=entry.blob_sha256, actual=actual)
    error.hint = "the transfer was corrupted or cut short; download it again"
    return error


class RemoteHub(Hub):
    """The Hub interface over HTTP to an fmhub server.

    Args:
        endpoint: the server's base URL, e.g. ``http://hub.internal:8000``.
        token: an access token (``fmhub token create``); anonymous when None, which reads public repos.
        timeout: seconds to wait for any one network step of an API call.
        transport: an ``httpx`` transport to use instead of the network (tests: ``httpx.MockTransport``).

    With today's HTTP protocol, a few fields of the shared value types are not reported by the server and
    read as "unknown": ``Commit.tree_id`` (``""``) and ``Commit.generation`` (``0``) for commits listed by
    :meth:`list_commits` beyond a complete history, and ``Ref.message`` / ``created_at`` /
    ``updated_at`` from :meth:`list_refs` (``None`` / :data:`UNKNOWN_TIME`). :meth:`repo_info` and the
    commits :meth:`commit` / :meth:`upload` return have an exact ``tree_id``.

    Example:
        >>> hub = RemoteHub("http://127.0.0.1:8000", token=os.environ["FMHUB_TOKEN"])
        >>> hub.upload("./tiny-bert", "acme/tiny-bert", title="Add model")
        >>> hub.download("acme/tiny-bert", local_dir="./tiny-bert-copy")
    """

    remote = True
    # Metric values go in one request per 50 steps or 10 s (and at a run's end): training is not slowed
    # by a round trip per step, and `fmhub runs show` is at most seconds behind.
    metrics_batch_steps = 50
    metrics_batch_seconds = 10.0

    def __init__(self, endpoint: str, *, token: str | None = None, timeout: float = 60.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        endpoint = endpoint.strip().rstrip("/")
        if not endpoint.startswith(("http://", "https://")):
            raise ConfigError(f"the hub endpoint {endpoint!r} is not an http(s) URL",
                              hint="use --endpoint / FMHUB_ENDPOINT like http://host:8000")
        self.endpoint = endpoint
        self.token = token or None
        self._client = httpx.Client(timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
                                    follow_redirects=True, transport=transport,
                                    headers={"User-Agent": f"fmhub/{__version__}"})

    @property
    def location(self) -> str:
        return self.endpoint

    def close(self) -> None:
        self._client.close()

    # -- HTTP -------------------------------------------------------------------------------------

    def _headers(self, url: str, extra: dict[str, str] | None, auth: bool) -> dict[str, str]:
        headers = dict(extra or {})
        # The token goes to this hub only: never to a URL elsewhere an answer may name (e.g. storage).
        if auth and self.token and url.startswith(self.endpoint + "/"):
            headers["Authorization"] = f"Bearer {self.token}"
        return headers

    def _request(self, method: str, url: str, *, fields: dict[str, Any] | None = None, auth: bool = True,
                 headers: dict[str, str] | None = None, **kwargs: Any) -> httpx.Response:
        """Send a request; an error answer raises the fmhub error it stands for (``fields`` fill it in)."""
        try:
            response = self._client.request(method, url, headers=self._headers(url, headers, auth), **kwargs)
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise unreachable(self.endpoint, exc) from exc
        if response.is_error:
            raise error_from_response(response, token_given=self.token is not None, **(fields or {}))
        return response

    def _json(self, method: str, url: str, **kwargs: Any) -> Any:
        """:meth:`_request`, then its JSON body."""
        return self._decoded(self._request(method, url, **kwargs))

    def native_api(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """Call fmhub's native API (``/api/fmhub/…``: tokens, organizations, users) and return its JSON."""
        return self._json(method, f"{self.endpoint}{path}", json=body)

    def _decoded(self, response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError:  # an answer that is not JSON: the endpoint is not an fmhub hub
            raise ConfigError(f"{response.request.method} {response.request.url} answered {response.status_code} "
                              f"with {response.headers.get('content-type') or 'no content type'}, not JSON",
                              hint=f"is {self.endpoint} an fmhub server? check --endpoint / FMHUB_ENDPOINT") from None

    @contextlib.contextmanager
    def _stream(self, url: str, *, fields: dict[str, Any]) -> Iterator[httpx.Response]:
        """GET with the body left unread, for streaming it to disk."""
        try:
            with self._client.stream("GET", url, headers=self._headers(url, None, True),
                                     timeout=_TRANSFER_TIMEOUT) as response:
                if response.is_error:
                    response.read()
                    raise error_from_response(response, token_given=self.token is not None, **fields)
                yield response
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise unreachable(self.endpoint, exc) from exc

    def _api(self, repo_type: str, repo_id: str, *parts: str) -> str:
        return "/".join((f"{self.endpoint}/api/{repo_type}s/{repo_id}", *parts))

    def _repo_url(self, repo_type: str, repo_id: str) -> str:
        return f"{self.endpoint}/{'datasets/' if repo_type == 'dataset' else ''}{repo_id}"

    @staticmethod
    def _quoted(revision: str | None) -> str:
        # Quoted whole: a revision like refs/heads/dev is one segment of the URL.
        return quote(revision or DEFAULT_BRANCH, safe="")

    # -- repos ------------------------------------------------------------------------------------

    @staticmethod
    def _checked(repo_id: str, repo_type: str) -> tuple[str, str]:
        # The same validation the store applies, before anything goes over the wire.
        return validate_repo_id(repo_id), validate_repo_type(repo_type)

    @staticmethod
    def _repo(repo_type: str, data: dict[str, Any]) -> Repo:
        return Repo(repo_type, data["id"], bool(data.get("private")), data.get("defaultBranch") or DEFAULT_BRANCH,
                    _time(data.get("createdAt")), _time(data.get("updatedAt") or data.get("lastModified")))

    def _info(self, repo_type: str, repo_id: str, revision: str | None) -> dict[str, Any]:
        """The hub's repo info at a revision: ``sha`` is the commit, ``siblings`` its files."""
        url = self._api(repo_type, repo_id) if revision is None else \
            self._api(repo_type, repo_id, "revision", self._quoted(revision))
        fields = {"repo_type": repo_type, "repo_id": repo_id, "revision": revision or DEFAULT_BRANCH}
        return self._json("GET", url, fields=fields)

    @staticmethod
    def _files(info: dict[str, Any]) -> list[TreeEntry]:
        # "sha256" since issue 28 ("blobId" is now git's blob id, as on the Hub); older hubs sent the sha256 as blobId.
        entries = [TreeEntry(s["rfilename"], s.get("sha256") or s["blobId"], int(s["size"]))
                   for s in info.get("siblings") or ()]
        return sorted(entries, key=lambda e: e.path)

    def create_repo(self, repo_id: str, *, repo_type: str = "model", private: bool = False,
                    exist_ok: bool = False) -> Repo:
        repo_id, repo_type = self._checked(repo_id, repo_type)
        namespace, name = repo_id.split("/")
        try:
            self._request("POST", f"{self.endpoint}/api/repos/create",
                          json={"name": name, "organization": namespace, "type": repo_type, "private": private},
                          fields={"repo_type": repo_type, "repo_id": repo_id})
        except RepoExistsError:
            if not exist_ok:
                raise
        return self.get_repo(repo_id, repo_type=repo_type)

    def delete_repo(self, repo_id: str, *, repo_type: str = "model") -> None:
        repo_id, repo_type = self._checked(repo_id, repo_type)
        namespace, name = repo_id.split("/")
        self._request("DELETE", f"{self.endpoint}/api/repos/delete",
                      json={"name": name, "organization": namespace, "type": repo_type},
                      fields={"repo_type": repo_type, "repo_id": repo_id})

    def get_repo(self, repo_id: str, *, repo_type: str = "model") -> Repo:
        repo_id, repo_type = self._checked(repo_id, repo_type)
        return self._repo(repo_type, self._info(repo_type, repo_id, None))

    def repo_info(self, repo_id: str, *, repo_type: str = "model", revision: str | None = None) -> RepoInfo:
        repo_id, repo_type = self._checked(repo_id, repo_type)
        info = self._info(repo_type, repo_id, revision)
        files = self._files(info)
        return RepoInfo(self._repo(repo_type, info), self._commit_at(repo_type, repo_id, info["sha"], files), files)

    def list_repos(self, *, repo_type: str | None = None, author: str | None = None, search: str | None = None,
                   limit: int | None = None) -> list[Repo]:
        if limit is not None and limit < 1:
            raise InvalidInputError(f"limit must be positive, got {limit}")
        params = {k: v for k, v in (("author", author), ("search", search), ("limit", limit)) if v}
        repos: list[Repo] = []
        for kind in [validate_repo_type(repo_type)] if repo_type is not None else list(REPO_TYPES):
            listed = self._json("GET", f"{self.endpoint}/api/{kind}s", params=params)
            repos += [self._repo(kind, item) for item in listed]
        repos.sort(key=lambda r: f"{r.repo_type}/{r.repo_id.lower()}")  # the store's order
        return repos[:limit] if limit is not None else repos

    def update_repo(self, repo_id: str, *, repo_type: str = "model", private: bool | None = None) -> Repo:
        repo_id, repo_type = self._checked(repo_id, repo_type)
        if private is not None:
            self._request("PUT", self._api(repo_type, repo_id, "settings"), json={"private": private},
                          fields={"repo_type": repo_type, "repo_id": repo_id})
        return self.get_repo(repo_id, repo_type=repo_type)

    # -- files ------------------------------------------------------------------------------------

    def list_files(self, repo_id: str, revision: str | None = None, *, repo_type: str = "model",
                   folder: str | None = None) -> list[TreeEntry]:
        repo_id, repo_type = self._checked(repo_id, repo_type)
        prefix = None if folder in (None, "", "/") else validate_folder(folder) + "/"
        entries = self._files(self._info(repo_type, repo_id, revision))
        if prefix is None:
            return entries
        entries = [e for e in entries if e.path.startswith(prefix)]
        if not entries:
            raise EntryNotFoundError(repo_id, revision or DEFAULT_BRANCH, folder)  # type: ignore[arg-type]
        return entries

    def _resolve_url(self, repo_type: str, repo_id: str, revision: str | None, path: str) -> str:
        return f"{self._repo_url(repo_type, repo_id)}/resolve/{self._quoted(revision)}/{quote(path, safe='/')}"

    def read_bytes(self, repo_id: str, path: str, revision: str | None = None, *, repo_type: str = "model") -> bytes:
        repo_id, repo_type = self._checked(repo_id, repo_type)
        path = validate_path(path)
        fields = {"repo_type": repo_type, "repo_id": repo_id, "revision": revision or DEFAULT_BRANCH, "path": path}
        with self._stream(self._resolve_url(repo_type, repo_id, revision, path), fields=fields) as response:
            data = response.read()
            expected = _etag_sha256(response)
        actual = hashlib.sha256(data).hexdigest()
        if expected is not None and actual != expected:
            raise _corrupt(path, actual, len(data), TreeEntry(path, expected, len(data)))
        return data

    def _fetcher(self, repo_type: str, repo_id: str, commit_oid: str) -> FileFetcher:
        """Streams one file of the commit into an open file, hashing it, and proves it is the committed one."""

        def fetch(entry: TreeEntry, out: BinaryIO, progress: Progress | None) -> None:
            fields = {"repo_type": repo_type, "repo_id": repo_id, "revision": commit_oid, "path": entry.path}
            url = self._resolve_url(repo_type, repo_id, commit_oid, entry.path)
            digest, size = hashlib.sha256(), 0
            with self._stream(url, fields=fields) as response:
                announced = _etag_sha256(response)
                if announced is not None and announced != entry.blob_sha256:
                    raise _corrupt(entry.path, announced, entry.size, entry)
                for chunk in response.iter_bytes(CHUNK_SIZE):
                    digest.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
                    if progress:
                        progress(len(chunk))
            if digest.hexdigest() != entry.blob_sha256 or size != entry.size:
                raise _corrupt(entry.path, digest.hexdigest(), size, entry)

        return fetch

    def download(self, repo_id: str, filenames: Sequence[str] | None = None, *, repo_type: str = "model",
                 revision: str | None = None, include: str | Iterable[str] | None = None,
                 exclude: str | Iterable[str] | None = None, local_dir: Path | str | None = None,
                 cache_dir: Path | str | None = None, verify: bool = False, fsync: bool = False,
                 progress: Progress | None = None,
                 on_plan: Callable[[Commit, list[TreeEntry]], None] | None = None) -> Path:
        repo_id, repo_type = self._checked(repo_id, repo_type)
        info = self._info(repo_type, repo_id, revision)
        files = self._files(info)
        commit = self._commit_at(repo_type, repo_id, info["sha"], files)
        # Every file is fetched by commit id, so a branch moving mid-download cannot mix two commits.
        return download_files(self._fetcher(repo_type, repo_id, commit.oid), repo_id, commit, files,
                              repo_type=repo_type, revision=revision, filenames=filenames, local_dir=local_dir,
                              cache_dir=cache_dir, include=include, exclude=exclude, fsync=fsync, progress=progress,
                              on_plan=on_plan)

    # -- commits ----------------------------------------------------------------------------------

    @staticmethod
    def _commit(item: dict[str, Any], *, tree_id: str = "", generation: int = 0) -> Commit:
        authors = item.get("authors") or [{}]
        return Commit(item["id"], item.get("treeId") or tree_id, tuple(item.get("parents") or ()),
                      authors[0].get("user") or "", item.get("title") or "", item.get("message") or "",
                      _time(item.get("date")), int(item.get("generation") or generation))

    def _commit_at(self, repo_type: str, repo_id: str, oid: str, files: list[TreeEntry] | None = None) -> Commit:
        """A commit in full: its history page gives the text, its files the tree id."""
        if files is None:
            files = self._files(self._info(repo_type, repo_id, oid))
        response = self._request("GET", self._api(repo_type, repo_id, "commits", oid),
                                 fields={"repo_type": repo_type, "repo_id": repo_id, "revision": oid})
        page = self._decoded(response)
        # A history that fits in one page counts the commit's generation (the root is generation 1).
        generation = len(page) if "next" not in response.links else 0
        tree_id = compute_tree_id({e.path: (e.blob_sha256, e.size) for e in files})
        return self._commit(page[0], tree_id=tree_id, generation=generation)

    def commit(self, repo_id: str, operations: Sequence[CommitOperation], *, repo_type: str = "model",
               revision: str | None = None, title: str, message: str = "", parent_commit: str | None = None,
               allow_pickle: bool = False, progress: Progress | None = None,
               hash_progress: Progress | None = None) -> Commit:
        repo_id, repo_type = self._checked(repo_id, repo_type)
        branch = (revision or DEFAULT_BRANCH).removeprefix("refs/heads/")
        # Refuse pickles before hashing or sending gigabytes the hub would refuse anyway.
        for op in operations:
            if isinstance(op, UploadFile):
                check_local_file(validate_path(op.path), op.source, allow_pickle=allow_pickle)
        # The tree the change applies to: files it already holds are not sent again.
        old = {e.path: (e.blob_sha256, e.size)
               for e in self._files(self._info(repo_type, repo_id, parent_commit or branch))}
        lines, tree, to_send = self._lines(repo_type, repo_id, branch, operations, old, progress, hash_progress)
        deletes = any(line["key"] in ("deletedFile", "deletedFolder") for line in lines)
        if lines and tree == old and not deletes:
            # What the hub would answer, said before any byte is sent. (Deleting what is not there is
            # left to the hub, which names the missing path.)
            raise EmptyCommitError(repo_id, branch)
        self._send_objects(repo_type, repo_id, to_send, progress)
        header: dict[str, str] = {"summary": title, "description": message}
        if parent_commit is not None:
            header["parentCommit"] = parent_commit
        body = "\n".join(json.dumps(line) for line in [{"key": "header", "value": header}, *lines]).encode()
        answer = self._json("POST", self._api(repo_type, repo_id, "commit", self._quoted(branch)), content=body,
                            headers={"Content-Type": "application/x-ndjson"}, timeout=_TRANSFER_TIMEOUT,
                            fields={"repo_type": repo_type, "repo_id": repo_id, "revision": branch})
        return self._commit_at(repo_type, repo_id, answer["commitOid"])

    def _lines(self, repo_type: str, repo_id: str, branch: str, operations: Sequence[CommitOperation],
               old: dict[str, tuple[str, int]], progress: Progress | None, hash_progress: Progress | None
               ) -> tuple[list[dict[str, Any]], dict[str, tuple[str, int]], dict[str, tuple[Path | str | bytes, int]]]:
        """The NDJSON operation lines, the tree they make from ``old``, and the new content to send by sha256.

        Every added file is an ``lfsFile`` line naming its sha256 (never base64 inline); content the tree
        already holds at that path, or that is sent once for another path, is not sent again.
        """
        lines: list[dict[str, Any]] = []
        tree = dict(old)
        to_send: dict[str, tuple[Path | str | bytes, int]] = {}
        for op in operations:
            if isinstance(op, UploadFile):
                path = validate_path(op.path)
                if isinstance(op.source, bytes):
                    sha256, size = hashlib.sha256(op.source).hexdigest(), len(op.source)
                else:
                    sha256, size = hash_file(Path(op.source), hash_progress)
                if old.get(path) == (sha256, size) or sha256 in to_send:
                    if progress:
                        progress(size)  # nothing to send: the hub holds (or is getting) these bytes
                else:
                    to_send[sha256] = (op.source, size)
                op = AddFile(path, sha256, size)
            if isinstance(op, (AddFile, CopyFile)):
                if isinstance(op, AddFile):
                    path, content = validate_path(op.path), (op.blob_sha256, op.size)
                else:  # the protocol has no copy: name the source's content, as huggingface_hub does
                    source = tree if op.src_revision is None else {
                        e.path: (e.blob_sha256, e.size)
                        for e in self.list_files(repo_id, op.src_revision, repo_type=repo_type)}
                    if op.src_path not in source:
                        raise EntryNotFoundError(repo_id, op.src_revision or branch, op.src_path)
                    path, content = validate_path(op.dest_path), source[op.src_path]
                tree[path] = content
                lines.append({"key": "lfsFile", "value": {"path": path, "algo": "sha256", "oid": content[0],
                                                          "size": content[1]}})
            elif isinstance(op, DeleteFile):
                path = validate_stored_path(op.path)
                tree.pop(path, None)
                lines.append({"key": "deletedFile", "value": {"path": path}})
            elif isinstance(op, DeleteFolder):
                folder = validate_folder(op.path, stored=True)
                tree = {p: v for p, v in tree.items() if not p.startswith(folder + "/")}
                lines.append({"key": "deletedFolder", "value": {"path": folder}})
            else:
                raise InvalidInputError(f"unknown commit operation {op!r}")
        return lines, tree, to_send

    def _send_objects(self, repo_type: str, repo_id: str, objects: dict[str, tuple[Path | str | bytes, int]],
                      progress: Progress | None) -> None:
        """Git LFS: ask which objects the hub lacks, PUT those (streamed), verify each."""
        fields = {"repo_type": repo_type, "repo_id": repo_id}
        lfs_headers = {"Accept": _LFS_JSON, "Content-Type": _LFS_JSON}
        pending = list(objects.items())
        for start in range(0, len(pending), _BATCH_SIZE):
            batch = [{"oid": oid, "size": size} for oid, (_, size) in pending[start:start + _BATCH_SIZE]]
            answer = self._json("POST", f"{self._repo_url(repo_type, repo_id)}.git/info/lfs/objects/batch",
                                json={"operation": "upload", "transfers": ["basic"], "objects": batch,
                                      "hash_algo": "sha256"}, headers=lfs_headers, fields=fields)
            for obj in answer.get("objects") or ():
                source, size = objects[obj["oid"]]
                if obj.get("error"):
                    error = obj["error"]
                    cls = PayloadTooLargeError if error.get("code") == 413 else InvalidInputError
                    raise cls(f"object {obj['oid']} ({size} bytes): {error.get('message')}")
                actions = obj.get("actions") or {}
                if "upload" not in actions:  # the hub already holds it for this repo
                    if progress:
                        progress(size)
                    continue
                upload = actions["upload"]
                content = source if isinstance(source, bytes) else _file_chunks(Path(source), progress)
                # The upload URL is signed: no token goes with it (it may point at object storage).
                self._request("PUT", upload["href"], auth=False, content=content, fields=fields,
                              headers={**(upload.get("header") or {}), "Content-Length": str(size),
                                       "Content-Type": "application/octet-stream"}, timeout=_TRANSFER_TIMEOUT)
                if isinstance(source, bytes) and progress:
                    progress(size)
                if verify := actions.get("verify"):
                    self._request("POST", verify["href"], json={"oid": obj["oid"], "size": size}, fields=fields,
                                  headers={**(verify.get("header") or {}), **lfs_headers})

    # -- history and refs -------------------------------------------------------------------------

    def list_commits(self, repo_id: str, revision: str | None = None, *, repo_type: str = "model",
                     limit: int | None = None) -> list[Commit]:
        repo_id, repo_type = self._checked(repo_id, repo_type)
        fields = {"repo_type": repo_type, "repo_id": repo_id, "revision": revision or DEFAULT_BRANCH}
        url: str | None = self._api(repo_type, repo_id, "commits", self._quoted(revision))
        items: list[dict[str, Any]] = []
        while url is not None and (limit is None or len(items) < limit):
            response = self._request("GET", url, fields=fields)
            items += self._decoded(response)
            url = response.links.get("next", {}).get("url")
        complete = url is None  # down to the root: generations can be counted
        commits = [self._commit(item, generation=len(items) - i if complete else 0) for i, item in enumerate(items)]
        return commits[:limit] if limit is not None else commits

    def list_refs(self, repo_id: str, *, repo_type: str = "model") -> RepoRefs:
        repo_id, repo_type = self._checked(repo_id, repo_type)
        data = self._json("GET", self._api(repo_type, repo_id, "refs"), params={"include_prs": 1},
                          fields={"repo_type": repo_type, "repo_id": repo_id})

        def ref(kind: str, item: dict[str, Any]) -> Ref:
            return Ref(kind, item["name"], item["targetCommit"], item.get("message"),  # type: ignore[arg-type]
                       _time(item.get("createdAt")), _time(item.get("updatedAt")))

        return RepoRefs(branches=sorted((ref("branch", i) for i in data.get("branches") or ()), key=lambda r: r.name),
                        tags=sorted((ref("tag", i) for i in data.get("tags") or ()), key=lambda r: r.name),
                        pull_requests=[ref("pr", i) for i in data.get("pullRequests") or ()])

    # -- discussions and pull requests (the Hub's discussion routes) --------------------------------

    @staticmethod
    def _discussion(item: dict[str, Any], events: list[dict[str, Any]] | None = None) -> Discussion:
        changes = item.get("changes") or {}
        found = [DiscussionEvent(e["id"], e["type"], (e.get("author") or {}).get("name", "deleted"),
                                 _time(e.get("createdAt")), *_event_fields(e)) for e in events or ()]
        return Discussion(item["repo"]["type"], item["repo"]["name"], int(item["num"]), item["title"],
                          (item.get("author") or {}).get("name", "deleted"), bool(item["isPullRequest"]),
                          item["status"], _time(item.get("createdAt")), _time(item.get("createdAt")),
                          (changes.get("base") or "").removeprefix("refs/heads/") or None, changes.get("baseCommit"),
                          changes.get("headCommit"), changes.get("mergeCommitId"), found)

    def create_discussion(self, repo_id: str, *, title: str, description: str | None = None,
                          pull_request: bool = False, repo_type: str = "model") -> Discussion:
        repo_id, repo_type = self._checked(repo_id, repo_type)
        fields = {"repo_type": repo_type, "repo_id": repo_id}
        created = self._json("POST", self._api(repo_type, repo_id, "discussions"), fields=fields,
                             json={"title": title, "description": description, "pullRequest": pull_request})
        return self.get_pull_request(repo_id, int(created["num"]), repo_type=repo_type).discussion

    def list_discussions(self, repo_id: str, *, repo_type: str = "model", pull_requests: bool | None = None,
                         status: str | None = None) -> list[Discussion]:
        repo_id, repo_type = self._checked(repo_id, repo_type)
        kind = {None: "all", True: "pull_request", False: "discussion"}[pull_requests]
        found: list[Discussion] = []
        page = 0
        while True:
            data = self._json("GET", self._api(repo_type, repo_id, "discussions"),
                              params={"p": page, "type": kind, "status": status or "all"},
                              fields={"repo_type": repo_type, "repo_id": repo_id})
            found += [self._discussion(item) for item in data["discussions"]]
            if not data["discussions"] or data["start"] + len(data["discussions"]) >= data["count"]:
                return found
            page += 1

    def get_pull_request(self, repo_id: str, num: int, *, repo_type: str = "model") -> PullRequestDetails:
        repo_id, repo_type = self._checked(repo_id, repo_type)
        data = self._json("GET", self._api(repo_type, repo_id, "discussions", str(int(num))), params={"diff": 1},
                          fields={"repo_type": repo_type, "repo_id": repo_id})
        files = [FileChange(f["path"], f["change"], None, None) for f in data.get("files") or ()]
        return PullRequestDetails(self._discussion(data, data.get("events")), files,
                                  list(data.get("filesWithConflicts") or ()), data.get("diff") or "")

    def change_discussion_status(self, repo_id: str, num: int, status: str, *, repo_type: str = "model",
                                 comment: str | None = None) -> None:
        repo_id, repo_type = self._checked(repo_id, repo_type)
        self._json("POST", self._api(repo_type, repo_id, "discussions", str(int(num)), "status"),
                   json={"status": status, "comment": comment}, fields={"repo_type": repo_type, "repo_id": repo_id})

    def merge_pull_request(self, repo_id: str, num: int, *, repo_type: str = "model",
                           comment: str | None = None) -> str:
        repo_id, repo_type = self._checked(repo_id, repo_type)
        answer = self._json("POST", self._api(repo_type, repo_id, "discussions", str(int(num)), "merge"),
                            json={"comment": comment}, fields={"repo_type": repo_type, "repo_id": repo_id})
        return answer["commitOid"]

    def _existing_ref(self, repo_type: str, repo_id: str, kind: str, name: str, revision: str | None,
                      error: FmhubError) -> Ref:
        """For ``exist_ok``: the ref if it already names what was asked, else the original error."""
        refs = self.list_refs(repo_id, repo_type=repo_type)
        found = next((r for r in (refs.branches if kind == "branch" else refs.tags) if r.name == name), None)
        if found is None or found.commit_oid != self._info(repo_type, repo_id, revision)["sha"]:
            raise error
        return found

    def create_branch(self, repo_id: str, branch: str, *, revision: str | None = None, repo_type: str = "model",
                      exist_ok: bool = False) -> Ref:
        repo_id, repo_type = self._checked(repo_id, repo_type)
        branch = validate_ref_name(branch)
        fields = {"repo_type": repo_type, "repo_id": repo_id, "revision": revision or DEFAULT_BRANCH,
                  "kind": "branch", "name": branch}
        try:
            data = self._json("POST", self._api(repo_type, repo_id, "branch", quote(branch, safe="")),
                              json={"startingPoint": revision} if revision else {}, fields=fields)
        except RefExistsError as exc:
            if not exist_ok:
                raise
            return self._existing_ref(repo_type, repo_id, "branch", branch, revision, exc)
        now = datetime.now(UTC)
        return Ref("branch", data["name"], data["targetCommit"], None, now, now)

    def delete_branch(self, repo_id: str, branch: str, *, repo_type: str = "model") -> None:
        repo_id, repo_type = self._checked(repo_id, repo_type)
        self._request("DELETE", self._api(repo_type, repo_id, "branch", quote(branch, safe="")),
                      fields={"repo_type": repo_type, "repo_id": repo_id, "revision": f"branch {branch}"})

    def create_tag(self, repo_id: str, tag: str, *, revision: str | None = None, message: str | None = None,
                   repo_type: str = "model", exist_ok: bool = False) -> Ref:
        repo_id, repo_type = self._checked(repo_id, repo_type)
        tag = validate_ref_name(tag)
        fields = {"repo_type": repo_type, "repo_id": repo_id, "revision": revision or DEFAULT_BRANCH,
                  "kind": "tag", "name": tag}
        try:
            data = self._json("POST", self._api(repo_type, repo_id, "tag", self._quoted(revision)),
                              json={"tag": tag, "message": message}, fields=fields)
        except RefExistsError as exc:
            if not exist_ok:
                raise
            return self._existing_ref(repo_type, repo_id, "tag", tag, revision, exc)
        now = datetime.now(UTC)
        return Ref("tag", data["name"], data["targetCommit"], message, now, now)

    def delete_tag(self, repo_id: str, tag: str, *, repo_type: str = "model") -> None:
        repo_id, repo_type = self._checked(repo_id, repo_type)
        self._request("DELETE", self._api(repo_type, repo_id, "tag", quote(tag, safe="")),
                      fields={"repo_type": repo_type, "repo_id": repo_id, "revision": f"tag {tag}"})

    # -- evaluation report cards (fmhub's native API) -------------------------------------------------

    def record_evaluation(self, repo_id: str, commit: str, path: str) -> EvaluationInfo:
        from fmhub.evaluations import EvaluationInfo

        repo_id = validate_repo_id(repo_id)
        answer = self._json("POST", f"{self.endpoint}/api/fmhub/evaluations",
                            json={"repo": repo_id, "commit": commit, "path": path},
                            fields={"repo_type": "model", "repo_id": repo_id, "revision": commit, "path": path})
        return EvaluationInfo.from_json(answer)

    def list_evaluations(self, *, model: str | None = None, dataset: str | None = None, split: str | None = None,
                         limit: int = 100) -> list[EvaluationInfo]:
        from fmhub.evaluations import EvaluationInfo

        params = {k: v for k, v in (("model", model), ("dataset", dataset), ("split", split)) if v is not None}
        listed = self._json("GET", f"{self.endpoint}/api/fmhub/evaluations", params={**params, "limit": limit})
        return [EvaluationInfo.from_json(item) for item in listed]

    # -- search and lineage (fmhub's native API) ----------------------------------------------------

    def search(self, query: SearchQuery) -> SearchResult:
        from fmhub.search import SearchHit, SearchResult

        query = query.checked()
        params: list[tuple[str, Any]] = [("sort", query.sort), ("limit", query.limit), ("cursor", query.offset)]
        params += [(k, v) for k, v in (("q", query.text), ("type", query.repo_type), ("author", query.author),
                                       ("task", query.task), ("direction", query.direction),
                                       ("on", query.metric_on)) if v is not None]
        params += [("filter", tag) for tag in query.filters] + [("search", term) for term in query.search]
        params += [("metric", f"{m.metric}{m.op}{m.value!r}") for m in query.metrics]
        if query.metrics and query.metric_on is None and query.metrics[0].dataset:
            first = query.metrics[0]
            params.append(("on", first.dataset + (f":{first.split}" if first.split else "")))
        answer = self._json("GET", f"{self.endpoint}/api/fmhub/search", params=params)
        return SearchResult([SearchHit.from_json(hit) for hit in answer["hits"]], answer.get("total"),
                            answer.get("next") is not None, query)

    def _lineage_url(self, repo_id: str, repo_type: str, suffix: str = "") -> str:
        repo_id = validate_repo_id(repo_id)
        plural = {"model": "models", "dataset": "datasets"}.get(repo_type)
        if plural is None:
            raise InvalidInputError(f"invalid repo type {repo_type!r}", hint="use model or dataset")
        return f"{self.endpoint}/api/fmhub/lineage/{plural}/{repo_id}{suffix}"

    def lineage(self, repo_id: str, revision: str | None = None, *, repo_type: str = "model",
                direction: str = "both", depth: int = 5) -> dict[str, Any]:
        params: dict[str, Any] = {"direction": direction, "depth": depth}
        if revision is not None:
            params["revision"] = revision
        return self._json("GET", self._lineage_url(repo_id, repo_type), params=params,
                          fields={"repo_type": repo_type, "repo_id": repo_id, "revision": revision})

    def lineage_impact(self, repo_id: str, revision: str | None = None, *, repo_type: str = "dataset",
                       evaluations: bool = False, limit: int | None = None,
                       cursor: str | None = None) -> dict[str, Any]:
        params: dict[str, Any] = {"evaluations": evaluations, "limit": limit or _IMPACT_PAGE}
        if revision is not None:
            params["revision"] = revision
        url, fields = self._lineage_url(repo_id, repo_type, "/impact"), {"repo_type": repo_type, "repo_id": repo_id,
                                                                          "revision": revision}
        answer = self._json("GET", url, params={**params, "cursor": cursor} if cursor else params, fields=fields)
        if limit is not None:
            return answer
        seen = {n["id"] for n in answer["nodes"]}
        while answer.get("next_cursor"):  # every page: the roots come again with each
            page = self._json("GET", url, params={**params, "cursor": answer["next_cursor"]}, fields=fields)
            answer["nodes"] += [n for n in page["nodes"] if n["id"] not in seen]
            seen.update(n["id"] for n in page["nodes"])
            answer["next_cursor"], answer["total"] = page.get("next_cursor"), page.get("total", answer.get("total"))
        return answer

    # -- training runs (fmhub's native API) ---------------------------------------------------------

    def _run_url(self, run_id: str, *parts: str) -> str:
        if not isinstance(run_id, str) or not run_id.strip():
            raise InvalidInputError(f"invalid run id {run_id!r}", hint="e.g. r-1a2b3c4d5e6f or its first digits")
        return "/".join((f"{self.endpoint}/api/fmhub/runs", quote(run_id.strip(), safe=""), *parts))

    def start_run(self, *, task: str, config: dict[str, Any], command: str, output: str,
                  base_model: str | None = None, base_commit: str | None = None, dataset: str | None = None,
                  dataset_commit: str | None = None, name: str | None = None,
                  env: Environment | None = None) -> RunInfo:
        from fmhub.runs import RunInfo, environment

        output = validate_repo_id(output)
        # The config goes as the record keeps it: JSON, with paths and enums as text (as Runs.start stores it).
        body = {"task": task, "config": json.loads(json.dumps(_finite(config), default=str)), "command": command,
                "output": output, "base_model": base_model, "base_commit": base_commit, "dataset": dataset,
                "dataset_commit": dataset_commit, "name": name, "environment": (env or environment()).to_json()}
        return RunInfo.from_json(self._json("POST", f"{self.endpoint}/api/fmhub/runs", json=body,
                                            fields={"repo_type": "model", "repo_id": output}))

    def log_run_metrics(self, run_id: str, entries: Sequence[StepMetrics]) -> int:
        stored = 0
        entries = list(entries)
        for start in range(0, len(entries), _METRICS_PER_REQUEST):
            batch = [entry.to_json() for entry in entries[start:start + _METRICS_PER_REQUEST]]
            answer = self._json("POST", self._run_url(run_id, "metrics"), json={"entries": batch},
                                fields={"run_id": run_id})
            stored += int(answer["stored"])
        return stored

    def finish_run(self, run_id: str, status: str, *, summary: dict[str, Any] | None = None,
                   output_commit: str | None = None) -> RunInfo:
        from fmhub.runs import RunInfo

        body = {"status": status, "summary": None if summary is None else _finite(summary),
                "output_commit": output_commit}
        return RunInfo.from_json(self._json("POST", self._run_url(run_id, "finish"), json=body,
                                            fields={"run_id": run_id}))

    def resume_run(self, run_id: str, from_step: int) -> RunInfo:
        from fmhub.runs import RunInfo

        return RunInfo.from_json(self._json("POST", self._run_url(run_id, "resume"), json={"from_step": from_step},
                                            fields={"run_id": run_id}))

    def get_run(self, run_id: str) -> RunInfo:
        from fmhub.runs import RunInfo

        return RunInfo.from_json(self._json("GET", self._run_url(run_id), fields={"run_id": run_id}))

    def list_runs(self, *, limit: int = 50, status: str | None = None, task: str | None = None) -> list[RunInfo]:
        from fmhub.runs import RunInfo

        params = {k: v for k, v in (("status", status), ("task", task)) if v is not None}
        listed = self._json("GET", f"{self.endpoint}/api/fmhub/runs", params={**params, "limit": limit})
        return [RunInfo.from_json(item) for item in listed]

    def run_metrics(self, run_id: str, *, key: str | None = None) -> list[MetricPoint]:
        from fmhub.runs import MetricPoint

        listed = self._json("GET", self._run_url(run_id, "metrics"), params={"key": key} if key is not None else {},
                            fields={"run_id": run_id})
        return [MetricPoint.from_json(item) for item in listed]

    def latest_run_metrics(self, run_id: str) -> dict[str, float]:
        latest = self._json("GET", self._run_url(run_id, "metrics", "latest"), fields={"run_id": run_id})
        return {str(k): float(v) for k, v in latest.items()}

    # -- pipeline step records (fmhub's native API) -------------------------------------------------

    def find_pipeline_step(self, key: str) -> PipelineStepRecord | None:
        from fmhub.runs import PipelineStepRecord, check_step_key

        key = check_step_key(key)
        try:
            answer = self._json("GET", f"{self.endpoint}/api/fmhub/pipeline-steps/{key}", fields={"key": key})
        except PipelineStepNotFoundError:
            return None
        return PipelineStepRecord.from_json(answer)

    def save_pipeline_step(self, record: PipelineStepRecord) -> PipelineStepRecord:
        from fmhub.runs import PipelineStepRecord, check_step_key

        key = check_step_key(record.key)
        body = {k: v for k, v in record.to_json().items() if k not in ("key", "created_at")}
        body["metrics"] = {k: v for k, v in body["metrics"].items() if math.isfinite(v)}  # never stored anyway
        repo = record.output_repo
        answer = self._json("PUT", f"{self.endpoint}/api/fmhub/pipeline-steps/{key}", json=body,
                            fields={"key": key, "repo_type": "model", "repo_id": repo})
        return PipelineStepRecord.from_json(answer)

    # -- signatures (fmhub's native API) --------------------------------------------------------------

    def _namespace_url(self, namespace: str, *parts: str) -> str:
        if not isinstance(namespace, str) or not namespace.strip() or "/" in namespace:
            raise InvalidInputError(f"invalid namespace {namespace!r}", hint="an organization or user name")
        return "/".join((f"{self.endpoint}/api/fmhub/namespaces", quote(namespace.strip(), safe=""), *parts))

    @staticmethod
    def _trusted_key(data: dict[str, Any]) -> TrustedKey:
        return TrustedKey(data["fingerprint"], data["public_key"], name=data.get("name") or "",
                          namespace=data.get("namespace") or "", created_at=_time(data.get("created_at")),
                          revoked_at=_time(data["revoked_at"]) if data.get("revoked_at") else None)

    def add_signing_key(self, namespace: str, public_key: str | bytes, *, name: str | None = None) -> TrustedKey:
        pem = public_key.decode("utf-8", errors="replace") if isinstance(public_key, bytes) else public_key
        return self._trusted_key(self._json("POST", self._namespace_url(namespace, "keys"),
                                            json={"public_key": pem, "name": name}))

    def list_signing_keys(self, namespace: str) -> list[TrustedKey]:
        return [self._trusted_key(item) for item in self._json("GET", self._namespace_url(namespace, "keys"))]

    def revoke_signing_key(self, namespace: str, fingerprint: str) -> TrustedKey:
        return self._trusted_key(self._json("DELETE", self._namespace_url(namespace, "keys",
                                                                          quote(fingerprint, safe=""))))

    @staticmethod
    def _policy(data: dict[str, Any]) -> SigningPolicy:
        return SigningPolicy(data["namespace"], data["ref_pattern"], data.get("created_by"),
                             _time(data.get("created_at")))

    def add_signing_policy(self, namespace: str, ref_pattern: str) -> SigningPolicy:
        return self._policy(self._json("POST", self._namespace_url(namespace, "signing-policies"),
                                       json={"ref_pattern": ref_pattern}))

    def list_signing_policies(self, namespace: str) -> list[SigningPolicy]:
        return [self._policy(p) for p in self._json("GET", self._namespace_url(namespace, "signing-policies"))]

    def remove_signing_policy(self, namespace: str, ref_pattern: str) -> None:
        self._request("DELETE", self._namespace_url(namespace, "signing-policies"), params={"ref": ref_pattern})

    # -- hub attestations (fmhub's native API) --------------------------------------------------------

    def hub_public_key(self) -> TrustedKey:
        data = self._json("GET", f"{self.endpoint}/api/fmhub/signing/hub-key")
        key = TrustedKey.from_pem(data["public_key"], name="hub")
        if key.fingerprint != data.get("fingerprint"):
            raise IntegrityError("the hub's key does not match the fingerprint it reports",
                                 expected=data.get("fingerprint"), actual=key.fingerprint)
        return key

    def list_attestations(self, repo_id: str, *, repo_type: str = "model") -> list[AttestationRecord]:
        repo_id, repo_type = self._checked(repo_id, repo_type)
        listed = self._json("GET", f"{self.endpoint}/api/fmhub/attestations",
                            params={"repo": repo_id, "repo_type": repo_type},
                            fields={"repo_type": repo_type, "repo_id": repo_id})
        return [AttestationRecord.from_json(item) for item in listed]

    def attest_variant(self, repo_id: str, commit: str) -> AttestationRecord:
        repo_id = validate_repo_id(repo_id)
        return AttestationRecord.from_json(self._json(
            "POST", f"{self.endpoint}/api/fmhub/attestations", json={"repo": repo_id, "commit": commit,
                                                                      "kind": "optimize"},
            fields={"repo_type": "model", "repo_id": repo_id, "revision": commit}))

    def attest_import(self, repo_id: str, commit: str) -> AttestationRecord:
        repo_id = validate_repo_id(repo_id)
        return AttestationRecord.from_json(self._json(
            "POST", f"{self.endpoint}/api/fmhub/attestations", json={"repo": repo_id, "commit": commit,
                                                                      "kind": "import", "repo_type": "dataset"},
            fields={"repo_type": "dataset", "repo_id": repo_id, "revision": commit}))


def _finite(value: Any) -> Any:
    """NaN and ±inf as null (JSON has no spelling for them; the store keeps them as null too)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value
