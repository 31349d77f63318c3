"""Stateful runs through the real HTTP API: create repo → commit → read → list → delete, in any order.

A hypothesis state machine keeps a model of what the hub should hold (repos, their visibility, their files)
and drives the live server with alice's token and anonymously; after every step the answers must agree with
the model, and no step may answer 5xx or a non-JSON error. Bounded (a few short runs) to stay in
``make test``; raise ``max_examples`` / ``stateful_step_count`` for a longer hunt.
"""

from __future__ import annotations

import base64
import json

import httpx
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

NAMES = ["m1", "m2"]
PATHS = ["config.json", "sub/weights.txt", "README.md"]
CONTENT = st.text(alphabet="abcdefgh {}:,\n", max_size=40).map(str.encode)


def test_the_hub_agrees_with_a_model_of_it_through_any_sequence(hub_url: str, tokens) -> None:
    alice = httpx.Client(base_url=hub_url, headers={"Authorization": f"Bearer {tokens.alice}"}, timeout=30)
    anonymous = httpx.Client(base_url=hub_url, timeout=30)
    missing = anonymous.get("/alice/never-created/resolve/main/config.json")
    assert missing.status_code == 404

    class Hub(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.repos: dict[str, dict[str, bytes | None]] = {}  # name → path → bytes (None: made by the hub)
            self.private: dict[str, bool] = {}
            self.last: httpx.Response | None = None

        def _check(self, response: httpx.Response, expected: int) -> httpx.Response:
            self.last = response
            assert response.status_code == expected, (response.request.method, str(response.url),
                                                      response.status_code, response.text[:300])
            if response.status_code >= 400:
                body = response.json()
                assert body["error"], body
            return response

        @rule(name=st.sampled_from(NAMES), private=st.booleans())
        def create_repo(self, name: str, private: bool) -> None:
            response = alice.post("/api/repos/create", json={"name": name, "private": private})
            self._check(response, 409 if name in self.repos else 200)
            if name not in self.repos:
                info = self._check(alice.get(f"/api/models/alice/{name}"), 200).json()
                self.repos[name] = {s["rfilename"]: None for s in info.get("siblings", [])}
                self.private[name] = private

        @rule(name=st.sampled_from(NAMES), path=st.sampled_from(PATHS), data=CONTENT)
        def commit_file(self, name: str, path: str, data: bytes) -> None:
            lines = [{"key": "header", "value": {"summary": f"add {path}"}},
                     {"key": "file", "value": {"path": path, "content": base64.b64encode(data).decode(),
                                               "encoding": "base64"}}]
            response = alice.post(f"/api/models/alice/{name}/commit/main",
                                  content=b"\n".join(json.dumps(line).encode() for line in lines),
                                  headers={"Content-Type": "application/x-ndjson"})
            self._check(response, 200 if name in self.repos else 404)
            if name in self.repos:
                self.repos[name][path] = data

        @rule(name=st.sampled_from(NAMES), path=st.sampled_from(PATHS))
        def delete_file(self, name: str, path: str) -> None:
            lines = [{"key": "header", "value": {"summary": f"delete {path}"}},
                     {"key": "deletedFile", "value": {"path": path}}]
            response = alice.post(f"/api/models/alice/{name}/commit/main",
                                  content=b"\n".join(json.dumps(line).encode() for line in lines),
                                  headers={"Content-Type": "application/x-ndjson"})
            self._check(response, 200 if path in self.repos.get(name, {}) else 404)
            if path in self.repos.get(name, {}):
                del self.repos[name][path]

        @rule(name=st.sampled_from(NAMES), path=st.sampled_from(PATHS), anonymously=st.booleans())
        def read_file(self, name: str, path: str, anonymously: bool) -> None:
            client = anonymous if anonymously and name in self.repos else alice
            response = client.get(f"/alice/{name}/resolve/main/{path}")
            if name in self.repos and anonymously and self.private[name]:
                self._check(response, 404)  # a private repo answers as a missing one does
                assert response.json().keys() == missing.json().keys()
                return
            found = path in self.repos.get(name, {})
            self._check(response, 200 if found else 404)
            if found and self.repos[name][path] is not None:
                assert response.content == self.repos[name][path]
                assert response.headers["etag"].strip('"') and response.headers["x-repo-commit"]

        @rule(name=st.sampled_from(NAMES))
        def list_files(self, name: str) -> None:
            response = self._check(alice.get(f"/api/models/alice/{name}"), 200 if name in self.repos else 404)
            if name in self.repos:
                assert {s["rfilename"] for s in response.json()["siblings"]} == set(self.repos[name])

        @rule(name=st.sampled_from(NAMES))
        def delete_repo(self, name: str) -> None:
            self._check(alice.request("DELETE", "/api/repos/delete", json={"name": name}),
                        200 if name in self.repos else 404)
            self.repos.pop(name, None)
            self.private.pop(name, None)

        @invariant()
        def never_a_server_error(self) -> None:
            assert self.last is None or self.last.status_code < 500

        def teardown(self) -> None:
            for name in list(self.repos):
                alice.request("DELETE", "/api/repos/delete", json={"name": name})

    try:
        run_state_machine_as_test(Hub, settings=settings(max_examples=4, stateful_step_count=10, deadline=None,
                                                         derandomize=True, database=None,
                                                         suppress_health_check=list(HealthCheck)))
    finally:
        alice.close()
        anonymous.close()
