"""Accounts over both databases: names, roles, tokens hashed at rest, expiry, revocation, bootstrap."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from fmhub.accounts import Accounts
from fmhub.accounts import _tables as t
from fmhub.cli import main
from fmhub.errors import AccountExistsError, AccountNotFoundError, AuthenticationError, ConfigError, InvalidInputError
from fmhub.store import Store, open_store


@pytest.fixture
def accounts(store: Store) -> Accounts:
    return Accounts(store.db)


def test_names_are_one_case_insensitive_namespace(accounts: Accounts) -> None:
    accounts.create_user("Alice")
    with pytest.raises(AccountExistsError):
        accounts.create_org("alice")
    for bad in ("api", "datasets", "-x", "a/b", "a..b", "", "x" * 97, "é"):
        with pytest.raises(InvalidInputError):
            accounts.create_user(bad)
    assert accounts.get("ALICE").name == "Alice"


def test_tokens_are_stored_hashed_and_checked(accounts: Accounts, store: Store) -> None:
    accounts.create_user("alice")
    info, secret = accounts.create_token("alice", name="laptop", role="write")
    assert secret.startswith("fmhub_") and len(secret) > 40
    with store.db.read() as conn:
        row = conn.execute(select(t.tokens)).one()
    assert secret not in {str(v) for v in row} and row.hash != secret  # only a salted hash is kept
    principal = accounts.authenticate(secret)
    assert (principal.user, principal.token_role, principal.is_admin) == ("alice", "write", False)
    for wrong in (secret[:-1] + ("A" if secret[-1] != "A" else "B"), "fmhub_x", ""):
        with pytest.raises(AuthenticationError):
            accounts.authenticate(wrong)
    assert accounts.tokens("alice")[0].last_used_at is not None

    accounts.revoke_token(info.id)
    with pytest.raises(AuthenticationError):
        accounts.authenticate(secret)
    assert accounts.revoke_token(info.id).revoked_at is not None  # idempotent


def test_expired_tokens_stop_working(accounts: Accounts, store: Store) -> None:
    accounts.create_user("alice")
    info, secret = accounts.create_token("alice", name="ci", role="read",
                                         expires_at=datetime.now(UTC) + timedelta(hours=1))
    assert accounts.authenticate(secret).token_role == "read"
    with store.db.write() as conn:  # time passes
        conn.execute(update(t.tokens).values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    with pytest.raises(AuthenticationError):
        accounts.authenticate(secret)
    with pytest.raises(InvalidInputError):
        accounts.create_token("alice", name="past", expires_at=datetime.now(UTC) - timedelta(days=1))


def test_org_roles_give_namespace_rights(accounts: Accounts) -> None:
    for user in ("alice", "bob", "carol"):
        accounts.create_user(user)
    accounts.create_org("acme", owner="alice")
    accounts.set_member("acme", "bob", "write")
    accounts.set_member("acme", "carol", "read")
    rights = {}
    for user in ("alice", "bob", "carol"):
        p = accounts.authenticate(accounts.create_token(user, name="t", role="write")[1])
        rights[user] = (p.can_read_namespace("acme"), p.can_write_namespace("acme"), p.can_write_namespace(user),
                        p.can_write_namespace("other"))
    assert rights == {"alice": (True, True, True, False), "bob": (True, True, True, False),
                      "carol": (True, False, True, False)}
    read_only = accounts.authenticate(accounts.create_token("bob", name="r", role="read")[1])
    assert not read_only.can_write_namespace("acme") and not read_only.can_write_namespace("bob")
    accounts.remove_member("acme", "carol")
    assert [m.user for m in accounts.members("acme")] == ["alice", "bob"]
    with pytest.raises(AccountNotFoundError):
        accounts.remove_member("acme", "carol")
    with pytest.raises(InvalidInputError):
        accounts.set_member("acme", "bob", "owner")


def test_bootstrap_admin(accounts: Accounts) -> None:
    secret = accounts.bootstrap_admin()
    assert secret is not None and accounts.authenticate(secret).is_admin
    assert accounts.bootstrap_admin() is None  # once only
    # A fixed token from the environment is added (automation), and accepted afterwards.
    fixed = "fixed-admin-token-for-ci-0123"
    assert accounts.bootstrap_admin(token=fixed) is None
    assert accounts.authenticate(fixed).user == "admin"
    assert accounts.bootstrap_admin(token=fixed) is None and len(accounts.tokens("admin")) == 2
    with pytest.raises(ConfigError):
        accounts.bootstrap_admin(token="short")


def test_cli_manages_accounts(capsys) -> None:
    assert main(["user", "create", "alice"]) == 0
    assert main(["org", "create", "acme", "--owner", "alice"]) == 0
    assert main(["token", "create", "--user", "alice", "--name", "ci", "--role", "write", "--expires", "7d"]) == 0
    secret = capsys.readouterr().out.strip().splitlines()[-1]
    with open_store() as store:
        assert Accounts(store.db).authenticate(secret).user == "alice"
    assert main(["token", "revoke", "1"]) == 0
    assert main(["token", "create", "--user", "nobody", "--name", "x"]) == 2
    assert main(["org", "add-member", "acme", "alice", "--role", "owner"]) == 2
    assert main(["repo", "create", "acme/m"]) == 0
    capsys.readouterr()
    assert main(["audit", "--json", "--repo", "acme/m"]) == 0
    assert '"action": "repo.create"' in capsys.readouterr().out


def test_concurrent_bootstrap_creates_one_admin_token(store: Store) -> None:
    """Several server workers start at once: exactly one creates (and would print) the admin token."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(4) as pool:
        secrets = list(pool.map(lambda _: Accounts(store.db).bootstrap_admin(), range(4)))
    printed = [s for s in secrets if s is not None]
    assert len(printed) == 1
    assert [t.name for t in Accounts(store.db).tokens("admin")] == ["bootstrap"]
    assert Accounts(store.db).authenticate(printed[0]).is_admin
