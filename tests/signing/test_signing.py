"""Signed model versions on the embedded hub: sign, verify, trusted keys, and the tamper matrix — each attack
detected with the failing file or key named; a clean version verifies."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from fmhub.cli import main
from fmhub.client import Hub, UploadFile
from fmhub.errors import InvalidInputError, SignatureError
from fmhub.signing import SIGNATURE_FILE, TrustedKey, create_key_pair, is_unsigned_path, sign_folder, verify_folder
from fmhub.store import CopyFile, DeleteFile

REPO = "acme/tiny"


def _weights(folder: Path, seed: int = 0) -> Path:
    """A small model folder: safetensors weights, a config, a card."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    save_file({"embed.weight": rng.standard_normal((64, 32)).astype(np.float32),
               "head.weight": rng.standard_normal((2, 32)).astype(np.float32)}, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps({"hidden_size": 32, "seed": seed}))
    (folder / "README.md").write_text("# tiny\n")
    return folder


def _flipped(data: bytes) -> bytes:
    """The same file with one byte of the weights (the last tensor byte) flipped."""
    raw = bytearray(data)
    raw[-1] ^= 0x01
    return bytes(raw)


@pytest.fixture
def keys(tmp_path: Path):
    release = create_key_pair(tmp_path / "keys" / "release.key")
    other = create_key_pair(tmp_path / "keys" / "other.key")
    return release, other


@pytest.fixture
def hub(tmp_path: Path):
    with Hub.open() as opened:
        opened.upload(_weights(tmp_path / "model"), REPO)
        yield opened


@pytest.fixture
def signed(hub: Hub, keys) -> str:
    """REPO signed by the release key, which acme trusts; returns the signed commit."""
    release, _ = keys
    hub.add_signing_key("acme", release.public_path.read_text(), name="release")
    return hub.sign(REPO, release.private_path).oid


def _fails(hub: Hub, reason: str, item: str, revision: str | None = None, **kwargs) -> SignatureError:
    with pytest.raises(SignatureError) as caught:
        hub.verify(REPO, revision, **kwargs)
    assert caught.value.reason == reason, caught.value.message
    assert caught.value.item == item
    assert item[:16] in caught.value.message
    return caught.value


# -- keys ------------------------------------------------------------------------------------------


def test_key_pair_private_key_is_owner_only(keys) -> None:
    release, _ = keys
    assert stat.S_IMODE(os.stat(release.private_path).st_mode) == 0o600
    assert release.public_path.read_text().startswith("-----BEGIN PUBLIC KEY-----")
    assert b"PRIVATE" not in release.public_path.read_bytes()
    assert TrustedKey.from_pem(release.public_path.read_bytes()).fingerprint == release.fingerprint


def test_keys_create_refuses_to_overwrite(keys, tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="exists"):
        create_key_pair(tmp_path / "keys" / "release.key")


def test_trusted_keys_add_list_revoke(hub: Hub, keys) -> None:
    release, other = keys
    added = hub.add_signing_key("acme", release.public_path.read_text(), name="release")
    assert hub.add_signing_key("acme", release.public_path.read_text()) == added  # idempotent
    hub.add_signing_key("acme", other.public_path.read_text(), name="other")
    assert [k.name for k in hub.list_signing_keys("acme")] == ["release", "other"]
    assert hub.list_signing_keys("someone-else") == []
    revoked = hub.revoke_signing_key("acme", release.fingerprint[:10])
    assert revoked.revoked_at is not None
    with pytest.raises(InvalidInputError, match="revoked"):
        hub.add_signing_key("acme", release.public_path.read_text())
    with pytest.raises(InvalidInputError, match="not a PEM public key"):
        hub.add_signing_key("acme", release.private_path.read_text())


# -- a clean version ---------------------------------------------------------------------------------


def test_clean_version_verifies(hub: Hub, signed: str, keys) -> None:
    release, _ = keys
    assert SIGNATURE_FILE in {e.path for e in hub.list_files(REPO, signed)}
    verified = hub.verify(REPO)
    assert verified.commit == signed
    assert verified.signature.key.fingerprint == release.fingerprint
    assert verified.signature.model_name == REPO
    assert set(verified.signature.files) == {"model.safetensors", "config.json", "README.md"}


def test_signature_is_the_openssf_format(hub: Hub, signed: str, keys, tmp_path: Path) -> None:
    """The committed model.sig verifies with model-signing's own verifier, offline, on a downloaded copy."""
    from model_signing import verifying

    release, _ = keys
    folder = hub.download(REPO, local_dir=tmp_path / "copy")
    verifying.Config().use_elliptic_key_verifier(public_key=release.public_path).verify(folder,
                                                                                     folder / SIGNATURE_FILE)


