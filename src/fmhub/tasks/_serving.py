"""What the serve endpoints of text tasks share: the request bodies, the served model's context, tokenizing a
batch of texts at once, and running them in groups of similar length.

Bodies follow the Hugging Face inference convention — ``{"inputs": "text" | ["text", ...], "parameters": {...}}``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from fmhub.errors import InputTooLongError
from fmhub.tasks._base import Endpoint
from fmhub.tasks._batches import pad_rows

__all__ = ["ServingContext", "Item", "Encoded", "TextParameters", "TextRequest", "text_request", "encode",
           "grouped_forward", "answer_valid", "EMBED"]

_GROUP_SPREAD = 1.5  # a padding group's longest input is at most this many times its shortest


@dataclass
class Item:
    """One input of a request, as the batcher holds it: the input, its request's parameters (and, in the
    server, the future its answer goes to)."""

    text: Any
    parameters: dict[str, Any]
    future: Any = field(default=None, repr=False)


@dataclass
class ServingContext:
    """The served model version as endpoints see it.

    ``model`` is the loaded version (``fmhub.formats.LoadedModel``: ``logits``, ``tokenizer``, ``config``,
    and for torch weights ``hidden_states`` and ``generate``); ``labels`` its label names in id order; the limits
    of one input: ``max_tokens`` (texts) and ``max_pixels`` (images). ``max_length``: the length the model reads
    texts at when its card declares one (``fmhub optimize auto`` picked it there): longer texts within
    ``max_tokens`` are cut to it, as they were when it was measured.
    """

    model: Any
    labels: list[str]
    max_tokens: int
    multi_label: bool = False
    max_pixels: int = 16_777_216  # image inputs: most pixels one may have (checked before decoding)
    max_length: int | None = None  # texts are read up to this many tokens (a variant picked at that length)

    @property
    def tokenizer(self) -> Any:
        return self.model.tokenizer

    @property
    def preprocessor(self) -> Any:
        """What turns raw inputs into model inputs (the tokenizer; an image processor)."""
        return self.model.tokenizer

    @property
    def pad_id(self) -> int:
        pad = self.model.tokenizer.pad_token_id
        return pad if pad is not None else 0


class TextParameters(BaseModel):
    # strict: JSON types as the schema says (true is not 1, "yes" is not true, 1e20 is not an integer)
    model_config = ConfigDict(extra="forbid", strict=True)
    truncate: bool = Field(False, description="Cut inputs over the token limit instead of refusing them (422).")


def unicode_text(value: str | list[str]) -> str | list[str]:
    """Refuse a string that cannot be UTF-8 (a lone surrogate, which JSON's \\ud800 escape can spell)."""
    for text in [value] if isinstance(value, str) else value:
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as error:
            raise ValueError(f"holds a lone surrogate ({text[error.start]!r}) at character {error.start}, "
                             "which is not Unicode text") from None
    return value


class TextRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    inputs: str | list[str] = Field(description="One text, or a list of texts.")

    _unicode = field_validator("inputs")(unicode_text)


def text_request(name: str, parameters: type[BaseModel]) -> type[BaseModel]:
    """The body model ``{"inputs": ..., "parameters": <parameters>}`` of one endpoint (named for the OpenAPI)."""
    return type(name, (TextRequest,), {"__annotations__": {"parameters": parameters}, "parameters": parameters(),
                                       "__module__": __name__})


@dataclass
class Encoded:
    ids: list[int]
    offsets: list[tuple[int, int]] | None
    words: list[int | None] | None


def encode(context: ServingContext, items: list[Item], *, offsets: bool = False) -> list[Encoded | Exception]:
    """Tokenize every text at once; inputs over the limit fail alone (or are cut, with ``truncate``)."""
    if not items:
        return []
    tokenizer, limit = context.tokenizer, context.max_tokens
    texts = [item.text for item in items]
    encoded = tokenizer(texts, truncation=False, return_attention_mask=False, return_token_type_ids=False,
                        return_offsets_mapping=offsets)
    length = min(limit, context.max_length or limit)
    cut = [i for i, ids in enumerate(encoded["input_ids"])
           if len(ids) > length and (len(ids) <= limit or items[i].parameters.get("truncate"))]
    again = tokenizer([texts[i] for i in cut], truncation=True, max_length=length, return_attention_mask=False,
                      return_token_type_ids=False, return_offsets_mapping=offsets) if cut else None
    out: list[Encoded | Exception] = []
    for i in range(len(texts)):
        source, row = (again, cut.index(i)) if i in cut else (encoded, i)
        ids = source["input_ids"][row]
        if len(ids) > limit:
            out.append(InputTooLongError(len(ids), limit))
            continue
        out.append(Encoded(ids, [tuple(o) for o in source["offset_mapping"][row]] if offsets else None,
                           source.word_ids(row) if offsets else None))
    return out


def grouped_forward(context: ServingContext, encoded: list[Encoded],
                    run: Callable[[dict[str, np.ndarray]], np.ndarray]) -> list[np.ndarray]:
    """``run`` over groups of similar length (each padded to its longest); one output row per input."""
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i].ids))
    arrays = [np.asarray(e.ids, dtype=np.int64) for e in encoded]
    outputs: list[np.ndarray | None] = [None] * len(encoded)
    start = 0
    while start < len(order):
        end = start + 1
        shortest = max(1, len(encoded[order[start]].ids))
        while end < len(order) and len(encoded[order[end]].ids) <= _GROUP_SPREAD * shortest:
            end += 1
        group = np.asarray(order[start:end])
        ids, mask = pad_rows(arrays, group, context.pad_id)
        result = run({"input_ids": ids, "attention_mask": mask})
        for row, i in enumerate(group):
            outputs[i] = result[row]
        start = end
    return outputs  # type: ignore[return-value]


def answer_valid(context: ServingContext, items: list[Item],
                 answer: Callable[[list[Encoded], list[Item]], list[Any]], *, offsets: bool = False) -> list[Any]:
    """Encode ``items``; ``answer`` the ones that encoded, keep each failure as its item's result."""
    encoded = encode(context, items, offsets=offsets)
    good = [i for i, e in enumerate(encoded) if not isinstance(e, Exception)]
    results: list[Any] = list(encoded)
    if good:
        for i, value in zip(good, answer([encoded[i] for i in good], [items[i] for i in good]), strict=True):  # type: ignore[misc]
            results[i] = value
    return results


class EmbedParameters(TextParameters):
    normalize: bool = Field(True, description="L2-normalize each embedding.")


def _embed(context: ServingContext, items: list[Item]) -> list[Any]:
    """Mean of the last hidden states over real tokens, L2-normalized unless ``normalize`` is false."""

    def pooled(inputs: dict[str, np.ndarray]) -> np.ndarray:
        states = context.model.hidden_states(inputs)  # (B, T, H)
        weights = inputs["attention_mask"][..., None].astype(np.float32)
        return (states * weights).sum(1) / np.maximum(weights.sum(1), 1.0)

    def answer(encoded: list[Encoded], items: list[Item]) -> list[Any]:
        out = []
        for vector, item in zip(grouped_forward(context, encoded, pooled), items, strict=True):
            if item.parameters.get("normalize", True):
                vector = vector / max(float(np.linalg.norm(vector)), 1e-12)
            out.append([float(x) for x in vector])
        return out

    return answer_valid(context, items, answer)


#: Sentence embeddings: any encoder whose loaded form exposes its hidden states (torch weights).
EMBED = Endpoint("embed", "Mean-pooled, normalized sentence embeddings (encoders)",
                 text_request("EmbedRequest", EmbedParameters), _embed, needs="hidden_states")
