"""Signed versions through a hub server: trusted keys per org (anyone lists, org admins add and revoke), and
sign / verify / download --verify over HTTP with the unchanged client."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from fmhub.cli import main
from fmhub.client import Hub, UploadFile
from fmhub.errors import PermissionDeniedError, SignatureError, SigningKeyNotFoundError
from fmhub.signing import create_key_pair

REPO = "acme/tiny"


@pytest.fixture
def release(tmp_path: Path):
    return create_key_pair(tmp_path / "release.key")


@pytest.fixture
def model(hub_url: str, tokens, tmp_path: Path) -> str:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"hidden_size": 32}))
    (folder / "weights.onnx").write_bytes(bytes(range(256)) * 64)
    with Hub.open(hub_url, tokens.alice) as hub:
        hub.upload(folder, REPO)
    return REPO


def test_keys_api_permissions(hub_url: str, tokens, release) -> None:
    pem = release.public_path.read_text()
    with Hub.open(hub_url, tokens.alice) as alice, Hub.open(hub_url, tokens.bob) as bob, \
            Hub.open(hub_url, tokens.carol) as carol, Hub.open(hub_url) as anonymous, \
            Hub.open(hub_url, tokens.alice_read) as alice_read:
        for outsider in (bob, carol, alice_read):  # a read member, a stranger, a read-only token
            with pytest.raises(PermissionDeniedError):
                outsider.add_signing_key("acme", pem)
        added = alice.add_signing_key("acme", pem, name="release")
        assert added.fingerprint == release.fingerprint
        listed = anonymous.list_signing_keys("acme")  # keys are public: verifiers need them
        assert [(k.name, k.fingerprint, k.revoked_at) for k in listed] == [("release", release.fingerprint, None)]
        with pytest.raises(PermissionDeniedError):
            bob.revoke_signing_key("acme", release.fingerprint)
        with pytest.raises(SigningKeyNotFoundError):
            alice.revoke_signing_key("acme", "ab" * 8)
        assert alice.revoke_signing_key("acme", release.fingerprint[:12]).revoked_at is not None
        assert anonymous.list_signing_keys("acme")[0].revoked_at is not None
        carol.add_signing_key("carol", pem, name="mine")  # a user is the admin of their own namespace


def test_keys_api_bad_input_is_a_4xx(hub_url: str, tokens) -> None:
    headers = {"Authorization": f"Bearer {tokens.alice}"}
    answer = httpx.post(f"{hub_url}/api/fmhub/namespaces/acme/keys", json={"public_key": "not a key"},
                        headers=headers, timeout=60)  # the hub's first key parse imports the signing stack
    assert answer.status_code == 400 and "PEM" in answer.json()["error"]
    answer = httpx.post(f"{hub_url}/api/fmhub/namespaces/nobody/keys", json={"public_key": "x"}, headers=headers)
    assert answer.status_code == 404
    answer = httpx.delete(f"{hub_url}/api/fmhub/namespaces/acme/keys/zz", headers=headers)
    assert answer.status_code == 400


def test_sign_and_verify_over_http(hub_url: str, tokens, model: str, release, capsys) -> None:
    with Hub.open(hub_url, tokens.alice) as alice, Hub.open(hub_url) as anonymous:
        alice.add_signing_key("acme", release.public_path.read_text(), name="release")
        with pytest.raises(SignatureError, match="not signed"):
            anonymous.verify(model)
        signed = alice.sign(model, release.private_path).oid
        assert anonymous.verify(model).commit == signed
        data = bytearray(alice.read_bytes(model, "weights.onnx"))
        data[100] ^= 0xFF
        alice.commit(model, [UploadFile("weights.onnx", bytes(data))], title="swap")
        with pytest.raises(SignatureError) as caught:
            anonymous.verify(model)
        assert caught.value.reason == "changed" and caught.value.item == "weights.onnx"
        assert main(["download", model, "--verify", "--endpoint", hub_url]) == 2
        assert "weights.onnx" in capsys.readouterr().err
        assert main(["download", f"{model}", "--revision", signed, "--verify", "--endpoint", hub_url]) == 0


def test_policy_over_http(hub_url: str, tokens, model: str, release) -> None:
    with Hub.open(hub_url, tokens.alice) as alice, Hub.open(hub_url, tokens.bob) as bob:
        alice.add_signing_key("acme", release.public_path.read_text(), name="release")
        with pytest.raises(PermissionDeniedError):
            bob.add_signing_policy("acme", "prod")
        alice.add_signing_policy("acme", "prod")
        assert [p.ref_pattern for p in bob.list_signing_policies("acme")] == ["prod"]
        with pytest.raises(SignatureError, match="only moves to signed commits"):
            alice.create_branch(model, "prod")
        signed = alice.sign(model, release.private_path).oid
        assert alice.create_branch(model, "prod", revision=signed).commit_oid == signed
        with pytest.raises(SignatureError) as caught:  # pushing unsigned changes onto prod is refused
            alice.commit(model, [UploadFile("config.json", b"{}")], revision="prod", title="hotfix")
        assert caught.value.reason == "changed" and caught.value.item == "config.json"
        assert alice.repo_info(model, revision="prod").commit.oid == signed
        alice.remove_signing_policy("acme", "prod")
        assert alice.list_signing_policies("acme") == []


def test_provenance_over_http(hub_url: str, tokens, model: str, local_store) -> None:
    """The hub's attestations and its key reach a remote client, which checks them itself."""
    from fmhub.constants import settings
    from fmhub.signing import Attestor, first_failure

    head = local_store.resolve_revision(model).oid
    files = {e.path: e.blob_sha256 for e in local_store.list_files(model, head)}
    Attestor(local_store, settings().signing_key).record("train", "model", model, head, files, materials=[],
                                                         command="fmhub train", config={"epochs": 1})
    with Hub.open(hub_url) as anonymous, Hub.open(hub_url, tokens.alice) as alice:
        assert anonymous.hub_public_key().fingerprint == alice.hub_public_key().fingerprint
        [record] = anonymous.list_attestations(model)
        assert record.kind == "train" and record.commit == head
        links = anonymous.provenance(model)
        assert first_failure(links) is None and links[0].detail.startswith("train attested by the hub")
        data = bytearray(alice.read_bytes(model, "weights.onnx"))
        data[0] ^= 1
        alice.commit(model, [UploadFile("weights.onnx", bytes(data))], title="swap")
        failure = first_failure(anonymous.provenance(model))
        assert failure is not None and failure.reason == "changed" and failure.item == "weights.onnx"