def test_a_signature_by_the_model_signing_tool_verifies_here(tmp_path: Path, keys) -> None:
    """The other direction: model-signing's own signer writes a model.sig that fmhub reads, and a flipped byte
    after signing is named."""
    from model_signing import hashing, signing

    release, _ = keys
    folder = _weights(tmp_path / "theirs")
    signing.Config().use_elliptic_key_signer(private_key=release.private_path).set_hashing_config(
        hashing.Config().use_file_serialization(hashing_algorithm="sha256").set_ignored_paths(
            paths=["model.sig"], ignore_git_paths=True)).sign(folder, folder / SIGNATURE_FILE)
    trusted = [TrustedKey.from_pem(release.public_path.read_bytes())]
    signed = verify_folder(folder, trusted)
    assert signed.key.fingerprint == release.fingerprint
    assert set(signed.files) == {"model.safetensors", "config.json", "README.md"}
    (folder / "model.safetensors").write_bytes(_flipped((folder / "model.safetensors").read_bytes()))
    with pytest.raises(SignatureError, match="model.safetensors") as failed:
        verify_folder(folder, trusted)
    assert failed.value.reason == "changed"


def test_a_symlink_or_a_missing_folder_is_not_signed(tmp_path: Path, keys) -> None:
    """As model-signing: a symbolic link in the folder (it could point anywhere) is refused, naming it."""
    release, _ = keys
    folder = _weights(tmp_path / "m")
    (folder / "extra.bin").symlink_to(folder / "config.json")
    with pytest.raises(SignatureError, match="extra.bin.*symlink"):
        sign_folder(folder, release.private_path)
    with pytest.raises(SignatureError, match="not a folder"):
        sign_folder(tmp_path / "missing", release.private_path)


def test_an_altered_statement_is_refused(tmp_path: Path, keys) -> None:
    """A bundle whose payload was edited (a digest swapped) no longer verifies with the key."""
    import base64

    release, _ = keys
    folder = _weights(tmp_path / "m")
    bundle = json.loads(sign_folder(folder, release.private_path))
    payload = base64.b64decode(bundle["dsseEnvelope"]["payload"]).replace(b'"sha256"', b'"sha256" ', 1)
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(payload).decode()
    with pytest.raises(SignatureError, match="does not verify") as failed:
        verify_folder(folder, [TrustedKey.from_pem(release.public_path.read_bytes())],
                      signature=json.dumps(bundle).encode())
    assert failed.value.reason == "invalid"


def test_sign_refuses_a_tag(hub: Hub, keys) -> None:
    release, _ = keys
    hub.create_tag(REPO, "v1")
    hub.upload(_weights(Path(hub.download(REPO)).parent / "v2", seed=1), REPO)
    with pytest.raises(InvalidInputError, match="not a branch head"):
        hub.sign(REPO, release.private_path, revision="v1")


# -- the tamper matrix ------------------------------------------------------------------------------


def test_unsigned_version_is_refused(hub: Hub) -> None:
    _fails(hub, "missing", SIGNATURE_FILE)


def test_weight_byte_flipped(hub: Hub, signed: str) -> None:
    data = _flipped(hub.read_bytes(REPO, "model.safetensors"))
    hub.commit(REPO, [UploadFile("model.safetensors", data)], title="swap weights")
    _fails(hub, "changed", "model.safetensors")


def test_weight_byte_flipped_in_the_downloaded_copy(hub: Hub, signed: str) -> None:
    folder = hub.verify(REPO).folder
    (folder / "model.safetensors").write_bytes(_flipped((folder / "model.safetensors").read_bytes()))
    _fails(hub, "changed", "model.safetensors")


