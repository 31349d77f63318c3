"""The CAS API refuses what it must: bad objects store nothing, and no Xet path reads past the caller's access.

Objects are made by a small spec-following writer (tests/_xet_writer.py) so each can be broken precisely.
"""

from __future__ import annotations

import hashlib
import os
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from _xet_writer import file_upload, make_shard

from fmhub.store import AddFile, Store
from fmhub.xet import XetStorage, file_hash

CAS = "/xet-cas"
DATA = os.urandom(200_000)


def _token(hub_url: str, repo: str, hub_token: str | None, kind: str = "write") -> tuple[str, str]:
    headers = {"Authorization": f"Bearer {hub_token}"} if hub_token else {}
    answer = httpx.get(f"{hub_url}/api/models/{repo}/xet-{kind}-token/main", headers=headers)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert answer.headers["x-xet-access-token"] == body["accessToken"] and body["exp"] > 0
    return body["casUrl"], body["accessToken"]


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _push(hub_url: str, repo: str, hub_token: str, data: bytes = DATA):
    cas, token = _token(hub_url, repo, hub_token)
    upload = file_upload(data)
    answer = httpx.post(f"{cas}/v1/xorbs/default/{upload.xorb.hex}", content=upload.xorb.data, headers=_auth(token))
    assert answer.status_code == 200 and answer.json() == {"was_inserted": True}, answer.text
    answer = httpx.post(f"{cas}/v1/shards", content=upload.shard, headers=_auth(token))
    assert answer.status_code == 200 and answer.json() == {"result": 1}, answer.text
    return upload


def _stored(store: Store) -> tuple[int, int]:
    return len(list(store.blobs.iter_blobs())), len(XetStorage(store).held_files())


@pytest.fixture
def secret(hub_url: str, local_store: Store, tokens):
    """alice's private acme/secret holding one file uploaded through Xet."""
    local_store.create_repo("acme/secret", private=True)
    upload = _push(hub_url, "acme/secret", tokens.alice)
    local_store.commit("acme/secret", [AddFile("w.dat", upload.sha256, len(DATA))], title="add", author="alice")
    return upload


@pytest.mark.parametrize("damage", ["corrupt", "wrong-hash", "truncated", "garbage"])
def test_a_bad_xorb_is_a_400_and_stores_nothing(hub_url: str, local_store: Store, tokens, damage: str) -> None:
    local_store.create_repo("alice/x")
    cas, token = _token(hub_url, "alice/x", tokens.alice)
    upload = file_upload(DATA)
    body, name = bytearray(upload.xorb.data), upload.xorb.hex
    if damage == "corrupt":
        body[100] ^= 0x55
    elif damage == "wrong-hash":
        name = file_upload(b"other bytes").xorb.hex
    elif damage == "truncated":
        del body[-1000:]
    else:
        body = bytearray(os.urandom(5000))
    before = _stored(local_store)
    answer = httpx.post(f"{cas}/v1/xorbs/default/{name}", content=bytes(body), headers=_auth(token))
    assert answer.status_code == 400 and "error" in answer.json()
    assert _stored(local_store) == before
    assert local_store.blobs.temporary_files() == []
    assert httpx.post(f"{cas}/v1/xorbs/default/not-a-hash", content=b"", headers=_auth(token)).status_code == 400


@pytest.mark.parametrize("damage", ["truncated", "wrong-sha256", "wrong-file-hash", "no-verification"])
def test_a_bad_shard_is_a_400_and_stores_nothing(hub_url: str, local_store: Store, tokens, damage: str) -> None:
    local_store.create_repo("alice/x")
    cas, token = _token(hub_url, "alice/x", tokens.alice)
    upload = file_upload(DATA)
    assert httpx.post(f"{cas}/v1/xorbs/default/{upload.xorb.hex}", content=upload.xorb.data,
                      headers=_auth(token)).status_code == 200
    x, n = upload.xorb, len(upload.xorb.chunks)
    shard = {
        "truncated": upload.shard[:-60],
        "wrong-sha256": make_shard([(upload.file_hash, [(x, 0, n)], hashlib.sha256(b"no").hexdigest())], [x]),
        "wrong-file-hash": make_shard([(b"\x01" * 32, [(x, 0, n)], upload.sha256)], [x]),
        "no-verification": make_shard([(upload.file_hash, [(x, 0, n)], upload.sha256)], [x], verification=False),
    }[damage]
    before = _stored(local_store)
    answer = httpx.post(f"{cas}/v1/shards", content=shard, headers=_auth(token))
    assert answer.status_code == 400 and "error" in answer.json(), answer.text
    assert _stored(local_store) == before
    assert not local_store.has_upload("alice/x", upload.sha256)


