"""Pretraining from scratch: a tokenizer trained on the corpus and a small model built from a config.

``--architecture bert`` trains a lowercasing WordPiece tokenizer (BERT's normalizer and
pre-tokenizer, [CLS]/[SEP]/[MASK]); ``--architecture gpt2`` a byte-level BPE with ``<|endoftext|>``,
both with the ``tokenizers`` library over the training split's texts, in ``--vocab-size`` entries.
The trained tokenizer is cached by dataset commit, split, column, kind and size, so a resumed run uses
the very same ids. ``--from-config config.json`` takes any transformers config instead (its
``model_type`` picks the tokenizer kind: WordPiece for masked LM, byte-level BPE otherwise).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from fmhub.errors import InvalidInputError
from fmhub.train._config import TrainConfig

__all__ = ["scratch_tokenizer", "scratch_config"]

_BERT_SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
_GPT2_SPECIAL = "<|endoftext|>"


def _read_config(config: TrainConfig) -> dict[str, Any]:
    try:
        data = json.loads(Path(config.scratch.from_config).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidInputError(f"--from-config {config.scratch.from_config}: no such file") from None
    except ValueError as exc:
        raise InvalidInputError(f"--from-config {config.scratch.from_config}: not JSON ({exc})") from None
    if not isinstance(data, dict) or "model_type" not in data:
        raise InvalidInputError(f"--from-config {config.scratch.from_config}: a transformers config.json with a model_type "
                                "is needed", hint='e.g. {"model_type": "bert", "hidden_size": 128, ...}')
    return data


def scratch_tokenizer(config: TrainConfig, texts: Any, cache: Path, key: dict[str, Any]) -> Path:
    """Train (or reuse) the tokenizer for a from-scratch run; return the folder it is saved in."""
    wordpiece = config.task_spec.scratch_architecture == "bert"  # BERT's WordPiece; GPT-2's byte-level BPE
    size = config.scratch.vocab_size
    if config.scratch.from_config is not None:
        size = int(_read_config(config).get("vocab_size") or size)
    digest = hashlib.sha256(json.dumps({**key, "wordpiece": wordpiece, "size": size}, sort_keys=True)
                            .encode()).hexdigest()[:24]
    folder = cache / digest
    if (folder / "tokenizer.json").exists():
        return folder
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    def batches() -> Any:
        for start in range(0, len(texts), 1000):
            yield [t or "" for t in texts[start:start + 1000]]

    if wordpiece:
        tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
        tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
        tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tokenizer.decoder = decoders.WordPiece()
        tokenizer.train_from_iterator(batches(), trainers.WordPieceTrainer(vocab_size=size,
                                                                          special_tokens=_BERT_SPECIAL))
        cls, sep = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
        tokenizer.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
        wrapped = PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="[UNK]", pad_token="[PAD]",
                                          cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")
    else:
        tokenizer = Tokenizer(models.BPE())
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tokenizer.decoder = decoders.ByteLevel()
        tokenizer.train_from_iterator(batches(), trainers.BpeTrainer(
            vocab_size=size, special_tokens=[_GPT2_SPECIAL], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
        wrapped = PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token=_GPT2_SPECIAL, eos_token=_GPT2_SPECIAL,
                                          unk_token=_GPT2_SPECIAL, pad_token=_GPT2_SPECIAL)
    cache.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".partial-", dir=cache))
    wrapped.save_pretrained(tmp)
    try:
        tmp.rename(folder)
    except OSError:  # another rank saved it first
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def scratch_config(config: TrainConfig, tokenizer: Any) -> Any:
    """The transformers config of the new model, its vocabulary and special ids taken from ``tokenizer``."""
    from transformers import AutoConfig, BertConfig, GPT2Config

    positions = max(config.inputs.max_length, 128)
    if config.scratch.from_config is not None:
        data = _read_config(config)
        model_type = data.pop("model_type")
        try:
            built = AutoConfig.for_model(model_type, **data)
        except ValueError as exc:
            raise InvalidInputError(f"--from-config {config.scratch.from_config}: {exc}") from None
        built.vocab_size = len(tokenizer)
    elif config.scratch.architecture == "bert":
        built = BertConfig(vocab_size=len(tokenizer), hidden_size=config.scratch.hidden_size,
                           num_hidden_layers=config.scratch.layers, num_attention_heads=config.scratch.heads,
                           intermediate_size=4 * config.scratch.hidden_size, max_position_embeddings=positions)
    else:
        built = GPT2Config(vocab_size=len(tokenizer), n_embd=config.scratch.hidden_size, n_layer=config.scratch.layers,
                           n_head=config.scratch.heads, n_positions=positions)
    built.pad_token_id = tokenizer.pad_token_id
    if tokenizer.bos_token_id is not None:
        built.bos_token_id = tokenizer.bos_token_id
    if tokenizer.eos_token_id is not None:
        built.eos_token_id = tokenizer.eos_token_id
    return built
