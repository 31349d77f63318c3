"""The ``Hub`` interface both clients implement, and what they share (upload orchestration, value types)."""

from __future__ import annotations

import abc
import getpass
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fmhub.constants import settings
from fmhub.errors import FmhubError, InvalidInputError, RepoNotFoundError, RevisionNotFoundError
from fmhub.store.objects import Commit, Operation, Ref, Repo, RepoRefs, TreeEntry
from fmhub.store.paths import REPO_TYPES
from fmhub.store.pickles import check_local_file
from fmhub.store.store import PR_REF
from fmhub.store.transfer import PlannedFile, plan_upload

if TYPE_CHECKING:  # imported where used: a command opening the hub loads only the domains it calls on
    from fmhub.evaluations import EvaluationInfo
    from fmhub.runs import Environment, MetricPoint, MetricsBuffer, PipelineStepRecord, RunInfo, StepMetrics
    from fmhub.search import SearchQuery, SearchResult
    from fmhub.signing import AttestationRecord, Link, SignedManifest, SigningPolicy, TrustedKey
    from fmhub.store.blobs import Progress
    from fmhub.store.discussions import Discussion, FileChange

__all__ = ["Hub", "RepoInfo", "UploadFile", "CommitOperation", "VerifiedVersion", "PullRequestDetails",
           "default_author", "register_backend", "is_pull_request_ref"]

#: How :meth:`Hub.open` makes each kind of hub: ``"local"`` (no endpoint) and ``"remote"`` (an http(s) URL).
#: The implementations register themselves (``fmhub.client`` does, for :class:`LocalHub` and :class:`RemoteHub`),
#: so the interface needs no import of them.
_BACKENDS: dict[str, Callable[..., Hub]] = {}


def register_backend(kind: str, factory: Callable[..., Hub]) -> None:
    """Make ``Hub.open`` build ``kind`` (``local``: no arguments; ``remote``: ``(endpoint, token=...)``) with
    ``factory``."""
    _BACKENDS[kind] = factory


@dataclass(frozen=True)
class RepoInfo:
    """A repo at one revision: the repo, the commit the revision resolved to, and that commit's files."""

    repo: Repo
    commit: Commit
    files: list[TreeEntry]

    @property
    def size(self) -> int:
        return sum(entry.size for entry in self.files)


@dataclass(frozen=True)
class PullRequestDetails:
    """A discussion with its timeline; for a pull request, what it changes, what conflicts, and the diff."""

    discussion: Discussion
    files: list[FileChange]
    conflicts: list[str]
    diff: str


@dataclass(frozen=True)
class UploadFile:
    """Add or replace ``path`` with the bytes of a local file (a path, or ``bytes``), sent by the client.

    The store's :class:`~fmhub.store.AddFile` names content the hub already holds (by sha256); this one
    carries new content, as ``huggingface_hub``'s ``CommitOperationAdd`` does.
    """

    path: str
    source: Path | str | bytes


@dataclass(frozen=True)
class VerifiedVersion:
    """A version whose signature held: where its verified files are, and what the signature says."""

    repo_id: str
    commit: str
    folder: Path
    signature: SignedManifest


#: What :meth:`Hub.commit` applies, in order.
CommitOperation = Operation | UploadFile


def is_pull_request_ref(revision: str | None) -> bool:
    """Whether ``revision`` names a pull request's ref (``refs/pr/N``)."""
    return bool(revision) and PR_REF.fullmatch(revision) is not None


def default_author() -> str:
    """Who commits made on the embedded store are by: ``$FMHUB_USER``, else the login name.

    (A remote hub names the token's user instead, whatever the client says.)
    """
    user = settings().user
    if user:
        return user
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "fmhub"


def _notify_nobody(_line: str) -> None:
    return None


