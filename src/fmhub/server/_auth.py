"""Who is calling, and what they may see and change.

Every route declares one of three dependencies, and the auth-matrix test checks each route against it:

- :data:`ReaderDep` — anyone may read public repos (unless the server runs with ``--require-auth``);
  private repos only their namespace's members and site admins. A private repo the caller may not see
  raises exactly the :class:`RepoNotFoundError` a missing repo raises.
- :data:`WriterDep` — a valid write token is required (401 otherwise, before anything about the repo
  is looked up, so missing and private repos answer alike), and the user must have write rights on
  the namespace (403).
- :data:`AdminDep` — a site administrator's write token.

Records about repos (training runs, pipeline step records) follow the repo they produce — their *output*
repo: :func:`can_read_output` and :func:`check_output_write` are the one rule for them.

Xet (the CAS API ``huggingface_hub`` uploads and downloads large files through) has two credentials of its
own, both minted here and both checked again on every use:

- a **Xet token** (:func:`mint_xet_token`): a repo, a scope (read or write), an expiry and the id of the hub
  token that asked for it, signed with the hub's key. :func:`xet_caller` accepts it only while it has not
  expired, the hub token is still active (revoking it revokes the Xet token) and its user may still read
  (or write) the repo;
- a **signed fetch URL** (:func:`sign_fetch`): one byte range of one xorb, for as long as the same holds.
  It never allows another range, so knowing a xorb's hash or a URL for part of it reads nothing else.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
import time
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlencode

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from fmhub.accounts import Accounts, Principal
from fmhub.errors import AuthenticationError, ConfigError, FmhubError, PermissionDeniedError, RepoNotFoundError
from fmhub.store import REPO_TYPES, Repo, Store, discussions, validate_repo_id

__all__ = [
    "HubConfig",
    "caller_of_token",
    "get_store",
    "StoreDep",
    "principal",
    "ReaderDep",
    "WriterDep",
    "AdminDep",
    "visible_repo",
    "writable_repo",
    "proposable_repo",
    "check_namespace_write",
    "require_write_token",
    "AuthenticatedDep",
    "may_reference_blob",
    "can_see",
    "can_read_output",
    "check_output_write",
    "XetGrant",
    "mint_xet_token",
    "xet_caller",
    "sign_fetch",
    "check_fetch",
    "may_read_blob",
    "may_read_xet_file",
    "XET_TOKEN_TTL",
    "FETCH_URL_TTL",
]

GiB = 1024**3
#: A pull request's ref, ``refs/pr/{num}`` (URL-quoted or not: routes receive it decoded).
PR_REVISION = re.compile(r"refs/pr/([1-9][0-9]{0,8})")


def _env_flag(environ: dict[str, str], name: str) -> bool:
    value = environ.get(name, "").strip().lower()
    if value in ("", "0", "false", "no", "off"):
        return False
    if value in ("1", "true", "yes", "on"):
        return True
    raise ConfigError(f"{name}={value!r} is not a boolean", hint=f"set {name}=1 or {name}=0")


def _env_int(environ: dict[str, str], name: str, default: int) -> int:
    value = environ.get(name)
    if not value:
        return default
    try:
        parsed = int(value)
    except ValueError:
        raise ConfigError(f"{name}={value!r} is not an integer (bytes)") from None
    if parsed <= 0:
        raise ConfigError(f"{name} must be positive, got {parsed}")
    return parsed


def _accel_prefix(value: str | None) -> str | None:
    if not value:
        return None
    if not value.startswith("/") or any(c in value for c in "?#\r\n "):
        raise ConfigError(f"FMHUB_ACCEL_REDIRECT={value!r} must be a URL path like /_fmhub_blobs/")
    return value.rstrip("/") + "/"


@dataclass(frozen=True)
class HubConfig:
    """Server policy. ``fmhub server`` flags map to the ``FMHUB_*`` variables so every worker agrees.

    Attributes:
        require_auth: anonymous requests get 401 everywhere but health checks (``FMHUB_REQUIRE_AUTH``).
        allow_pickle: accept pickle-based files, reported as unsafe (``FMHUB_ALLOW_PICKLE``).
        max_commit_bytes: largest commit request body (inline files are base64 in it) (``FMHUB_MAX_COMMIT_BYTES``).
        max_file_bytes: largest single LFS upload (``FMHUB_MAX_FILE_BYTES``).
        admin_name: the bootstrap administrator's user name (``FMHUB_ADMIN_USER``).
        admin_token: the bootstrap administrator's token, for automation (``FMHUB_ADMIN_TOKEN``).
        accel_redirect: behind nginx, the internal location serving the blob folder (e.g.
            ``/_fmhub_blobs/``): file downloads are then answered with ``X-Accel-Redirect`` and nginx sends
            the bytes with sendfile (``FMHUB_ACCEL_REDIRECT``; file blob stores only).
    """

    require_auth: bool = False
    allow_pickle: bool = False
    max_commit_bytes: int = 1 * GiB
    max_file_bytes: int = 100 * GiB
    admin_name: str = "admin"
    admin_token: str | None = None
    accel_redirect: str | None = None

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> HubConfig:
        env = dict(os.environ if environ is None else environ)
        return cls(
            require_auth=_env_flag(env, "FMHUB_REQUIRE_AUTH"),
            allow_pickle=_env_flag(env, "FMHUB_ALLOW_PICKLE"),
            max_commit_bytes=_env_int(env, "FMHUB_MAX_COMMIT_BYTES", cls.max_commit_bytes),
            max_file_bytes=_env_int(env, "FMHUB_MAX_FILE_BYTES", cls.max_file_bytes),
            admin_name=env.get("FMHUB_ADMIN_USER") or cls.admin_name,
            admin_token=env.get("FMHUB_ADMIN_TOKEN") or None,
            accel_redirect=_accel_prefix(env.get("FMHUB_ACCEL_REDIRECT")),
        )


async def get_store(request: Request) -> Store:
    # async: nothing to wait for, and a sync dependency would cost every request a hop to the thread pool
    return request.app.state.store


StoreDep = Annotated[Store, Depends(get_store)]


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise AuthenticationError("the Authorization header must be 'Bearer <token>'")
    return value.strip()


def principal(request: Request) -> Principal | None:
    """The caller, from ``Authorization: Bearer``; None for anonymous (refused under ``require_auth``).

    A token that is present but invalid is always refused (401), never silently treated as anonymous.
    """
    token = _bearer(request)
    if token is None:
        if request.app.state.config.require_auth:
            raise AuthenticationError("this hub requires a token",
                                      hint="pass Authorization: Bearer <token> (HF_TOKEN / FMHUB_TOKEN)")
        return None
    accounts: Accounts = request.app.state.accounts
    return accounts.authenticate(token)


def authenticated(request: Request) -> Principal:
    """The caller, who must have given a valid token (of either role)."""
    caller = principal(request)
    if caller is None:
        raise AuthenticationError("this needs a token", hint="pass Authorization: Bearer <token>")
    return caller


def writer(request: Request) -> Principal:
    caller = principal(request)
    if caller is None:
        raise AuthenticationError("writing needs a token", hint="pass Authorization: Bearer <write token>")
    return caller


def admin(request: Request) -> Principal:
    caller = writer(request)
    if not caller.is_admin or caller.token_role != "write":
        raise PermissionDeniedError("this needs a site administrator's write token")
    return caller


async def _reader(request: Request) -> Principal | None:
    """:func:`principal` as a dependency: anonymous requests answer at once, tokens are checked in a thread."""
    if "authorization" not in request.headers and not request.app.state.config.require_auth:
        return None
    return await run_in_threadpool(principal, request)


ReaderDep = Annotated[Principal | None, Depends(_reader)]
AuthenticatedDep = Annotated[Principal, Depends(authenticated)]
WriterDep = Annotated[Principal, Depends(writer)]
AdminDep = Annotated[Principal, Depends(admin)]


def can_see(caller: Principal | None, repo: Repo) -> bool:
    return not repo.private or (caller is not None and caller.can_read_namespace(repo.namespace))


def visible_repo(store: Store, caller: Principal | None, repo_type: str, repo_id: str) -> Repo:
    """The repo, or RepoNotFoundError — identical for a missing repo and a private one the caller may not see."""
    repo = store.get_repo(repo_id, repo_type=repo_type)
    if not can_see(caller, repo):
        raise RepoNotFoundError(repo_type, repo_id)
    return repo


def require_write_token(caller: Principal, what: str = "this") -> None:
    if caller.token_role != "write":
        raise PermissionDeniedError(f"{what} needs a write token; this one is read-only",
                                    hint="use a token created with --role write")


def check_namespace_write(caller: Principal, namespace: str) -> None:
    require_write_token(caller)
    if not caller.can_write_namespace(namespace):
        raise PermissionDeniedError(f"{caller.user!r} may not write to the namespace {namespace!r}",
                                    hint="ask an admin of that organization for the write role")


def may_reference_blob(store: Store, caller: Principal, repo: Repo, sha256: str) -> bool:
    """May a commit to ``repo`` name this blob without sending its bytes?

    Only if the repo received the bytes (an LFS upload) or the caller can already read a repo holding
    them: content addressing must not turn a known sha256 into access to someone else's file.
    """
    return store.has_upload(repo.repo_id, sha256, repo_type=repo.repo_type) or any(
        can_see(caller, other) for other in store.repos_holding_blob(sha256))


def writable_repo(store: Store, caller: Principal, repo_type: str, repo_id: str) -> Repo:
    """The repo if the caller may write to it: 404 if they may not see it, 403 if they may only read it."""
    repo = visible_repo(store, caller, repo_type, repo_id)
    check_namespace_write(caller, repo.namespace)
    return repo


def proposable_repo(store: Store, caller: Principal, repo_type: str, repo_id: str, *, revision: str | None = None,
                    create_pr: bool = False, upload_only: bool = False) -> tuple[Repo, bool]:
    """The repo, if the caller may write to it or propose a change to it; (repo, is_writer).

    As on the Hub, whoever may read a repo may propose changes with a write token ("community" pull requests):
    open a pull request (``create_pr``), commit to a pull request they opened while it is open or a draft
    (``revision`` ``refs/pr/N``), and upload the bytes those commits name (``upload_only``: bytes alone change
    nothing). Writers of the namespace may do anything :func:`writable_repo` allows; only they merge.

    Raises:
        RepoNotFoundError: the caller may not see the repo (exactly as for a missing one).
        PermissionDeniedError: a read-only token, or a change other than a proposal by a non-writer.
    """
    repo = visible_repo(store, caller, repo_type, repo_id)
    require_write_token(caller)
    if caller.can_write_namespace(repo.namespace):
        return repo, True
    if create_pr or upload_only:
        return repo, False
    match = PR_REVISION.fullmatch(revision or "")
    if match:
        pr = discussions.get_discussion(store, repo.repo_id, int(match.group(1)), repo_type=repo.repo_type)
        if pr.author.lower() == caller.user.lower() and pr.status in ("open", "draft"):
            return repo, False
    raise PermissionDeniedError(f"{caller.user!r} may not write to the namespace {repo.namespace!r}; propose the "
                                "change as a pull request instead (create_pr=True)",
                                hint="or ask an admin of that organization for the write role")


def _namespace(repo_id: str | None) -> str | None:
    try:
        return validate_repo_id(repo_id).split("/")[0] if repo_id else None
    except FmhubError:
        return None


def can_read_output(store: Store, caller: Principal | None, repo_id: str | None) -> bool:
    """May the caller read a record (a run, a pipeline step record) whose output is repo ``repo_id``?

    Exactly those who may read the repo: a model or dataset repo of that id the caller may see. While no
    repo of that id exists (not published yet, a failed run, or deleted since), the record is treated as a
    private repo of its namespace: its members and site administrators read it, nobody else learns of it.
    """
    found = False
    if repo_id:
        for repo_type in REPO_TYPES:
            try:
                repo = store.get_repo(repo_id, repo_type=repo_type)
            except FmhubError:  # missing, or not a valid id (records copied from elsewhere)
                continue
            if can_see(caller, repo):
                return True
            found = True
    if caller is None or found:
        return False
    namespace = _namespace(repo_id)
    return caller.is_admin if namespace is None else caller.can_read_namespace(namespace)


def check_output_write(caller: Principal, repo_id: str) -> None:
    """Writing a record whose output is ``repo_id`` needs what pushing to that repo needs: a write token and
    write rights on its namespace (the repo itself may not exist yet: training creates it at the end)."""
    check_namespace_write(caller, validate_repo_id(repo_id).split("/")[0])


# -- Xet ---------------------------------------------------------------------------------------------

#: Seconds a Xet token lives; the client asks the token route for a new one before it expires.
XET_TOKEN_TTL = 3600
#: Seconds a signed xorb fetch URL lives (a client fetches right after asking for the reconstruction).
FETCH_URL_TTL = 3600
_XET_PREFIX = "xet_"


def _xet_key(request: Request) -> bytes:
    state = request.app.state
    if getattr(state, "xet_key", None) is None:
        store: Store = state.store
        state.xet_key = bytes.fromhex(store.shared_setting("xet_signing_key", lambda: secrets.token_hex(32)))
    return state.xet_key


def _sign(key: bytes, *parts: object) -> str:
    return hmac.new(key, "\n".join(str(p) for p in parts).encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class XetGrant:
    """What a verified Xet token allows: who (the caller, None for anonymous), on which repo, how."""

    caller: Principal | None
    repo: Repo
    scope: str  # "read" | "write"


def mint_xet_token(request: Request, caller: Principal | None, repo: Repo, scope: str) -> tuple[str, int]:
    """A Xet token for ``repo`` (the caller must already have been checked for ``scope``); (token, expiry)."""
    expires = int(time.time()) + XET_TOKEN_TTL
    token_id = caller.token_id if caller is not None and caller.token_id is not None else 0
    payload = "\n".join((repo.repo_type, repo.repo_id, scope, str(token_id), str(expires)))
    signature = _sign(_xet_key(request), payload)
    encoded = base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")
    return f"{_XET_PREFIX}{encoded}.{signature}", expires


def caller_of_token(request: Request, token_id: int) -> Principal | None:
    """The principal of the hub token a signed credential names (its id, 0 for anonymous), checked now.

    Raises:
        AuthenticationError: the token is revoked or expired, or anonymous access is off.
    """
    if token_id == 0:
        if request.app.state.config.require_auth:
            raise AuthenticationError("this hub requires a token", hint="ask for a Xet token with a hub token")
        return None
    accounts: Accounts = request.app.state.accounts
    return accounts.authenticate_id(token_id)


def xet_caller(request: Request, scope: str) -> XetGrant:
    """The grant of the Xet token in ``Authorization``, checked again now (see the module docstring).

    Raises:
        AuthenticationError (401): missing, forged or expired Xet token, or its hub token revoked.
        RepoNotFoundError (404) / PermissionDeniedError (403): the caller lost access to the repo.
    """
    invalid = AuthenticationError("invalid or expired Xet token", hint="ask the xet-read-token or "
                                  "xet-write-token route for a new one")
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token.startswith(_XET_PREFIX) or "." not in token or len(token) > 2048:
        raise invalid
    encoded, _, signature = token[len(_XET_PREFIX):].rpartition(".")
    try:
        payload = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
        repo_type, repo_id, granted, token_id, expires = payload.split("\n")
        token_number, expiry = int(token_id), int(expires)
    except (ValueError, UnicodeDecodeError):
        raise invalid from None
    if not hmac.compare_digest(_sign(_xet_key(request), payload), signature) or expiry < time.time():
        raise invalid
    if scope == "write" and granted != "write":
        raise PermissionDeniedError("this needs a Xet write token", hint="ask the xet-write-token route")
    caller = caller_of_token(request, token_number)
    store: Store = request.app.state.store
    # A write grant uploads bytes: for writers, and for readers proposing a pull request (the commit that names
    # the bytes is checked on its own). Either way, checked again now.
    repo = proposable_repo(store, caller, repo_type, repo_id, upload_only=True)[0] \
        if granted == "write" and caller is not None else visible_repo(store, caller, repo_type, repo_id)
    return XetGrant(caller, repo, granted)


def sign_fetch(request: Request, grant: XetGrant, xorb_hash: str, byte_start: int, byte_end: int) -> str:
    """The query string of a URL that fetches bytes ``[byte_start, byte_end]`` of a xorb, and nothing else."""
    expires = int(time.time()) + FETCH_URL_TTL
    token_id = grant.caller.token_id if grant.caller is not None and grant.caller.token_id is not None else 0
    repo = grant.repo
    signature = _sign(_xet_key(request), "fetch", xorb_hash, byte_start, byte_end, expires, token_id,
                      repo.repo_type, repo.repo_id)
    return urlencode({"range": f"{byte_start}-{byte_end}", "expires": expires, "token": token_id,
                      "repo_type": repo.repo_type, "repo": repo.repo_id, "sig": signature})


def check_fetch(request: Request, xorb_hash: str, byte_range: str, expires: int, token: int, repo_type: str,
                repo_id: str, sig: str) -> tuple[int, int]:
    """The signed byte span ``[start, end]`` of a fetch URL, if its signature, expiry, hub token and the
    caller's access to its repo all still hold.

    Raises:
        AuthenticationError (401) for anything else, the same answer whatever failed.
    """
    invalid = AuthenticationError("invalid or expired fetch URL", hint="ask for the file's reconstruction again")
    first, _, last = byte_range.partition("-")
    if not first.isdigit() or not last.isdigit():
        raise invalid
    start, end = int(first), int(last)
    expected = _sign(_xet_key(request), "fetch", xorb_hash, start, end, expires, token, repo_type, repo_id)
    if not hmac.compare_digest(expected, sig) or expires < time.time():
        raise invalid
    try:
        caller = caller_of_token(request, token)
        visible_repo(request.app.state.store, caller, repo_type, repo_id)
    except FmhubError:
        raise invalid from None
    return start, end


def may_read_blob(store: Store, caller: Principal | None, sha256: str) -> bool:
    """May the caller read the file with this sha256: is it in a repo they may see (any revision)?"""
    return any(can_see(caller, repo) for repo in store.repos_holding_blob(sha256))


def may_read_xet_file(store: Store, grant: XetGrant, sha256: str) -> bool:
    """May a Xet token rebuild the file with this sha256: its repo received it (uploaded, not committed yet),
    or the caller may read a repo holding it."""
    repo = grant.repo
    return store.has_upload(repo.repo_id, sha256, repo_type=repo.repo_type) or \
        may_read_blob(store, grant.caller, sha256)
