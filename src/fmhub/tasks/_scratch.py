"""Pretraining a language model from scratch: a tokenizer trained on the corpus and a small model from a config.

``--architecture bert`` trains a lowercasing WordPiece tokenizer (BERT's normalizer and
pre-tokenizer, [CLS]/[SEP]/[MASK]); ``--architecture gpt2`` a byte-level BPE with ``<|endoftext|>``,
both with the ``tokenizers`` library over the training split's texts, in ``--vocab-size`` entries.
The trained tokenizer is cached by dataset commit, split, column, kind and size, so a resumed run uses
the very same ids. ``--from-config config.json`` takes any transformers config instead (the task picks
the tokenizer kind: WordPiece for masked LM, byte-level BPE for causal LM).

The options arrive flat (``from_config``, ``architecture``, ``hidden_size``, ``layers``, ``heads``,
``vocab_size``, ``max_length``: the training run's), as every task's scratch hooks take them.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fmhub.errors import InvalidInputError

__all__ = ["scratch_tokenizer", "scratch_text_config", "read_config_file"]

_BERT_SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
_GPT2_SPECIAL = "<|endoftext|>"


def read_config_file(path: str) -> dict[str, Any]:
    """The JSON of ``--from-config``: a transformers ``config.json`` with a ``model_type``."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (FileNotFoundError, IsADirectoryError):
        raise InvalidInputError(f"--from-config {path}: no such file") from None
    except ValueError as exc:
        raise InvalidInputError(f"--from-config {path}: not JSON ({exc})") from None
    if not isinstance(data, dict) or "model_type" not in data:
        raise InvalidInputError(f"--from-config {path}: a transformers config.json with a model_type is needed",
                                hint='e.g. {"model_type": "bert", "hidden_size": 128, ...}')
    return data


def config_from_file(path: str) -> Any:
    """A transformers config built from ``--from-config``'s JSON (its ``model_type`` picks the class)."""
    from transformers import AutoConfig

    data = read_config_file(path)
    model_type = data.pop("model_type")
    try:
        return AutoConfig.for_model(model_type, **data)
    except ValueError as exc:
        raise InvalidInputError(f"--from-config {path}: {exc}") from None


def scratch_tokenizer(options: Mapping[str, Any], wordpiece: bool, texts: Any, cache: Path,
                      key: Mapping[str, Any]) -> Path:
    """Train (or reuse) the tokenizer for a from-scratch run; return the folder it is saved in.

    ``wordpiece``: BERT's WordPiece (masked LM); else GPT-2's byte-level BPE.
    """
    size = int(options.get("vocab_size") or 8000)
    if options.get("from_config"):
        size = int(read_config_file(options["from_config"]).get("vocab_size") or size)
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


def scratch_text_config(options: Mapping[str, Any], tokenizer: Any, architecture: str) -> Any:
    """The transformers config of the new language model (``architecture``: bert or gpt2, unless ``from_config``),
    its vocabulary and special ids taken from ``tokenizer``."""
    from transformers import BertConfig, GPT2Config

    positions = max(int(options.get("max_length") or 128), 128)
    hidden, layers, heads = int(options.get("hidden_size") or 128), int(options.get("layers") or 2), \
        int(options.get("heads") or 2)
    if options.get("from_config"):
        built = config_from_file(options["from_config"])
        built.vocab_size = len(tokenizer)
    elif architecture == "bert":
        built = BertConfig(vocab_size=len(tokenizer), hidden_size=hidden, num_hidden_layers=layers,
                           num_attention_heads=heads, intermediate_size=4 * hidden, max_position_embeddings=positions)
    else:
        built = GPT2Config(vocab_size=len(tokenizer), n_embd=hidden, n_layer=layers, n_head=heads,
                           n_positions=positions)
    built.pad_token_id = tokenizer.pad_token_id
    if tokenizer.bos_token_id is not None:
        built.bos_token_id = tokenizer.bos_token_id
    if tokenizer.eos_token_id is not None:
        built.eos_token_id = tokenizer.eos_token_id
    return built
