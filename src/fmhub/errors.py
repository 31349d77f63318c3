"""One error tree for fmhub, and the table that maps it to HTTP.

Every error a user can cause is an :class:`FmhubError`. Each class also subclasses the builtin a
caller would expect (``LookupError`` for "not found", ``ValueError`` for bad input), carries
structured fields, and has one HTTP status (``HTTP_STATUS``) and one Hugging Face ``X-Error-Code``
(``HF_ERROR_CODE``) so the hub server never decides statuses route by route.
"""

from __future__ import annotations

__all__ = [
    "FmhubError",
    "InvalidInputError",
    "InvalidPathError",
    "InvalidRepoIdError",
    "InvalidRevisionNameError",
    "RepoNotFoundError",
    "RepoExistsError",
    "RevisionNotFoundError",
    "AmbiguousRevisionError",
    "EntryNotFoundError",
    "ConflictError",
    "RefExistsError",
    "ProtectedRefError",
    "EmptyCommitError",
    "BlobNotFoundError",
    "IntegrityError",
    "TamperedBlobError",
    "EncryptionKeyError",
    "RevokedKeyError",
    "SignatureError",
    "SigningKeyNotFoundError",
    "XetObjectError",
    "XetFileNotFoundError",
    "RangeNotSatisfiableError",
    "ConfigError",
    "SchemaOutOfDateError",
    "StorageUnavailableError",
    "UnsafeFileError",
    "InvalidWeightsError",
    "AuthenticationError",
    "PermissionDeniedError",
    "AccountNotFoundError",
    "AccountExistsError",
    "PayloadTooLargeError",
    "RunNotFoundError",
    "AmbiguousRunError",
    "PipelineStepNotFoundError",
    "ParityError",
    "InputTooLongError",
    "OverloadedError",
    "RequestTimeoutError",
    "EndpointNotServedError",
    "DiscussionNotFoundError",
    "MergeConflictError",
    "HTTP_STATUS",
    "HF_ERROR_CODE",
    "http_status",
]


class FmhubError(Exception):
    """Root of every error fmhub raises on purpose.

    ``hint`` is the one-line fix shown to users (CLI and HTTP bodies).
    """

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} ({self.hint})"

    def __reduce__(self):
        # Subclasses take structured fields, not (message,): rebuild from state so errors cross
        # process boundaries (multiprocessing, worker pools) intact.
        return _rebuild, (type(self), self.args, self.__dict__)


def _rebuild(cls: type[FmhubError], args: tuple, state: dict) -> FmhubError:
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    error.__dict__.update(state)
    return error


# -- VALIDATION -------------------------------------------------------------------------------------


class InvalidInputError(FmhubError, ValueError):
    """A user-supplied value is malformed."""


class InvalidPathError(InvalidInputError):
    """A path in a repository is not a safe, normalized, relative POSIX path."""

    def __init__(self, path: object, reason: str) -> None:
        super().__init__(
            f"invalid path {path!r}: {reason}",
            hint="use a relative POSIX path like 'folder/file.txt'",
        )
        self.path = path
        self.reason = reason


class InvalidRepoIdError(InvalidInputError):
    """A repo id does not follow the ``namespace/name`` rules."""

    def __init__(self, repo_id: object, reason: str) -> None:
        super().__init__(
            f"invalid repo id {repo_id!r}: {reason}",
            hint="use 'namespace/name' with letters, digits, '.', '_' or '-'",
        )
        self.repo_id = repo_id
        self.reason = reason


class InvalidRevisionNameError(InvalidInputError):
    """A branch or tag name is not allowed."""

    def __init__(self, name: object, reason: str) -> None:
        super().__init__(f"invalid branch or tag name {name!r}: {reason}")
        self.name = name
        self.reason = reason


# -- REPOSITORY -------------------------------------------------------------------------------------


class RepoNotFoundError(FmhubError, LookupError):
    """No ``repo_type`` repository ``repo_id``; ``exists_as``: the id names a repository of that other type."""

    def __init__(self, repo_type: str, repo_id: str, exists_as: str | None = None) -> None:
        if exists_as is not None:
            super().__init__(f"{repo_id} is a {exists_as} repository, not a {repo_type} repository",
                             hint=f"address it as a {exists_as}: add --repo-type {exists_as}")
        else:
            super().__init__(
                f"{repo_type} repository {repo_id!r} not found",
                hint=f"check the id, or create it with: fmhub repo create {repo_id} --repo-type {repo_type}",
            )
        self.repo_type = repo_type
        self.repo_id = repo_id
        self.exists_as = exists_as


class RepoExistsError(FmhubError):
    def __init__(self, repo_type: str, repo_id: str) -> None:
        super().__init__(f"{repo_type} repository {repo_id!r} already exists", hint="pick another name or use --exist-ok")
        self.repo_type = repo_type
        self.repo_id = repo_id


