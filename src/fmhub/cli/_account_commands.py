"""``fmhub user|org|token|audit``: accounts and the audit log.

Without an endpoint these commands open the metadata database directly (as ``fmhub db`` does): whoever
can run them there is already the hub's administrator. With ``--endpoint`` (or ``FMHUB_ENDPOINT``) they
call the server's native API with ``--token``: users manage their own tokens and the organizations they
administer; site administrators also users.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer
from rich.table import Table

from fmhub.accounts import Accounts
from fmhub.cli._common import (EndpointOption, JsonOption, TokenOption, console, err_console, opened_store,
                               parse_duration, print_json_lines)
from fmhub.constants import settings
from fmhub.errors import InvalidInputError

user_app = typer.Typer(help="Users (people and service accounts) of the hub.", no_args_is_help=True)
org_app = typer.Typer(help="Organizations and their members' roles (read | write | admin).", no_args_is_help=True)
token_app = typer.Typer(help="Access tokens: role read | write, optional expiry, shown once, stored hashed.",
                        no_args_is_help=True)

NameArgument = Annotated[str, typer.Argument(help="User or organization name (letters, digits, '.', '_', '-').")]


def register(app: typer.Typer) -> None:
    app.add_typer(user_app, name="user")
    app.add_typer(org_app, name="org")
    app.add_typer(token_app, name="token")
    app.command("audit")(audit_command)


def _endpoint(endpoint: str | None) -> str | None:
    return endpoint or settings().endpoint


def _native(endpoint: str, token: str | None, method: str, path: str, body: dict | None = None) -> Any:
    """Call the server's native API; its errors come back as fmhub errors (exit 2 with the server's hint)."""
    from fmhub.client import RemoteHub

    with RemoteHub(endpoint, token=token or settings().token) as hub:
        return hub.native_api(method, path, body)


def _when(value: datetime | None) -> str:
    return "—" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


# -- users -----------------------------------------------------------------------------------------


@user_app.command("create")
def user_create(
    name: NameArgument,
    admin: Annotated[bool, typer.Option("--admin", help="Site administrator: sees and changes everything.")] = False,
    fullname: Annotated[str | None, typer.Option("--fullname", help="Display name.")] = None,
    email: Annotated[str | None, typer.Option("--email", help="Contact address (shown by whoami).")] = None,
    endpoint: EndpointOption = None,
    token: TokenOption = None,
) -> None:
    """Create a user. Give them a token with: fmhub token create --user NAME."""
    if url := _endpoint(endpoint):
        _native(url, token, "POST", "/api/fmhub/users", {"name": name, "admin": admin, "fullname": fullname,
                                                         "email": email})
        console.print(f"created user {name}" + (" (administrator)" if admin else ""))
        return
    with opened_store() as store:
        account = Accounts(store.db).create_user(name, admin=admin, fullname=fullname, email=email)
    console.print(f"created user {account.name}" + (" (administrator)" if account.is_admin else ""))


@user_app.command("list")
def user_list(as_json: JsonOption = False) -> None:
    """List users and organizations."""
    with opened_store() as store:
        accounts = Accounts(store.db).list()
    if as_json:
        print_json_lines({"name": a.name, "kind": a.kind, "admin": a.is_admin, "created_at": a.created_at}
                         for a in accounts)
        return
    table = Table("name", "kind", "admin", "created")
    for account in accounts:
        table.add_row(account.name, account.kind, "yes" if account.is_admin else "", _when(account.created_at))
    console.print(table)


@user_app.command("delete")
def user_delete(
    name: NameArgument,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete a user, their tokens and memberships (their repos stay)."""
    if not yes:
        typer.confirm(f"Delete user {name} and revoke all their tokens?", abort=True)
    with opened_store() as store:
        accounts = Accounts(store.db)
        if accounts.get(name).kind != "user":
            raise InvalidInputError(f"{name!r} is an organization", hint=f"use: fmhub org delete {name}")
        accounts.delete(name)
    console.print(f"deleted user {name}")


@user_app.command("admin")
def user_admin(
    name: NameArgument,
    revoke: Annotated[bool, typer.Option("--revoke", help="Take the administrator role away instead.")] = False,
) -> None:
    """Make a user a site administrator (or, with --revoke, no longer one)."""
    with opened_store() as store:
        account = Accounts(store.db).set_admin(name, not revoke)
    console.print(f"{account.name} is {'now' if account.is_admin else 'no longer'} an administrator")


# -- organizations ---------------------------------------------------------------------------------


