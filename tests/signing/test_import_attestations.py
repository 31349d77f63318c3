"""Data imports are attested by the hub: ``fmhub data import`` (texts and images) leaves an import attestation of
the version's files, its source (the sha256 manifest of the files read) and recipe; a model's provenance chain
ends at it, and data changed since the import, a forged or an edited attestation break the chain, naming the item."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest
from sqlalchemy import select, update

from fmhub.cli import main
from fmhub.client import Hub, UploadFile
from fmhub.constants import settings
from fmhub.data._import import ImportOptions, import_dataset
from fmhub.errors import InvalidInputError, SignatureError
from fmhub.signing import Attestor, Material, attested_files, create_key_pair, first_failure, open_envelope
from fmhub.signing import _tables as t
from fmhub.store import open_store

DATA = "acme/topics"
MODEL = "acme/clf"


@pytest.fixture
def source(tmp_path: Path) -> Path:
    rows = ["text,label"] + [f"{'goal match team' if i % 2 else 'chip code cloud'} {i},{'sport' if i % 2 else 'tech'}"
                             for i in range(40)]
    path = tmp_path / "topics.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.fixture
def imported(source: Path) -> str:
    """DATA imported from ``source``; returns the commit."""
    with Hub.open() as hub:
        return import_dataset(hub, source, DATA, ImportOptions(split="train=0.5,test=0.5")).commit.oid


def _statement(hub: Hub, repo: str, kind: str, repo_type: str = "dataset") -> dict:
    records = [r for r in hub.list_attestations(repo, repo_type=repo_type) if r.kind == kind]
    assert len(records) == 1, records
    return open_envelope(records[0].envelope, hub.hub_public_key(), what=repo)


def _model_trained_on(hub: Hub, data_commit: str) -> str:
    """A model version the hub attests as trained on ``DATA@data_commit`` (no training: the stage is not under
    test here, the chain is). Returns the model commit."""
    hub.create_repo(MODEL, exist_ok=True)
    commit = hub.commit(MODEL, [UploadFile("weights.npy", b"weights"), UploadFile("config.json", b"{}")],
                        title="a trained model").oid
    files = {e.path: e.blob_sha256 for e in hub.list_files(MODEL, commit)}
    with open_store() as store:
        Attestor(store, settings().signing_key).record(
            "train", "model", MODEL, commit, files, command="fmhub train", config={},
            materials=[Material("dataset", DATA, data_commit, "dataset")])
    return commit


def test_a_text_import_is_attested(source: Path, imported: str) -> None:
    with Hub.open() as hub:
        statement = _statement(hub, DATA, "import")
        files = {e.path: e.blob_sha256 for e in hub.list_files(DATA, imported, repo_type="dataset")}
    definition = statement["predicate"]["buildDefinition"]
    assert definition["buildType"].endswith("/import/v1")
    assert definition["externalParameters"]["output"] == {"repo": DATA, "repo_type": "dataset", "commit": imported}
    # Every data file and the quality report, as the store holds them (the card is not: it may be edited later).
    assert attested_files(statement) == {p: d for p, d in files.items() if p not in ("README.md", ".gitattributes")}
    assert any(p.startswith("data/train-") for p in attested_files(statement)) and "quality.json" in files
    config = definition["externalParameters"]["config"]
    assert config["source"] == "topics.csv" and config["content_hash"].startswith("sha256:")
    assert config["split_recipe"]["ratios"] == {"train": 0.5, "test": 0.5}
    # The source manifest is sha256sum's output over the file read: anyone holding the source can check it.
    line = f"{hashlib.sha256(source.read_bytes()).hexdigest()}  topics.csv\n"
    assert config["source_files"] == {"sha256": hashlib.sha256(line.encode()).hexdigest(), "files": 1,
                                      "bytes": source.stat().st_size}
    assert definition["resolvedDependencies"] == []


def test_importing_the_same_source_again_attests_once(source: Path, imported: str) -> None:
    with Hub.open() as hub:
        again = import_dataset(hub, source, DATA, ImportOptions(split="train=0.5,test=0.5")).commit.oid
        assert again == imported
        assert [r.kind for r in hub.list_attestations(DATA, repo_type="dataset")] == ["import"]


def test_an_image_import_is_attested(tiny_images: str, digits_folder: Path) -> None:
    with Hub.open() as hub:
        statement = _statement(hub, tiny_images, "import")
        head = hub.repo_info(tiny_images, repo_type="dataset").commit.oid
        files = {e.path: e.blob_sha256 for e in hub.list_files(tiny_images, head, repo_type="dataset")}
    assert attested_files(statement) == {p: d for p, d in files.items() if p not in ("README.md", ".gitattributes")}
    config = statement["predicate"]["buildDefinition"]["externalParameters"]["config"]
    assert config["source"] == "digits" and config["source_files"]["files"] == 120  # <digit>/<n>.png, each hashed
    lines = sorted((f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.relative_to(digits_folder).as_posix()}\n"
                    for p in digits_folder.rglob("*.png")), key=lambda line: line[66:])
    assert config["source_files"]["sha256"] == hashlib.sha256("".join(lines).encode()).hexdigest()


def test_a_dataset_not_written_by_an_import_is_not_attested_as_one(tmp_path: Path) -> None:
    with Hub.open() as hub:
        hub.create_repo("acme/raw", repo_type="dataset")
        commit = hub.commit("acme/raw", [UploadFile("data.csv", b"a,b\n")], repo_type="dataset", title="upload").oid
        with pytest.raises(InvalidInputError, match="not an fmhub data import"):
            hub.attest_import("acme/raw", commit)


def test_the_chain_of_a_model_ends_at_the_import(imported: str, capsys, tmp_path: Path) -> None:
    with Hub.open() as hub:
        _model_trained_on(hub, imported)
        links = hub.provenance(MODEL)
        release = create_key_pair(tmp_path / "release.key")
        hub.add_signing_key("acme", release.public_path.read_text(), name="release")
        hub.sign(MODEL, release.private_path)
    assert first_failure(links) is None, [link.detail for link in links if not link.ok]
    [data] = [link for link in links if link.role == "dataset"]
    assert data.depth == 1 and data.ok and data.reason is None
    assert data.detail.startswith(f"import attested by the hub at {imported[:12]}") and "topics.csv" in data.detail
    assert main(["verify", MODEL]) == 0
    assert "import attested by the hub" in capsys.readouterr().out


def test_data_changed_after_the_import_breaks_the_chain(imported: str, capsys, tmp_path: Path) -> None:
    """A shard replaced by a later commit, and a model trained on that commit: the hub attested other rows."""
    with Hub.open() as hub:
        shard = next(e.path for e in hub.list_files(DATA, imported, repo_type="dataset")
                     if e.path.startswith("data/train-"))
        tampered = hub.commit(DATA, [UploadFile(shard, b"PAR1 not the imported rows PAR1")], repo_type="dataset",
                              title="swap the training rows").oid
        _model_trained_on(hub, tampered)
        failure = first_failure(hub.provenance(MODEL))
        release = create_key_pair(tmp_path / "release.key")
        hub.add_signing_key("acme", release.public_path.read_text(), name="release")
        hub.sign(MODEL, release.private_path)  # the model itself is signed and intact: only its data is not
    assert isinstance(failure, SignatureError) and failure.reason == "changed" and failure.item == shard
    assert f"{shard} changed since the hub attested it (import at {imported[:12]})" in failure.message
    assert main(["verify", MODEL]) == 2
    captured = capsys.readouterr()
    assert "✓" in captured.out and shard in captured.err


def test_an_edited_import_attestation_is_refused(imported: str) -> None:
    """The stored envelope's statement edited (a shard's digest replaced): its signature no longer holds."""
    with Hub.open() as hub:
        data_files = {e.path: e.blob_sha256 for e in hub.list_files(DATA, imported, repo_type="dataset")}
    with open_store() as store:
        with store.db.write() as conn:
            pk, envelope = conn.execute(select(t.attestations.c.pk, t.attestations.c.envelope).where(
                t.attestations.c.repo_id == DATA, t.attestations.c.kind == "import")).one()
            data = json.loads(envelope)
            payload = base64.b64decode(data["payload"]).decode()
            shard = next(p for p in data_files if p.startswith("data/"))
            data["payload"] = base64.b64encode(payload.replace(data_files[shard], "0" * 64).encode()).decode()
            conn.execute(update(t.attestations).where(t.attestations.c.pk == pk).values(envelope=json.dumps(data)))
    with Hub.open() as hub:
        _model_trained_on(hub, imported)
        failure = first_failure(hub.provenance(MODEL))
    assert isinstance(failure, SignatureError) and failure.reason == "invalid"
    assert "does not verify with the hub's key" in failure.message and failure.item == f"{DATA}@{imported[:12]}"


def test_an_import_attestation_by_another_key_is_refused(imported: str, tmp_path: Path) -> None:
    impostor = create_key_pair(tmp_path / "impostor.key")
    with Hub.open() as hub:
        tampered = hub.commit(DATA, [UploadFile("data/extra.parquet", b"rows")], repo_type="dataset",
                              title="add rows").oid
    with open_store() as store:  # a newer "import" of the tampered commit, signed by someone else
        Attestor(store, impostor.private_path).attest_import(DATA, tampered)
    with Hub.open() as hub:
        _model_trained_on(hub, tampered)
        failure = first_failure(hub.provenance(MODEL))
    assert isinstance(failure, SignatureError) and failure.reason == "untrusted"
