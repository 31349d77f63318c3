"""A live hub server on an ephemeral loopback port, over a store the test fills directly, with accounts.

Accounts made for every hub test (tokens in :class:`Tokens`):
- ``admin`` (site administrator; token ``ADMIN_TOKEN``),
- ``alice`` (write and read tokens), ``bob`` (write token), ``carol`` (write token, in no org),
- organization ``acme``: alice admin, bob read.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from fmhub.accounts import Accounts
from fmhub.server import HubConfig, create_app
from fmhub.store import Store

ADMIN_TOKEN = "fmhub_test-admin-token-0123456789"


@dataclass
class Tokens:
    admin: str
    alice: str
    alice_read: str
    bob: str
    carol: str


@pytest.fixture
def accounts(local_store: Store) -> Accounts:
    return Accounts(local_store.db)


@pytest.fixture
def tokens(accounts: Accounts) -> Tokens:
    accounts.create_user("admin", admin=True)
    accounts.create_token("admin", name="bootstrap", role="write", value=ADMIN_TOKEN)
    for user in ("alice", "bob", "carol"):
        accounts.create_user(user)
    accounts.create_org("acme", owner="alice")
    accounts.set_member("acme", "bob", "read")
    return Tokens(
        admin=ADMIN_TOKEN,
        alice=accounts.create_token("alice", name="laptop", role="write")[1],
        alice_read=accounts.create_token("alice", name="reader", role="read")[1],
        bob=accounts.create_token("bob", name="laptop", role="write")[1],
        carol=accounts.create_token("carol", name="laptop", role="write")[1],
    )


@pytest.fixture
def hub_config() -> HubConfig:
    return HubConfig(admin_token=ADMIN_TOKEN)


@pytest.fixture
def hub_url(local_store: Store, tokens: Tokens, hub_config: HubConfig, serve_app) -> Iterator[str]:
    """Base URL of a real uvicorn server serving ``local_store`` (threads, not mocks)."""
    with serve_app(create_app(local_store, hub_config)) as url:
        yield url


@pytest.fixture
def hf_env(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The unmodified huggingface_hub client's environment: a private cache, no telemetry, Xet off."""
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.delenv("HF_TOKEN", raising=False)


@pytest.fixture
def hf_api(hub_url: str, hf_env):
    """huggingface_hub's HfApi pointed at the live server, anonymous."""
    from huggingface_hub import HfApi

    return HfApi(endpoint=hub_url, token=False)


@pytest.fixture
def alice_api(hub_url: str, hf_env, tokens: Tokens):
    """huggingface_hub's HfApi pointed at the live server with alice's write token."""
    from huggingface_hub import HfApi

    return HfApi(endpoint=hub_url, token=tokens.alice)


@pytest.fixture
def bob_api(hub_url: str, hf_env, tokens: Tokens):
    """huggingface_hub's HfApi with bob's write token (bob may only read the org acme)."""
    from huggingface_hub import HfApi

    return HfApi(endpoint=hub_url, token=tokens.bob)


@pytest.fixture
def carol_api(hub_url: str, hf_env, tokens: Tokens):
    """huggingface_hub's HfApi with carol's write token (carol belongs to no org)."""
    from huggingface_hub import HfApi

    return HfApi(endpoint=hub_url, token=tokens.carol)
