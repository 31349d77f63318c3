"""transformers, unmodified, loads a tiny model and tokenizer pushed to a live hub (HF_ENDPOINT set)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytest.importorskip("transformers")

_LOAD = r"""
import sys, torch
from safetensors.torch import load_file
from transformers import AutoModel, AutoTokenizer
repo, expected_path = sys.argv[1], sys.argv[2]
tokenizer = AutoTokenizer.from_pretrained(repo)
model = AutoModel.from_pretrained(repo).eval()
batch = tokenizer(["hello world", "fmhub"], padding=True, return_tensors="pt")
with torch.inference_mode():
    hidden = model(**batch).last_hidden_state
torch.testing.assert_close(hidden, load_file(expected_path)["hidden"])
print("loaded", type(model).__name__, type(tokenizer).__name__)
"""


def test_auto_model_and_tokenizer_from_the_hub(hub_url: str, alice_api, tokens, tmp_path) -> None:
    import torch
    from safetensors.torch import save_file
    from transformers import BertConfig, BertModel, BertTokenizer, BertTokenizerFast

    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "world", "fm", "##hub"]))
    folder = tmp_path / "tiny-bert"
    BertTokenizer(vocab=str(vocab)).save_pretrained(folder)  # transformers 5: vocab=, not vocab_file=
    torch.manual_seed(0)
    model = BertModel(BertConfig(vocab_size=9, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                 intermediate_size=37, max_position_embeddings=64)).eval()
    model.save_pretrained(folder)
    assert (folder / "model.safetensors").exists()
    batch = BertTokenizerFast.from_pretrained(folder)(["hello world", "fmhub"], padding=True, return_tensors="pt")
    with torch.inference_mode():
        expected = model(**batch).last_hidden_state
    save_file({"hidden": expected.contiguous()}, tmp_path / "expected.safetensors")

    alice_api.create_repo("alice/tiny-bert", private=True)
    alice_api.upload_folder(folder_path=folder, repo_id="alice/tiny-bert")

    env = {**os.environ, "HF_ENDPOINT": hub_url, "HF_TOKEN": tokens.alice, "HF_HUB_CACHE": str(tmp_path / "cache"),
           "HF_HUB_DISABLE_TELEMETRY": "1", "TRANSFORMERS_VERBOSITY": "error"}
    done = subprocess.run([sys.executable, "-c", _LOAD, "alice/tiny-bert", str(tmp_path / "expected.safetensors")],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "loaded BertModel" in done.stdout

    # Without the token the private repo is "not found" to transformers too.
    env.pop("HF_TOKEN")
    denied = subprocess.run([sys.executable, "-c", _LOAD, "alice/tiny-bert", str(tmp_path / "expected.safetensors")],
                            env=env, capture_output=True, text=True, timeout=120)
    assert denied.returncode != 0 and "alice/tiny-bert" in denied.stderr
