"""``LocalHub``: the Hub interface over an embedded store (no server), delegating to Store and transfer."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fmhub.client._base import CommitOperation, Hub, PullRequestDetails, RepoInfo, UploadFile, default_author
from fmhub.constants import settings
from fmhub.store import Store, open_store
from fmhub.store.blobs import Progress
from fmhub.store.objects import AddFile, Commit, Ref, Repo, RepoRefs, TreeEntry
from fmhub.store.transfer import PlannedFile, download_snapshot, upload

if TYPE_CHECKING:  # each domain is imported by the methods using it: `fmhub verify` loads no runs nor evaluations
    from fmhub.evaluations import EvaluationInfo, Evaluations
    from fmhub.runs import Environment, MetricPoint, PipelineStepRecord, PipelineSteps, RunInfo, Runs, StepMetrics
    from fmhub.search import SearchQuery, SearchResult
    from fmhub.signing import AttestationRecord, Attestor, SigningPolicy, TrustedKey, TrustedKeys
    from fmhub.store import discussions

__all__ = ["LocalHub"]


class LocalHub(Hub):
    """The Hub interface over a store in this process (default: the one ``$FMHUB_HOME`` /
    ``FMHUB_DB_URL`` / ``FMHUB_BLOB_URL`` name). Nobody is authenticated: the caller has the store's files.

    Args:
        store: an open store to use (the caller keeps it); default: :func:`fmhub.store.open_store`,
            closed with the hub.
        author: who commits are by (default ``$FMHUB_USER``, else the login name).

    Example:
        >>> with LocalHub() as hub:
        ...     hub.create_repo("me/tiny-bert", exist_ok=True)
    """

    remote = False

    def __init__(self, store: Store | None = None, *, author: str | None = None) -> None:
        self._owned = store is None
        self.store = open_store() if store is None else store
        self.author = author or default_author()

    @property
    def location(self) -> str:
        return f"the embedded store {self.store.db.safe_url}"

    def close(self) -> None:
        if self._owned:
            self.store.close()

    # -- repos ------------------------------------------------------------------------------------

    def create_repo(self, repo_id: str, *, repo_type: str = "model", private: bool = False,
                    exist_ok: bool = False) -> Repo:
        return self.store.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=exist_ok,
                                      author=self.author)

    def delete_repo(self, repo_id: str, *, repo_type: str = "model") -> None:
        self.store.delete_repo(repo_id, repo_type=repo_type, actor=self.author)

    def get_repo(self, repo_id: str, *, repo_type: str = "model") -> Repo:
        return self.store.get_repo(repo_id, repo_type=repo_type)

    def repo_info(self, repo_id: str, *, repo_type: str = "model", revision: str | None = None) -> RepoInfo:
        repo = self.store.get_repo(repo_id, repo_type=repo_type)
        commit = self.store.resolve_revision(repo.repo_id, revision, repo_type=repo.repo_type)
        return RepoInfo(repo, commit, self.store.list_files(repo.repo_id, commit.oid, repo_type=repo.repo_type))

    def list_repos(self, *, repo_type: str | None = None, author: str | None = None, search: str | None = None,
                   limit: int | None = None) -> list[Repo]:
        return self.store.list_repos(repo_type=repo_type, author=author, search=search, limit=limit)

    def update_repo(self, repo_id: str, *, repo_type: str = "model", private: bool | None = None) -> Repo:
        return self.store.update_repo(repo_id, repo_type=repo_type, private=private, actor=self.author)

    # -- files ------------------------------------------------------------------------------------

    def list_files(self, repo_id: str, revision: str | None = None, *, repo_type: str = "model",
                   folder: str | None = None) -> list[TreeEntry]:
        return self.store.list_files(repo_id, revision, repo_type=repo_type, folder=folder)

    def read_bytes(self, repo_id: str, path: str, revision: str | None = None, *, repo_type: str = "model") -> bytes:
        return self.store.read_bytes(repo_id, path, revision, repo_type=repo_type)

    def download(self, repo_id: str, filenames: Sequence[str] | None = None, *, repo_type: str = "model",
                 revision: str | None = None, include: str | Iterable[str] | None = None,
                 exclude: str | Iterable[str] | None = None, local_dir: Path | str | None = None,
                 cache_dir: Path | str | None = None, verify: bool = False, fsync: bool = False,
                 progress: Progress | None = None,
                 on_plan: Callable[[Commit, list[TreeEntry]], None] | None = None) -> Path:
        return download_snapshot(self.store, repo_id, revision=revision, repo_type=repo_type, filenames=filenames,
                                 local_dir=local_dir, cache_dir=cache_dir, include=include, exclude=exclude,
                                 verify=verify, fsync=fsync, progress=progress, on_plan=on_plan)

    # -- commits ----------------------------------------------------------------------------------

    def commit(self, repo_id: str, operations: Sequence[CommitOperation], *, repo_type: str = "model",
               revision: str | None = None, title: str, message: str = "", parent_commit: str | None = None,
               allow_pickle: bool = False, progress: Progress | None = None,
               hash_progress: Progress | None = None) -> Commit:
        ops = []
        for op in operations:
            if isinstance(op, UploadFile):
                if isinstance(op.source, bytes):
                    info = self.store.put_bytes(op.source)
                    if progress:
                        progress(info.size)
                else:
                    info = self.store.put_file(Path(op.source), progress=progress, hash_progress=hash_progress)
                op = AddFile(op.path, info.sha256, info.size)
            ops.append(op)
        return self.store.commit(repo_id, ops, repo_type=repo_type, revision=revision, title=title, message=message,
                                 author=self.author, parent_commit=parent_commit, allow_pickle=allow_pickle,
                                 actor=self.author)

    def _commit_planned(self, repo: Repo, planned: list[PlannedFile], *, revision: str | None, title: str,
                        message: str, parent_commit: str | None, allow_pickle: bool, progress: Progress | None,
                        hash_progress: Progress | None) -> Commit:
        return upload(self.store, repo.repo_id, planned, repo_type=repo.repo_type, revision=revision, title=title,
                      message=message, author=self.author, parent_commit=parent_commit, allow_pickle=allow_pickle,
                      progress=progress, hash_progress=hash_progress)

    # -- history and refs -------------------------------------------------------------------------

    def list_commits(self, repo_id: str, revision: str | None = None, *, repo_type: str = "model",
                     limit: int | None = None) -> list[Commit]:
        return self.store.list_commits(repo_id, revision, repo_type=repo_type, limit=limit)

    def list_refs(self, repo_id: str, *, repo_type: str = "model") -> RepoRefs:
        return self.store.list_refs(repo_id, repo_type=repo_type)

    def create_branch(self, repo_id: str, branch: str, *, revision: str | None = None, repo_type: str = "model",
                      exist_ok: bool = False) -> Ref:
        return self.store.create_branch(repo_id, branch, revision=revision, repo_type=repo_type, exist_ok=exist_ok,
                                        actor=self.author)

    def create_discussion(self, repo_id: str, *, title: str, description: str | None = None,
                          pull_request: bool = False, repo_type: str = "model") -> discussions.Discussion:
        from fmhub.store import discussions

        return discussions.create_discussion(self.store, repo_id, repo_type=repo_type, title=title,
                                             description=description, author=self.author, pull_request=pull_request)

    def list_discussions(self, repo_id: str, *, repo_type: str = "model", pull_requests: bool | None = None,
                         status: str | None = None) -> list[discussions.Discussion]:
        from fmhub.store import discussions

        return discussions.list_discussions(self.store, repo_id, repo_type=repo_type, pull_requests=pull_requests,
                                            status=status)

    def get_pull_request(self, repo_id: str, num: int, *, repo_type: str = "model") -> PullRequestDetails:
        from fmhub.store import discussions

        found = discussions.get_discussion(self.store, repo_id, num, repo_type=repo_type)
        files, conflicts = discussions.pull_request_changes(self.store, found)
        return PullRequestDetails(found, files, conflicts, discussions.unified_diff(self.store, files))

    def change_discussion_status(self, repo_id: str, num: int, status: str, *, repo_type: str = "model",
                                 comment: str | None = None) -> None:
        from fmhub.store import discussions

        discussions.change_status(self.store, repo_id, num, status, repo_type=repo_type, actor=self.author,
                                  text=comment)

    def merge_pull_request(self, repo_id: str, num: int, *, repo_type: str = "model",
                           comment: str | None = None) -> str:
        from fmhub.store import discussions

        return discussions.merge_pull_request(self.store, repo_id, num, repo_type=repo_type, actor=self.author,
                                              text=comment).oid

    def delete_branch(self, repo_id: str, branch: str, *, repo_type: str = "model") -> None:
        self.store.delete_branch(repo_id, branch, repo_type=repo_type, actor=self.author)

    def create_tag(self, repo_id: str, tag: str, *, revision: str | None = None, message: str | None = None,
                   repo_type: str = "model", exist_ok: bool = False) -> Ref:
        return self.store.create_tag(repo_id, tag, revision=revision, message=message, repo_type=repo_type,
                                     exist_ok=exist_ok, actor=self.author)

    def delete_tag(self, repo_id: str, tag: str, *, repo_type: str = "model") -> None:
        self.store.delete_tag(repo_id, tag, repo_type=repo_type, actor=self.author)

    # -- evaluation report cards ------------------------------------------------------------------

    def _evaluations(self) -> Evaluations:
        from fmhub.evaluations import Evaluations

        return Evaluations(self.store.db)

    def record_evaluation(self, repo_id: str, commit: str, path: str) -> EvaluationInfo:
        from fmhub.evaluations import check_report_path

        path = check_report_path(path)
        info = self._evaluations().record(repo_id, commit, path, self.store.read_bytes(repo_id, path, commit))
        self._attestor().attest_evaluation(info.model, commit, path)  # the hub vouches for the card it indexed
        return info

    def list_evaluations(self, *, model: str | None = None, dataset: str | None = None, split: str | None = None,
                         limit: int = 100) -> list[EvaluationInfo]:
        return self._evaluations().list(model=model, dataset=dataset, split=split, limit=limit)

    # -- search and lineage -----------------------------------------------------------------------

    def search(self, query: SearchQuery) -> SearchResult:
        from fmhub.search import Search

        query.readable = None  # the embedded store's user reads every repo
        return Search(self.store.db).query(query, count=True)

    def lineage(self, repo_id: str, revision: str | None = None, *, repo_type: str = "model",
                direction: str = "both", depth: int = 5) -> dict[str, Any]:
        from fmhub.lineage import describe

        _check_direction(direction)
        return describe(self.store, repo_type, repo_id, revision, up=direction != "down", down=direction != "up",
                        depth=depth)

    def lineage_impact(self, repo_id: str, revision: str | None = None, *, repo_type: str = "dataset",
                       evaluations: bool = False, limit: int | None = None,
                       cursor: str | None = None) -> dict[str, Any]:
        from fmhub.lineage import describe

        return describe(self.store, repo_type, repo_id, revision, impact=True, evaluations=evaluations, limit=limit,
                        cursor=cursor)

    # -- training runs ----------------------------------------------------------------------------

    def _runs(self) -> Runs:
        from fmhub.runs import Runs

        return Runs(self.store.db)

    def start_run(self, *, task: str, config: dict[str, Any], command: str, output: str,
                  base_model: str | None = None, base_commit: str | None = None, dataset: str | None = None,
                  dataset_commit: str | None = None, name: str | None = None,
                  env: Environment | None = None) -> RunInfo:
        return self._runs().start(task=task, config=config, command=command, base_model=base_model,
                                         base_commit=base_commit, dataset=dataset, dataset_commit=dataset_commit,
                                         output=output, name=name, created_by=self.author, env=env)

    def log_run_metrics(self, run_id: str, entries: Sequence[StepMetrics]) -> int:
        return self._runs().log_many(run_id, entries)

    def finish_run(self, run_id: str, status: str, *, summary: dict[str, Any] | None = None,
                   output_commit: str | None = None) -> RunInfo:
        run = self._runs().finish(run_id, status, summary=summary, output_commit=output_commit)
        if run.status == "completed" and run.output_commit:
            self._attestor().attest_run(run)  # the hub vouches for what its run produced
        return run

    def resume_run(self, run_id: str, from_step: int) -> RunInfo:
        return self._runs().resume(run_id, from_step)

    def get_run(self, run_id: str) -> RunInfo:
        return self._runs().get(run_id)

    def list_runs(self, *, limit: int = 50, status: str | None = None, task: str | None = None) -> list[RunInfo]:
        return self._runs().list(limit=limit, status=status, task=task)

    def run_metrics(self, run_id: str, *, key: str | None = None) -> list[MetricPoint]:
        return self._runs().metrics(run_id, key=key)

    def latest_run_metrics(self, run_id: str) -> dict[str, float]:
        return self._runs().latest_metrics(run_id)

    # -- pipeline step records --------------------------------------------------------------------

    def _pipeline_steps(self) -> PipelineSteps:
        from fmhub.runs import PipelineSteps

        return PipelineSteps(self.store.db)

    def find_pipeline_step(self, key: str) -> PipelineStepRecord | None:
        return self._pipeline_steps().find(key)

    def save_pipeline_step(self, record: PipelineStepRecord) -> PipelineStepRecord:
        from fmhub.lineage import record_serving

        saved = self._pipeline_steps().save(record)
        record_serving(self.store.db, saved)  # a serve check is a node under the version it served
        return saved

    # -- signatures -------------------------------------------------------------------------------

    def _trusted_keys(self) -> TrustedKeys:
        from fmhub.signing import TrustedKeys

        return TrustedKeys(self.store.db)

    def add_signing_key(self, namespace: str, public_key: str | bytes, *, name: str | None = None) -> TrustedKey:
        return self._trusted_keys().add(namespace, public_key, name=name, actor=self.author)

    def list_signing_keys(self, namespace: str) -> list[TrustedKey]:
        return self._trusted_keys().list(namespace)

    def revoke_signing_key(self, namespace: str, fingerprint: str) -> TrustedKey:
        return self._trusted_keys().revoke(namespace, fingerprint, actor=self.author)

    def add_signing_policy(self, namespace: str, ref_pattern: str) -> SigningPolicy:
        return self._trusted_keys().add_policy(namespace, ref_pattern, actor=self.author)

    def list_signing_policies(self, namespace: str) -> list[SigningPolicy]:
        return self._trusted_keys().policies(namespace)

    def remove_signing_policy(self, namespace: str, ref_pattern: str) -> None:
        self._trusted_keys().remove_policy(namespace, ref_pattern)

    def _hash_for_signing(self, repo: Repo, commit: str, expected: dict[str, str]) -> dict[str, str]:
        """Hash the store's own bytes of each file (decrypted, or rebuilt by a storage extension), files in
        parallel threads: what is signed is what the hub holds, read once, with no copy written."""
        import concurrent.futures
        import hashlib
        import os

        from fmhub.errors import IntegrityError

        def digest(item: tuple[str, str]) -> tuple[str, str]:
            path, sha256 = item
            h = hashlib.sha256()
            for chunk in self.store.iter_blob(sha256):
                h.update(chunk)  # releases the GIL on chunks this large: files hash in parallel
            if h.hexdigest() != sha256:
                error = IntegrityError(f"{path} of {repo.repo_id}@{commit[:12]}: the stored bytes hash to "
                                       f"{h.hexdigest()}, not the commit's {sha256}: it is not signed",
                                       expected=sha256, actual=h.hexdigest())
                error.hint = "the hub's copy is damaged: `fmhub fsck` lists every damaged blob"
                raise error
            return path, sha256

        workers = min(len(expected), (os.cpu_count() or 1) + 2) or 1
        with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
            return dict(pool.map(digest, sorted(expected.items())))

    # -- hub attestations -------------------------------------------------------------------------

    def _attestor(self) -> Attestor:
        from fmhub.signing import Attestor

        return Attestor(self.store, settings().signing_key)

    def hub_public_key(self) -> TrustedKey:
        from fmhub.signing import hub_public_key

        return hub_public_key(settings().signing_key)

    def list_attestations(self, repo_id: str, *, repo_type: str = "model") -> list[AttestationRecord]:
        repo = self.store.get_repo(repo_id, repo_type=repo_type)
        return self._attestor().list(repo.repo_id, repo_type=repo.repo_type)

    def attest_variant(self, repo_id: str, commit: str) -> AttestationRecord:
        repo = self.store.get_repo(repo_id)
        return self._attestor().attest_variant(repo.repo_id, self.store.get_commit(repo.repo_id, commit).oid)

    def attest_import(self, repo_id: str, commit: str) -> AttestationRecord:
        repo = self.store.get_repo(repo_id, repo_type="dataset")
        oid = self.store.get_commit(repo.repo_id, commit, repo_type="dataset").oid
        return self._attestor().attest_import(repo.repo_id, oid)

def _check_direction(direction: str) -> None:
    if direction not in ("both", "up", "down"):
        from fmhub.errors import InvalidInputError

        raise InvalidInputError(f"direction must be up, down or both, got {direction!r}")
