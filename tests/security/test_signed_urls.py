"""Signed upload URLs die with the token that asked for them (issue 29, point 5).

``huggingface_hub`` PUTs LFS bytes to the batch answer's ``href`` without its token, so the URL itself is
the credential; revocation must stop it "at once, everywhere", as it stops the token.
"""

from __future__ import annotations

import hashlib
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import httpx
import pytest

from fmhub.accounts import Accounts
from fmhub.store import Store

DATA = b"weights " * 1000
OID = hashlib.sha256(DATA).hexdigest()


def _upload_href(hub_url: str, token: str, repo: str = "alice/big") -> str:
    response = httpx.post(f"{hub_url}/{repo}.git/info/lfs/objects/batch",
                          json={"operation": "upload", "objects": [{"oid": OID, "size": len(DATA)}]},
                          headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    return response.json()["objects"][0]["actions"]["upload"]["href"]


def _token_id(accounts: Accounts, user: str, name: str) -> int:
    return next(info.id for info in accounts.tokens(user) if info.name == name)


@pytest.fixture
def repos(local_store: Store, tokens) -> None:
    local_store.create_repo("alice/big")
    local_store.create_repo("acme/big")


def test_upload_url_works_while_its_token_is_active(hub_url: str, tokens, repos, local_store: Store) -> None:
    href = _upload_href(hub_url, tokens.alice)
    assert "user=" not in href and "token=" in href
    assert httpx.put(href, content=DATA).status_code == 200
    assert local_store.has_upload("alice/big", OID)


def test_upload_url_dies_when_its_token_is_revoked(hub_url: str, tokens, repos, accounts: Accounts,
                                                   local_store: Store) -> None:
    href = _upload_href(hub_url, tokens.alice)
    accounts.revoke_token(_token_id(accounts, "alice", "laptop"))
    response = httpx.put(href, content=DATA)
    assert response.status_code == 401, response.text
    assert response.json()["error"] and response.json()["hint"]
    assert local_store.blob_size(OID) is None and not local_store.has_upload("alice/big", OID)


def test_upload_url_dies_when_its_user_loses_access(hub_url: str, tokens, repos, accounts: Accounts,
                                                    local_store: Store) -> None:
    """A reader with a write token may still upload bytes for a pull request (as on the Hub), so the URL lives
    while its user can propose changes; it dies when the user can no longer see the repo at all."""
    local_store.update_repo("acme/big", private=True)
    accounts.set_member("acme", "bob", "write")
    href = _upload_href(hub_url, tokens.bob, "acme/big")
    accounts.set_member("acme", "bob", "read")
    still = _upload_href(hub_url, tokens.bob, "acme/big")  # a reader may propose: the batch still answers
    accounts.remove_member("acme", "bob")
    for url in (href, still):  # the private repo now answers as a missing one, to its URLs too
        assert httpx.put(url, content=DATA).status_code == 404
    assert local_store.blob_size(OID) is None


def test_upload_url_cannot_be_moved_to_another_token(hub_url: str, tokens, repos, accounts: Accounts,
                                                     local_store: Store) -> None:
    href = _upload_href(hub_url, tokens.alice)
    parts = urlsplit(href)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    query["token"] = str(_token_id(accounts, "admin", "bootstrap"))  # a token that stays active
    accounts.revoke_token(_token_id(accounts, "alice", "laptop"))
    forged = urlunsplit(parts._replace(query=urlencode(query)))
    assert httpx.put(forged, content=DATA).status_code == 401
    assert local_store.blob_size(OID) is None