# -- REVISION ---------------------------------------------------------------------------------------


class RevisionNotFoundError(FmhubError, LookupError):
    def __init__(self, repo_id: str, revision: str) -> None:
        super().__init__(
            f"revision {revision!r} not found in {repo_id!r}",
            hint=f"list branches and tags with: fmhub branch list {repo_id}; fmhub tag list {repo_id}",
        )
        self.repo_id = repo_id
        self.revision = revision


class AmbiguousRevisionError(RevisionNotFoundError):
    def __init__(self, repo_id: str, revision: str, matches: list[str]) -> None:
        FmhubError.__init__(
            self,
            f"commit prefix {revision!r} is ambiguous in {repo_id!r} ({len(matches)} commits match)",
            hint="give more characters of the commit id",
        )
        self.repo_id = repo_id
        self.revision = revision
        self.matches = matches


# -- ENTRY ------------------------------------------------------------------------------------------


class EntryNotFoundError(FmhubError, LookupError):
    def __init__(self, repo_id: str, revision: str, path: str) -> None:
        super().__init__(
            f"{path!r} not found in {repo_id!r} at {revision!r}",
            hint=f"list files with: fmhub ls {repo_id} --revision {revision}",
        )
        self.repo_id = repo_id
        self.revision = revision
        self.path = path


# -- CONFLICT ---------------------------------------------------------------------------------------


class ConflictError(FmhubError):
    """The branch moved since the caller read it (optimistic concurrency)."""

    def __init__(self, message: str, *, expected: str | None = None, actual: str | None = None) -> None:
        super().__init__(message, hint="fetch the new head and retry your change on top of it")
        self.expected = expected
        self.actual = actual


class RefExistsError(FmhubError):
    def __init__(self, kind: str, name: str) -> None:
        hint = "tags are immutable; delete it first (admin) or pick another name" if kind == "tag" else "pick another name"
        super().__init__(f"{kind} {name!r} already exists", hint=hint)
        self.kind = kind
        self.name = name


class ProtectedRefError(FmhubError):
    def __init__(self, message: str) -> None:
        super().__init__(message)


class DiscussionNotFoundError(FmhubError, LookupError):
    def __init__(self, repo_id: str, num: object) -> None:
        super().__init__(f"discussion #{num} not found in {repo_id!r}",
                         hint=f"list them with: fmhub pr list {repo_id} --all")
        self.repo_id = repo_id
        self.num = num


class MergeConflictError(FmhubError):
    """A pull request and its target branch changed the same files differently since the pull request began."""

    def __init__(self, message: str, *, paths: list[str] | None = None) -> None:
        super().__init__(message, hint="commit the target branch's version of these files to the pull request "
                                       "(or revert them there), then merge again")
        self.paths = paths or []


class EmptyCommitError(FmhubError, ValueError):
    """The operations would not change the tree."""

    def __init__(self, repo_id: str, revision: str) -> None:
        super().__init__(f"no changes to commit on {repo_id!r} at {revision!r}: the files are identical")
        self.repo_id = repo_id
        self.revision = revision


# -- SAFETY -----------------------------------------------------------------------------------------


class UnsafeFileError(InvalidInputError):
    """A file holding a pickle (found by content, whatever its name): loading it can run arbitrary code."""

    def __init__(self, path: str, imports: list[str] | None = None) -> None:
        shown = f" (it imports {', '.join(imports[:6])}{', ...' if len(imports) > 6 else ''})" if imports else ""
        super().__init__(
            f"{path!r} holds a pickle{shown}; fmhub refuses pickle because loading it can run arbitrary code",
            hint="convert it to safetensors (e.g. fmhub import-model, or safetensors.torch.save_file), "
            "or store it marked unsafe with --allow-pickle",
        )
        self.path = path
        self.imports = list(imports or [])