def test_sign_signs_the_hubs_bytes_not_an_edited_cached_copy(hub: Hub, keys) -> None:
    """What is signed is what the hub holds, each file read once: the embedded hub hashes its store's blobs (no
    copy); a client fetching files (the remote one) hashes its snapshot cache, and signs it only when it is the
    commit's files — a cached file edited (same size) or a file left over is not signed, a fresh checked copy is."""
    from fmhub.client import Hub as BaseHub

    release, _ = keys
    hub.add_signing_key("acme", release.public_path.read_text(), name="release")
    repo, commit = hub.get_repo(REPO), hub.repo_info(REPO).commit.oid
    expected = {e.path: e.blob_sha256 for e in hub.list_files(REPO, commit) if not is_unsigned_path(e.path)}
    folder = hub.download(REPO, revision=commit)  # the snapshot cache
    (folder / "model.safetensors").write_bytes(_flipped((folder / "model.safetensors").read_bytes()))
    (folder / "notes.txt").write_text("not in the commit")
    assert BaseHub._hash_for_signing(hub, repo, commit, expected) == expected  # the fetching client's way
    hub.sign(REPO, release.private_path)
    signature = hub.read_bytes(REPO, SIGNATURE_FILE)
    trusted = [TrustedKey.from_pem(release.public_path.read_bytes())]
    fresh = hub.download(REPO, revision=commit, local_dir=folder.parent / "fresh")
    assert verify_folder(fresh, trusted, signature=signature).files == expected
    with pytest.raises(SignatureError, match="model.safetensors"):  # the edited copy is what was not signed
        verify_folder(folder, trusted, signature=signature)


def test_sign_refuses_a_damaged_blob(hub: Hub, keys, tmp_path: Path) -> None:
    """A stored blob whose bytes no longer hash to the commit's sha256 is not signed (nor fetched with verify):
    the error names the file and points to fsck."""
    from fmhub.errors import IntegrityError

    release, _ = keys
    entry = next(e for e in hub.list_files(REPO) if e.path == "model.safetensors")
    blob = hub.store.blobs.local_path(entry.blob_sha256)
    blob.chmod(0o644)
    blob.write_bytes(_flipped(blob.read_bytes()))
    with pytest.raises(IntegrityError, match="model.safetensors") as caught:
        hub.sign(REPO, release.private_path)
    assert "fsck" in caught.value.hint
    with pytest.raises(IntegrityError, match="model.safetensors"):
        hub.download(REPO, local_dir=tmp_path / "copy", verify=True)
    assert SIGNATURE_FILE not in {e.path for e in hub.list_files(REPO)}


def test_file_added(hub: Hub, signed: str) -> None:
    hub.commit(REPO, [UploadFile("extra.json", b"{}")], title="add a file")
    _fails(hub, "added", "extra.json")


def test_file_removed(hub: Hub, signed: str) -> None:
    hub.commit(REPO, [DeleteFile("config.json")], title="remove a file")
    _fails(hub, "removed", "config.json")


def test_file_renamed(hub: Hub, signed: str) -> None:
    hub.commit(REPO, [CopyFile("config.json", "config2.json"), DeleteFile("config.json")], title="rename")
    error = _fails(hub, "renamed", "config.json")
    assert "config2.json" in error.message


def test_signature_from_another_commit_replayed(hub: Hub, keys, tmp_path: Path) -> None:
    """A valid signature by the trusted key, made for another commit (other weights), copied onto this one."""
    release, _ = keys
    hub.add_signing_key("acme", release.public_path.read_text(), name="release")
    hub.upload(_weights(tmp_path / "other", seed=7), "acme/other")
    other_signed = hub.sign("acme/other", release.private_path).oid
    hub.verify("acme/other")
    replayed = hub.read_bytes("acme/other", SIGNATURE_FILE, other_signed)
    hub.commit(REPO, [UploadFile(SIGNATURE_FILE, replayed)], title="replay another commit's signature")
    _fails(hub, "changed", "config.json")  # the first changed file, in order; the weights changed too
    with pytest.raises(SignatureError, match="more file"):
        hub.verify(REPO)


def test_signature_by_a_revoked_key(hub: Hub, signed: str, keys) -> None:
    release, _ = keys
    hub.verify(REPO)  # fine until the revocation
    hub.revoke_signing_key("acme", release.fingerprint)
    _fails(hub, "revoked", release.fingerprint)
    # Trusting the key locally does not undo the org's revocation.
    _fails(hub, "revoked", release.fingerprint,
           trust=[TrustedKey.from_pem(release.public_path.read_bytes())])


def test_signature_by_an_untrusted_key(hub: Hub, keys) -> None:
    _, other = keys
    hub.sign(REPO, other.private_path)
    _fails(hub, "untrusted", other.fingerprint)
    assert hub.verify(REPO, trust=[TrustedKey.from_pem(other.public_path.read_bytes())]).signature.key.fingerprint \
        == other.fingerprint


def test_signature_edited(hub: Hub, signed: str) -> None:
    bundle = json.loads(hub.read_bytes(REPO, SIGNATURE_FILE))
    import base64

    statement = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    statement["predicate"]["resources"][0]["digest"] = "0" * 64  # claim other bytes for a file
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    hub.commit(REPO, [UploadFile(SIGNATURE_FILE, json.dumps(bundle).encode())], title="forge")
    _fails(hub, "invalid", SIGNATURE_FILE)


