"""Every route of the app checks auth: the table below must name each one, and each is exercised.

For each route: anonymous, a non-member (carol), a read-only member (bob in acme), a read token of an
admin member (alice), and the site admin. A private repo must answer a caller without access exactly
as a missing repo does (same status, same body once the name is swapped, same error code).
"""

from __future__ import annotations

import functools
import json

import httpx
import pytest
from fastapi.routing import APIRoute

from fmhub.server import HubConfig, create_app
from fmhub.server.web._routing import PageRoute
from fmhub.store import Store

SECRET, MISSING = "acme/secret", "acme/nothing"
OID = "a" * 64
RUN = "r-5ec2e75ec2e7"  # a run of acme/secret (made by the private_repos fixture)
STEP = "5" * 64  # a pipeline step record whose output is acme/secret
NEW_RUN = {"task": "text-classification", "config": {}, "command": "fmhub train", "output": SECRET,
           "environment": {"code_version": "0"}}



@functools.cache
def _public_pem() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


@functools.cache
def _bundle(repo_id: str) -> bytes:
    """A mirror bundle of a fresh repo ``repo_id`` (made in a store of its own)."""
    import tempfile
    from pathlib import Path

    from fmhub.mirror import Target, iter_bundle, plan_export
    from fmhub.store import open_store

    with tempfile.TemporaryDirectory() as tmp, open_store(f"sqlite:///{tmp}/b.db", Path(tmp, "blobs").as_uri()) as store:
        store.create_repo(repo_id)
        return b"".join(iter_bundle(store, plan_export(store, [Target(repo_id)])))