class InvalidWeightsError(InvalidInputError):
    """A ``.safetensors`` file whose header is malformed or does not match its bytes."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path!r} is not a valid safetensors file: {reason}",
                         hint="re-save it with safetensors.torch.save_file and upload it again")
        self.path = path
        self.reason = reason


# -- AUTH -------------------------------------------------------------------------------------------


class AuthenticationError(FmhubError):
    """No valid token where one is required (missing, unknown, expired or revoked)."""


class PermissionDeniedError(FmhubError):
    """The caller is known but may not do this (a read token writing, a write outside one's namespaces)."""


class AccountNotFoundError(FmhubError, LookupError):
    def __init__(self, kind: str, name: str) -> None:
        listing = {"token": "fmhub token list", "member": "fmhub org members ORG"}.get(kind, "fmhub user list")
        super().__init__(f"{kind} {name!r} not found", hint=f"list them with: {listing}")
        self.kind = kind
        self.name = name


class AccountExistsError(FmhubError):
    def __init__(self, name: str) -> None:
        super().__init__(f"the name {name!r} is already taken by a user or an organization",
                         hint="users and organizations share one namespace; pick another name")
        self.name = name


# -- LIMITS -----------------------------------------------------------------------------------------


class PayloadTooLargeError(FmhubError):
    """A request body is beyond the server's configured limit."""


# -- RUNS -----------------------------------------------------------------------------------------


class RunNotFoundError(FmhubError, LookupError):
    """No training run has this id (or id prefix)."""

    def __init__(self, run_id: str) -> None:
        super().__init__(f"run {run_id!r} not found", hint="list runs with: fmhub runs list")
        self.run_id = run_id


class AmbiguousRunError(RunNotFoundError):
    def __init__(self, run_id: str, matches: list[str]) -> None:
        FmhubError.__init__(self, f"run id prefix {run_id!r} is ambiguous ({len(matches)} runs match)",
                            hint="give more characters of the run id (see: fmhub runs list)")
        self.run_id = run_id
        self.matches = matches


class PipelineStepNotFoundError(FmhubError, LookupError):
    """No pipeline step record has this key (or the caller may not read its output repo)."""

    def __init__(self, key: str) -> None:
        super().__init__(f"no pipeline step record has the key {key!r}",
                         hint="fmhub run records a step's output once the step has run")
        self.key = key


# -- OPTIMIZE ---------------------------------------------------------------------------------------


class ParityError(FmhubError, ValueError):
    """A converted model (ONNX export, quantization) does not compute what its parent does."""

    def __init__(self, what: str, max_abs_diff: float, agreement: float, tolerance: float | None,
                 min_agreement: float | None = None) -> None:
        limits = "; ".join(x for x in (f"tolerance {tolerance:g}" if tolerance is not None else "",
                                       f"needed {min_agreement:.1%}" if min_agreement is not None else "") if x)
        super().__init__(f"{what}: outputs differ from the parent's by up to {max_abs_diff:.3g}; argmax agrees on "
                         f"{agreement:.1%} of positions ({limits})",
                         hint="nothing was pushed; loosen --tolerance / --min-agreement only if the difference "
                              "is understood")
        self.max_abs_diff = max_abs_diff
        self.agreement = agreement
        self.tolerance = tolerance
        self.min_agreement = min_agreement


# -- SERVE ----------------------------------------------------------------------------------------


class InputTooLongError(InvalidInputError):
    """An input has more tokens than the server takes (and truncation was not asked for)."""

    def __init__(self, tokens: int, limit: int) -> None:
        super().__init__(f"an input has {tokens} tokens; this server takes at most {limit}",
                         hint='shorten it, or pass "parameters": {"truncate": true}')
        self.tokens = tokens
        self.limit = limit


class OverloadedError(FmhubError):
    """The server's queue is full: the client should retry after ``retry_after`` seconds."""

    def __init__(self, queued: int, limit: int, retry_after: int = 1) -> None:
        super().__init__(f"the server is busy ({queued} inputs queued, limit {limit})",
                         hint=f"retry after {retry_after} s")
        self.retry_after = retry_after


class RequestTimeoutError(FmhubError, TimeoutError):
    """A request was not answered within the server's time limit."""


class EndpointNotServedError(FmhubError, LookupError):
    """The served model's task has no such endpoint (e.g. /v1/generate on a classifier)."""


# -- STORAGE ----------------------------------------------------------------------------------------


class BlobNotFoundError(FmhubError, LookupError):
    def __init__(self, sha256: str) -> None:
        super().__init__(f"blob {sha256} is not in the blob store", hint="upload the file again")
        self.sha256 = sha256


class IntegrityError(FmhubError, ValueError):
    """Bytes do not match their declared sha256 or size."""

    def __init__(self, message: str, *, expected: str | None = None, actual: str | None = None) -> None:
        super().__init__(message, hint="the data changed or was corrupted in transit; upload it again")
        self.expected = expected
        self.actual = actual


class TamperedBlobError(IntegrityError):
    """A blob encrypted at rest failed authentication: its stored ciphertext was modified or corrupted."""

    def __init__(self, sha256: str, segment: int) -> None:
        super().__init__(f"blob {sha256} failed authentication at segment {segment}: its stored ciphertext was "
                         "modified or corrupted; nothing of it is served", expected=sha256)
        self.hint = "restore the blob from a backup (fmhub fsck lists every damaged blob)"
        self.sha256 = sha256
        self.segment = segment
# -- SIGNING ----------------------------------------------------------------------------------------


class SignatureError(FmhubError, ValueError):
    """A model version's signature or attestation does not hold: missing, invalid, by an untrusted or revoked
    key, or the files changed since it was made.

    Attributes:
        reason: ``missing`` | ``invalid`` | ``untrusted`` | ``revoked`` | ``changed`` | ``added`` | ``removed`` |
            ``renamed`` | ``unknown-input`` | ``policy``.
        item: what failed: a file path, a key fingerprint, or an input ``repo@commit``.
    """

    def __init__(self, message: str, *, reason: str = "invalid", item: str | None = None,
                 hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.reason = reason
        self.item = item


class SigningKeyNotFoundError(FmhubError, LookupError):
    """No trusted signing key of this fingerprint for this namespace."""

    def __init__(self, namespace: str, fingerprint: str) -> None:
        super().__init__(f"{namespace} has no trusted key {fingerprint[:16]}",
                         hint=f"list them with: fmhub keys list {namespace}")
        self.namespace = namespace
        self.fingerprint = fingerprint


class RangeNotSatisfiableError(FmhubError):
    """A byte range starts at or past the end of what it asks for (HTTP 416)."""

    def __init__(self, size: int) -> None:
        super().__init__(f"the requested range starts at or past the end ({size} bytes)")
        self.size = size


# -- XET --------------------------------------------------------------------------------------------


class XetObjectError(InvalidInputError):
    """A xorb, a shard or a hash a Xet client sent is malformed, or does not match what it claims."""


class XetFileNotFoundError(FmhubError, LookupError):
    """No Xet file of this hash that the caller may read (missing and unreadable answer alike)."""

    def __init__(self, file_hash: str) -> None:
        super().__init__(f"Xet file {file_hash[:80]} not found", hint="upload the file first")
        self.file_hash = file_hash


# -- CONFIG -----------------------------------------------------------------------------------------


class ConfigError(FmhubError, ValueError):
    """A store URL, a setting or an environment variable is wrong."""


class EncryptionKeyError(ConfigError):
    """The key that encrypts the store's blobs is missing, unreadable or wrong (never shows key material)."""


class RevokedKeyError(EncryptionKeyError):
    """A blob's data key is wrapped only by keys that were revoked on purpose (crypto-shredding): gone for good."""


class StorageUnavailableError(FmhubError):
    """A storage backend failed in a way that may pass (a 5xx from S3, a dropped connection): retry."""


class SchemaOutOfDateError(FmhubError):
    def __init__(self, current: str | None, head: str) -> None:
        super().__init__(
            "the metadata database has no fmhub schema yet" if current is None
            else f"the metadata database schema is at revision {current}, this fmhub needs {head}",
            hint="run: fmhub db upgrade",
        )
        self.current = current
        self.head = head


# -- HTTP -------------------------------------------------------------------------------------------

#: Most specific class first; :func:`http_status` walks the MRO so subclasses inherit their parent's row.
HTTP_STATUS: dict[type[FmhubError], int] = {
    InvalidInputError: 400,
    EmptyCommitError: 400,
    RepoNotFoundError: 404,
    RevisionNotFoundError: 404,
    EntryNotFoundError: 404,
    BlobNotFoundError: 404,
    RepoExistsError: 409,
    RefExistsError: 409,
    ConflictError: 412,
    DiscussionNotFoundError: 404,
    MergeConflictError: 409,  # the Hub answers a stale parentCommit with 412 Precondition Failed
    ProtectedRefError: 403,
    IntegrityError: 422,
    SignatureError: 422,
    SigningKeyNotFoundError: 404,
    RangeNotSatisfiableError: 416,
    XetFileNotFoundError: 404,
    AuthenticationError: 401,
    PermissionDeniedError: 403,
    AccountNotFoundError: 404,
    AccountExistsError: 409,
    PayloadTooLargeError: 413,
    RunNotFoundError: 404,
    PipelineStepNotFoundError: 404,
    ParityError: 422,
    InputTooLongError: 422,
    OverloadedError: 429,
    RequestTimeoutError: 504,
    EndpointNotServedError: 404,
    RevokedKeyError: 410,
    EncryptionKeyError: 503,
    ConfigError: 500,
    SchemaOutOfDateError: 503,
    StorageUnavailableError: 503,
}

#: The ``X-Error-Code`` values huggingface_hub maps to its own exception classes.
HF_ERROR_CODE: dict[type[FmhubError], str] = {
    RepoNotFoundError: "RepoNotFound",
    RevisionNotFoundError: "RevisionNotFound",
    EntryNotFoundError: "EntryNotFound",
}


def http_status(error: FmhubError) -> int:
    """The HTTP status for an error, by the most specific class in :data:`HTTP_STATUS`."""
    for cls in type(error).__mro__:
        if cls in HTTP_STATUS:
            return HTTP_STATUS[cls]
    return 500