def test_a_data_import_over_http_is_attested_by_the_server(hub_url: str, tokens, tmp_path: Path, capsys) -> None:
    """``fmhub data import --endpoint``: the client imports, the server attests (its key, its store's files);
    only a writer of the dataset may ask, and only about a dataset an import wrote."""
    from fmhub.signing import open_envelope

    source = tmp_path / "topics.csv"
    source.write_text("text,label\n" + "".join(f"words {i},{'a' if i % 2 else 'b'}\n" for i in range(20)))
    assert main(["data", "import", str(source), "acme/topics", "--split", "train=0.5,test=0.5",
                 "--endpoint", hub_url, "--token", tokens.alice]) == 0
    capsys.readouterr()
    with Hub.open(hub_url) as anonymous, Hub.open(hub_url, tokens.bob) as bob, \
            Hub.open(hub_url, tokens.alice) as alice:
        [record] = anonymous.list_attestations("acme/topics", repo_type="dataset")
        statement = open_envelope(record.envelope, anonymous.hub_public_key(), what="acme/topics")
        assert record.kind == "import" and statement["predicate"]["buildDefinition"]["externalParameters"][
            "config"]["source"] == "topics.csv"
        with pytest.raises(PermissionDeniedError):  # bob reads acme, does not write it
            bob.attest_import("acme/topics", record.commit)
        assert alice.attest_import("acme/topics", record.commit).envelope == record.envelope  # once per commit
        plain = alice.commit("acme/topics", [UploadFile("notes.txt", b"hand-written")], repo_type="dataset",
                             title="notes").oid
        alice.commit("acme/topics", [UploadFile("README.md", b"# hand-written card\n")], repo_type="dataset",
                     title="card")
        card_gone = alice.repo_info("acme/topics", repo_type="dataset").commit.oid
        assert plain != card_gone
        response = httpx.post(f"{hub_url}/api/fmhub/attestations", headers={"authorization": f"Bearer {tokens.alice}"},
                              json={"repo": "acme/topics", "commit": card_gone, "kind": "import",
                                    "repo_type": "dataset"})
        assert response.status_code == 400 and "not an fmhub data import" in response.text
        response = httpx.post(f"{hub_url}/api/fmhub/attestations", headers={"authorization": f"Bearer {tokens.alice}"},
                              json={"repo": "acme/topics", "commit": card_gone, "kind": "import"})
        assert response.status_code == 400 and "repo_type dataset" in response.text


def test_model_page_shows_the_signature(hub_url: str, tokens, model: str, release) -> None:
    def panel() -> str:
        page = httpx.get(f"{hub_url}/{model}", headers={"Accept": "text/html"})
        assert page.status_code == 200
        return page.text[page.text.index("<h2>Signature</h2>"):][:800]

    assert "Not signed" in panel()
    with Hub.open(hub_url, tokens.alice) as alice:
        alice.add_signing_key("acme", release.public_path.read_text(), name="release")
        alice.sign(model, release.private_path)
        assert f"Signed by release ({release.fingerprint[:16]})" in panel()
        alice.commit(model, [UploadFile("config.json", b"{}")], title="edit")
    assert "config.json in this version changed since it was signed" in panel()