# (method, route path) -> (kind, request builder). Kinds: public | read | write | admin | signed | whoami.
# The builder returns (method, url path, json body or None, raw content or None) for a repo id.
ROUTES = {
    ("GET", "/healthz"): ("public", lambda r: ("GET", "/healthz", None, None)),
    ("GET", "/readyz"): ("public", lambda r: ("GET", "/readyz", None, None)),
    ("GET", "/{namespace}/{name}/resolve/{rest:path}"):
        ("read", lambda r: ("GET", f"/{r}/resolve/main/f.txt", None, None)),
    ("HEAD", "/{namespace}/{name}/resolve/{rest:path}"):
        ("read", lambda r: ("HEAD", f"/{r}/resolve/main/f.txt", None, None)),
    # the download fast lane (the same handlers, registered ahead of the API routes)
    ("GET", "/{namespace:hub_namespace}/{name}/resolve/{rest:path}"):
        ("read", lambda r: ("GET", f"/{r}/resolve/main/f.txt", None, None)),
    ("HEAD", "/{namespace:hub_namespace}/{name}/resolve/{rest:path}"):
        ("read", lambda r: ("HEAD", f"/{r}/resolve/main/f.txt", None, None)),
    ("GET", "/datasets/{namespace}/{name}/resolve/{rest:path}"):
        ("read", lambda r: ("GET", f"/datasets/{r}/resolve/main/f.txt", None, None)),
    ("HEAD", "/datasets/{namespace}/{name}/resolve/{rest:path}"):
        ("read", lambda r: ("HEAD", f"/datasets/{r}/resolve/main/f.txt", None, None)),
    ("GET", "/api/{plural}/{namespace}/{name}"): ("read", lambda r: ("GET", f"/api/models/{r}", None, None)),
    ("GET", "/api/{plural}/{namespace}/{name}/revision/{revision:path}"):
        ("read", lambda r: ("GET", f"/api/datasets/{r}/revision/main", None, None)),
    ("GET", "/api/{plural}/{namespace}/{name}/tree/{revision}"):
        ("read", lambda r: ("GET", f"/api/models/{r}/tree/main", None, None)),
    ("GET", "/api/{plural}/{namespace}/{name}/tree/{revision}/{path:path}"):
        ("read", lambda r: ("GET", f"/api/models/{r}/tree/main/sub", None, None)),
    ("POST", "/api/{plural}/{namespace}/{name}/paths-info/{revision:path}"):
        ("read", lambda r: ("POST", f"/api/models/{r}/paths-info/main", {"paths": ["f.txt", "sub"]}, None)),
    ("GET", "/api/{plural}/{namespace}/{name}/refs"): ("read", lambda r: ("GET", f"/api/models/{r}/refs", None, None)),
    ("GET", "/api/{plural}/{namespace}/{name}/commits/{revision:path}"):
        ("read", lambda r: ("GET", f"/api/models/{r}/commits/main", None, None)),
    ("GET", "/api/{plural}"): ("list", lambda r: ("GET", "/api/models?search=secret", None, None)),
    ("POST", "/api/validate-yaml"): ("public-read", lambda r: ("POST", "/api/validate-yaml",
                                                               {"content": "---\nlicense: mit\n---\n"}, None)),
    ("GET", "/api/whoami-v2"): ("whoami", lambda r: ("GET", "/api/whoami-v2", None, None)),
    ("POST", "/api/repos/create"): ("create", lambda r: ("POST", "/api/repos/create",
                                                         {"name": r.split("/")[1], "organization": "acme"}, None)),
    ("DELETE", "/api/repos/delete"): ("write", lambda r: ("DELETE", "/api/repos/delete",
                                                          {"name": r.split("/")[1], "organization": "acme"}, None)),
    ("PUT", "/api/{plural}/{namespace}/{name}/settings"):
        ("write", lambda r: ("PUT", f"/api/models/{r}/settings", {"private": True}, None)),
    ("POST", "/api/{plural}/{namespace}/{name}/branch/{branch:path}"):
        ("write", lambda r: ("POST", f"/api/models/{r}/branch/dev", {}, None)),
    ("DELETE", "/api/{plural}/{namespace}/{name}/branch/{branch:path}"):
        ("write", lambda r: ("DELETE", f"/api/models/{r}/branch/dev", None, None)),
    ("POST", "/api/{plural}/{namespace}/{name}/tag/{revision:path}"):
        ("write", lambda r: ("POST", f"/api/models/{r}/tag/main", {"tag": "v9"}, None)),
    ("DELETE", "/api/{plural}/{namespace}/{name}/tag/{tag:path}"):
        ("write", lambda r: ("DELETE", f"/api/models/{r}/tag/v1", None, None)),
    ("POST", "/api/{plural}/{namespace}/{name}/preupload/{revision:path}"):
        ("write", lambda r: ("POST", f"/api/models/{r}/preupload/main",
                             {"files": [{"path": "f.txt", "size": 3, "sample": ""}]}, None)),
    # Uploading bytes is open to readers with a write token (for the pull requests they propose): bob may.
    ("GET", "/api/{plural}/{namespace}/{name}/xet-write-token/{revision:path}"):
        ("native", lambda r: ("GET", f"/api/models/{r}/xet-write-token/main", None, None),
         (401, 404, 200, 403, 200, 200)),
    ("GET", "/api/{plural}/{namespace}/{name}/xet-read-token/{revision:path}"):
        ("read", lambda r: ("GET", f"/api/models/{r}/xet-read-token/main", None, None)),
    # The CAS API takes Xet tokens only (tests/server/test_xet_security.py walks who may do what with them).
    ("POST", "/xet-cas/v1/xorbs/{prefix}/{xorb_hash}"):
        ("xet", lambda r: ("POST", f"/xet-cas/v1/xorbs/default/{OID}", None, b"x")),
    ("POST", "/xet-cas/v1/shards"): ("xet", lambda r: ("POST", "/xet-cas/v1/shards", None, b"x")),
    ("GET", "/xet-cas/v1/reconstructions/{file_hash}"):
        ("xet", lambda r: ("GET", f"/xet-cas/v1/reconstructions/{OID}", None, None)),
    ("GET", "/xet-cas/v2/reconstructions/{file_hash}"):
        ("xet", lambda r: ("GET", f"/xet-cas/v2/reconstructions/{OID}", None, None)),
    ("POST", "/xet-cas/v2/shards"): ("xet", lambda r: ("POST", "/xet-cas/v2/shards", None, b"x")),
    ("GET", "/xet-cas/v1/chunks/{prefix}/{chunk_hash}"):
        ("xet", lambda r: ("GET", f"/xet-cas/v1/chunks/default-merkledb/{OID}", None, None)),
    ("GET", "/xet-cas/v1/fetch/{xorb_hash}"):
        ("signed", lambda r: ("GET", f"/xet-cas/v1/fetch/{OID}?range=0-9&expires=9999999999&token=0"
                                     f"&repo_type=model&repo={r}&sig={'0' * 64}", None, None)),
    ("POST", "/api/{plural}/{namespace}/{name}/commit/{revision:path}"):
        ("write", lambda r: ("POST", f"/api/models/{r}/commit/main", None, "\n".join(json.dumps(x) for x in [
            {"key": "header", "value": {"summary": "x"}},
            {"key": "file", "value": {"path": "g.txt", "content": "eA==", "encoding": "base64"}}]))),
    ("POST", "/{namespace}/{name_git}/info/lfs/objects/batch"):
        ("native", lambda r: ("POST", f"/{r}.git/info/lfs/objects/batch",
                              {"operation": "upload", "objects": [{"oid": OID, "size": 1}]}, None),
         (401, 404, 200, 403, 200, 200)),
    ("POST", "/datasets/{namespace}/{name_git}/info/lfs/objects/batch"):
        ("native", lambda r: ("POST", f"/datasets/{r}.git/info/lfs/objects/batch",
                              {"operation": "upload", "objects": [{"oid": OID, "size": 1}]}, None),
         (401, 404, 200, 403, 200, 200)),
    ("POST", "/{namespace}/{name_git}/info/lfs/objects/verify"):  # nothing uploaded: 404 for whoever may ask
        ("native", lambda r: ("POST", f"/{r}.git/info/lfs/objects/verify", {"oid": OID, "size": 1}, None),
         (401, 404, 404, 403, 404, 404)),
    ("POST", "/datasets/{namespace}/{name_git}/info/lfs/objects/verify"):
        ("native", lambda r: ("POST", f"/datasets/{r}.git/info/lfs/objects/verify", {"oid": OID, "size": 1}, None),
         (401, 404, 404, 403, 404, 404)),
    ("PUT", "/api/lfs/upload/{repo_type}/{namespace}/{name}/{oid}"):
        ("signed", lambda r: ("PUT", f"/api/lfs/upload/model/{r}/{OID}?size=1&expires=9999999999&token=2"
                                     f"&sig={'0' * 64}", None, "x")),
    ("POST", "/api/fmhub/evaluations"):
        ("write", lambda r: ("POST", "/api/fmhub/evaluations",
                             {"repo": r, "commit": "0" * 40, "path": "eval/acme/data/test/report.json"}, None)),
    ("GET", "/api/fmhub/evaluations"):  # cards of models the caller may see (tests/server/test_evals_api.py)
        ("native", lambda r: ("GET", f"/api/fmhub/evaluations?model={r}", None, None), (200,) * 6),
    # runs and pipeline step records follow their output repo (tests/server/test_runs_api.py has the rest)
    ("POST", "/api/fmhub/runs"): ("native", lambda r: ("POST", "/api/fmhub/runs", NEW_RUN, None),
                                  (401, 403, 403, 403, 201, 201)),
    ("GET", "/api/fmhub/runs"): ("native", lambda r: ("GET", "/api/fmhub/runs", None, None), (200,) * 6),
    ("GET", "/api/fmhub/runs/{run_id}"): ("native", lambda r: ("GET", f"/api/fmhub/runs/{RUN}", None, None),
                                          (404, 404, 200, 200, 200, 200)),
    ("GET", "/api/fmhub/runs/{run_id}/metrics"):
        ("native", lambda r: ("GET", f"/api/fmhub/runs/{RUN}/metrics", None, None), (404, 404, 200, 200, 200, 200)),
    ("GET", "/api/fmhub/runs/{run_id}/metrics/latest"):
        ("native", lambda r: ("GET", f"/api/fmhub/runs/{RUN}/metrics/latest", None, None),
         (404, 404, 200, 200, 200, 200)),
    ("POST", "/api/fmhub/runs/{run_id}/metrics"):
        ("native", lambda r: ("POST", f"/api/fmhub/runs/{RUN}/metrics",
                              {"entries": [{"step": 1, "metrics": {"loss": 0.5}}]}, None),
         (401, 404, 403, 403, 200, 200)),
    ("POST", "/api/fmhub/runs/{run_id}/finish"):
        ("native", lambda r: ("POST", f"/api/fmhub/runs/{RUN}/finish", {"status": "completed"}, None),
         (401, 404, 403, 403, 200, 400)),  # the admin finds it finished by alice
    ("POST", "/api/fmhub/runs/{run_id}/resume"):  # the run is still running: nothing to resume (400) for writers
        ("native", lambda r: ("POST", f"/api/fmhub/runs/{RUN}/resume", {"from_step": 1}, None),
         (401, 404, 403, 403, 400, 400)),
    ("GET", "/api/fmhub/pipeline-steps/{key}"):
        ("native", lambda r: ("GET", f"/api/fmhub/pipeline-steps/{STEP}", None, None), (404, 404, 200, 200, 200, 200)),
    ("PUT", "/api/fmhub/pipeline-steps/{key}"):
        ("native", lambda r: ("PUT", f"/api/fmhub/pipeline-steps/{STEP}", {
            "pipeline": "p", "step": "s", "kind": "train", "output": f"{SECRET}@{'0' * 40}"}, None),
         (401, 403, 403, 403, 200, 200)),
    # signing keys and policies: anyone lists them, the namespace's admins change them; attestations follow
    # their repo (tests/server/test_signing_api.py has the rest)
    ("GET", "/api/fmhub/namespaces/{namespace}/keys"):
        ("native", lambda r: ("GET", "/api/fmhub/namespaces/acme/keys", None, None), (200,) * 6),
    ("POST", "/api/fmhub/namespaces/{namespace}/keys"):
        ("native", lambda r: ("POST", "/api/fmhub/namespaces/acme/keys", {"public_key": _public_pem()}, None),
         (401, 403, 403, 403, 201, 201)),
    ("DELETE", "/api/fmhub/namespaces/{namespace}/keys/{fingerprint}"):
        ("native", lambda r: ("DELETE", f"/api/fmhub/namespaces/acme/keys/{'ab' * 8}", None, None),
         (401, 403, 403, 403, 404, 404)),
    ("GET", "/api/fmhub/namespaces/{namespace}/signing-policies"):
        ("native", lambda r: ("GET", "/api/fmhub/namespaces/acme/signing-policies", None, None), (200,) * 6),
    ("POST", "/api/fmhub/namespaces/{namespace}/signing-policies"):
        ("native", lambda r: ("POST", "/api/fmhub/namespaces/acme/signing-policies", {"ref_pattern": "prod"}, None),
         (401, 403, 403, 403, 201, 201)),
    ("DELETE", "/api/fmhub/namespaces/{namespace}/signing-policies"):
        ("native", lambda r: ("DELETE", "/api/fmhub/namespaces/acme/signing-policies?ref=prod", None, None),
         (401, 403, 403, 403, 200, 200)),
    ("GET", "/api/fmhub/signing/hub-key"):
        ("native", lambda r: ("GET", "/api/fmhub/signing/hub-key", None, None), (200,) * 6),
    ("GET", "/api/fmhub/attestations"): ("read", lambda r: ("GET", f"/api/fmhub/attestations?repo={r}", None, None)),
    ("POST", "/api/fmhub/attestations"):
        ("native", lambda r: ("POST", "/api/fmhub/attestations", {"repo": r, "commit": "0" * 40, "kind": "optimize"},
                              None), (401, 404, 403, 403, 404, 404)),
    # search lists only what the caller may see (tests/server/test_search_api.py); lineage answers as the repo does
    ("GET", "/api/fmhub/search"): ("native", lambda r: ("GET", "/api/fmhub/search?q=secret", None, None), (200,) * 6),
    ("GET", "/api/fmhub/lineage/{plural}/{namespace}/{name}"):
        ("read", lambda r: ("GET", f"/api/fmhub/lineage/models/{r}", None, None)),
    ("GET", "/api/fmhub/lineage/{plural}/{namespace}/{name}/impact"):
        ("read", lambda r: ("GET", f"/api/fmhub/lineage/datasets/{r}/impact", None, None)),
    ("GET", "/api/fmhub/audit"): ("admin", lambda r: ("GET", "/api/fmhub/audit", None, None)),
    ("GET", "/api/fmhub/users"): ("admin", lambda r: ("GET", "/api/fmhub/users", None, None)),
    ("POST", "/api/fmhub/users"): ("admin", lambda r: ("POST", "/api/fmhub/users", {"name": "dave"}, None)),
    # fmhub's native account routes: expected status per caller (anonymous, carol, bob, alice_read, alice, admin)
    ("GET", "/api/fmhub/tokens"): ("native", lambda r: ("GET", "/api/fmhub/tokens?user=alice", None, None),
                                   (401, 403, 403, 200, 200, 200)),
    ("POST", "/api/fmhub/tokens"): ("native", lambda r: ("POST", "/api/fmhub/tokens", {"name": "x", "user": "alice"},
                                                         None), (401, 403, 403, 403, 200, 200)),
    ("DELETE", "/api/fmhub/tokens/{token_id}"): ("native", lambda r: ("DELETE", "/api/fmhub/tokens/2", None, None),
                                                 (401, 404, 404, 403, 200, 200)),
    ("POST", "/api/fmhub/orgs"): ("native", lambda r: ("POST", "/api/fmhub/orgs", {"name": "neworg"}, None),
                                  (401, 200, 409, 403, 409, 409)),
    ("GET", "/api/fmhub/orgs/{org}/members"): ("native", lambda r: ("GET", "/api/fmhub/orgs/acme/members", None,
                                                                    None), (401, 403, 200, 200, 200, 200)),
    ("PUT", "/api/fmhub/orgs/{org}/members/{user}"):
        ("native", lambda r: ("PUT", "/api/fmhub/orgs/acme/members/carol", {"role": "read"}, None),
         (401, 403, 403, 403, 200, 200)),
    ("DELETE", "/api/fmhub/orgs/{org}/members/{user}"):
        ("native", lambda r: ("DELETE", "/api/fmhub/orgs/acme/members/bob", None, None),
         (401, 403, 403, 403, 200, 404)),
    # repo management and discussions (issue 28); the secret repos hold pull request #1 by alice
    ("POST", "/api/repos/move"): ("write", lambda r: ("POST", "/api/repos/move",
                                                      {"fromRepo": r, "toRepo": "acme/moved", "type": "model"}, None)),
    ("POST", "/api/{plural}/{namespace}/{name}/super-squash/{branch:path}"):
        ("write", lambda r: ("POST", f"/api/models/{r}/super-squash/main", {"message": "squash"}, None)),
    ("GET", "/api/{plural}/{namespace}/{name}/lfs-files"):
        ("write", lambda r: ("GET", f"/api/models/{r}/lfs-files", None, None)),
    ("POST", "/api/{plural}/{namespace}/{name}/lfs-files/batch"):
        ("write", lambda r: ("POST", f"/api/models/{r}/lfs-files/batch", {"deletions": {"sha": [OID]}}, None)),
    ("POST", "/api/{plural}/{namespace}/{name}/lfs-files/duplicate"):  # read the source, write the target
        ("write", lambda r: ("POST", f"/api/models/{r}/lfs-files/duplicate",
                             {"target": {"type": "model", "name": r}, "files": [{"sha256": OID}]}, None)),
    ("GET", "/api/{plural}/{namespace}/{name}/auth-check"):
        ("read", lambda r: ("GET", f"/api/models/{r}/auth-check", None, None)),
    ("GET", "/api/{plural}/{namespace}/{name}/discussions"):
        ("read", lambda r: ("GET", f"/api/models/{r}/discussions", None, None)),
    ("GET", "/api/{plural}/{namespace}/{name}/discussions/{num}"):
        ("read", lambda r: ("GET", f"/api/models/{r}/discussions/1?diff=1", None, None)),
    ("POST", "/api/{plural}/{namespace}/{name}/discussions"):  # readers (write token) open discussions
        ("native", lambda r: ("POST", f"/api/models/{r}/discussions", {"title": "a question"}, None),
         (401, 404, 200, 403, 200, 200)),
    ("POST", "/api/{plural}/{namespace}/{name}/discussions/{num}/comment"):
        ("native", lambda r: ("POST", f"/api/models/{r}/discussions/1/comment", {"comment": "hi"}, None),
         (401, 404, 200, 403, 200, 200)),
    ("POST", "/api/{plural}/{namespace}/{name}/discussions/{num}/comment/{event_id}/edit"):  # its author only
        ("native", lambda r: ("POST", f"/api/models/{r}/discussions/1/comment/{1:024x}/edit", {"content": "x"},
                              None), (401, 404, 403, 403, 200, 403)),
    ("POST", "/api/{plural}/{namespace}/{name}/discussions/{num}/comment/{event_id}/hide"):
        ("write", lambda r: ("POST", f"/api/models/{r}/discussions/1/comment/{1:024x}/hide", None, None)),
    ("POST", "/api/{plural}/{namespace}/{name}/discussions/{num}/title"):  # its author or a writer
        ("native", lambda r: ("POST", f"/api/models/{r}/discussions/1/title", {"title": "t"}, None),
         (401, 404, 403, 403, 200, 200)),
    ("POST", "/api/{plural}/{namespace}/{name}/discussions/{num}/status"):
        ("native", lambda r: ("POST", f"/api/models/{r}/discussions/1/status", {"status": "closed"}, None),
         (401, 404, 403, 403, 200, 200)),
    ("POST", "/api/{plural}/{namespace}/{name}/discussions/{num}/merge"):
        ("write", lambda r: ("POST", f"/api/models/{r}/discussions/1/merge", None, None)),
    # mirroring (issue 27): bundles out for readers, in for namespace writers (the bundle names the repo)
    ("GET", "/api/fmhub/mirror"): ("public", lambda r: ("GET", "/api/fmhub/mirror", None, None)),
    ("POST", "/api/fmhub/mirror/manifest"):
        ("read", lambda r: ("POST", "/api/fmhub/mirror/manifest", {"repos": [f"model/{r}"]}, None)),
    ("POST", "/api/fmhub/mirror/export"):
        ("read", lambda r: ("POST", "/api/fmhub/mirror/export", {"repos": [f"model/{r}@v1"]}, None)),
    ("POST", "/api/fmhub/mirror/have"):
        ("native", lambda r: ("POST", "/api/fmhub/mirror/have", {"objects": []}, None), (401, 200, 200, 403, 200, 200)),
    ("POST", "/api/fmhub/mirror/import"):  # alice's bundle conflicts with the secret repo's main: reported, 200
        ("native", lambda r: ("POST", "/api/fmhub/mirror/import", None, _bundle(r)), (401, 403, 403, 403, 200, 200)),
}
# The documentation routes and Swagger UI's files: public, they hold no data.
DOCS = {"/openapi.json", "/docs", "/docs-assets"}
# The web UI's pages (PageRoute) and files (/static) have their own access tests: tests/web/test_pages.py.


