"""Path-traversal attempts on every route that takes a path, name or revision: refused, never a 500."""

from __future__ import annotations

import json
import socket

from urllib.parse import unquote

import httpx
import pytest

from fmhub.store import AddFile, Store

ATTACKS = ["..", "../../etc/passwd", "%2e%2e", "%2e%2e%2fetc%2fpasswd", "%252e%252e%252fetc", "..%5c..%5cwin.ini",
           "a\\..\\b", "/etc/passwd", "%2fetc%2fpasswd", "sub/../../x", "%00", "a%0ab"]


@pytest.fixture
def repo(local_store: Store, tokens) -> str:
    local_store.create_repo("alice/r")
    blob = local_store.put_bytes(b"data")
    local_store.commit("alice/r", [AddFile("sub/f.txt", blob.sha256, blob.size)], title="t", author="alice")
    return "alice/r"


# Templates with {x} where the attack goes; (method, template, json body template or None)
READS = [
    ("GET", "/alice/r/resolve/main/{x}"),
    ("HEAD", "/alice/r/resolve/main/{x}"),
    ("GET", "/alice/r/resolve/{x}/sub/f.txt"),
    ("GET", "/datasets/alice/r/resolve/main/{x}"),
    ("GET", "/api/models/alice/r/tree/main/{x}"),
    ("GET", "/api/models/alice/r/tree/{x}"),
    ("GET", "/api/models/alice/r/revision/{x}"),
    ("GET", "/api/models/alice/r/commits/{x}"),
    ("GET", "/api/models/{x}/r"),
]
WRITES = [
    ("POST", "/api/models/alice/r/branch/{x}", {}),
    ("DELETE", "/api/models/alice/r/branch/{x}", None),
    ("POST", "/api/models/alice/r/tag/main", {"tag": "{x}"}),
    ("DELETE", "/api/models/alice/r/tag/{x}", None),
    ("POST", "/api/models/alice/r/preupload/main", {"files": [{"path": "{x}", "size": 1}]}),
    ("POST", "/api/models/alice/r/commit/main", "ndjson"),
    ("POST", "/api/repos/create", {"name": "{x}"}),
    ("POST", "/alice/r.git/info/lfs/objects/batch", {"operation": "upload", "objects": [{"oid": "{x}", "size": 1}]}),
]


def _send(method: str, base: str, target: str, **kwargs) -> httpx.Response:
    """Send ``target`` as the raw request target: httpx would otherwise resolve ``..`` segments itself."""
    with httpx.Client() as client:
        request = client.build_request(method, base + "/", extensions={"target": target.encode()}, **kwargs)
        return client.send(request)


def _check(response: httpx.Response, what: str) -> None:
    if response.status_code == 200 and "/info/lfs/" in what:  # the LFS batch API answers errors per object
        assert all("error" in obj and "actions" not in obj for obj in response.json()["objects"]), what
        return
    assert response.status_code in (400, 404, 405, 409, 422), (what, response.status_code, response.text[:200])
    if response.request.method != "HEAD" and response.status_code != 405:
        assert "error" in response.json() or "detail" in response.json(), what
    assert b"root:" not in response.content


@pytest.mark.parametrize("attack", ATTACKS)
def test_reads_refuse_traversal(hub_url: str, repo: str, attack: str) -> None:
    for method, template in READS:
        target = template.replace("{x}", attack)
        _check(_send(method, hub_url, target), f"{method} {target}")


def _dangerous(name: str) -> bool:
    return ".." in name or "\\" in name or name.startswith("/") or any(ord(c) < 32 for c in name)


def _fill(template, value: str):
    """``template`` (JSON-like) with every "{x}" string replaced by ``value``."""
    if isinstance(template, dict):
        return {k: _fill(v, value) for k, v in template.items()}
    if isinstance(template, list):
        return [_fill(v, value) for v in template]
    return value if template == "{x}" else template


@pytest.mark.parametrize("attack", ATTACKS)
def test_writes_refuse_traversal(hub_url: str, repo: str, tokens, local_store: Store, attack: str) -> None:
    head = local_store.resolve_revision(repo).oid
    headers = {"Authorization": f"Bearer {tokens.alice}"}
    plain = unquote(attack)  # in a JSON body the name arrives decoded; "%2e" left literal is a legal name
    for method, template, body in WRITES:
        target = template.replace("{x}", attack)
        if body and not _dangerous(plain):
            continue  # a literal "%2e" in a JSON body is a legal name, not an attack
        if body == "ndjson":
            lines = [{"key": "header", "value": {"summary": "t"}},
                     {"key": "file", "value": {"path": plain, "content": "eA==", "encoding": "base64"}}]
            response = _send(method, hub_url, target, headers=headers,
                             content="\n".join(json.dumps(x) for x in lines))
        else:
            payload = _fill(body, plain)
            response = _send(method, hub_url, target, headers=headers, json=payload)
        _check(response, f"{method} {target} {body}")
    assert local_store.resolve_revision(repo).oid == head
    assert {r.name for r in local_store.list_refs(repo).branches} == {"main"}
    assert [r.repo_id for r in local_store.list_repos()] == [repo]


def test_json_bodies_over_the_limit_are_413_before_reading(hub_url: str, repo: str, tokens) -> None:
    # Declare 1 GiB and send none of it: the answer must come before the body is read.
    host, port = hub_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(f"POST /api/models/alice/r/preupload/main HTTP/1.1\r\nHost: {host}\r\n"
                     f"Authorization: Bearer {tokens.alice}\r\nContent-Type: application/json\r\n"
                     f"Content-Length: {1 << 30}\r\n\r\n".encode())
        answer = sock.recv(65536).decode()
    assert answer.startswith("HTTP/1.1 413") and "limit" in answer
