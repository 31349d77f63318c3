"""Language modeling: ``masked-lm`` (BERT-style, ``AutoModelForMaskedLM``) and ``causal-lm`` (GPT-style,
``AutoModelForCausalLM``).

Training follows the Hugging Face ``run_mlm``/``run_clm`` recipe: texts are tokenized, joined with a
separator and cut into blocks of ``max_length``; masked LM masks 15% of the tokens per batch (80% [MASK],
10% random, 10% kept) with torch's generator, so a resumed run masks the same way; validation masks with
a fixed seed. Loss and perplexity. Either can pretrain from scratch (``--architecture bert|gpt2``).
Report card: perplexity and bits per token, against an add-one unigram baseline. Serving: ``/v1/fill-mask``
and ``/v1/embed`` (masked), ``/v1/generate`` (causal, with server-sent events).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from fmhub.errors import InputTooLongError, InvalidInputError
from fmhub.tasks import _metrics
from fmhub.tasks._base import Endpoint, Forward, Metric, OnRows, Scored, Task
from fmhub.tasks._baselines import unigram_nll
from fmhub.tasks._batches import IGNORE, TokenizedSplit, pad_rows
from fmhub.tasks._perturb import perturb_text
from fmhub.tasks._predict import score_language_model, softmax
from fmhub.tasks._scratch import scratch_text_config, scratch_tokenizer
from fmhub.tasks._serving import (
    EMBED,
    Encoded,
    Item,
    ServingContext,
    TextParameters,
    TextRequest,
    answer_valid,
    encode,
    grouped_forward,
    text_request,
)
from fmhub.tasks.text_classification import median_row, word_counts

__all__ = ["LanguageModeling", "MaskedLanguageModeling", "CausalLanguageModeling", "FILL_MASK", "GENERATE"]

_TOKENIZE_ROWS = 2048


class FillMaskParameters(TextParameters):
    top_k: int = Field(5, ge=1, le=100, description="Candidate tokens per mask.")


def _fill_mask(context: ServingContext, items: list[Item]) -> list[Any]:
    """For each mask token, the ``top_k`` (default 5) most likely tokens and the filled-in text."""
    tokenizer = context.tokenizer
    mask_id = tokenizer.mask_token_id
    results: list[Any] = []
    usable = []
    for item in items:
        if mask_id is None or tokenizer.mask_token not in item.text:
            results.append(InvalidInputError(f"an input has no mask token {tokenizer.mask_token!r}",
                                             hint=f"write {tokenizer.mask_token} where a word should be predicted"))
        else:
            results.append(None)
            usable.append(item)

    def answer(encoded: list[Encoded], items: list[Item]) -> list[Any]:
        out = []
        for e, row, item in zip(encoded, grouped_forward(context, encoded, context.model.logits), items, strict=True):
            top = int(item.parameters.get("top_k") or 5)
            masks = []
            for position in [p for p, t in enumerate(e.ids) if t == mask_id]:
                scores = softmax(row[position][None])[0]
                best = np.argsort(-scores, kind="stable")[:top]
                masks.append([{"score": float(scores[t]), "token": int(t),
                               "token_str": tokenizer.decode([int(t)]).strip(),
                               "sequence": tokenizer.decode([int(t) if p == position else i for p, i in enumerate(e.ids)],
                                                            skip_special_tokens=True)} for t in best])
            out.append(masks[0] if len(masks) == 1 else masks)
        return out

    answered = iter(answer_valid(context, usable, answer))
    return [next(answered) if r is None else r for r in results]


FILL_MASK = Endpoint("fill-mask", "Most likely tokens for each mask token (masked LM)",
                     text_request("FillMaskRequest", FillMaskParameters), _fill_mask)


class GenerateParameters(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    max_new_tokens: int = Field(32, ge=1, le=2048, description="Tokens to generate at most.")
    temperature: float = Field(0.0, ge=0.0, le=100.0, description="0: greedy; above: sampling.")
    top_p: float = Field(1.0, gt=0.0, le=1.0, description="Nucleus sampling mass.")
    seed: int | None = Field(None, ge=0, le=2**63 - 1, description="Seed of the sampling, for a repeatable answer.")
    stream: bool = Field(False, description="Send tokens as server-sent events as they are made.")


class GenerateRequest(TextRequest):
    parameters: GenerateParameters = GenerateParameters()


def _generate(context: ServingContext, text: str, parameters: dict[str, Any],
              on_text: Callable[[str], None] | None = None) -> str:
    """Continue ``text`` (greedy at temperature 0, else sampling with top-p); ``on_text`` gets each new piece."""
    encoded = encode(context, [Item(text, parameters)])[0]
    if isinstance(encoded, Exception):
        raise encoded
    room = context.max_tokens - len(encoded.ids)
    new = min(int(parameters.get("max_new_tokens", 32)), room)
    if new < 1:
        raise InputTooLongError(len(encoded.ids), context.max_tokens - 1)
    return context.model.generate(encoded.ids, max_new_tokens=new, temperature=float(parameters.get("temperature", 0)),
                                  top_p=float(parameters.get("top_p", 1.0)), seed=parameters.get("seed"),
                                  on_text=on_text)


GENERATE = Endpoint("generate", "Continue a text (causal LM); server-sent events with stream=true", GenerateRequest,
                    _generate, batched=False, needs="generate")


@dataclasses.dataclass(frozen=True)
class LanguageModeling(Task):
    """Masked or causal language modeling, bound to a tokenizer's special tokens (:meth:`bind`)."""

    mask_id: int | None = None
    separator_id: int | None = None
    bos_id: int | None = None
    eos_id: int | None = None
    special_ids: tuple[int, ...] = ()
    vocab: int = 0
    mlm_probability: float = 0.15

    masked: ClassVar[bool] = False
    per_token = True
    input_column = "text"
    label_column = None
    validation_metrics = (Metric("eval_perplexity", "perplexity", "Perplexity"),)
    report_metrics = ("perplexity", "bits_per_token")

    def bind(self, tokenizer: Any, *, num_labels: int, options: Mapping[str, Any]) -> Task:
        if self.masked and tokenizer.mask_token_id is None:
            raise InvalidInputError("this tokenizer has no mask token, so it cannot do masked-lm",
                                    hint="use --task causal-lm, or a BERT-style model")
        separator = tokenizer.sep_token_id if self.masked else tokenizer.eos_token_id
        if separator is None:
            separator = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else tokenizer.sep_token_id
        return dataclasses.replace(
            self, mask_id=tokenizer.mask_token_id, separator_id=separator,
            bos_id=tokenizer.cls_token_id if self.masked else None,
            eos_id=tokenizer.sep_token_id if self.masked else None,
            special_ids=tuple(sorted(set(tokenizer.all_special_ids))), vocab=len(tokenizer),
            mlm_probability=float(options.get("mlm_probability", 0.15)))

    # -- training ------------------------------------------------------------------------------------------

    def label_names(self, features: Any, label_column: str | None) -> list[str]:
        return []

    def scratch_preprocessor(self, options: Mapping[str, Any], rows: Any, input_column: str, cache: Path,
                             key: Mapping[str, Any]) -> Path:
        """A tokenizer trained on the training split's texts (WordPiece for masked LM, byte-level BPE for causal)."""
        return scratch_tokenizer(options, self.masked, rows[input_column], cache / "tokenizers", key)

    def scratch_config(self, options: Mapping[str, Any], preprocessor: Any) -> Any:
        return scratch_text_config(options, preprocessor, self.scratch_architectures[0])

    def tokenize(self, dataset: Any, tokenizer: Any, input_column: str, label_column: str | None,
                 max_length: int) -> tuple[list[list[int]], list[Any]]:
        wrapped = self.bos_id is not None
        inner = max_length - (2 if wrapped else 0)
        blocks: list[list[int]] = []
        buffer: list[int] = []
        for start in range(0, len(dataset), _TOKENIZE_ROWS):
            texts = [t or "" for t in dataset[start:start + _TOKENIZE_ROWS][input_column]]
            for ids in tokenizer(texts, add_special_tokens=False, return_attention_mask=False,
                                 return_token_type_ids=False)["input_ids"]:
                buffer += ids
                if self.separator_id is not None:
                    buffer.append(self.separator_id)
                while len(buffer) >= inner:
                    chunk, buffer = buffer[:inner], buffer[inner:]
                    blocks.append([self.bos_id, *chunk, self.eos_id] if wrapped else chunk)
        if len(buffer) > 1 and (not blocks or len(buffer) >= inner // 4):  # a short tail is dropped, as HF does
            blocks.append([self.bos_id, *buffer, self.eos_id] if wrapped else buffer)
        if not blocks:
            raise InvalidInputError("the texts hold no tokens to train on")
        return blocks, [0] * len(blocks)

    def collate(self, split: TokenizedSplit, rows: np.ndarray, pad_id: int, generator: Any = None, *,
                train: bool = False) -> dict[str, Any]:
        import torch

        input_ids, mask = pad_rows(split.input_ids, rows, pad_id)
        ids = torch.from_numpy(input_ids)
        attention = torch.from_numpy(mask)
        labels = ids.clone()
        labels[attention == 0] = IGNORE
        if self.masked:
            special = torch.isin(ids, torch.tensor(self.special_ids, dtype=torch.int64)) | (attention == 0)
            chosen = torch.bernoulli(torch.full(ids.shape, self.mlm_probability), generator=generator).bool() & ~special
            labels[~chosen] = IGNORE
            masked = torch.bernoulli(torch.full(ids.shape, 0.8), generator=generator).bool() & chosen
            randomized = torch.bernoulli(torch.full(ids.shape, 0.5), generator=generator).bool() & chosen & ~masked
            ids = ids.clone()
            ids[masked] = self.mask_id
            ids[randomized] = torch.randint(self.vocab, ids.shape, generator=generator)[randomized]
        return {"input_ids": ids, "attention_mask": attention, "labels": labels}

    def _targets(self, labels: Any) -> Any:
        """The labels the logits are scored against: causal LM predicts token t+1 from tokens up to t."""
        return labels if self.masked else labels[:, 1:]

    def loss(self, logits: Any, labels: Any, loss_fn: Any) -> Any:
        if not self.masked:
            logits = logits[:, :-1]
        return super().loss(logits, self._targets(labels), loss_fn)

    def counted(self, labels: Any) -> int:
        return int((self._targets(labels) != IGNORE).sum())

    def validate(self, model: Any, split: TokenizedSplit, batch_size: int, pad_id: int,
                 label_names: list[str]) -> dict[str, float]:
        import torch

        generator = torch.Generator().manual_seed(0)  # the same masks at every evaluation
        total, counted = 0.0, 0
        for _, batch, _, summed in self.predict_batches(model, split, batch_size, pad_id, generator):
            total += summed
            counted += self.counted(batch["labels"])
        loss = total / max(1, counted)
        return {"loss": loss, "perplexity": math.exp(min(loss, 700.0))}

    # -- evaluation ----------------------------------------------------------------------------------------

    def score(self, forward: Forward, preprocessor: Any, values: list[Any], gold: Any, *, labels: list[str],
              max_length: int, batch_size: int, seed: int, on_rows: OnRows = None) -> Scored:
        lm = score_language_model(forward, preprocessor, values, self.masked, max_length, seed,
                                  max(1, batch_size // 2), on_rows)
        return Scored({"metrics": _metrics.language_model_metrics(float(lm.nll.sum()), int(lm.tokens.sum()))},
                      extra={"nll": lm.nll, "tokens": lm.tokens, "targets": lm.targets})

    def perturb(self, name: str, values: list[Any], gold: Any, seed: int) -> tuple[list[Any], Any]:
        return [perturb_text(name, text, seed, row) for row, text in enumerate(values)], gold

    def sizes(self, values: list[Any]) -> np.ndarray:
        return word_counts(values)

    def group_metrics(self, scored: Scored, rows: np.ndarray, labels: list[str]) -> dict[str, Any]:
        return self.headline(_metrics.language_model_metrics(float(scored.extra["nll"][rows].sum()),
                                                             int(scored.extra["tokens"][rows].sum())))

    def efficiency_input(self, preprocessor: Any, values: list[Any], max_length: int) -> dict[str, np.ndarray]:
        return median_row(preprocessor([v or "" for v in values], truncation=True, max_length=max_length)["input_ids"])

    def baseline(self, train: Any, input_column: str, label_column: str | None, values: list[Any], gold: Any,
                 scored: Scored, *, labels: list[str], preprocessor: Any, max_length: int, seed: int
                 ) -> tuple[str, dict[str, Any]]:
        ids = preprocessor([t or "" for t in train[input_column]], truncation=True, max_length=max_length)["input_ids"]
        nll, tokens = unigram_nll(ids, scored.extra["targets"], len(preprocessor))
        return "add-one unigram model of the train split's tokens", _metrics.language_model_metrics(nll, tokens)

    def prediction_columns(self, scored: Scored, labels: list[str]) -> dict[str, Any]:
        import pyarrow as pa

        return {"tokens": pa.array(scored.extra["tokens"]), "nll": pa.array(scored.extra["nll"])}


@dataclasses.dataclass(frozen=True)
class MaskedLanguageModeling(LanguageModeling):
    name = "masked-lm"
    title = "Fill-Mask"
    pipeline_tag = "fill-mask"
    auto_class = "AutoModelForMaskedLM"
    head_suffixes = ("ForMaskedLM",)
    endpoints = (FILL_MASK, EMBED)
    scratch_architectures = ("bert",)
    masked: ClassVar[bool] = True


@dataclasses.dataclass(frozen=True)
class CausalLanguageModeling(LanguageModeling):
    name = "causal-lm"
    title = "Text Generation"
    pipeline_tag = "text-generation"
    auto_class = "AutoModelForCausalLM"
    head_suffixes = ("ForCausalLM", "LMHeadModel")
    endpoints = (GENERATE,)
    scratch_architectures = ("gpt2",)
