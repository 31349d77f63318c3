"""Knowledge distillation inside the training loop: a frozen teacher's soft targets guide the student.

The student's loss is ``alpha · T² · KL(softmax(teacher / T) ‖ softmax(student / T)) + (1 − alpha) · hard``
(Hinton et al., 2015), ``hard`` being the task's own loss on the labels. With ``hidden_loss`` > 0 it adds
that weight times the mean squared error between the student's hidden states and the teacher's at mapped
depths (student state m ↔ teacher state m·N/k, embeddings ↔ embeddings, as TinyBERT maps them), over
real tokens. For token classification the soft targets count at the labelled sub-words only.

:func:`keep_layers` makes a student out of a model by keeping k of its N layers, evenly spaced: every
other one for 6 → 3, as DistilBERT was initialized from BERT.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fmhub.client import Hub
from fmhub.errors import InvalidInputError
from fmhub.formats import require_trainable
from fmhub.refs import split_ref

__all__ = ["Distiller", "keep_layers", "layer_indices", "load_teacher"]

# Where transformers models keep their list of blocks (BERT family, DistilBERT, GPT-2, Llama-style).
_LAYER_LISTS = (("encoder", "layer"), ("transformer", "layer"), ("h",), ("layers",))


def layer_indices(total: int, keep: int) -> list[int]:
    """``keep`` of ``total`` layer indices, evenly spaced from the first: 6 → 3 gives 0, 2, 4."""
    return [i * total // keep for i in range(keep)]


def _layer_list(model: Any) -> tuple[Any, str]:
    base = getattr(model, model.base_model_prefix, model)
    for path in _LAYER_LISTS:
        owner = base
        for name in path[:-1]:
            owner = getattr(owner, name, None)
        layers = getattr(owner, path[-1], None) if owner is not None else None
        if layers is not None and hasattr(layers, "__len__") and len(layers) == model.config.num_hidden_layers:
            return owner, path[-1]
    raise InvalidInputError(f"--student-layers: cannot find the layers of a {model.config.model_type} model",
                            hint="supported: BERT-family encoders (bert, roberta, electra, ...), distilbert, gpt2 "
                                 "and Llama-style decoders")


def keep_layers(model: Any, keep: int) -> list[int]:
    """Cut ``model`` down to ``keep`` of its layers in place; return the kept layers' original indices."""
    import torch

    total = model.config.num_hidden_layers
    if not 1 <= keep < total:
        raise InvalidInputError(f"--student-layers {keep}: the model has {total} layers",
                                hint=f"pick 1 to {total - 1}")
    owner, name = _layer_list(model)
    kept = layer_indices(total, keep)
    blocks = getattr(owner, name)
    setattr(owner, name, torch.nn.ModuleList([blocks[i] for i in kept]))
    for position, block in enumerate(getattr(owner, name)):
        for module in block.modules():  # decoders index their key/value cache by layer
            if isinstance(getattr(module, "layer_idx", None), int):
                module.layer_idx = position
    model.config.num_hidden_layers = keep
    return kept


@dataclass
class Distiller:
    """The teacher (frozen, in eval mode) and how its outputs enter the student's loss."""

    teacher: Any
    temperature: float
    alpha: float
    hidden_weight: float
    layer_map: list[int]  # teacher hidden-state index for each student hidden state

    @property
    def wants_hidden_states(self) -> bool:
        return self.hidden_weight > 0

    def loss(self, student: Any, batch: dict[str, Any], hard: Any, ignore_index: int) -> Any:
        """The distillation loss of one batch, given the student's outputs and its loss on the labels."""
        import torch
        import torch.nn.functional as F

        with torch.no_grad():
            teacher = self.teacher(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                                   output_hidden_states=self.wants_hidden_states)
        mine, theirs = student.logits, teacher.logits
        if mine.ndim == 3:  # per token: the labelled sub-words only
            labelled = batch["labels"] != ignore_index
            mine, theirs = mine[labelled], theirs[labelled]
        t = self.temperature
        soft = F.kl_div(F.log_softmax(mine / t, -1), F.log_softmax(theirs / t, -1), log_target=True,
                        reduction="batchmean") * (t * t) if len(mine) else mine.sum() * 0.0
        loss = self.alpha * soft + (1 - self.alpha) * hard
        if self.wants_hidden_states:
            mask = batch["attention_mask"].unsqueeze(-1).to(mine.dtype)
            count = mask.sum() * student.hidden_states[0].shape[-1]
            squared = [((state - teacher.hidden_states[j]) ** 2 * mask).sum() / count
                       for state, j in zip(student.hidden_states, self.layer_map, strict=True)]
            loss = loss + self.hidden_weight * torch.stack(squared).mean()
        return loss


def load_teacher(config: Any, hub: Hub, student: Any, tokenizer: Any, label_names: list[str],
                 model_class: Any) -> tuple[Distiller, str, str]:
    """Load ``config.teacher`` (the run's :class:`~fmhub.train.DistillOptions`) and check it can teach ``student``;
    return it with its repo and commit."""
    from transformers import AutoTokenizer

    repo, revision = split_ref(config.teacher, "--teacher")
    commit = hub.repo_info(repo, revision=revision).commit.oid
    folder = hub.download(repo, revision=commit, exclude=["eval/*"])
    require_trainable(folder, repo, "the teacher")
    teacher = model_class.from_pretrained(folder, use_safetensors=True).eval()
    teacher.requires_grad_(False)
    theirs = [teacher.config.id2label[i] for i in sorted(teacher.config.id2label)] if teacher.config.id2label else []
    if theirs != label_names:
        raise InvalidInputError(f"the teacher {repo} predicts labels {theirs}, the dataset has {label_names}",
                                hint="distill on the dataset the teacher was trained on")
    if AutoTokenizer.from_pretrained(folder).get_vocab() != tokenizer.get_vocab():
        raise InvalidInputError(f"the teacher {repo} and the student tokenize differently",
                                hint="distill into a student made from the teacher (--student-layers) or one with "
                                     "the teacher's tokenizer")
    total, keep = teacher.config.num_hidden_layers, student.config.num_hidden_layers
    if config.hidden_loss and teacher.config.hidden_size != student.config.hidden_size:
        raise InvalidInputError(f"--hidden-loss compares hidden states, but the teacher's are "
                                f"{teacher.config.hidden_size} wide and the student's {student.config.hidden_size}",
                                hint="drop --hidden-loss, or use a student of the teacher's width")
    if config.hidden_loss and keep > total:
        raise InvalidInputError(f"--hidden-loss: the student has more layers ({keep}) than the teacher ({total})")
    layer_map = [m * total // keep for m in range(keep + 1)]
    return Distiller(teacher, config.temperature, config.alpha, config.hidden_loss, layer_map), repo, commit
