"""fmhub's native API: self-service tokens, organizations and members, users and the audit log.

What the Hugging Face protocol has no words for. Tokens: any user manages their own with a write
token (a token never mints one with more rights than itself); organizations: any user may create one
and becomes its admin, org admins manage members; users and the audit log: site administrators.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from fmhub.accounts import Accounts, Member, Principal, TokenInfo
from fmhub.errors import PermissionDeniedError
from fmhub.server._auth import AdminDep, AuthenticatedDep, StoreDep, WriterDep, require_write_token
from fmhub.server._hf import iso

__all__ = ["router"]

router = APIRouter(prefix="/api/fmhub", tags=["fmhub"])


def _accounts(request: Request) -> Accounts:
    return request.app.state.accounts


def _token(info: TokenInfo) -> dict[str, Any]:
    return {"id": info.id, "user": info.user, "name": info.name, "role": info.role, "createdAt": iso(info.created_at),
            "expiresAt": iso(info.expires_at) if info.expires_at else None,
            "lastUsedAt": iso(info.last_used_at) if info.last_used_at else None,
            "revoked": info.revoked_at is not None, "active": info.active}


def _member(member: Member) -> dict[str, Any]:
    return {"org": member.org, "user": member.user, "role": member.role, "since": iso(member.created_at)}


def _for_user(caller: Principal, user: str | None) -> str:
    """The user a token request is about: oneself, or anyone for a site administrator."""
    if user is None or user.lower() == caller.user.lower():
        return caller.user
    if not caller.is_admin:
        raise PermissionDeniedError("only site administrators manage other users' tokens")
    return user


# -- tokens ----------------------------------------------------------------------------------------


class _NewToken(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    name: str = Field(min_length=1, max_length=96)
    role: str = "read"
    expires_in_seconds: int | None = Field(default=None, gt=0, le=10 * 365 * 86400)
    user: str | None = None


@router.get("/tokens", summary="Your tokens (never their secrets); admins: ?user=")
def list_tokens(request: Request, caller: AuthenticatedDep, user: str | None = None) -> list[dict[str, Any]]:
    return [_token(t) for t in _accounts(request).tokens(_for_user(caller, user))]


@router.post("/tokens", summary="Create a token (its secret is in this answer only)")
def create_token(request: Request, caller: WriterDep, body: _NewToken) -> dict[str, Any]:
    require_write_token(caller, "creating tokens")
    expires = datetime.now(UTC) + timedelta(seconds=body.expires_in_seconds) if body.expires_in_seconds else None
    info, secret = _accounts(request).create_token(_for_user(caller, body.user), name=body.name, role=body.role,
                                                   expires_at=expires)
    return {**_token(info), "token": secret}


@router.delete("/tokens/{token_id}", summary="Revoke one of your tokens (admins: any)")
def revoke_token(request: Request, caller: WriterDep, token_id: int) -> dict[str, Any]:
    require_write_token(caller, "revoking tokens")
    info = _accounts(request).revoke_token(token_id, user=None if caller.is_admin else caller.user)
    return _token(info)


# -- organizations ---------------------------------------------------------------------------------


class _NewOrg(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    name: str
    fullname: str | None = None


class _Role(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    role: str


def _org_admin(request: Request, caller: Principal, org: str) -> None:
    accounts = _accounts(request)
    accounts.members(org)  # a missing org (or a user's name) is reported as such
    require_write_token(caller, f"managing {org!r}'s members")
    if not (caller.is_admin or caller.orgs.get(org.lower()) == "admin"):
        raise PermissionDeniedError(f"managing {org!r}'s members needs an admin of it with a write token")


@router.post("/orgs", summary="Create an organization; you become its admin")
def create_org(request: Request, caller: WriterDep, body: _NewOrg) -> dict[str, Any]:
    require_write_token(caller, "creating an organization")
    account = _accounts(request).create_org(body.name, owner=caller.user, fullname=body.fullname)
    return {"name": account.name, "createdAt": iso(account.created_at)}


@router.get("/orgs/{org}/members", summary="An organization's members (members and admins only)")
def list_members(request: Request, caller: AuthenticatedDep, org: str) -> list[dict[str, Any]]:
    members = _accounts(request).members(org)
    if not (caller.is_admin or caller.orgs.get(org.lower())):
        raise PermissionDeniedError(f"only members of {org!r} see its members")
    return [_member(m) for m in members]


@router.put("/orgs/{org}/members/{user}", summary="Add a member or change their role (org admins)")
def set_member(request: Request, caller: WriterDep, org: str, user: str, body: _Role) -> dict[str, Any]:
    _org_admin(request, caller, org)
    return _member(_accounts(request).set_member(org, user, body.role))


@router.delete("/orgs/{org}/members/{user}", summary="Remove a member (org admins)")
def remove_member(request: Request, caller: WriterDep, org: str, user: str) -> dict[str, Any]:
    _org_admin(request, caller, org)
    _accounts(request).remove_member(org, user)
    return {"removed": user, "org": org}


# -- users and audit (site administrators) ---------------------------------------------------------


class _NewUser(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    name: str
    admin: bool = False
    fullname: str | None = None
    email: str | None = None


@router.get("/users", summary="Users and organizations (site administrators)")
def list_users(request: Request, caller: AdminDep) -> list[dict[str, Any]]:
    return [{"name": a.name, "kind": a.kind, "admin": a.is_admin, "createdAt": iso(a.created_at)}
            for a in _accounts(request).list()]


@router.post("/users", summary="Create a user (site administrators)")
def create_user(request: Request, caller: AdminDep, body: _NewUser) -> dict[str, Any]:
    account = _accounts(request).create_user(body.name, admin=body.admin, fullname=body.fullname, email=body.email)
    return {"name": account.name, "kind": account.kind, "admin": account.is_admin,
            "createdAt": iso(account.created_at)}


def _iso_only(value: object) -> object:
    # pydantic reads "0.5" as seconds since 1970; the API documents ISO 8601 times, so a number is an error.
    if isinstance(value, str) and value.strip().lstrip("+-").replace(".", "", 1).isdigit():
        raise ValueError("give an ISO 8601 time such as 2026-01-31T12:00:00Z, not a number")
    return value


IsoTime = Annotated[datetime | None, BeforeValidator(_iso_only)]


@router.get("/audit", summary="Writes, newest first (site administrators)")
def audit(store: StoreDep, caller: AdminDep, repo: str | None = None, repo_type: str | None = None,
          actor: str | None = None, action: str | None = None, since: IsoTime = None,
          limit: Annotated[int, Query(ge=1, le=10_000)] = 100) -> list[dict[str, Any]]:
    events = store.audit_events(repo_id=repo, repo_type=repo_type, actor=actor, action=action, since=since,
                                limit=limit)
    return [{"at": iso(e.at), "actor": e.actor, "action": e.action, "repoType": e.repo_type, "repoId": e.repo_id,
             "ref": e.ref, "commit": e.commit_oid, "detail": e.detail} for e in events]
