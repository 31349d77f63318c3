"""The lineage impact API in pages (limit, cursor, total, the Link header the Hub client follows) and serve checks
recorded over HTTP, with a private one hidden from others."""

from __future__ import annotations

import json

import httpx
import pytest

from _lineage_family import CHECK_KEY, Family, build_family, listed, save_check
from fmhub.client import Hub
from fmhub.store import Store


@pytest.fixture
def family(local_store: Store) -> Family:
    return build_family(local_store)


def test_the_api_pages_with_a_link_header_and_the_client_follows(hub_url: str, tokens, local_store: Store,
                                                                  family: Family,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from fmhub.client import _remote

    monkeypatch.setattr(_remote, "_IMPACT_PAGE", 2)  # the client follows pages of two
    url = f"{hub_url}/api/fmhub/lineage/datasets/acme/news/impact"
    whole = httpx.get(url, params={"evaluations": "true"}).json()
    first = httpx.get(url, params={"evaluations": "true", "limit": 2})
    assert first.status_code == 200 and first.json()["total"] == whole["total"]
    link = first.headers["link"]
    assert link.endswith('>; rel="next"') and f"cursor={first.json()['next_cursor']}" in link
    second = httpx.get(link[1:link.index(">")]).json()  # the link keeps the other parameters
    assert listed(first.json()) + listed(second) == listed(whole)[:4]
    assert "link" not in httpx.get(url, params={"limit": 10_000}).headers
    for params in ({"cursor": "x"}, {"limit": 0}, {"limit": 10_001}):
        bad = httpx.get(url, params=params)
        assert bad.status_code in (400, 422) and "error" in bad.json() or "detail" in bad.json()
    as_alice = httpx.get(url, params={"evaluations": "true", "limit": 10_000},
                         headers={"Authorization": f"Bearer {tokens.alice}"}).json()
    with Hub.open(hub_url, tokens.alice) as hub:
        every = hub.lineage_impact("acme/news", evaluations=True)  # the client follows every page
        assert listed(every) == listed(as_alice) and every["next_cursor"] is None
        one = hub.lineage_impact("acme/news", limit=1)
        assert len(listed(one)) == 1 and one["next_cursor"]


def test_a_private_serve_check_is_hidden_from_others(hub_url: str, tokens, local_store: Store,
                                                      family: Family) -> None:
    save_check(local_store, f"alice/clf-onnx@{family.onnx}")
    url = f"{hub_url}/api/fmhub/lineage/datasets/acme/news/impact"
    anonymous = httpx.get(url, params={"revision": "v1"}).json()
    assert "alice/clf-onnx" not in json.dumps(anonymous) and CHECK_KEY not in json.dumps(anonymous)
    alice = httpx.get(url, params={"revision": "v1"}, headers={"Authorization": f"Bearer {tokens.alice}"}).json()
    assert f"serve-check:alice/clf-onnx@{family.onnx}:{CHECK_KEY}" in listed(alice)


def test_a_serve_check_saved_over_http_is_recorded(hub_url: str, tokens, local_store: Store, family: Family) -> None:
    body = {"pipeline": "demo", "step": "check", "kind": "serve-check", "output": f"acme/clf@{family.clf}",
            "metrics": {"agreement": 1.0, "rows": 8}, "detail": "8 rows"}
    saved = httpx.put(f"{hub_url}/api/fmhub/pipeline-steps/{CHECK_KEY}", json=body,
                      headers={"Authorization": f"Bearer {tokens.alice}"})
    assert saved.status_code == 200, saved.text
    graph = httpx.get(f"{hub_url}/api/fmhub/lineage/models/acme/clf",
                      params={"revision": family.clf, "direction": "down", "depth": 1}).json()
    assert f"serve-check:acme/clf@{family.clf}:{CHECK_KEY}" in {n["id"] for n in graph["nodes"]}
