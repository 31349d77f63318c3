"""The Hub client without a server: which hub opens, and how HTTP answers become fmhub errors.

The same behaviour tests over LocalHub and a live RemoteHub are in tests/server/test_client_remote.py
(they need the hub server fixtures).
"""

from __future__ import annotations

import hashlib
import json
import socket
from pathlib import Path

import httpx
import pytest

from fmhub.cli import main
from fmhub.client import Hub, LocalHub, RemoteHub, hub
from fmhub.constants import settings
from fmhub.errors import (
    AuthenticationError,
    ConfigError,
    ConflictError,
    EmptyCommitError,
    EntryNotFoundError,
    FmhubError,
    IntegrityError,
    InvalidInputError,
    PayloadTooLargeError,
    PermissionDeniedError,
    ProtectedRefError,
    RefExistsError,
    RepoExistsError,
    RepoNotFoundError,
    RevisionNotFoundError,
    StorageUnavailableError,
)

ENDPOINT = "http://hub.test"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nothing listens once the socket is closed


def test_open_picks_remote_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    with Hub.open() as embedded:
        assert isinstance(embedded, LocalHub) and not embedded.remote
        assert embedded.author == "tester"  # $FMHUB_USER (set by the suite)
    monkeypatch.setenv("FMHUB_ENDPOINT", ENDPOINT + "/")
    monkeypatch.setenv("FMHUB_TOKEN", "fmhub_secret")
    settings.cache_clear()
    with hub() as remote:
        assert isinstance(remote, RemoteHub) and remote.remote
        assert remote.endpoint == ENDPOINT and remote.token == "fmhub_secret"
    with hub("https://other.test", token="t2") as explicit:
        assert explicit.location == "https://other.test" and explicit.token == "t2"


def test_an_endpoint_must_be_http() -> None:
    with pytest.raises(ConfigError, match="http"):
        RemoteHub("hub.test:8000")


def _answer(status: int, error: str, *, code: str | None = None, hint: str | None = None) -> RemoteHub:
    """A RemoteHub whose every request gets this error answer, as the hub writes them."""
    body: dict[str, str] = {"error": error}
    if hint:
        body["hint"] = hint
    headers = {"X-Error-Code": code} if code else {}
    transport = httpx.MockTransport(lambda request: httpx.Response(status, json=body, headers=headers))
    return RemoteHub(ENDPOINT, token="fmhub_t", transport=transport)


@pytest.mark.parametrize(("status", "code", "error", "expected"), [
    (404, "RepoNotFound", "model repository 'acme/x' not found", RepoNotFoundError),
    (404, "RevisionNotFound", "revision 'nope' not found in 'acme/x'", RevisionNotFoundError),
    (404, "EntryNotFound", "'a.txt' not found in 'acme/x' at 'main'", EntryNotFoundError),
    (401, None, "invalid or expired token", AuthenticationError),
    (403, None, "'bob' may not write to the namespace 'acme'", PermissionDeniedError),
    (403, None, "Cannot delete refs/heads/main: it is the default branch of 'acme/x'", ProtectedRefError),
    (409, None, "model repository 'acme/x' already exists", RepoExistsError),
    (409, None, "tag 'v1' already exists", RefExistsError),
    (412, None, "branch 'main' of 'acme/x' moved: expected head 1, found 2", ConflictError),
    (413, None, "the commit body is over this hub's limit", PayloadTooLargeError),
    (400, None, "no changes to commit on 'acme/x' at 'main': the files are identical", EmptyCommitError),
    (400, None, "invalid path '../x': '..' is not allowed", InvalidInputError),
    (422, None, "sha256 mismatch", IntegrityError),
    (503, None, "the blob store is unavailable", StorageUnavailableError),
    (500, None, "Internal Server Error", FmhubError),
])
def test_http_errors_map_to_fmhub_classes(status: int, code: str | None, error: str,
                                          expected: type[FmhubError]) -> None:
    with _answer(status, error, code=code, hint="do this") as remote, pytest.raises(expected) as raised:
        remote.list_files("acme/x", "main")
    assert type(raised.value) is expected
    assert raised.value.message == error
    if expected is AuthenticationError:  # the server's HTTP advice becomes the client's
        assert raised.value.hint == "the token was refused: check --token / FMHUB_TOKEN"
    else:
        assert raised.value.hint == "do this"


