"""fmhub's native account API over a live server: self-service tokens, organizations, members, users."""

from __future__ import annotations

import httpx


def _client(url: str, token: str | None) -> httpx.Client:
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"} if token else {})


def test_self_service_tokens(hub_url: str, tokens) -> None:
    with _client(hub_url, tokens.carol) as carol:
        created = carol.post("/api/fmhub/tokens", json={"name": "ci", "role": "read", "expires_in_seconds": 3600})
        assert created.status_code == 200 and created.json()["token"].startswith("fmhub_")
        secret, token_id = created.json()["token"], created.json()["id"]
        assert "token" not in carol.get("/api/fmhub/tokens").json()[0]  # listed without secrets
        with _client(hub_url, secret) as ci:
            assert ci.get("/api/whoami-v2").json()["auth"]["accessToken"]["role"] == "read"
            # A read token cannot mint tokens, not even read ones.
            assert ci.post("/api/fmhub/tokens", json={"name": "x"}).status_code == 403
        assert carol.delete(f"/api/fmhub/tokens/{token_id}").json()["revoked"] is True
        assert httpx.get(f"{hub_url}/api/whoami-v2", headers={"Authorization": f"Bearer {secret}"}).status_code == 401
        assert carol.post("/api/fmhub/tokens", json={"name": "x", "role": "admin"}).status_code == 400


def test_organizations_grant_access_to_private_repos(hub_url: str, tokens, local_store) -> None:
    local_store.create_repo("lab/private-model", private=True)
    with _client(hub_url, tokens.bob) as bob, _client(hub_url, tokens.carol) as carol:
        assert bob.post("/api/fmhub/orgs", json={"name": "lab"}).status_code == 200  # bob becomes its admin
        assert carol.get("/api/models/lab/private-model").status_code == 404
        assert carol.put("/api/fmhub/orgs/lab/members/carol", json={"role": "admin"}).status_code == 403
        assert bob.put("/api/fmhub/orgs/lab/members/carol", json={"role": "read"}).json()["role"] == "read"
        # Roles are read per request: carol sees the private repo now, cannot push to it.
        assert carol.get("/api/models/lab/private-model").status_code == 200
        assert carol.post("/api/models/lab/private-model/branch/dev", json={}).status_code == 403
        assert {m["user"] for m in carol.get("/api/fmhub/orgs/lab/members").json()} == {"bob", "carol"}
        assert bob.delete("/api/fmhub/orgs/lab/members/carol").status_code == 200
        assert carol.get("/api/models/lab/private-model").status_code == 404


def test_admins_create_users(hub_url: str, tokens) -> None:
    with _client(hub_url, tokens.admin) as admin:
        assert admin.post("/api/fmhub/users", json={"name": "erin", "email": "erin@example.org"}).status_code == 200
        assert admin.post("/api/fmhub/users", json={"name": "erin"}).status_code == 409
        assert admin.post("/api/fmhub/users", json={"name": "api"}).status_code == 400
        erin = admin.post("/api/fmhub/tokens", json={"name": "first", "role": "write", "user": "erin"}).json()
        assert httpx.get(f"{hub_url}/api/whoami-v2",
                         headers={"Authorization": f"Bearer {erin['token']}"}).json()["name"] == "erin"
        assert "erin" in {u["name"] for u in admin.get("/api/fmhub/users").json()}


def test_cli_manages_tokens_and_orgs_remotely(hub_url: str, tokens, capsys) -> None:
    from fmhub.cli import main

    remote = ["--endpoint", hub_url, "--token", tokens.carol]
    assert main(["token", "create", "--name", "laptop", "--role", "read", "--expires", "1d", *remote]) == 0
    secret = capsys.readouterr().out.strip().splitlines()[-1]
    assert httpx.get(f"{hub_url}/api/whoami-v2", headers={"Authorization": f"Bearer {secret}"}).json()["name"] \
        == "carol"
    assert main(["token", "list", *remote]) == 0 and "laptop" in capsys.readouterr().out
    assert main(["org", "create", "carols-lab", *remote]) == 0
    assert main(["org", "add-member", "carols-lab", "bob", "--role", "write", *remote]) == 0
    assert main(["org", "members", "carols-lab", *remote]) == 0
    assert "bob" in capsys.readouterr().out
    # Errors from the server end as one line with exit 2.
    assert main(["org", "add-member", "acme", "carol", "--role", "admin", *remote]) == 2
    assert main(["user", "create", "mallory", *remote]) == 2
    assert "administrator" in capsys.readouterr().err
    assert main(["token", "create", "--name", "x", "--endpoint", hub_url, "--token", "fmhub_wrong"]) == 2
