"""fmhub import-model: Hugging Face model folders in, safetensors-only repos out, pickles never run."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModel, AutoModelForMaskedLM, BertConfig, BertForMaskedLM, BertModel

from fmhub.cli import main
from fmhub.errors import InvalidInputError, RepoExistsError
from fmhub.importing import convert_pickle_weights, import_model
from fmhub.store import open_store
from fmhub.store.transfer import download_snapshot

TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37, vocab_size=99)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def repo_files(repo_id: str) -> dict[str, int]:
    with open_store() as store:
        return {entry.path: entry.size for entry in store.list_files(repo_id)}


def snapshot(repo_id: str, tmp_path: Path) -> Path:
    with open_store() as store:
        return download_snapshot(store, repo_id, local_dir=tmp_path / "snapshot")


def listing(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def assert_same_tensors(actual: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    assert sorted(actual) == sorted(expected)
    for name, tensor in expected.items():
        assert actual[name].dtype == tensor.dtype and torch.equal(actual[name], tensor), name


def pickled_model(folder: Path, model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A folder as transformers 4 wrote it with safe_serialization=False: config.json + pytorch_model.bin.

    transformers 5 saves only safetensors, so the state dict goes through torch.save (which keeps
    tied weights as one storage, as save_pretrained did).
    """
    model.config.architectures = [type(model).__name__]  # as save_pretrained records it
    model.config.save_pretrained(folder)
    state_dict = model.state_dict()
    torch.save(state_dict, folder / "pytorch_model.bin")
    return {name: tensor.detach().clone() for name, tensor in state_dict.items()}


@pytest.fixture
def bert() -> BertModel:
    torch.manual_seed(0)
    return BertModel(BertConfig(**TINY)).eval()


# -- folders already in safetensors ----------------------------------------------------------------


def test_import_safetensors_folder(capsys, tmp_path: Path, bert: BertModel) -> None:
    folder = tmp_path / "tiny-bert"
    bert.save_pretrained(folder)
    (folder / "README.md").write_text("# tiny\n")
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text('{"pooling_mode_mean_tokens": true}')
    (folder / ".gitattributes").write_text("*.safetensors filter=lfs diff=lfs merge=lfs -text\n")
    for internal in (".git/HEAD", ".cache/huggingface/download/model.safetensors.metadata", "__pycache__/x.pyc"):
        (folder / internal).parent.mkdir(parents=True, exist_ok=True)
        (folder / internal).write_text("internal")
    before = listing(folder)

    code, out, err = run(capsys, "import-model", str(folder), "acme/tiny-bert")

    assert code == 0, err
    files = repo_files("acme/tiny-bert")
    assert sorted(files) == [".gitattributes", "1_Pooling/config.json", "README.md", "config.json",
                             "model.safetensors"]
    with open_store() as store:
        commit = store.resolve_revision("acme/tiny-bert")
        assert commit.title == "Import tiny-bert" and commit.author == "tester"
        assert store.read_bytes("acme/tiny-bert", ".gitattributes") == before[".gitattributes"]
    assert "acme/tiny-bert" in out and commit.oid in out and "5 files" in out
    assert listing(folder) == before  # the source folder is only read


def test_import_model_python_api_and_exist_ok(local_store, tmp_path: Path, bert: BertModel) -> None:
    folder = tmp_path / "tiny-bert"
    bert.save_pretrained(folder)
    commit = import_model(local_store, folder, "acme/tiny", private=True, title="First", author="ann")
    repo = local_store.get_repo("acme/tiny")
    assert repo.private and commit.title == "First" and commit.author == "ann"
    assert [c.title for c in local_store.list_commits("acme/tiny")] == ["First", "initial commit"]

    with pytest.raises(RepoExistsError):
        import_model(local_store, folder, "acme/tiny", author="ann")
    (folder / "README.md").write_text("# tiny\n")
    second = import_model(local_store, folder, "acme/tiny", author="ann", exist_ok=True)
    assert second.parents == (commit.oid,)
    assert {e.path for e in local_store.list_files("acme/tiny")} >= {"README.md", "model.safetensors"}


def test_exist_ok_from_the_cli(capsys, tmp_path: Path, bert: BertModel) -> None:
    folder = tmp_path / "m"
    bert.save_pretrained(folder)
    assert run(capsys, "import-model", str(folder), "acme/m")[0] == 0
    code, _, err = run(capsys, "import-model", str(folder), "acme/m")
    assert code == 2 and "already exists" in err and "--exist-ok" in err
    code, out, _ = run(capsys, "import-model", str(folder), "acme/m", "--exist-ok")
    assert code == 0 and "no changes" in out


# -- pickle weights --------------------------------------------------------------------------------