def test_mapped_errors_carry_what_was_asked() -> None:
    with _answer(404, "revision 'v9' not found", code="RevisionNotFound") as remote, \
            pytest.raises(RevisionNotFoundError) as raised:
        remote.list_commits("acme/x", "v9")
    assert (raised.value.repo_id, raised.value.revision) == ("acme/x", "v9")
    assert isinstance(raised.value, LookupError)


def test_an_endpoint_that_is_not_a_hub_is_named() -> None:
    html = httpx.MockTransport(lambda request: httpx.Response(200, text="<html>hello</html>",
                                                              headers={"Content-Type": "text/html"}))
    with RemoteHub(ENDPOINT, transport=html) as remote, pytest.raises(ConfigError) as raised:
        remote.list_repos()
    assert "not JSON" in raised.value.message and ENDPOINT in raised.value.hint


def test_an_unreachable_hub_is_one_clear_error() -> None:
    endpoint = f"http://127.0.0.1:{_closed_port()}"
    with RemoteHub(endpoint) as remote, pytest.raises(StorageUnavailableError) as raised:
        remote.list_repos()
    assert endpoint in raised.value.message and "FMHUB_ENDPOINT" in raised.value.hint


def test_cli_says_which_endpoint_it_cannot_reach(capsys: pytest.CaptureFixture[str]) -> None:
    endpoint = f"http://127.0.0.1:{_closed_port()}"
    code = main(["ls", "acme/x", "--endpoint", endpoint])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err.splitlines()[0].startswith("error: cannot reach the hub at " + endpoint)
    assert "Traceback" not in err


def _serving(files: dict[str, bytes], *, corrupt: str | None = None) -> httpx.MockTransport:
    """Just enough of the hub's read API for a download: repo info, one commit, resolve."""
    commit = {"id": "c" * 40, "authors": [{"user": "alice"}], "date": "2026-01-01T00:00:00.000Z",
              "title": "Add", "message": "", "parents": []}
    siblings = [{"rfilename": path, "size": len(data), "blobId": hashlib.sha256(data).hexdigest()}
                for path, data in files.items()]

    def handle(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.startswith("/api/models/acme/x/commits/"):
            return httpx.Response(200, json=[commit])
        if path.startswith("/api/models/acme/x"):
            return httpx.Response(200, json={"id": "acme/x", "sha": commit["id"], "private": False,
                                             "createdAt": commit["date"], "lastModified": commit["date"],
                                             "siblings": siblings})
        name = path.split("/resolve/" + commit["id"] + "/", 1)[1]
        data = files[name]
        headers = {"ETag": f'"{hashlib.sha256(data).hexdigest()}"'}
        return httpx.Response(200, content=data[:-1] + b"!" if name == corrupt else data, headers=headers)

    return httpx.MockTransport(handle)


def test_download_verifies_every_byte_and_leaves_nothing_half_written(tmp_path: Path) -> None:
    files = {"config.json": json.dumps({"hidden_size": 32}).encode(), "sub/data.dat": b"x" * 5000}
    with RemoteHub(ENDPOINT, transport=_serving(files)) as remote:
        folder = remote.download("acme/x", local_dir=tmp_path / "ok")
        assert (folder / "sub" / "data.dat").read_bytes() == files["sub/data.dat"]
        cached = remote.download("acme/x")  # the cache under $FMHUB_HOME, keyed by commit
        assert cached == settings().home / "cache" / "models--acme--x" / "snapshots" / ("c" * 40)
    with RemoteHub(ENDPOINT, transport=_serving(files, corrupt="sub/data.dat")) as remote, \
            pytest.raises(IntegrityError, match="sub/data.dat"):
        remote.download("acme/x", local_dir=tmp_path / "bad")
    assert not (tmp_path / "bad" / "sub" / "data.dat").exists()
    assert not list((tmp_path / "bad").rglob("*.incomplete"))