@pytest.fixture
def private_repos(local_store: Store, tokens) -> None:
    for repo_type in ("model", "dataset"):
        local_store.create_repo(SECRET, repo_type=repo_type, private=True)
        blob = local_store.put_bytes(b"top secret")
        from fmhub.store import AddFile

        local_store.commit(SECRET, [AddFile("f.txt", blob.sha256, blob.size), AddFile("sub/h.txt", blob.sha256,
                                                                                       blob.size)],
                           repo_type=repo_type, title="secret", author="alice")
    local_store.create_tag(SECRET, "v1")
    from sqlalchemy import update

    from fmhub.runs import PipelineStepRecord, PipelineSteps, Runs
    from fmhub.runs import _tables

    made = Runs(local_store.db).start(task="text-classification", config={}, command="fmhub train", base_model=None,
                                      base_commit=None, dataset=None, dataset_commit=None, output=SECRET)
    with local_store.db.write() as conn:  # a known id, for the table above
        conn.execute(update(_tables.runs).where(_tables.runs.c.id == made.id).values(id=RUN))
    oid = local_store.resolve_revision(SECRET, None).oid
    PipelineSteps(local_store.db).save(PipelineStepRecord(STEP, "p", "s", "train", f"{SECRET}@{oid}"))
    from fmhub.store import discussions

    for repo_type in ("model", "dataset"):
        discussions.create_discussion(local_store, SECRET, repo_type=repo_type, title="v2", author="alice",
                                      description="please review", pull_request=True)