class Hub(abc.ABC):
    """Versioned model and dataset repositories, embedded or on a hub server: one interface for both.

    :meth:`open` picks the implementation: :class:`~fmhub.client.RemoteHub` when an endpoint is given
    (or ``FMHUB_ENDPOINT`` is set), else :class:`~fmhub.client.LocalHub` over the embedded store. Names
    follow ``huggingface_hub``'s ``HfApi`` where they overlap; results are fmhub's own value types
    (:class:`~fmhub.store.Repo`, :class:`~fmhub.store.Commit`, :class:`~fmhub.store.TreeEntry`,
    :class:`~fmhub.store.Ref`), and errors are :mod:`fmhub.errors` classes on both sides.

    Example:
        >>> from fmhub.client import Hub
        >>> with Hub.open() as hub:          # $FMHUB_ENDPOINT, else the embedded store
        ...     hub.upload("./tiny-bert", "acme/tiny-bert", title="Add model")
        ...     folder = hub.download("acme/tiny-bert", include="*.json")
    """

    #: True when calls go over HTTP to a hub server.
    remote: bool = False
    #: When :meth:`run_metrics_logger` sends a batch: after this many steps, or this many seconds.
    metrics_batch_steps: int = 1
    metrics_batch_seconds: float = 0.0

    @staticmethod
    def open(endpoint: str | None = None, token: str | None = None) -> Hub:
        """The hub ``endpoint`` (default ``$FMHUB_ENDPOINT``) names, or the embedded store when none does.

        Args:
            endpoint: base URL of an fmhub server, e.g. ``http://hub.internal:8000``.
            token: access token for it (default ``$FMHUB_TOKEN``; anonymous when neither is set).

        Example:
            >>> hub = Hub.open("http://127.0.0.1:8000", token="fmhub_...")
            >>> [entry.path for entry in hub.list_files("acme/tiny-bert")]
        """
        endpoint = endpoint or settings().endpoint
        if endpoint:
            return _BACKENDS["remote"](endpoint, token=token or settings().token)
        return _BACKENDS["local"]()

    @property
    @abc.abstractmethod
    def location(self) -> str:
        """Where the repos live, for messages: the server URL, or the embedded store's database URL."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections (a hub opened by :meth:`open` owns them)."""

    def __enter__(self) -> Hub:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- repos ------------------------------------------------------------------------------------

    @abc.abstractmethod
    def create_repo(self, repo_id: str, *, repo_type: str = "model", private: bool = False,
                    exist_ok: bool = False) -> Repo:
        """Create a repo with an initial commit on ``main``.

        Raises:
            RepoExistsError: it exists (unless ``exist_ok``); PermissionDeniedError: not your namespace.
        """

    @abc.abstractmethod
    def delete_repo(self, repo_id: str, *, repo_type: str = "model") -> None:
        """Delete a repo with its branches, tags and history."""

    @abc.abstractmethod
    def get_repo(self, repo_id: str, *, repo_type: str = "model") -> Repo:
        """The repo, or :class:`RepoNotFoundError` (also for a private repo the caller may not see)."""

    def explain_not_found(self, error: RepoNotFoundError) -> RepoNotFoundError:
        """``error``, saying so when its id names a repository of the other type the caller may see (a
        dataset given where a model is expected), so the hint is how to address it, not how to create it."""
        if error.exists_as is not None:
            return error
        for other in REPO_TYPES:
            if other == error.repo_type:
                continue
            try:
                self.get_repo(error.repo_id, repo_type=other)
            except FmhubError:  # missing (or private) as that type too, or an id invalid there
                continue
            return RepoNotFoundError(error.repo_type, error.repo_id, exists_as=other)
        return error

    @abc.abstractmethod
    def repo_info(self, repo_id: str, *, repo_type: str = "model", revision: str | None = None) -> RepoInfo:
        """The repo, the commit ``revision`` (default: the default branch) resolves to, and its files."""

    @abc.abstractmethod
    def list_repos(self, *, repo_type: str | None = None, author: str | None = None, search: str | None = None,
                   limit: int | None = None) -> list[Repo]:
        """Repos the caller may see, sorted by type then id; ``author`` is a namespace, ``search`` a substring."""

    @abc.abstractmethod
    def update_repo(self, repo_id: str, *, repo_type: str = "model", private: bool | None = None) -> Repo:
        """Change a repo's settings (today: its visibility)."""

    # -- files ------------------------------------------------------------------------------------

    @abc.abstractmethod
    def list_files(self, repo_id: str, revision: str | None = None, *, repo_type: str = "model",
                   folder: str | None = None) -> list[TreeEntry]:
        """Every file at a revision, sorted by path; ``folder`` restricts to files under it."""

    @abc.abstractmethod
    def read_bytes(self, repo_id: str, path: str, revision: str | None = None, *, repo_type: str = "model") -> bytes:
        """A small file's whole content (use :meth:`download` for large ones: it streams to disk)."""

    @abc.abstractmethod
    def download(self, repo_id: str, filenames: Sequence[str] | None = None, *, repo_type: str = "model",
                 revision: str | None = None, include: str | Iterable[str] | None = None,
                 exclude: str | Iterable[str] | None = None, local_dir: Path | str | None = None,
                 cache_dir: Path | str | None = None, verify: bool = False, fsync: bool = False,
                 progress: Progress | None = None,
                 on_plan: Callable[[Commit, list[TreeEntry]], None] | None = None) -> Path:
        """Download a revision (or some of its files) and return the folder holding them.

        The layout is ``huggingface_hub``'s: ``<cache_dir>/models--ns--name/snapshots/<commit>/`` (default
        cache ``$FMHUB_HOME/cache``), or ``local_dir`` kept in sync. Every file is written to a temp file
        beside its target and renamed, so no reader sees half a file.

        Args:
            filenames: only these files (globs allowed); each must match, or nothing is fetched
                (:class:`EntryNotFoundError`).
            include / exclude: globs on repo paths (``*.json``, ``onnx/``).
            verify: re-hash every byte written against the commit's sha256. A remote download always
                does (the bytes crossed a network); the embedded store verified them on upload.
            fsync: flush each file to disk before it appears.
            progress: called with byte counts as files are written.
            on_plan: called once with the resolved commit and the files about to be fetched.

        Example:
            >>> hub.download("acme/tiny-bert", revision="v1.0", local_dir="./v1.0")
        """

    # -- commits ----------------------------------------------------------------------------------

    @abc.abstractmethod
    def commit(self, repo_id: str, operations: Sequence[CommitOperation], *, repo_type: str = "model",
               revision: str | None = None, title: str, message: str = "", parent_commit: str | None = None,
               allow_pickle: bool = False, progress: Progress | None = None,
               hash_progress: Progress | None = None) -> Commit:
        """Apply operations to a branch in one commit.

        Args:
            operations: :class:`UploadFile` (new bytes), ``AddFile`` (content already on the hub, by
                sha256), ``DeleteFile``, ``DeleteFolder``, ``CopyFile``; applied in order.
            revision: the branch (default: the repo's default branch).
            parent_commit: the head the change is based on; if the branch moved since,
                :class:`ConflictError` and nothing is written.
            allow_pickle: store pickle-based files. A remote hub decides by its own policy
                (``fmhub server`` with ``FMHUB_ALLOW_PICKLE``), whatever the client asks.
            progress / hash_progress: byte counts while content is stored (sent) / hashed.

        Raises:
            EmptyCommitError: the branch already holds exactly this content.
        """

    def upload(self, local_path: Path | str, repo_id: str, path_in_repo: str | None = None, *,
               repo_type: str = "model", revision: str | None = None, title: str | None = None, message: str = "",
               include: str | Iterable[str] | None = None, exclude: str | Iterable[str] | None = None,
               create_repo: bool = True, private: bool = False, allow_pickle: bool = False,
               parent_commit: str | None = None, progress: Progress | None = None,
               hash_progress: Progress | None = None, on_plan: Callable[[list[PlannedFile]], None] | None = None,
               notify: Callable[[str], None] | None = None) -> Commit:
        """Upload a file or a folder in one commit, creating the repo and the branch if needed.

        A file goes to ``path_in_repo`` (default: its name); a folder's files go under ``path_in_repo``
        (default: the root), as ``huggingface-cli upload`` does.

        Args:
            revision: the branch to commit to; created from the default branch if missing.
            title / message: the commit's title (default ``Upload <file>`` / ``Upload N files``) and body.
            include / exclude: globs on paths relative to the folder.
            create_repo: create the repo (``private`` or not) if it does not exist.
            on_plan: called once with the files about to be sent, before their bytes are read.
            notify: called with a line for each thing created on the way (repo, branch).

        Raises:
            EmptyCommitError: the branch already holds these files with this content.

        Example:
            >>> hub.upload("./tiny-bert", "acme/tiny-bert", title="Add model")
            >>> hub.upload("config.json", "acme/tiny-bert", revision="exp")    # creates branch exp
        """
        planned = plan_upload(local_path, path_in_repo, include=include, exclude=exclude)
        for file in planned:  # refuse before anything is created or sent
            check_local_file(file.path_in_repo, file.local, allow_pickle=allow_pickle)
        repo = self._upload_target(repo_id, repo_type, revision, create_repo=create_repo, private=private,
                                   notify=notify or _notify_nobody)
        if on_plan:
            on_plan(planned)
        if title is None:
            title = f"Upload {planned[0].path_in_repo}" if len(planned) == 1 else f"Upload {len(planned)} files"
        return self._commit_planned(repo, planned, revision=revision, title=title, message=message,
                                    parent_commit=parent_commit, allow_pickle=allow_pickle, progress=progress,
                                    hash_progress=hash_progress)

    def _upload_target(self, repo_id: str, repo_type: str, revision: str | None, *, create_repo: bool,
                       private: bool, notify: Callable[[str], None]) -> Repo:
        """The repo an upload commits to, created if allowed; the branch too, from the default branch."""
        try:
            repo = self.get_repo(repo_id, repo_type=repo_type)
        except RepoNotFoundError:
            if not create_repo:
                raise
            # exist_ok: a concurrent upload may create it first; both then commit to it.
            repo = self.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True)
            notify(f"created {repo.repo_type} {repo.repo_id}")
        if revision is not None and revision not in (repo.default_branch, f"refs/heads/{repo.default_branch}") \
                and not PR_REF.fullmatch(revision):  # a pull request's ref exists once it is opened
            branch = revision.removeprefix("refs/heads/")
            if branch not in {ref.name for ref in self.list_refs(repo.repo_id, repo_type=repo.repo_type).branches}:
                self.create_branch(repo.repo_id, branch, repo_type=repo.repo_type)
                notify(f"created branch {revision}")
        return repo

    def _commit_planned(self, repo: Repo, planned: list[PlannedFile], *, revision: str | None, title: str,
                        message: str, parent_commit: str | None, allow_pickle: bool, progress: Progress | None,
                        hash_progress: Progress | None) -> Commit:
        return self.commit(repo.repo_id, [UploadFile(p.path_in_repo, p.local) for p in planned],
                           repo_type=repo.repo_type, revision=revision, title=title, message=message,
                           parent_commit=parent_commit, allow_pickle=allow_pickle, progress=progress,
                           hash_progress=hash_progress)

    # -- history and refs -------------------------------------------------------------------------

    @abc.abstractmethod
    def list_commits(self, repo_id: str, revision: str | None = None, *, repo_type: str = "model",
                     limit: int | None = None) -> list[Commit]:
        """History from a revision, newest first, following first parents."""

    @abc.abstractmethod
    def list_refs(self, repo_id: str, *, repo_type: str = "model") -> RepoRefs:
        """Branches and tags, sorted by name."""

    @abc.abstractmethod
    def create_branch(self, repo_id: str, branch: str, *, revision: str | None = None, repo_type: str = "model",
                      exist_ok: bool = False) -> Ref:
        """Create ``branch`` at ``revision`` (default: the default branch's head)."""

    @abc.abstractmethod
    def delete_branch(self, repo_id: str, branch: str, *, repo_type: str = "model") -> None:
        """Delete a branch (never the default branch)."""

    @abc.abstractmethod
    def create_tag(self, repo_id: str, tag: str, *, revision: str | None = None, message: str | None = None,
                   repo_type: str = "model", exist_ok: bool = False) -> Ref:
        """Tag ``revision`` (default: the default branch's head); tags never move."""

    @abc.abstractmethod
    def delete_tag(self, repo_id: str, tag: str, *, repo_type: str = "model") -> None:
        """Delete a tag."""

    # -- discussions and pull requests ------------------------------------------------------------

    @abc.abstractmethod
    def create_discussion(self, repo_id: str, *, title: str, description: str | None = None,
                          pull_request: bool = False, repo_type: str = "model") -> Discussion:
        """Open a discussion, or a pull request against the default branch (commit to its ``git_reference``)."""

    @abc.abstractmethod
    def list_discussions(self, repo_id: str, *, repo_type: str = "model", pull_requests: bool | None = None,
                         status: str | None = None) -> list[Discussion]:
        """Newest first; ``pull_requests`` True/False filters the kind, ``status`` open/closed/merged."""

    @abc.abstractmethod
    def get_pull_request(self, repo_id: str, num: int, *, repo_type: str = "model") -> PullRequestDetails:
        """A discussion or pull request with its events, changed files, conflicts and diff."""

    @abc.abstractmethod
    def change_discussion_status(self, repo_id: str, num: int, status: str, *, repo_type: str = "model",
                                 comment: str | None = None) -> None:
        """Close (``closed``) or reopen (``open``), with an optional comment."""

    @abc.abstractmethod
    def merge_pull_request(self, repo_id: str, num: int, *, repo_type: str = "model",
                           comment: str | None = None) -> str:
        """Merge an open pull request into its target branch; returns the merge commit's oid."""

    # -- evaluation report cards (fmhub eval --push) -----------------------------------------------

    @abc.abstractmethod
    def record_evaluation(self, repo_id: str, commit: str, path: str) -> EvaluationInfo:
        """Index the report card at ``path`` in model ``repo_id``'s ``commit``; the hub reads it from its store.

        Raises:
            InvalidInputError: ``path`` is not ``eval/<dataset>/<split>/report.json`` or not a card of this model.
            EntryNotFoundError: the commit holds no such file.
        """

    @abc.abstractmethod
    def list_evaluations(self, *, model: str | None = None, dataset: str | None = None, split: str | None = None,
                         limit: int = 100) -> list[EvaluationInfo]:
        """Indexed cards the caller may see, newest first."""

    # -- search and lineage (fmhub search; fmhub lineage) --------------------------------------------

    @abc.abstractmethod
    def search(self, query: SearchQuery) -> SearchResult:
        """Repos the caller may see matching ``query`` (one page; ``total`` counts every match)."""

    @abc.abstractmethod
    def lineage(self, repo_id: str, revision: str | None = None, *, repo_type: str = "model",
                direction: str = "both", depth: int = 5) -> dict[str, Any]:
        """The lineage graph around ``repo_id@revision`` as JSON (``roots``, ``nodes``, ``edges``): ``up`` what it
        came from, ``down`` what was made from it, ``both``; nodes the caller may not read are ``hidden``."""

    @abc.abstractmethod
    def lineage_impact(self, repo_id: str, revision: str | None = None, *, repo_type: str = "dataset",
                       evaluations: bool = False, limit: int | None = None,
                       cursor: str | None = None) -> dict[str, Any]:
        """Everything descending from ``repo_id@revision`` (every version of it without a revision), as JSON: model
        and dataset versions (with their published refs), runs and serving records, and the report cards made on
        them with ``evaluations``.

        Paged: ``limit`` descendants after ``cursor`` (the previous answer's ``next_cursor``), ``total`` counting
        them all; without a limit, every descendant (a remote hub's pages followed)."""

    # -- training runs (fmhub train; fmhub runs list|show|compare) ----------------------------------

    @abc.abstractmethod
    def start_run(self, *, task: str, config: dict[str, Any], command: str, output: str,
                  base_model: str | None = None, base_commit: str | None = None, dataset: str | None = None,
                  dataset_commit: str | None = None, name: str | None = None,
                  env: Environment | None = None) -> RunInfo:
        """Record a new ``running`` run that will publish to model repo ``output``.

        Args:
            config: the resolved config (JSON-able).
            env: where it runs (default: this process, :func:`fmhub.runs.environment`).

        Raises:
            PermissionDeniedError: a hub server refuses a caller who may not write to ``output``'s namespace.
        """

    @abc.abstractmethod
    def log_run_metrics(self, run_id: str, entries: Sequence[StepMetrics]) -> int:
        """Store metric values of several steps in one call; returns how many values were stored.

        Non-finite values are skipped. Training logs through :meth:`run_metrics_logger`, which batches.
        """

    def run_metrics_logger(self, run_id: str) -> MetricsBuffer:
        """A buffer that sends a run's metric values in batches (see :class:`fmhub.runs.MetricsBuffer`):
        one call per step on the embedded store, one request per :attr:`metrics_batch_steps` steps or
        :attr:`metrics_batch_seconds` seconds to a hub server. Close it (or use ``with``) to send the rest.
        """
        from fmhub.runs import MetricsBuffer

        return MetricsBuffer(lambda batch: self.log_run_metrics(run_id, batch), max_steps=self.metrics_batch_steps,
                             max_seconds=self.metrics_batch_seconds)

    @abc.abstractmethod
    def finish_run(self, run_id: str, status: str, *, summary: dict[str, Any] | None = None,
                   output_commit: str | None = None) -> RunInfo:
        """End a running run as ``completed``, ``failed`` or ``stopped``, with its final metrics."""

    @abc.abstractmethod
    def resume_run(self, run_id: str, from_step: int) -> RunInfo:
        """Make a ``stopped`` or ``failed`` run ``running`` again, continuing from its checkpoint at ``from_step``
        (metric values logged after that step are dropped: the resumed run logs them again)."""

    @abc.abstractmethod
    def get_run(self, run_id: str) -> RunInfo:
        """A run by id or unique id prefix (≥ 4 hex digits); ``get_run(prefix).id`` resolves a prefix.

        Raises:
            RunNotFoundError: no such run, or one the caller may not see (a run answers as its output repo
                does); AmbiguousRunError: the prefix names several runs.
        """

    @abc.abstractmethod
    def list_runs(self, *, limit: int = 50, status: str | None = None, task: str | None = None) -> list[RunInfo]:
        """Runs the caller may see, newest first."""

    @abc.abstractmethod
    def run_metrics(self, run_id: str, *, key: str | None = None) -> list[MetricPoint]:
        """A run's metric values ordered by step (``key``: one metric only)."""

    @abc.abstractmethod
    def latest_run_metrics(self, run_id: str) -> dict[str, float]:
        """Each metric's value at the last step it was logged."""

    # -- pipeline step records (fmhub run's cache) ---------------------------------------------------

    @abc.abstractmethod
    def find_pipeline_step(self, key: str) -> PipelineStepRecord | None:
        """The record of step key ``key``, or None (also when the caller may not read its output repo)."""

    @abc.abstractmethod
    def save_pipeline_step(self, record: PipelineStepRecord) -> PipelineStepRecord:
        """Record what a step produced for its key.

        Raises:
            PermissionDeniedError: a hub server refuses a caller who may not write to the output's namespace.
        """

    # -- signatures (fmhub keys / sign / verify) ----------------------------------------------------

    @abc.abstractmethod
    def add_signing_key(self, namespace: str, public_key: str | bytes, *, name: str | None = None) -> TrustedKey:
        """Trust ``public_key`` (PEM) to sign ``namespace``'s versions; returns it with its fingerprint.

        Raises:
            PermissionDeniedError: a hub server refuses a caller who is not an admin of the namespace.
        """

    @abc.abstractmethod
    def list_signing_keys(self, namespace: str) -> list[TrustedKey]:
        """``namespace``'s trusted keys, revoked ones included (``revoked_at`` set)."""

    @abc.abstractmethod
    def revoke_signing_key(self, namespace: str, fingerprint: str) -> TrustedKey:
        """Revoke a key (fingerprint or a unique prefix of ≥ 8 hex): signatures by it fail from now on."""

    @abc.abstractmethod
    def add_signing_policy(self, namespace: str, ref_pattern: str) -> SigningPolicy:
        """Require a valid signature by one of ``namespace``'s keys before a ref matching ``ref_pattern`` (``prod``,
        ``release-*``) of its model repos is created or moved."""

    @abc.abstractmethod
    def list_signing_policies(self, namespace: str) -> list[SigningPolicy]:
        """``namespace``'s signature policies."""

    @abc.abstractmethod
    def remove_signing_policy(self, namespace: str, ref_pattern: str) -> None:
        """Drop a signature policy."""

    def trusted_keys(self, repo_id: str, trust: Sequence[TrustedKey] = ()) -> list[TrustedKey]:
        """The keys a version of ``repo_id`` may be signed by: its namespace's keys on this hub, plus ``trust``.

        A key the hub lists as revoked stays revoked even when ``trust`` names it too.
        """
        namespace = repo_id.split("/")[0]
        hub_keys = self.list_signing_keys(namespace)
        revoked = {k.fingerprint: k for k in hub_keys if k.revoked_at is not None}
        keys = list(hub_keys)
        known = {k.fingerprint for k in hub_keys}
        keys += [k for k in trust if k.fingerprint not in known and k.fingerprint not in revoked]
        return keys

    def sign(self, repo_id: str, private_key: Path | str, *, revision: str | None = None,
             password: str | None = None, repo_type: str = "model") -> Commit:
        """Sign the files of ``revision`` (a branch, default the default branch) and commit the signature beside
        them as ``model.sig`` (OpenSSF model-signing format) on that branch.

        Each file is read from the hub and hashed once (see :meth:`_hash_for_signing`); the hashes must equal the
        commit's, so what is signed is what the hub holds.

        Raises:
            InvalidInputError: ``revision`` is a tag or a commit that is not a branch head (a signature is
                committed onto a branch), or the key is unusable.
            ConflictError: the branch moved while signing.

        Example:
            >>> hub.sign("acme/bert", "release.key", revision="main")
        """
        from fmhub.signing import (SIGNATURE_FILE, is_unsigned_path, load_private_key, private_key_fingerprint,
                                   sign_files)

        key_fp = private_key_fingerprint(load_private_key(Path(private_key), password))  # before any download
        repo = self.get_repo(repo_id, repo_type=repo_type)
        info = self.repo_info(repo.repo_id, repo_type=repo.repo_type, revision=revision)
        branch = self._branch_at(repo, revision, info.commit.oid)
        expected = {e.path: e.blob_sha256 for e in info.files if not is_unsigned_path(e.path)}
        files = self._hash_for_signing(repo, info.commit.oid, expected)
        signature = sign_files(files, Path(private_key), name=repo.repo_id, password=password)
        return self.commit(repo.repo_id, [UploadFile(SIGNATURE_FILE, signature)], repo_type=repo.repo_type,
                           revision=branch, parent_commit=info.commit.oid,
                           title=f"Sign {info.commit.oid[:12]} with key {key_fp[:16]}",
                           message=f"model-signing signature of every file of {info.commit.oid}")

    def _hash_for_signing(self, repo: Repo, commit: str, expected: dict[str, str]) -> dict[str, str]:
        """path → sha256 of the files of ``commit`` a signature covers, each read from this hub and hashed once.

        Here: fetched into the snapshot cache (which ``verify`` and ``fmhub.load`` use too) and hashed there; a
        cached copy that is not the commit's files (``expected``: edited, or a file left over) is not signed: a
        fresh copy is fetched, checked against the commit while written, and hashed. (:class:`LocalHub` hashes its
        store's blobs instead, copying nothing.)
        """
        import tempfile

        from fmhub.signing import SIGNATURE_FILE, hash_folder

        folder = self.download(repo.repo_id, repo_type=repo.repo_type, revision=commit, exclude=[SIGNATURE_FILE])
        files = hash_folder(folder)
        if files != expected:
            with tempfile.TemporaryDirectory(prefix="fmhub-sign-") as tmp:
                folder = self.download(repo.repo_id, repo_type=repo.repo_type, revision=commit,
                                       exclude=[SIGNATURE_FILE], local_dir=tmp, verify=True)
                files = hash_folder(folder)
        return files

    def _branch_at(self, repo: Repo, revision: str | None, commit: str) -> str:
        """The branch ``revision`` names, or the one whose head is ``commit`` when it is a commit id."""
        branches = self.list_refs(repo.repo_id, repo_type=repo.repo_type).branches
        if revision is None:
            return repo.default_branch
        name = revision.removeprefix("refs/heads/")
        if name in {b.name for b in branches}:
            return name
        heads = [b.name for b in branches if b.commit_oid == commit]
        if repo.default_branch in heads:
            return repo.default_branch
        if heads:
            return heads[0]
        raise InvalidInputError(f"{revision!r} of {repo.repo_id} is not a branch head: a signature is committed "
                                "onto a branch", hint="sign a branch (e.g. @main), then tag the signed commit")

    def verify(self, repo_id: str, revision: str | None = None, *, trust: Sequence[TrustedKey] = (),
               repo_type: str = "model", progress: Progress | None = None) -> VerifiedVersion:
        """Fetch ``revision`` (into the snapshot cache) and verify its ``model.sig`` over exactly its files, by a
        key ``repo_id``'s namespace trusts on this hub (or one of ``trust``), not revoked.

        Raises:
            SignatureError: missing or invalid signature, untrusted or revoked key, or a file changed, added,
                removed or renamed since signing (the message names it).

        Example:
            >>> hub.verify("acme/bert", "prod").signature.key.name
        """
        repo = self.get_repo(repo_id, repo_type=repo_type)
        commit = self.repo_info(repo.repo_id, repo_type=repo.repo_type, revision=revision).commit.oid
        folder = self.download(repo.repo_id, repo_type=repo.repo_type, revision=commit, progress=progress)
        return self.verify_folder(repo.repo_id, commit, folder, trust=trust)

    def verify_folder(self, repo_id: str, commit: str, folder: Path, *,
                      trust: Sequence[TrustedKey] = ()) -> VerifiedVersion:
        """Verify a downloaded copy of ``repo_id@commit`` in ``folder`` (see :meth:`verify`)."""
        from fmhub.signing import verify_folder

        signed = verify_folder(Path(folder), self.trusted_keys(repo_id, trust), where=f"{repo_id}@{commit[:12]}")
        return VerifiedVersion(repo_id, commit, Path(folder), signed)

    # -- hub attestations (what the hub trained, evaluated, optimized) --------------------------------

    @abc.abstractmethod
    def hub_public_key(self) -> TrustedKey:
        """The public key the hub signs its attestations with (``FMHUB_SIGNING_KEY``'s public half)."""

    @abc.abstractmethod
    def list_attestations(self, repo_id: str, *, repo_type: str = "model") -> list[AttestationRecord]:
        """The hub's attestations about a repo (each a signed DSSE envelope), oldest first."""

    @abc.abstractmethod
    def attest_variant(self, repo_id: str, commit: str) -> AttestationRecord:
        """Have the hub attest an optimized variant it holds (``fmhub optimize`` calls this after committing): the
        hub reads the parent from the variant's card and the files' sha256 from its store.

        Raises:
            InvalidInputError: the commit's card names no parent, or the parent commit is not on the hub.
        """

    @abc.abstractmethod
    def attest_import(self, repo_id: str, commit: str) -> AttestationRecord:
        """Have the hub attest a dataset version ``fmhub data import`` committed (``import_dataset`` calls this):
        the hub reads the source, recipe and content hash from the version's card and the files' sha256 from its
        store. Idempotent per commit.

        Raises:
            InvalidInputError: the commit's card is not one ``fmhub data import`` wrote.
        """

    def provenance(self, repo_id: str, revision: str | None = None, *, repo_type: str = "model",
                   hub_key: TrustedKey | None = None, max_depth: int = 8) -> list[Link]:
        """The chain from ``repo_id@revision`` back to its data, each link checked (see :func:`fmhub.signing.trace`):
        the hub's attestation of how the version was made (signature, files unchanged since), each input (exists,
        and its own attestation), and its report cards (attested, unchanged since).

        Args:
            hub_key: the hub key to check attestations with (default: the one this hub reports; pass a pinned copy
                to verify offline-obtained trust).

        Example:
            >>> [f"{l.subject}: {l.detail}" for l in hub.provenance("acme/clf-int8")]
        """
        from fmhub.signing import trace

        commit = self.repo_info(repo_id, repo_type=repo_type, revision=revision).commit.oid
        key = hub_key or self.hub_public_key()

        def files_of(kind: str, repo: str, oid: str) -> dict[str, str] | None:
            try:
                return {e.path: e.blob_sha256 for e in self.list_files(repo, oid, repo_type=kind)}
            except (RepoNotFoundError, RevisionNotFoundError, InvalidInputError):
                return None

        def history_of(kind: str, repo: str, oid: str) -> list[str]:
            return [c.oid for c in self.list_commits(repo, oid, repo_type=kind)]

        def attestations_of(kind: str, repo: str) -> list[AttestationRecord]:
            try:
                return self.list_attestations(repo, repo_type=kind)
            except FmhubError:
                return []

        return trace(repo_type, repo_id, commit, hub_key=key, files_of=files_of, history_of=history_of,
                     attestations_of=attestations_of, max_depth=max_depth)
