"""Hub attestations: training, report cards and optimized variants are attested by the hub's key; the chain
from a variant back to its data is checked link by link; a card edited after attestation and an attestation
naming a data commit that does not exist are detected, naming the item."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fmhub.cli import main
from fmhub.client import Hub, UploadFile
from fmhub.constants import settings
from fmhub.errors import SignatureError
from fmhub.evaluate import EvalConfig, evaluate
from fmhub.optimize import quantize
from fmhub.signing import (
    PREDICATE_TYPE,
    Attestor,
    Material,
    attested_files,
    create_key_pair,
    first_failure,
    open_envelope,
)
from fmhub.store import open_store

pytestmark = pytest.mark.slow


@pytest.fixture
def lifecycle(classifier: str, tiny_data: str) -> dict[str, str]:
    """train (the classifier fixture) → eval --push → quantize: every stage committed through the hub."""
    with Hub.open() as hub:
        evaluate(EvalConfig(model=classifier, data=tiny_data, skip=("robustness", "efficiency", "baseline")), hub,
                 push=True)
        variant = quantize(classifier, "acme/clf-int8", backend="torch", report=False, hub=hub)
    return {"model": classifier, "data": tiny_data, "variant": variant.repo}


def test_each_stage_is_attested_by_the_hub(lifecycle: dict[str, str]) -> None:
    with Hub.open() as hub:
        key = hub.hub_public_key()
        kinds = {}
        for repo in (lifecycle["model"], lifecycle["variant"]):
            for record in hub.list_attestations(repo):
                statement = open_envelope(record.envelope, key, what=repo)
                assert statement["predicateType"] == PREDICATE_TYPE
                kinds[(repo, record.kind)] = statement
        train = kinds[(lifecycle["model"], "train")]
        definition = train["predicate"]["buildDefinition"]
        roles = {d["annotations"]["role"]: d["name"] for d in definition["resolvedDependencies"]}
        assert roles == {"base_model": "acme/tiny-bert", "dataset": lifecycle["data"]}
        assert definition["externalParameters"]["config"]["epochs"] == 2
        assert "torch" in definition["internalParameters"]["environment"]["libraries"]
        files = {e.path: e.blob_sha256 for e in hub.list_files(lifecycle["model"], train["predicate"][
            "buildDefinition"]["externalParameters"]["output"]["commit"])}
        assert attested_files(train) == {p: d for p, d in files.items() if p.endswith((".safetensors", ".json",
                                                                                        ".txt"))}
        card = kinds[(lifecycle["model"], "evaluate")]
        assert "eval/acme/topics/test/report.json" in attested_files(card)
        optimize = kinds[(lifecycle["variant"], "optimize")]
        [parent] = optimize["predicate"]["buildDefinition"]["resolvedDependencies"]
        assert parent["name"] == lifecycle["model"] and parent["annotations"]["role"] == "parent"
        # No private key anywhere near a statement or the database.
        assert "PRIVATE" not in json.dumps(list(kinds.values())) and settings().signing_key.stat().st_mode & 0o077 == 0
    database = [p for p in settings().home.iterdir() if p.name.startswith("fmhub.db")]  # with its WAL
    assert database and not any(b"PRIVATE KEY" in p.read_bytes() for p in database)


def test_chain_from_variant_back_to_data(lifecycle: dict[str, str], tmp_path: Path, capsys) -> None:
    with Hub.open() as hub:
        links = hub.provenance(lifecycle["variant"])
        assert first_failure(links) is None, [link.detail for link in links if not link.ok]
        chain = [(link.depth, link.role, link.subject.split("@")[0]) for link in links]
        assert (0, "model", lifecycle["variant"]) in chain
        assert (1, "parent", lifecycle["model"]) in chain
        assert (2, "dataset", lifecycle["data"]) in chain
        assert (2, "base_model", "acme/tiny-bert") in chain
        assert any(link.role == "evaluate" and link.ok and link.reason is None for link in links)
        release = create_key_pair(tmp_path / "release.key")
        hub.add_signing_key("acme", release.public_path.read_text(), name="release")
        hub.sign(lifecycle["variant"], release.private_path)
    assert main(["verify", lifecycle["variant"]]) == 0
    out = capsys.readouterr().out
    assert "optimize attested by the hub" in out and "train attested by the hub" in out
    assert "computed by the hub from" in out
    # Pinning another key as the hub's: every attestation fails, the signature alone still holds.
    assert main(["verify", lifecycle["variant"], "--hub-key", str(release.public_path)]) == 2
    assert "not signed by this hub's key" in capsys.readouterr().err
    assert main(["verify", lifecycle["variant"], "--hub-key", str(release.public_path), "--no-provenance"]) == 0


def test_report_card_edited_after_attestation(lifecycle: dict[str, str]) -> None:
    path = "eval/acme/topics/test/report.json"
    with Hub.open() as hub:
        report = json.loads(hub.read_bytes(lifecycle["model"], path))
        report["metrics"]["accuracy"] = 0.999  # a better number than the hub computed
        hub.commit(lifecycle["model"], [UploadFile(path, json.dumps(report).encode())], title="improve the card")
        failure = first_failure(hub.provenance(lifecycle["model"]))
    assert failure is not None and failure.reason == "changed" and failure.item == path
    assert path in failure.message


def test_attestation_naming_a_data_commit_that_does_not_exist(lifecycle: dict[str, str]) -> None:
    missing = "0" * 40
    with Hub.open() as hub:
        head = hub.repo_info(lifecycle["model"]).commit.oid
        files = {e.path: e.blob_sha256 for e in hub.list_files(lifecycle["model"], head)
                 if e.path.endswith(".safetensors")}
    with open_store() as store:  # signed by the hub's key, but naming an input the hub never held
        Attestor(store, settings().signing_key).record(
            "train", "model", lifecycle["model"], head, files, command="fmhub train", config={},
            materials=[Material("dataset", lifecycle["data"], missing, "dataset")], check_inputs=False)
    with Hub.open() as hub:
        failure = first_failure(hub.provenance(lifecycle["model"]))
    assert failure is not None and failure.reason == "unknown-input"
    assert failure.item == f"{lifecycle['data']}@{missing}"
    with open_store() as store, pytest.raises(Exception, match="does not exist on this hub"):
        Attestor(store, settings().signing_key).record(  # the hub itself never attests an unknown input
            "train", "model", lifecycle["model"], head, files, command="fmhub train", config={},
            materials=[Material("dataset", lifecycle["data"], missing, "dataset")])


def test_attestation_by_another_key_is_refused(lifecycle: dict[str, str], tmp_path: Path) -> None:
    impostor = create_key_pair(tmp_path / "impostor.key")
    with Hub.open() as hub:
        head = hub.repo_info(lifecycle["model"]).commit.oid
    with open_store() as store:
        Attestor(store, impostor.private_path).record(
            "train", "model", lifecycle["model"], head, {"config.json": "0" * 64}, command="forged", config={},
            materials=[])
    with Hub.open() as hub:
        failure = first_failure(hub.provenance(lifecycle["model"]))
    assert isinstance(failure, SignatureError) and failure.reason == "untrusted"
