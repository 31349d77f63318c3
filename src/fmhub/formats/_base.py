"""The format interface and the loaded model every format gives: one forward function over named inputs.

A model version declares its stored form in its card (``fmhub.variant.format``; none: ``torch``). A
:class:`ModelFormat` knows how that form is loaded and run; :class:`LoadedModel` is what every stage gets
back, whatever the form: ``logits`` over a mapping of named input arrays (``input_ids``, ``attention_mask``,
``pixel_values`` for vision models...), and — where the form has them — the last hidden states and text
generation (``capabilities``).
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from fmhub.errors import InvalidInputError

__all__ = ["ModelFormat", "LoadedModel", "require_safetensors"]


class ModelFormat(abc.ABC):
    """How one stored form of a model version is loaded and run. Subclass, set the class attributes, implement
    :meth:`load` and :meth:`logits`, and register an instance (:func:`fmhub.formats.register`)."""

    name: ClassVar[str]  # the card's fmhub.variant.format
    library: ClassVar[str]  # the card's library_name: what loads it
    description: ClassVar[str]  # for messages: "an ONNX" variant
    torch: ClassVar[bool] = False  # ``model`` is a torch module
    trainable: ClassVar[bool] = False  # transformers' from_pretrained loads its weights (training may start here)
    exportable: ClassVar[bool] = False  # an ONNX export can start from it (float torch weights)
    capabilities: ClassVar[frozenset[str]] = frozenset({"logits"})

    @abc.abstractmethod
    def load(self, folder: Path, config: Any, head: Any, threads: int | None) -> tuple[Any, int]:
        """(the native model, CPU threads a forward pass uses) of the version in ``folder``; ``head`` is the
        transformers auto class of its task."""

    @abc.abstractmethod
    def logits(self, model: Any, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        """float32 logits of a batch of named input arrays."""

    def parameters(self, loaded: LoadedModel) -> int:
        """Parameter count of the loaded version."""
        return int(sum(p.numel() for p in loaded.model.parameters()))

    def attention_heads(self, model: Any) -> int | None:
        """Attention heads per layer when they differ from what the config says (None: as the config says)."""
        return None

    def hidden_states(self, model: Any, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        raise NotImplementedError(f"{self.name} models do not expose hidden states")

    def generate(self, model: Any, tokenizer: Any, ids: list[int], *, max_new_tokens: int, temperature: float,
                 top_p: float, seed: int | None, on_text: Callable[[str], None] | None) -> str:
        raise NotImplementedError(f"{self.name} models cannot generate")


@dataclass
class LoadedModel:
    """A model version ready to run: its native object, preprocessor and config, and one forward function."""

    repo: str
    commit: str
    folder: Path
    form: ModelFormat
    task: Any  # the fmhub.tasks.Task its head does
    config: Any  # transformers config (labels, sizes)
    tokenizer: Any  # the preprocessor (a tokenizer for text models)
    model: Any  # a torch module, or an onnxruntime InferenceSession
    variant: dict[str, Any]
    threads: int  # CPU threads a forward pass uses

    @property
    def format(self) -> str:
        """The form's name (``torch``, ``onnx``, ``torch-int8``, ``torch-pruned-heads``)."""
        return self.form.name

    @property
    def capabilities(self) -> frozenset[str]:
        return self.form.capabilities

    @property
    def preprocessor(self) -> Any:
        """What turns raw inputs into model inputs: the tokenizer, or an image processor (``tokenizer`` by its
        older name)."""
        return self.tokenizer

    @property
    def labels(self) -> list[str]:
        """The model's label names in id order ([] for tasks without labels)."""
        return self.task.labels_of(self.config)

    def logits(self, inputs: Mapping[str, np.ndarray] | np.ndarray,
               attention_mask: np.ndarray | None = None) -> np.ndarray:
        """float32 logits of a padded batch: a mapping of named arrays (``input_ids``, ``attention_mask``, ...;
        a tokenizer's ``return_tensors="np"`` output works as is), or ``input_ids`` and ``attention_mask``."""
        if not isinstance(inputs, Mapping):
            inputs = {"input_ids": inputs, "attention_mask": attention_mask}
        elif not isinstance(inputs, dict):
            inputs = dict(inputs)
        return self.form.logits(self.model, inputs)

    def hidden_states(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        """The last hidden states ``(batch, length, hidden)`` (formats with the ``hidden_states`` capability)."""
        return self.form.hidden_states(self.model, inputs)

    def generate(self, ids: list[int], *, max_new_tokens: int, temperature: float = 0.0, top_p: float = 1.0,
                 seed: int | None = None, on_text: Callable[[str], None] | None = None) -> str:
        """Continue the token ids (greedy at temperature 0); ``on_text`` gets each new piece of text."""
        return self.form.generate(self.model, self.tokenizer, ids, max_new_tokens=max_new_tokens,
                                  temperature=temperature, top_p=top_p, seed=seed, on_text=on_text)

    def parameters(self) -> int:
        """Parameter count (ONNX: elements of the graph's initializers; int8 forms: weights, not their scales)."""
        return self.form.parameters(self)


def require_safetensors(folder: Path, what: str) -> None:
    """Refuse, as an input error, a transformers model folder without safetensors weights.

    transformers falls back to ``pytorch_model.bin`` through ``torch.load`` when no safetensors file is
    there; fmhub never loads pickle, so it asks for safetensors first (and passes ``use_safetensors=True``).
    """
    if not any(folder.glob("*.safetensors")):
        raise InvalidInputError(f"{what} holds no safetensors weights; fmhub never loads pickle weights "
                                "(pytorch_model.bin, *.pt)",
                                hint="convert them with fmhub import-model, or push the model saved with "
                                     "save_pretrained(safe_serialization=True)")