@org_app.command("create")
def org_create(
    name: NameArgument,
    owner: Annotated[str | None, typer.Option(
        "--owner", help="A user who becomes the org's first admin (with --endpoint: you).")] = None,
    fullname: Annotated[str | None, typer.Option("--fullname", help="Display name (whoami shows it).")] = None,
    endpoint: EndpointOption = None,
    token: TokenOption = None,
) -> None:
    """Create an organization (a namespace members share)."""
    if url := _endpoint(endpoint):
        _native(url, token, "POST", "/api/fmhub/orgs", {"name": name, "fullname": fullname})
        console.print(f"created organization {name} (you are its admin)")
        return
    with opened_store() as store:
        account = Accounts(store.db).create_org(name, owner=owner, fullname=fullname)
    console.print(f"created organization {account.name}" + (f" (admin: {owner})" if owner else ""))


@org_app.command("delete")
def org_delete(
    name: NameArgument,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete an organization and its memberships (its repos stay)."""
    if not yes:
        typer.confirm(f"Delete organization {name}?", abort=True)
    with opened_store() as store:
        accounts = Accounts(store.db)
        if accounts.get(name).kind != "org":
            raise InvalidInputError(f"{name!r} is a user", hint=f"use: fmhub user delete {name}")
        accounts.delete(name)
    console.print(f"deleted organization {name}")


@org_app.command("add-member")
def org_add_member(
    org: Annotated[str, typer.Argument(help="Organization name.")],
    user: Annotated[str, typer.Argument(help="User name.")],
    role: Annotated[str, typer.Option("--role", help="read: see private repos; write: also push, create and "
                                                     "delete repos; admin: also manage members.")] = "read",
    endpoint: EndpointOption = None,
    token: TokenOption = None,
) -> None:
    """Add a user to an organization, or change their role."""
    if url := _endpoint(endpoint):
        answer = _native(url, token, "PUT", f"/api/fmhub/orgs/{org}/members/{user}", {"role": role})
        console.print(f"{answer['user']} is {answer['role']} in {answer['org']}")
        return
    with opened_store() as store:
        member = Accounts(store.db).set_member(org, user, role)
    console.print(f"{member.user} is {member.role} in {member.org}")


@org_app.command("remove-member")
def org_remove_member(
    org: Annotated[str, typer.Argument(help="Organization name.")],
    user: Annotated[str, typer.Argument(help="User name.")],
    endpoint: EndpointOption = None,
    token: TokenOption = None,
) -> None:
    """Remove a user from an organization."""
    if url := _endpoint(endpoint):
        _native(url, token, "DELETE", f"/api/fmhub/orgs/{org}/members/{user}")
        console.print(f"removed {user} from {org}")
        return
    with opened_store() as store:
        Accounts(store.db).remove_member(org, user)
    console.print(f"removed {user} from {org}")


@org_app.command("members")
def org_members(
    org: Annotated[str, typer.Argument(help="Organization name.")],
    as_json: JsonOption = False,
    endpoint: EndpointOption = None,
    token: TokenOption = None,
) -> None:
    """List an organization's members and roles."""
    table = Table("user", "role", "since")
    if url := _endpoint(endpoint):
        listed = _native(url, token, "GET", f"/api/fmhub/orgs/{org}/members")
        if as_json:
            print_json_lines({"user": m["user"], "role": m["role"], "since": m["since"]} for m in listed)
            return
        for member in listed:
            table.add_row(member["user"], member["role"], member["since"])
        console.print(table)
        return
    with opened_store() as store:
        members = Accounts(store.db).members(org)
    if as_json:
        print_json_lines({"user": m.user, "role": m.role, "since": m.created_at} for m in members)
        return
    for member in members:
        table.add_row(member.user, member.role, _when(member.created_at))
    console.print(table)


# -- tokens ----------------------------------------------------------------------------------------


@token_app.command("create")
def token_create(
    name: Annotated[str, typer.Option("--name", help="What it is for (laptop, ci, ...); shown in lists.")],
    user: Annotated[str | None, typer.Option(
        "--user", "-u", help="The user the token acts for (with --endpoint: default yourself).")] = None,
    role: Annotated[str, typer.Option("--role", help="read: download and list; write: also upload, create, "
                                                     "delete (never beyond the user's own rights).")] = "read",
    expires: Annotated[str | None, typer.Option("--expires", help="Lifetime, e.g. 30d, 12h (default: none).")
                       ] = None,
    endpoint: EndpointOption = None,
    token: TokenOption = None,
) -> None:
    """Create a token. It is printed once and stored only as a salted hash: copy it now."""
    seconds = parse_duration(expires, flag="--expires") if expires is not None else None
    if url := _endpoint(endpoint):
        answer = _native(url, token, "POST", "/api/fmhub/tokens",
                         {"name": name, "role": role, "user": user,
                          "expires_in_seconds": int(seconds) if seconds else None})
        err_console.print(f"token {answer['id']} ({answer['role']}) for {answer['user']}, expires "
                          f"{answer['expiresAt'] or '—'}; it is shown only now:")
        console.print(answer["token"], highlight=False)
        return
    if user is None:
        raise InvalidInputError("--user is required on the embedded store", hint="e.g. --user alice")
    expires_at = datetime.now(UTC) + timedelta(seconds=seconds) if seconds else None
    with opened_store() as store:
        info, secret = Accounts(store.db).create_token(user, name=name, role=role, expires_at=expires_at)
    err_console.print(f"token {info.id} ({info.role}) for {info.user}, expires {_when(info.expires_at)}; "
                      "it is shown only now:")
    console.print(secret, highlight=False)


@token_app.command("list")
def token_list(
    user: Annotated[str | None, typer.Option("--user", "-u", help="Only this user's tokens.")] = None,
    as_json: JsonOption = False,
    endpoint: EndpointOption = None,
    token: TokenOption = None,
) -> None:
    """List tokens (never their secrets)."""
    table = Table("id", "user", "name", "role", "state", "created", "expires", "last used")
    if url := _endpoint(endpoint):
        query = f"?user={user}" if user else ""
        listed = _native(url, token, "GET", f"/api/fmhub/tokens{query}")
        if as_json:
            print_json_lines({"id": t["id"], "user": t["user"], "name": t["name"], "role": t["role"],
                              "state": "revoked" if t["revoked"] else ("active" if t["active"] else "expired"),
                              "created_at": t["createdAt"], "expires_at": t["expiresAt"],
                              "last_used_at": t["lastUsedAt"]} for t in listed)
            return
        for t in listed:
            state = "revoked" if t["revoked"] else ("active" if t["active"] else "expired")
            table.add_row(str(t["id"]), t["user"], t["name"], t["role"], state, t["createdAt"],
                          t["expiresAt"] or "—", t["lastUsedAt"] or "—")
        console.print(table)
        return
    with opened_store() as store:
        tokens = Accounts(store.db).tokens(user)
    if as_json:
        print_json_lines({"id": i.id, "user": i.user, "name": i.name, "role": i.role,
                          "state": "revoked" if i.revoked_at else ("active" if i.active else "expired"),
                          "created_at": i.created_at, "expires_at": i.expires_at, "last_used_at": i.last_used_at}
                         for i in tokens)
        return
    for info in tokens:
        state = "revoked" if info.revoked_at else ("active" if info.active else "expired")
        table.add_row(str(info.id), info.user, info.name, info.role, state, _when(info.created_at),
                      _when(info.expires_at), _when(info.last_used_at))
    console.print(table)


@token_app.command("revoke")
def token_revoke(
    token_id: Annotated[int, typer.Argument(help="The token's id (see: fmhub token list).")],
    endpoint: EndpointOption = None,
    token: TokenOption = None,
) -> None:
    """Revoke a token: it stops working at once, everywhere."""
    if url := _endpoint(endpoint):
        answer = _native(url, token, "DELETE", f"/api/fmhub/tokens/{token_id}")
        console.print(f"revoked token {answer['id']} ({answer['name']}) of {answer['user']}")
        return
    with opened_store() as store:
        info = Accounts(store.db).revoke_token(token_id)
    console.print(f"revoked token {info.id} ({info.name}) of {info.user}")


# -- audit -----------------------------------------------------------------------------------------


def audit_command(
    repo: Annotated[str | None, typer.Option("--repo", help="Only this repo (namespace/name).")] = None,
    actor: Annotated[str | None, typer.Option("--actor", help="Only writes by this user.")] = None,
    action: Annotated[str | None, typer.Option(
        "--action", help="Only this action: commit, repo.create, repo.delete, repo.settings, branch.create, "
                         "branch.delete, tag.create, tag.delete.")] = None,
    since: Annotated[str | None, typer.Option("--since", help="Only the last period, e.g. 24h, 7d.")] = None,
    limit: Annotated[int, typer.Option("--limit", help="At most this many events, newest first.")] = 50,
    as_json: JsonOption = False,
) -> None:
    """The audit log of writes: who changed which repo, ref and commit, when."""
    start = None
    if since is not None:
        start = datetime.fromtimestamp(time.time() - parse_duration(since, flag="--since"), UTC)
    with opened_store() as store:
        events = store.audit_events(repo_id=repo, actor=actor, action=action, since=start, limit=limit)
    if as_json:
        for e in events:
            console.print(json.dumps({"at": e.at.isoformat(), "actor": e.actor, "action": e.action,
                                      "repo_type": e.repo_type, "repo_id": e.repo_id, "ref": e.ref,
                                      "commit": e.commit_oid, "detail": e.detail}), highlight=False)
        return
    table = Table("when", "actor", "action", "repo", "ref", "commit")
    for e in events:
        table.add_row(_when(e.at), e.actor, e.action, f"{e.repo_type}:{e.repo_id}" if e.repo_id else "",
                      e.ref or "", (e.commit_oid or "")[:12])
    console.print(table)
