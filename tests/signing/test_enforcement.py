"""Where signatures are enforced: fmhub.load(verify=True), fmhub serve --require-signature, a pipeline's publish
step. A refused version loads nothing and moves no ref; the error names the file or key."""

from __future__ import annotations

from pathlib import Path

import pytest

import fmhub
from fmhub.client import Hub, UploadFile
from fmhub.errors import InvalidInputError, RevisionNotFoundError, SignatureError
from fmhub.pipeline._steps import _publish
from fmhub.serve import ServeConfig, prepare
from fmhub.signing import create_key_pair

REPO = "acme/clf-tiny"


@pytest.fixture
def model(tmp_path: Path) -> str:
    """A loadable tiny text classifier (random-init BERT, hidden size 32) in the embedded hub."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "goal", "match", "chip", "cloud"]
    (tmp_path / "vocab.txt").write_text("\n".join(vocab) + "\n")
    folder = tmp_path / "clf"
    BertTokenizer(vocab=str(tmp_path / "vocab.txt")).save_pretrained(folder)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=37, max_position_embeddings=64, num_labels=2,
                        id2label={0: "sport", 1: "tech"}, label2id={"sport": 0, "tech": 1})
    BertForSequenceClassification(config).save_pretrained(folder)
    with Hub.open() as hub:
        hub.upload(folder, REPO)
    return REPO


@pytest.fixture
def release(tmp_path: Path):
    pair = create_key_pair(tmp_path / "release.key")
    with Hub.open() as hub:
        hub.add_signing_key("acme", pair.public_path.read_text(), name="release")
    return pair


def test_load_verify(model: str, release) -> None:
    with pytest.raises(SignatureError, match="not signed"):
        fmhub.load(model, verify=True)
    fmhub.load(model)  # without verify, as before
    with Hub.open() as hub:
        hub.sign(model, release.private_path)
    loaded = fmhub.load(model, verify=True)
    assert loaded.task.name == "text-classification"
    with Hub.open() as hub:
        hub.commit(model, [UploadFile("config.json", hub.read_bytes(model, "config.json").replace(b"sport", b"sp0rt"))],
                   title="relabel")
    with pytest.raises(SignatureError) as caught:
        fmhub.load(model, verify=True)
    assert caught.value.item == "config.json"


def test_load_verify_with_a_trust_file(model: str, tmp_path: Path) -> None:
    own = create_key_pair(tmp_path / "own.key")
    with Hub.open() as hub:
        hub.sign(model, own.private_path)
    with pytest.raises(SignatureError, match="not trusted"):
        fmhub.load(model, verify=True)
    assert fmhub.load(model, verify=True, trust=[own.public_path]).commit


def test_serve_require_signature(model: str, release) -> None:
    config = ServeConfig(model=model, require_signature=True)
    with pytest.raises(SignatureError, match="not signed"):
        prepare(config)
    with Hub.open() as hub:
        signed = hub.sign(model, release.private_path).oid
    assert prepare(config) == f"{model}@{signed}"
    with Hub.open() as hub:
        hub.revoke_signing_key("acme", release.fingerprint)
    with pytest.raises(SignatureError, match="revoked"):
        prepare(config)
    with pytest.raises(InvalidInputError, match="--trust only applies"):
        ServeConfig(model=model, trust=("k.pub",)).validate()
    assert ServeConfig.from_json(ServeConfig(model=model, require_signature=True, trust=("a.pub",)).to_json()).trust \
        == ("a.pub",)


def test_pipeline_publish_requires_a_signature(model: str, release) -> None:
    with Hub.open() as hub:
        step = {"model": model, "ref": "prod", "require_signature": True}
        with pytest.raises(SignatureError, match="not signed"):
            _publish(hub, step, None)
        with pytest.raises(RevisionNotFoundError):
            hub.repo_info(model, revision="prod")  # the ref did not move
        signed = hub.sign(model, release.private_path).oid
        result = _publish(hub, step, None)
        assert result.output == f"{model}@{signed}"
        assert hub.repo_info(model, revision="prod").commit.oid == signed