def test_another_users_private_file_answers_like_a_missing_one(hub_url: str, local_store: Store, tokens,
                                                                secret) -> None:
    local_store.create_repo("carol/mine")
    cas, carol = _token(hub_url, "carol/mine", tokens.carol)
    stolen = httpx.get(f"{cas}/v1/reconstructions/{secret.file_hex}", headers=_auth(carol))
    missing = httpx.get(f"{cas}/v1/reconstructions/{'ab' * 32}", headers=_auth(carol))
    assert stolen.status_code == missing.status_code == 404
    assert stolen.json()["error"].replace(secret.file_hex, "X") == missing.json()["error"].replace("ab" * 32, "X")
    # bob (a read member of acme) may: through a read token of the repo.
    cas, bob = _token(hub_url, "acme/secret", tokens.bob, "read")
    plan = httpx.get(f"{cas}/v1/reconstructions/{secret.file_hex}", headers=_auth(bob))
    assert plan.status_code == 200 and plan.json()["terms"][0]["hash"] == secret.xorb.hex
    # Nobody gets a Xet token for a repo they cannot see.
    assert httpx.get(f"{hub_url}/api/models/acme/secret/xet-read-token/main",
                     headers=_auth(tokens.carol)).status_code == 404


def test_dedup_never_reaches_chunks_the_caller_may_not_read(hub_url: str, local_store: Store, tokens,
                                                            secret) -> None:
    local_store.create_repo("carol/mine")
    cas, carol = _token(hub_url, "carol/mine", tokens.carol)
    first = secret.xorb.chunks[0][0]
    from fmhub.xet import to_hex

    assert httpx.get(f"{cas}/v1/chunks/default-merkledb/{to_hex(first)}", headers=_auth(carol)).status_code == 404
    # Knowing the chunk hashes (here: from the bytes) is not enough to reference them in a shard either.
    x, n = secret.xorb, len(secret.xorb.chunks)
    before = _stored(local_store)
    theft = make_shard([(secret.file_hash, [(x, 0, n)], secret.sha256)], [])
    answer = httpx.post(f"{cas}/v1/shards", content=theft, headers=_auth(carol))
    assert answer.status_code == 400 and "may not use" in answer.json()["error"]
    assert _stored(local_store) == before and not local_store.has_upload("carol/mine", secret.sha256)
    # alice, writing to another repo of hers, may dedup against her own private file.
    local_store.create_repo("alice/next")
    cas, alice = _token(hub_url, "alice/next", tokens.alice)
    answer = httpx.get(f"{cas}/v1/chunks/default/{to_hex(first)}", headers=_auth(alice))
    assert answer.status_code == 200 and secret.xorb.hash in answer.content and first not in answer.content
    half = make_shard([(file_hash([(h, s) for h, _, s in x.chunks[:2]]), [(x, 0, 2)],
                        hashlib.sha256(DATA[:131072]).hexdigest())], [])
    assert httpx.post(f"{cas}/v1/shards", content=half, headers=_auth(alice)).status_code == 200


def _fetch_url(hub_url: str, token: str, file_hex: str) -> tuple[str, str]:
    cas, xet = _token(hub_url, "acme/secret", token, "read")
    info = httpx.get(f"{cas}/v1/reconstructions/{file_hex}", headers=_auth(xet)).json()["fetch_info"]
    fetch = next(iter(info.values()))[0]
    return fetch["url"], f"bytes={fetch['url_range']['start']}-{fetch['url_range']['end']}"


