"""The traversal corpus over every route of the hub's OpenAPI document, for each token kind: never a 5xx.

Generated from ``app.openapi()``, so a new route is attacked the day it is added. Each path parameter in
turn gets each attack (the others a plausible value), sent as the raw request target so no client
normalizes it; each answer must be below 500, carry a JSON ``error`` when it is an error, and leak no
file of the server.
"""

from __future__ import annotations

import re

import httpx
import pytest

from fmhub.server import HubConfig, create_app
from fmhub.store import AddFile, Store

ATTACKS = ["..", "../../etc/passwd", "%2e%2e%2fetc%2fpasswd", "..%5c..%5cwin.ini", "%00", "a%0ab", ".git",
           "%ff%fe", "%ed%a0%80", "x" * 600]
PLAUSIBLE = {"plural": "models", "namespace": "alice", "name": "r", "name_git": "r.git", "revision": "main",
             "repo_type": "model", "branch": "main", "tag": "v1", "path": "sub/f.txt", "rest": "main/sub/f.txt",
             "oid": "0" * 64, "token_id": "1", "org": "acme", "user": "alice", "run_id": "1", "step": "1"}
_PARAM = re.compile(r"\{([^}:]+)(?::path)?\}")


@pytest.fixture
def repo(local_store: Store, tokens) -> str:
    local_store.create_repo("alice/r")
    blob = local_store.put_bytes(b"data")
    local_store.commit("alice/r", [AddFile("sub/f.txt", blob.sha256, blob.size)], title="t", author="alice")
    return "alice/r"


def _routes() -> list[tuple[str, str, list[str]]]:
    document = create_app(None, HubConfig()).openapi()
    found = []
    for template, operations in document["paths"].items():
        params = _PARAM.findall(template)
        if not params:
            continue
        for method in operations:
            found.append((method.upper(), template, params))
    return found


ROUTES = _routes()


def _target(template: str, attacked: str, attack: str) -> str:
    def value(match: re.Match) -> str:
        name = match.group(1)
        return attack if name == attacked else PLAUSIBLE.get(name, "x")

    return _PARAM.sub(value, template)


def test_the_corpus_covers_the_routes_that_take_names() -> None:
    templates = {template for _, template, _ in ROUTES}
    assert any("/resolve/" in t for t in templates) and any("/tree/" in t for t in templates)
    assert len(ROUTES) >= 40


@pytest.mark.parametrize("who", ["anonymous", "read", "write", "admin"])
def test_every_route_survives_the_traversal_corpus(hub_url: str, tokens, repo: str, who: str) -> None:
    token = {"anonymous": None, "read": tokens.alice_read, "write": tokens.alice, "admin": tokens.admin}[who]
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    problems = []
    with httpx.Client(timeout=30) as client:
        for method, template, params in ROUTES:
            for attacked in params:
                for attack in ATTACKS:
                    target = _target(template, attacked, attack)
                    body = {} if method in ("POST", "PUT") else None
                    request = client.build_request(method, hub_url + "/", json=body, headers=headers,
                                                   extensions={"target": target.encode()})
                    response = client.send(request)
                    what = f"{method} {target[:120]} ({who})"
                    if response.status_code >= 500:
                        problems.append(f"{what}: {response.status_code} {response.text[:200]}")
                    elif response.status_code >= 400 and method != "HEAD" and response.status_code != 304:
                        try:
                            assert response.json()["error"]
                        except Exception:  # noqa: BLE001 - collected, reported below with the route
                            problems.append(f"{what}: {response.status_code} without a JSON error")
                    if b"root:x:0:0" in response.content:
                        problems.append(f"{what}: leaked /etc/passwd")
    assert not problems, "\n".join(problems[:40])


def test_the_openapi_documents_the_error_answers_of_every_route() -> None:
    document = create_app(None, HubConfig()).openapi()
    assert document["components"]["schemas"]["Error"]["required"] == ["error"]
    for template, operations in document["paths"].items():
        for method, operation in operations.items():
            documented = set(operation["responses"])
            assert {"400", "401", "403", "404"} <= documented, (method, template)
            assert "422" not in documented, (method, template)  # validation errors are {error, hint} 400s
    resolve = document["paths"]["/{namespace}/{name}/resolve/{rest}"]["get"]["responses"]
    assert {"200", "206", "304", "416"} <= set(resolve)


def test_every_status_the_corpus_saw_is_documented(hub_url: str, tokens, repo: str) -> None:
    document = create_app(None, HubConfig()).openapi()
    undocumented = set()
    with httpx.Client(timeout=30) as client:
        for method, template, params in ROUTES:
            for attack in ATTACKS[:4]:
                target = _target(template, params[-1], attack)
                request = client.build_request(method, hub_url + "/", json={} if method in ("POST", "PUT") else None,
                                               headers={"Authorization": f"Bearer {tokens.alice}"},
                                               extensions={"target": target.encode()})
                status = str(client.send(request).status_code)
                operation = document["paths"][template.replace(":path", "")][method.lower()]
                if status not in operation["responses"] and status not in ("405",):
                    undocumented.add((method, template, status))
    assert not undocumented, sorted(undocumented)[:20]
