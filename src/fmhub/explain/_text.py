"""``tokens``: attributions of a text classifier's prediction to the tokens of its input.

Units are the text's tokens (special tokens such as ``[CLS]`` and ``[SEP]`` stay in place and are not units),
each with its character span in the text. Integrated gradients run on the input (word) embeddings from a baseline
where every unit is the padding token's embedding; occlusion replaces one
token by the mask token (the unknown token, else padding, where there is none); removing units for the
faithfulness measures deletes them, as ERASER does.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fmhub.errors import InputTooLongError, InvalidInputError
from fmhub.explain._base import (Explainer, MethodUnavailableError, Prepared, eager_attention, probabilities, rollout,
                                 straight_path)

__all__ = ["TokenAttributions"]

_TOKENS_PER_BATCH = 16384  # integrated-gradients steps and occlusions per forward: rows × tokens (a 128-token text's
# occlusions in one forward pass)


def _pad_id(tokenizer: Any) -> int:
    for value in (tokenizer.pad_token_id, tokenizer.eos_token_id):
        if value is not None:
            return int(value)
    return 0


class TokenAttributions(Explainer):
    name = "tokens"
    unit = "token"

    def prepare(self, loaded: Any, value: Any, *, max_length: int) -> Prepared:
        tokenizer = loaded.tokenizer
        text = value or ""
        offsets = bool(getattr(tokenizer, "is_fast", False))
        encoded = tokenizer(text, truncation=True, max_length=max_length, return_special_tokens_mask=True,
                            return_offsets_mapping=offsets, return_token_type_ids=False,
                            return_attention_mask=False)
        ids = np.asarray(encoded["input_ids"], dtype=np.int64)
        special = np.asarray(encoded["special_tokens_mask"], dtype=bool)
        positions = np.flatnonzero(~special)
        tokens = tokenizer.convert_ids_to_tokens(ids.tolist())
        spans = [tuple(int(x) for x in encoded["offset_mapping"][p]) for p in positions] if offsets else None
        return Prepared({"input_ids": ids[None], "attention_mask": np.ones((1, len(ids)), dtype=np.int64)},
                        [tokens[p] for p in positions], text, spans=spans,
                        extra={"positions": positions, "special": special})

    def read_request(self, loaded: Any, value: Any, *, max_tokens: int, max_pixels: int, truncate: bool) -> Any:
        if not isinstance(value, str):
            raise InvalidInputError("a text input must be a string", hint='send {"inputs": "text"}')
        tokens = len(loaded.tokenizer(value, truncation=False, return_attention_mask=False,
                                      return_token_type_ids=False)["input_ids"])
        if tokens > max_tokens and not truncate:
            raise InputTooLongError(tokens, max_tokens)
        return value

    def batch_size(self, prepared: Prepared) -> int:
        return max(1, _TOKENS_PER_BATCH // max(1, prepared.inputs["input_ids"].shape[1]))

    def remove(self, loaded: Any, prepared: Prepared, removed: np.ndarray) -> dict[str, np.ndarray]:
        ids = prepared.inputs["input_ids"][0]
        positions = prepared.extra["positions"]
        rows = []
        for row in np.atleast_2d(removed):
            keep = np.ones(len(ids), dtype=bool)
            keep[positions[row]] = False
            rows.append(ids[keep])
        width = max(len(r) for r in rows)
        out = np.full((len(rows), width), _pad_id(loaded.tokenizer), dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for i, r in enumerate(rows):
            out[i, :len(r)] = r
            mask[i, :len(r)] = 1
        return {"input_ids": out, "attention_mask": mask}

    def ablation(self, loaded: Any, prepared: Prepared) -> tuple[Any, Any, Any, Any]:
        import torch

        tokenizer = loaded.tokenizer
        ids = prepared.inputs["input_ids"]
        replacement = next((v for v in (tokenizer.mask_token_id, tokenizer.unk_token_id) if v is not None),
                           _pad_id(tokenizer))
        mask = np.full(ids.shape, len(prepared.units), dtype=np.int64)
        mask[0, prepared.extra["positions"]] = np.arange(len(prepared.units))

        def forward(batch: Any) -> Any:
            array = batch.numpy().astype(np.int64)
            return torch.from_numpy(probabilities(loaded, {"input_ids": array,
                                                           "attention_mask": np.ones_like(array)}))

        return torch.from_numpy(ids), int(replacement), torch.from_numpy(mask), forward

    def path(self, loaded: Any, prepared: Prepared, target: int) -> Any:
        import torch

        model = loaded.model
        ids = torch.from_numpy(prepared.inputs["input_ids"])
        mask = torch.from_numpy(prepared.inputs["attention_mask"])
        positions = prepared.extra["positions"]
        baseline = ids.clone()
        baseline[0, torch.from_numpy(positions)] = _pad_id(loaded.tokenizer)
        # the path runs on the word embeddings (what LayerIntegratedGradients on the input embeddings patches):
        # position and token-type embeddings and the embedding layer norm come after, the same at every point
        with torch.inference_mode(False), torch.no_grad():
            embed = model.get_input_embeddings()
            start = embed(baseline)[0].float()  # (T, C)
            delta = embed(ids)[0].float() - start  # zero at the special tokens, which the baseline keeps
        dtype = next(model.parameters()).dtype

        def forward(embeddings: Any) -> Any:  # (k, T, C) → (k, labels)
            return model(inputs_embeds=embeddings.to(dtype), attention_mask=mask.expand(len(embeddings), -1)).logits

        return straight_path(model, forward, start, delta, target, batch=self.batch_size(prepared),
                             per_unit=lambda grad: grad.sum(-1)[:, positions].numpy())

    def attention_rollout(self, loaded: Any, prepared: Prepared) -> np.ndarray:
        import torch

        model = loaded.model
        ids = torch.from_numpy(prepared.inputs["input_ids"])
        with torch.no_grad(), eager_attention(model):
            out = model(input_ids=ids, attention_mask=torch.from_numpy(prepared.inputs["attention_mask"]),
                        output_attentions=True)
        attentions = [a[0].float().numpy() for a in (getattr(out, "attentions", None) or ())]
        if not attentions:
            raise MethodUnavailableError(f"{loaded.repo or 'this model'} returns no attention weights",
                                         hint="use --method occlusion or integrated-gradients")
        relevance = rollout(attentions)
        # the row the head pools: [CLS] first for encoders, the last token for decoder classifiers
        special = prepared.extra["special"]
        pooled = 0 if special[0] else len(special) - 1
        return relevance[pooled, prepared.extra["positions"]].astype(np.float64)