def test_pytorch_bin_becomes_safetensors(capsys, tmp_path: Path, bert: BertModel) -> None:
    folder = tmp_path / "tiny-bin"
    folder.mkdir()
    original = pickled_model(folder, bert)
    before = listing(folder)

    code, out, err = run(capsys, "import-model", str(folder), "acme/tiny-bin", "-m", "From pickle")

    assert code == 0, err
    assert sorted(repo_files("acme/tiny-bin")) == [".gitattributes", "config.json", "model.safetensors"]
    assert "converted pytorch_model.bin → model.safetensors" in out
    assert listing(folder) == before  # converted in a temp folder, never beside the source

    local = snapshot("acme/tiny-bin", tmp_path)
    assert_same_tensors(load_file(local / "model.safetensors"), original)
    loaded = AutoModel.from_pretrained(local).eval()
    assert_same_tensors(loaded.state_dict(), original)
    ids = torch.tensor([[1, 5, 7, 2]])
    assert torch.equal(loaded(ids).last_hidden_state, bert(ids).last_hidden_state)


def test_tied_weights_are_left_for_the_model_to_retie(local_store, tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = BertForMaskedLM(BertConfig(**TINY)).eval()
    folder = tmp_path / "mlm"
    folder.mkdir()
    original = pickled_model(folder, model)
    loaded = torch.load(folder / "pytorch_model.bin", weights_only=True)
    assert (loaded["cls.predictions.decoder.weight"].data_ptr()
            == loaded["bert.embeddings.word_embeddings.weight"].data_ptr())  # the file really shares them

    import_model(local_store, folder, "acme/mlm")

    local = download_snapshot(local_store, "acme/mlm", local_dir=tmp_path / "snapshot")
    stored = load_file(local / "model.safetensors")
    # As save_pretrained writes it: the tied copies are left out, their sources kept.
    assert "cls.predictions.decoder.weight" not in stored and "cls.predictions.decoder.bias" not in stored
    assert_same_tensors(stored, {k: v for k, v in original.items()
                                 if k not in ("cls.predictions.decoder.weight", "cls.predictions.decoder.bias")})
    reloaded = AutoModelForMaskedLM.from_pretrained(local).eval()
    assert_same_tensors(reloaded.state_dict(), original)
    assert reloaded.cls.predictions.decoder.weight is reloaded.bert.embeddings.word_embeddings.weight
    ids = torch.tensor([[1, 5, 7, 2]])
    assert torch.equal(reloaded(ids).logits, model(ids).logits)
    # The base class finds the shared embeddings too (BertForMaskedLM has no pooler to compare).
    base = AutoModel.from_pretrained(local).state_dict()
    for name, tensor in original.items():
        if name.startswith("bert."):
            assert torch.equal(base[name.removeprefix("bert.")], tensor), name
    assert "tied duplicates" in local_store.resolve_revision("acme/mlm").message


def test_shared_tensors_without_declared_ties_are_kept_as_copies(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "unknown-to-transformers"}))
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    torch.save({"a": base, "alias": base, "row": base[1], "cols": base[:, 2:4], "own": torch.ones(3)},
               tmp_path / "pytorch_model.bin")

    converted = convert_pickle_weights(tmp_path / "pytorch_model.bin", tmp_path / "out" / "model.safetensors")

    assert converted.dropped == {} and sorted(converted.copied) == ["alias", "cols", "row"]
    assert_same_tensors(load_file(tmp_path / "out" / "model.safetensors"),
                        {"a": base, "alias": base, "row": base[1], "cols": base[:, 2:4].contiguous(),
                         "own": torch.ones(3)})
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["model.safetensors"]  # no temp files left


