"""fmhub import-model into a hub server: pickle weights become safetensors on the client, the server never
receives a pickle, and the pipeline's import-model step runs against a server too."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import BertConfig, BertModel

from fmhub.cli import main
from fmhub.client import RemoteHub
from fmhub.errors import RepoNotFoundError
from fmhub.pipeline import parse, run_pipeline
from fmhub.store import Store

TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37, vocab_size=99)


@pytest.fixture
def pickled(tmp_path: Path) -> tuple[Path, dict[str, torch.Tensor]]:
    """A folder as transformers 4 wrote it with safe_serialization=False: config.json + pytorch_model.bin."""
    torch.manual_seed(0)
    model = BertModel(BertConfig(**TINY)).eval()
    folder = tmp_path / "tiny-bin"
    folder.mkdir()
    model.config.architectures = ["BertModel"]
    model.config.save_pretrained(folder)
    state_dict = model.state_dict()
    torch.save(state_dict, folder / "pytorch_model.bin")
    return folder, {name: tensor.detach().clone() for name, tensor in state_dict.items()}


def test_import_model_into_a_server_sends_safetensors_only(capsys, hub_url: str, tokens, local_store: Store,
                                                           pickled, tmp_path: Path) -> None:
    folder, original = pickled
    assert main(["import-model", str(folder), "acme/tiny-bin", "--endpoint", hub_url, "--token", tokens.alice]) == 0
    out = capsys.readouterr().out
    assert "converted pytorch_model.bin → model.safetensors" in out
    files = {entry.path for entry in local_store.list_files("acme/tiny-bin")}  # what the server's store holds
    assert "model.safetensors" in files and not any(path.endswith(".bin") for path in files)
    with RemoteHub(hub_url, token=tokens.alice) as hub:
        assert hub.list_commits("acme/tiny-bin")[0].author == "alice"  # the token's user
        local = hub.download("acme/tiny-bin", local_dir=tmp_path / "copy")
    weights = load_file(local / "model.safetensors")
    assert sorted(weights) == sorted(original) and all(torch.equal(weights[k], v) for k, v in original.items())

    # A pickle that is not the weights is refused before anything reaches the server.
    (folder / "training_args.bin").write_bytes(b"\x80\x04N.")
    assert main(["import-model", str(folder), "acme/other", "--endpoint", hub_url, "--token", tokens.alice]) == 2
    assert "refusing pickle file training_args.bin" in capsys.readouterr().err
    with pytest.raises(RepoNotFoundError):
        local_store.get_repo("acme/other")


def test_the_import_model_step_runs_against_a_server(hub_url: str, tokens, local_store: Store, pickled,
                                                     tmp_path: Path) -> None:
    folder, _ = pickled
    path = tmp_path / "pipeline.yaml"
    path.write_text(f"steps:\n  base: {{kind: import-model, source: {folder}, repo: acme/bert}}\n")
    with RemoteHub(hub_url, token=tokens.alice) as hub:
        [first] = run_pipeline(parse(path), hub)
        [again] = run_pipeline(parse(path), hub)
    assert first.status == "ran" and again.status == "cached" and first.output == again.output
    assert first.output == f"acme/bert@{local_store.resolve_revision('acme/bert', None).oid}"
    assert "model.safetensors" in {entry.path for entry in local_store.list_files("acme/bert")}
