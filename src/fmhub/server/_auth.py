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
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from fmhub.accounts import Accounts, Principal
from fmhub.errors import AuthenticationError, ConfigError, FmhubError, PermissionDeniedError, RepoNotFoundError
from fmhub.store import REPO_TYPES, Repo, Store, validate_repo_id

__all__ = [
    "HubConfig",
    "get_store",
    "StoreDep",
    "principal",
    "ReaderDep",
    "WriterDep",
    "AdminDep",
    "visible_repo",
    "writable_repo",
    "check_namespace_write",
    "require_write_token",
    "AuthenticatedDep",
    "may_reference_blob",
    "can_see",
    "can_read_output",
    "check_output_write",
]

GiB = 1024**3


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


def get_store(request: Request) -> Store:
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


ReaderDep = Annotated[Principal | None, Depends(principal)]
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