def test_sharded_pickle_weights_become_safetensors_shards(local_store, tmp_path: Path, bert: BertModel) -> None:
    folder = tmp_path / "sharded"
    bert.config.save_pretrained(folder)
    original = {k: v.detach().clone() for k, v in bert.state_dict().items()}
    names = sorted(original)
    shards = {"pytorch_model-00001-of-00002.bin": names[: len(names) // 2],
              "pytorch_model-00002-of-00002.bin": names[len(names) // 2:]}
    for shard, keys in shards.items():
        torch.save({k: original[k] for k in keys}, folder / shard)
    (folder / "pytorch_model.bin.index.json").write_text(json.dumps({
        "metadata": {"total_size": 1, "total_parameters": 7},
        "weight_map": {k: shard for shard, keys in shards.items() for k in keys}}))

    import_model(local_store, folder, "acme/sharded")

    assert sorted(e.path for e in local_store.list_files("acme/sharded")) == [
        ".gitattributes", "config.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
        "model.safetensors.index.json"]
    local = download_snapshot(local_store, "acme/sharded", local_dir=tmp_path / "snapshot")
    index = json.loads((local / "model.safetensors.index.json").read_text())
    assert index["weight_map"] == {k: shard.replace("pytorch_model", "model").replace(".bin", ".safetensors")
                                   for shard, keys in shards.items() for k in keys}
    assert index["metadata"] == {"total_parameters": 7,
                                 "total_size": sum(t.numel() * t.element_size() for t in original.values())}
    assert_same_tensors(AutoModel.from_pretrained(local).state_dict(), original)


def test_bin_beside_safetensors_is_skipped(capsys, tmp_path: Path, bert: BertModel) -> None:
    folder = tmp_path / "both"
    bert.save_pretrained(folder)
    (folder / "pytorch_model.bin").write_bytes(b"not even read")

    code, out, _ = run(capsys, "import-model", str(folder), "acme/both")

    assert code == 0
    assert "pytorch_model.bin" not in repo_files("acme/both")
    assert "skipped pytorch_model.bin: model.safetensors is already there" in out


def test_pickle_with_code_is_refused_without_running_it(capsys, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):  # unpickling this would call open(marker, "w")
            return (open, (str(marker), "w"))

    folder = tmp_path / "evil"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(BertConfig(**TINY).to_dict()))
    torch.save({"embeddings.word_embeddings.weight": torch.zeros(99, 32), "extra": Payload()},
               folder / "pytorch_model.bin")

    code, out, err = run(capsys, "import-model", str(folder), "acme/evil")

    assert code == 2
    assert "pytorch_model.bin holds more than tensors" in err and "io.open" in err
    assert "weights_only=False" not in err + out  # never suggest the unsafe way
    assert not marker.exists()
    assert run(capsys, "repo", "info", "acme/evil")[0] == 2  # no repo left behind
    # The control: the payload is live, an unrestricted load would have run it.
    torch.load(folder / "pytorch_model.bin", weights_only=False)
    assert marker.exists()


def test_state_dict_with_non_tensors_is_refused(tmp_path: Path) -> None:
    torch.save({"weight": torch.ones(2), "step": 3}, tmp_path / "pytorch_model.bin")
    with pytest.raises(InvalidInputError, match="entry 'step' is a int, not a tensor"):
        convert_pickle_weights(tmp_path / "pytorch_model.bin", tmp_path / "model.safetensors")
    torch.save({"weight": torch.ones(2)}, tmp_path / "legacy.bin", _use_new_zipfile_serialization=False)
    with pytest.raises(InvalidInputError, match="not a zip-format PyTorch checkpoint"):
        convert_pickle_weights(tmp_path / "legacy.bin", tmp_path / "model.safetensors")
    assert not (tmp_path / "model.safetensors").exists()


def test_other_pickle_files_need_allow_pickle(capsys, tmp_path: Path, bert: BertModel) -> None:
    folder = tmp_path / "trained"
    bert.save_pretrained(folder)
    (folder / "training_args.bin").write_bytes(b"pickled arguments")
    (folder / "optimizer.pt").write_bytes(b"pickled optimizer")

    code, _, err = run(capsys, "import-model", str(folder), "acme/trained")
    assert code == 2
    assert "optimizer.pt, training_args.bin" in err and "--allow-pickle" in err

    code, out, err = run(capsys, "import-model", str(folder), "acme/trained", "--allow-pickle")
    assert code == 0, err
    assert {"training_args.bin", "optimizer.pt", "model.safetensors"} <= set(repo_files("acme/trained"))
    assert "stored optimizer.pt as-is" in err and "never loads" in err


# -- what is not a model folder --------------------------------------------------------------------


def test_missing_config_json(capsys, tmp_path: Path) -> None:
    folder = tmp_path / "no-config"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"x")
    code, _, err = run(capsys, "import-model", str(folder), "acme/x")
    assert code == 2 and "has no config.json" in err and "hint:" in err

    code, _, err = run(capsys, "import-model", str(tmp_path / "nowhere"), "acme/x")
    assert code == 2 and "does not exist" in err


def test_symlink_out_of_the_folder_is_refused(capsys, tmp_path: Path, bert: BertModel) -> None:
    folder = tmp_path / "linked"
    bert.save_pretrained(folder)
    (tmp_path / "secret.txt").write_text("secret")
    (folder / "notes.txt").symlink_to(tmp_path / "secret.txt")
    code, _, err = run(capsys, "import-model", str(folder), "acme/linked")
    assert code == 2 and "notes.txt" in err and "outside" in err

    (folder / "notes.txt").unlink()
    (folder / "weights.safetensors").symlink_to("model.safetensors")  # inside: fine
    assert run(capsys, "import-model", str(folder), "acme/linked")[0] == 0
    assert "weights.safetensors" in repo_files("acme/linked")


def test_hugging_face_cache_snapshot_symlinks_are_followed(local_store, tmp_path: Path, bert: BertModel) -> None:
    # huggingface_hub's cache: snapshots/<commit>/<file> are symlinks into the repo's blobs/ folder.
    cached = tmp_path / "hub" / "models--acme--tiny"
    saved = tmp_path / "saved"
    bert.save_pretrained(saved)
    (cached / "blobs").mkdir(parents=True)
    snapshot_dir = cached / "snapshots" / ("0" * 40)
    snapshot_dir.mkdir(parents=True)
    for i, file in enumerate(sorted(saved.iterdir())):
        os.replace(file, cached / "blobs" / f"blob{i}")
        (snapshot_dir / file.name).symlink_to(Path("..", "..", "blobs", f"blob{i}"))

    import_model(local_store, snapshot_dir, "acme/from-cache")

    assert sorted(e.path for e in local_store.list_files("acme/from-cache")) == [
        ".gitattributes", "config.json", "model.safetensors"]
