"""Small files under load: conditional requests (304) and the in-memory caches of immutable commits and trees."""

from __future__ import annotations

import httpx

from fmhub.store import AddFile, Store


def _commit(store: Store, data: bytes) -> str:
    blob = store.put_bytes(data)
    return store.commit("acme/tiny", [AddFile("config.json", blob.sha256, blob.size)], title="c",
                        author="acme").oid


def test_if_none_match_answers_304_without_the_body(hub_url: str, local_store: Store) -> None:
    local_store.create_repo("acme/tiny")
    _commit(local_store, b'{"hidden_size": 32}')
    url = f"{hub_url}/acme/tiny/resolve/main/config.json"
    first = httpx.get(url)
    etag = first.headers["etag"]
    for header in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        again = httpx.get(url, headers={"If-None-Match": header})
        assert again.status_code == 304 and again.content == b""
        assert again.headers["etag"] == etag and again.headers["x-repo-commit"] == first.headers["x-repo-commit"]
    assert httpx.head(url, headers={"If-None-Match": etag}).status_code == 304
    assert httpx.get(url, headers={"If-None-Match": '"stale"'}).content == first.content


def test_a_moved_branch_is_seen_at_once_through_the_caches(hub_url: str, local_store: Store) -> None:
    local_store.create_repo("acme/tiny")
    old = _commit(local_store, b'{"v": 1}')
    url = f"{hub_url}/acme/tiny/resolve/main/config.json"
    first = httpx.get(url)
    assert first.content == b'{"v": 1}'
    new = _commit(local_store, b'{"v": 2}')
    second = httpx.get(url)
    assert second.content == b'{"v": 2}' and second.headers["x-repo-commit"] == new
    assert httpx.get(url, headers={"If-None-Match": first.headers["etag"]}).status_code == 200  # content changed
    assert httpx.get(f"{hub_url}/acme/tiny/resolve/{old}/config.json").content == b'{"v": 1}'  # by commit: cached


def test_a_repo_made_private_is_hidden_at_once(hub_url: str, local_store: Store) -> None:
    local_store.create_repo("acme/tiny")
    _commit(local_store, b"{}")
    url = f"{hub_url}/acme/tiny/resolve/main/config.json"
    assert httpx.get(url).status_code == 200
    local_store.update_repo("acme/tiny", private=True)
    hidden, missing = httpx.get(url), httpx.get(f"{hub_url}/acme/none/resolve/main/config.json")
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["error"].replace("tiny", "none") == missing.json()["error"]


def test_downloads_take_the_fast_lane_and_no_other_path_changes_route(hub_url: str, local_store: Store,
                                                                     tokens) -> None:
    """The resolve routes come first, except for ``/api/...``: a repo whose namespace is ``resolve`` keeps its
    API routes (``/api/models/resolve/x/auth-check`` is not the file ``x/auth-check`` of ``api/models``)."""
    from fmhub.server import create_app

    local_store.create_repo("resolve/x")
    blob = local_store.put_bytes(b"resolve/x")
    local_store.commit("resolve/x", [AddFile("auth-check", blob.sha256, blob.size)], title="c", author="t")
    headers = {"Authorization": f"Bearer {tokens.admin}"}
    check = httpx.get(f"{hub_url}/api/models/resolve/x/auth-check", headers=headers)
    assert check.status_code == 200, check.text  # the API route, not the file "x/auth-check" of api/models
    assert httpx.get(f"{hub_url}/resolve/x/resolve/main/auth-check").content == b"resolve/x"
    assert httpx.head(f"{hub_url}/resolve/x/resolve/main/auth-check").headers["content-length"] == "9"
    app = create_app(local_store)
    lane = [r for r in app.routes if type(r).__name__ == "_IncludedRouter"][0].original_router
    assert {r.path for r in lane.routes} == {"/{namespace:hub_namespace}/{name}/resolve/{rest:path}",
                                             "/datasets/{namespace}/{name}/resolve/{rest:path}"}
    assert not any("hub_namespace" in path for path in app.openapi()["paths"])