def _routes(routes) -> set[tuple[str, str]]:
    found = set()
    for route in routes:
        if hasattr(route, "original_router"):  # an included router (FastAPI keeps it whole): its routes count
            found |= _routes(route.original_router.routes)
        elif route.path in DOCS or isinstance(route, PageRoute) or route.path.startswith("/static"):
            continue
        elif isinstance(route, APIRoute):
            found |= {(method, route.path) for method in route.methods}
        else:
            found.add(("?", route.path))
    return found


def test_the_table_names_every_route() -> None:
    app = create_app(None)
    assert _routes(app.routes) == set(ROUTES), "a route was added or removed: classify it in ROUTES"


def _call(url: str, build, repo: str, token: str | None) -> httpx.Response:
    method, path, body, content = build(repo)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.request(method, url + path, json=body, content=content, headers=headers)


def _same_as_missing(url: str, build, token: str | None) -> int:
    private, missing = _call(url, build, SECRET, token), _call(url, build, MISSING, token)
    assert private.status_code == missing.status_code
    assert private.content == missing.content.replace(b"nothing", b"secret")
    assert private.headers.get("x-error-code") == missing.headers.get("x-error-code")
    return private.status_code


@pytest.mark.parametrize("route", sorted(ROUTES), ids=lambda r: f"{r[0]} {r[1]}")
def test_route_checks_auth(route, hub_url: str, tokens, private_repos) -> None:
    kind, build = ROUTES[route][:2]
    anonymous = _call(hub_url, build, SECRET, None)
    if kind == "public":
        assert anonymous.status_code == 200
    elif kind == "public-read":
        assert anonymous.status_code == 200
    elif kind == "list":
        assert anonymous.status_code == 200 and anonymous.json() == []
        assert _call(hub_url, build, SECRET, tokens.carol).json() == []
        assert [m["id"] for m in _call(hub_url, build, SECRET, tokens.bob).json()] == [SECRET]
    elif kind == "whoami":
        assert anonymous.status_code == 401
        assert _call(hub_url, build, SECRET, tokens.carol).json()["name"] == "carol"
    elif kind == "read":
        assert _same_as_missing(hub_url, build, None) == 404
        assert _same_as_missing(hub_url, build, tokens.carol) == 404
        assert _call(hub_url, build, SECRET, tokens.bob).status_code in (200, 206)
        assert _call(hub_url, build, SECRET, tokens.admin).status_code == 200
    elif kind == "create":
        assert anonymous.status_code == 401
        assert _call(hub_url, build, SECRET, tokens.carol).status_code == 403  # not an acme member
        assert _call(hub_url, build, MISSING, tokens.carol).status_code == 403  # same answer
        assert _call(hub_url, build, MISSING, tokens.bob).status_code == 403  # read role
        assert _call(hub_url, build, MISSING, tokens.alice_read).status_code == 403  # read token
    elif kind == "write":
        assert anonymous.status_code == 401
        assert _call(hub_url, build, MISSING, None).status_code == 401  # before looking anything up
        assert _same_as_missing(hub_url, build, tokens.carol) == 404
        assert _call(hub_url, build, SECRET, tokens.bob).status_code == 403
        assert _call(hub_url, build, SECRET, tokens.alice_read).status_code == 403
    elif kind == "admin":
        assert anonymous.status_code == 401
        assert _call(hub_url, build, SECRET, tokens.alice).status_code == 403
        assert _call(hub_url, build, SECRET, tokens.admin).status_code == 200
    elif kind == "native":  # callers in order; a caller's success may change what the next one sees
        callers = (None, tokens.carol, tokens.bob, tokens.alice_read, tokens.alice, tokens.admin)
        statuses = tuple(_call(hub_url, build, SECRET, token).status_code for token in callers)
        assert statuses == ROUTES[route][2]
    elif kind == "xet":  # a Xet token, nothing else
        assert anonymous.status_code == 401
        assert _call(hub_url, build, SECRET, tokens.admin).status_code == 401  # a hub token is no Xet token
    elif kind == "signed":
        assert anonymous.status_code == 401  # a forged signature
        assert _call(hub_url, build, SECRET, tokens.admin).status_code == 401  # a token is no signature
    else:
        raise AssertionError(kind)
    assert anonymous.status_code != 500 and "application/json" in anonymous.headers.get("content-type", "") \
        or route[0] == "HEAD"


def test_require_auth_refuses_anonymous_everywhere(local_store: Store, tokens, private_repos, serve_app) -> None:
    local_store.create_repo("acme/open")
    with serve_app(create_app(local_store, HubConfig(require_auth=True))) as url:
        for (method, path), (kind, build, *_) in sorted(ROUTES.items()):
            response = _call(url, build, "acme/open", None)
            if kind == "public":
                assert response.status_code == 200, path
            else:
                assert response.status_code == 401, (method, path)
        assert httpx.get(f"{url}/api/models/acme/open", headers={"Authorization": f"Bearer {tokens.carol}"}
                         ).status_code == 200


def test_bad_tokens_are_401_not_anonymous(hub_url: str, accounts, tokens) -> None:
    info, secret = accounts.create_token("carol", name="short-lived", role="read")
    assert httpx.get(f"{hub_url}/api/whoami-v2", headers={"Authorization": f"Bearer {secret}"}).status_code == 200
    accounts.revoke_token(info.id)
    for header in (f"Bearer {secret}", "Bearer fmhub_nope", "Basic YWxpY2U6eA==", "Bearer"):
        response = httpx.get(f"{hub_url}/api/models", headers={"Authorization": header})
        assert response.status_code == 401, header