def test_fetch_urls_are_bound_to_their_range_and_die_with_their_token(hub_url: str, local_store: Store, tokens,
                                                                      accounts, secret, monkeypatch) -> None:
    info, hub_token = accounts.create_token("bob", name="short", role="read")
    url, span = _fetch_url(hub_url, hub_token, secret.file_hex)
    ok = httpx.get(url, headers={"Range": span})
    assert ok.status_code == 206 and ok.content == secret.xorb.data  # no Authorization header needed
    assert httpx.get(url).status_code == 403  # the Range the reconstruction named is required
    start, end = span[6:].split("-")
    assert httpx.get(url, headers={"Range": f"bytes={int(end) + 1}-{int(end) + 10}"}).status_code == 403
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    for field, value in (("range", f"0-{int(end) + 100}"), ("expires", "9999999999"), ("repo", "acme/other"),
                         ("token", "1")):
        forged = f"{parts.scheme}://{parts.netloc}{parts.path}?{urlencode({**query, field: value})}"
        assert httpx.get(forged, headers={"Range": span}).status_code == 401, field
    accounts.revoke_token(info.id)
    assert httpx.get(url, headers={"Range": span}).status_code == 401  # revoking the token revokes its URLs
    import fmhub.server._auth as auth

    monkeypatch.setattr(auth, "FETCH_URL_TTL", -1)
    expired, span = _fetch_url(hub_url, tokens.bob, secret.file_hex)
    assert httpx.get(expired, headers={"Range": span}).status_code == 401


def test_xet_tokens_die_with_their_hub_token_and_keep_their_scope(hub_url: str, local_store: Store, tokens,
                                                                  accounts, secret, monkeypatch) -> None:
    info, hub_token = accounts.create_token("alice", name="ci", role="write")
    cas, token = _token(hub_url, "acme/secret", hub_token)
    reconstruct = f"{cas}/v1/reconstructions/{secret.file_hex}"
    assert httpx.get(reconstruct, headers=_auth(token)).status_code == 200
    accounts.revoke_token(info.id)
    assert httpx.get(reconstruct, headers=_auth(token)).status_code == 401
    cas, read = _token(hub_url, "acme/secret", tokens.bob, "read")  # a read token uploads nothing
    upload = file_upload(b"new data" * 1000)
    assert httpx.post(f"{cas}/v1/xorbs/default/{upload.xorb.hex}", content=upload.xorb.data,
                      headers=_auth(read)).status_code == 403
    assert httpx.get(reconstruct, headers=_auth(read[:-2] + "00")).status_code == 401  # forged
    import fmhub.server._auth as auth

    monkeypatch.setattr(auth, "XET_TOKEN_TTL", -1)
    _, stale = _token(hub_url, "acme/secret", tokens.bob, "read")
    assert httpx.get(reconstruct, headers=_auth(stale)).status_code == 401
    # A member removed from the org loses what their (unexpired) Xet token reached.
    monkeypatch.setattr(auth, "XET_TOKEN_TTL", 3600)
    _, bob = _token(hub_url, "acme/secret", tokens.bob, "read")
    accounts.remove_member("acme", "bob")
    assert httpx.get(reconstruct, headers=_auth(bob)).status_code == 404


def test_a_range_past_the_end_is_416(hub_url: str, tokens, secret) -> None:
    cas, bob = _token(hub_url, "acme/secret", tokens.bob, "read")
    answer = httpx.get(f"{cas}/v1/reconstructions/{secret.file_hex}",
                       headers={**_auth(bob), "Range": f"bytes={len(DATA)}-{len(DATA) + 10}"})
    assert answer.status_code == 416
    part = httpx.get(f"{cas}/v1/reconstructions/{secret.file_hex}", headers={**_auth(bob), "Range": "bytes=70000-70010"})
    assert part.status_code == 200 and part.json()["offset_into_first_range"] == 70000 - 65536
