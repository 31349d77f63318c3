"""``torch``: transformers weights (``model.safetensors``), loaded with the task's ``AutoModelFor<task>``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from fmhub.formats._base import ModelFormat, require_safetensors

__all__ = ["TorchWeights", "TorchModule"]


class TorchModule(ModelFormat):
    """What every form whose model is a torch module shares: the forward pass, hidden states, generation."""

    torch = True
    #: ``gradients``: backpropagation reaches the inputs (integrated gradients); ``attentions``: the forward pass
    #: can return its attention weights (attention rollout).
    capabilities = frozenset({"logits", "hidden_states", "generate", "gradients", "attentions"})

    def logits(self, model: Any, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        import torch

        with torch.inference_mode():
            return model(**{k: torch.as_tensor(v) for k, v in inputs.items()}).logits.float().numpy()

    def hidden_states(self, model: Any, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        import torch

        base = getattr(model, model.base_model_prefix, model)
        with torch.inference_mode():
            return base(**{k: torch.as_tensor(v) for k, v in inputs.items()}).last_hidden_state.float().numpy()

    def generate(self, model: Any, tokenizer: Any, ids: list[int], *, max_new_tokens: int, temperature: float,
                 top_p: float, seed: int | None, on_text: Callable[[str], None] | None) -> str:
        import torch
        from transformers import TextStreamer

        if not hasattr(model, "generate"):
            raise NotImplementedError("this model has no language-model head to generate with")
        if seed is not None:
            torch.manual_seed(int(seed))

        class _Streamer(TextStreamer):
            def on_finalized_text(self, piece: str, stream_end: bool = False) -> None:
                if piece and on_text is not None:
                    on_text(piece)

        tensor = torch.tensor([ids])
        options: dict[str, Any] = {"do_sample": temperature > 0, "max_new_tokens": max_new_tokens,
                                   "pad_token_id": tokenizer.pad_token_id}
        if temperature > 0:
            options.update(temperature=temperature, top_p=top_p, top_k=0)
        with torch.inference_mode():
            output = model.generate(input_ids=tensor, attention_mask=torch.ones_like(tensor),
                                    streamer=_Streamer(tokenizer, skip_prompt=True, skip_special_tokens=True),
                                    **options)
        return tokenizer.decode(output[0, len(ids):], skip_special_tokens=True)

    @staticmethod
    def _threads() -> int:
        import torch

        return torch.get_num_threads()


class TorchWeights(TorchModule):
    name = "torch"
    library = "transformers"
    description = "a transformers"
    trainable = True
    exportable = True

    def load(self, folder: Path, config: Any, head: Any, threads: int | None) -> tuple[Any, int]:
        require_safetensors(folder, str(folder))
        return head.from_pretrained(folder, use_safetensors=True).eval(), self._threads()
