"""A web session lives no longer than the token that opened it (revocation and expiry end it at once)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from fmhub.accounts import Accounts
from fmhub.errors import AuthenticationError
from fmhub.server.web._session import SESSION_NAME, SESSION_TTL

HTML = {"Accept": "text/html"}


def _log_in(hub_url: str, token: str) -> httpx.Client:
    client = httpx.Client(base_url=hub_url, follow_redirects=False)
    page = client.get("/login", headers=HTML)
    csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text).group(1)
    answer = client.post("/login", data={"token": token, "csrf": csrf, "next": "/settings/tokens"})
    assert answer.status_code == 303, answer.text
    return client


def _logged_in_as(client: httpx.Client) -> str | None:
    page = client.get("/settings/tokens", headers=HTML)
    if page.status_code == 303:  # sent to /login: nobody
        return None
    assert page.status_code == 200
    return "alice" if "alice" in page.text else "someone else"


def test_revoking_the_log_in_token_ends_the_session(hub_url: str, tokens, accounts: Accounts) -> None:
    laptop = next(info for info in accounts.tokens("alice") if info.name == "laptop")
    browser = _log_in(hub_url, tokens.alice)
    try:
        assert _logged_in_as(browser) == "alice"
        accounts.revoke_token(laptop.id)
        assert _logged_in_as(browser) is None
    finally:
        browser.close()
    session = next(info for info in accounts.tokens("alice") if info.name == SESSION_NAME)
    assert not session.active  # shown as ended in the token list too


def test_a_session_never_outlives_its_token(accounts: Accounts, tokens) -> None:
    soon = datetime.now(UTC) + timedelta(minutes=5)
    parent, secret = accounts.create_token("carol", name="short", role="read", expires_at=soon)
    session, session_secret = accounts.create_token("carol", name=SESSION_NAME, role="read",
                                                    expires_at=datetime.now(UTC) + SESSION_TTL, parent=parent.id)
    assert session.expires_at == parent.expires_at
    assert accounts.authenticate(session_secret).user == "carol"
    accounts.revoke_token(parent.id)
    with pytest.raises(AuthenticationError):
        accounts.authenticate(session_secret)
    with pytest.raises(AuthenticationError):
        accounts.authenticate_id(session.id)


def test_a_session_cannot_hang_from_a_dead_or_foreign_token(accounts: Accounts, tokens) -> None:
    bobs = next(info for info in accounts.tokens("bob") if info.name == "laptop")
    with pytest.raises(AuthenticationError):
        accounts.create_token("carol", name=SESSION_NAME, parent=bobs.id)
    accounts.revoke_token(bobs.id)
    with pytest.raises(AuthenticationError):
        accounts.create_token("bob", name=SESSION_NAME, parent=bobs.id)


def test_a_session_opened_with_a_session_hangs_from_the_first_token(accounts: Accounts, tokens) -> None:
    root, _ = accounts.create_token("carol", name="root", role="write")
    first, _ = accounts.create_token("carol", name=SESSION_NAME, role="write", parent=root.id)
    second, second_secret = accounts.create_token("carol", name=SESSION_NAME, role="write", parent=first.id)
    accounts.revoke_token(root.id)
    with pytest.raises(AuthenticationError):
        accounts.authenticate(second_secret)