def test_verify_folder_offline(tmp_path: Path, keys) -> None:
    """The library level, no hub: sign a folder, verify it with the public key only."""
    release, other = keys
    folder = _weights(tmp_path / "offline")
    (folder / SIGNATURE_FILE).write_bytes(sign_folder(folder, release.private_path, name="offline"))
    trusted = [TrustedKey.from_pem(release.public_path.read_bytes())]
    assert verify_folder(folder, trusted).model_name == "offline"
    (folder / "notes.txt").write_text("planted")
    with pytest.raises(SignatureError, match="notes.txt"):
        verify_folder(folder, trusted)


# -- the CLI -----------------------------------------------------------------------------------------


def test_cli_keys_sign_verify(hub: Hub, tmp_path: Path, capsys) -> None:
    key = tmp_path / "cli" / "me.key"
    assert main(["keys", "create", str(key)]) == 0
    fingerprint = capsys.readouterr().out.strip()
    assert main(["keys", "add", "acme", str(key.with_suffix(".pub"))]) == 0
    assert main(["verify", REPO]) == 2
    assert "not signed" in capsys.readouterr().err
    assert main(["sign", f"{REPO}@main", "--key", str(key)]) == 0
    assert main(["verify", REPO]) == 0
    assert "files signed by key me" in capsys.readouterr().out
    assert main(["download", REPO, "--verify"]) == 0
    assert main(["keys", "revoke", "acme", fingerprint[:12]]) == 0
    capsys.readouterr()
    assert main(["download", REPO, "--verify"]) == 2
    err = capsys.readouterr()
    assert "revoked" in err.err and err.out == ""  # no folder printed for a refused version
    assert main(["keys", "list", "acme"]) == 0
    assert "revoked" in capsys.readouterr().out


def test_cli_download_verify_names_the_changed_file(hub: Hub, signed: str, capsys) -> None:
    folder = hub.download(REPO)
    # Same size, one byte changed: the cache's size check keeps the file; the signature check does not.
    (folder / "config.json").write_bytes(_flipped((folder / "config.json").read_bytes()))
    assert main(["download", REPO, "--verify"]) == 2
    assert "config.json" in capsys.readouterr().err


def test_cli_verify_trust_file(hub: Hub, keys, capsys) -> None:
    _, other = keys
    hub.sign(REPO, other.private_path)
    assert main(["verify", REPO]) == 2
    assert main(["verify", REPO, "--trust", str(other.public_path)]) == 0
    assert main(["verify", REPO, "--trust", str(other.private_path)]) == 2
    assert "not a PEM public key" in capsys.readouterr().err


# -- per-namespace policy: protected refs only move to signed commits ---------------------------------------


def test_policy_protects_a_ref(hub: Hub, keys, tmp_path: Path) -> None:
    release, other = keys
    hub.add_signing_key("acme", release.public_path.read_text(), name="release")
    hub.add_signing_policy("acme", "prod")
    hub.add_signing_policy("acme", "release-*")
    assert [p.ref_pattern for p in hub.list_signing_policies("acme")] == ["prod", "release-*"]
    with pytest.raises(SignatureError, match="only moves to signed commits") as caught:
        hub.create_branch(REPO, "prod")
    assert caught.value.reason == "missing"
    hub.create_branch(REPO, "dev")  # other refs are free
    with pytest.raises(SignatureError, match="not trusted"):  # signed, but by a key acme does not trust
        hub.create_tag(REPO, "release-1", revision=hub.sign(REPO, other.private_path).oid)
    signed = hub.sign(REPO, release.private_path).oid
    assert hub.create_branch(REPO, "prod", revision=signed).commit_oid == signed
    assert hub.create_tag(REPO, "release-1", revision=signed).commit_oid == signed
    # A commit onto the protected branch that changes signed files is refused; the branch stays.
    with pytest.raises(SignatureError) as caught:
        hub.commit(REPO, [UploadFile("config.json", b"{}")], revision="prod", title="hotfix")
    assert caught.value.item == "config.json"
    assert hub.repo_info(REPO, revision="prod").commit.oid == signed
    hub.revoke_signing_key("acme", release.fingerprint)
    with pytest.raises(SignatureError, match="revoked"):
        hub.create_tag(REPO, "release-2", revision=signed)
    hub.remove_signing_policy("acme", "release-*")
    hub.create_tag(REPO, "release-2", revision=signed)
    assert main(["keys", "policy", "list", "acme"]) == 0
