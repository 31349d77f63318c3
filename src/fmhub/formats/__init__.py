"""Formats as plugins: the only place that knows how a stored model version is saved, described and loaded.

A model repo holds one form, named in its card's ``fmhub.variant.format`` (no entry: ``torch``):

- ``torch``: transformers weights (``model.safetensors``) — :mod:`fmhub.formats.torch`;
- ``onnx``: ``model.onnx`` (fp32, or int8 after dynamic quantization) on ONNX Runtime — :mod:`fmhub.formats.onnx`,
  which also exports torch models to it;
- ``torch-int8``: PyTorch dynamic int8 ``Linear`` layers, pickle-free — :mod:`fmhub.formats.torch_int8`;
- ``torch-pruned-heads``: fewer attention heads than the config names — :mod:`fmhub.formats.pruned_heads`.

:func:`load` is a registry lookup: the card names the format, ``config.architectures`` the task
(:mod:`fmhub.tasks`), and the result is a :class:`LoadedModel` with one forward function over named inputs.
Adding a format is one module, its registration (:func:`register`) and its tests.

Example:
    >>> import fmhub
    >>> loaded = fmhub.load("acme/bbc-minilm-int8@v1")
    >>> loaded.logits(loaded.tokenizer(["Shares rose on Monday"], return_tensors="np")).argmax(-1)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fmhub import tasks
from fmhub.cards import fmhub_section, parse_card
from fmhub.client import Hub
from fmhub.errors import InvalidInputError
from fmhub.formats._base import LoadedModel, ModelFormat, require_safetensors
from fmhub.formats.onnx import OnnxGraph
from fmhub.formats.pruned_heads import PrunedHeads
from fmhub.formats.torch import TorchWeights
from fmhub.formats.torch_int8 import TorchInt8
from fmhub.refs import split_ref
from fmhub.signing import TrustedKey

__all__ = ["ModelFormat", "LoadedModel", "register", "get", "names", "load", "load_folder", "card_metadata",
           "variant_of", "format_of", "require_trainable", "require_safetensors", "DEFAULT"]

#: The form of a model version whose card declares none.
DEFAULT = "torch"

_REGISTRY: dict[str, ModelFormat] = {}


def register(form: ModelFormat, *, replace: bool = False) -> ModelFormat:
    """Make ``form`` loadable under ``form.name`` (a second format of the same name is an error)."""
    if form.name in _REGISTRY and not replace:
        raise ValueError(f"a format named {form.name!r} is already registered")
    _REGISTRY[form.name] = form
    return form


for _form in (TorchWeights(), OnnxGraph(), TorchInt8(), PrunedHeads()):
    register(_form)


def names() -> tuple[str, ...]:
    return tuple(_REGISTRY)


def get(name: str, *, what: str = "this model") -> ModelFormat:
    """The format registered as ``name``, or an input error naming the ones this fmhub knows."""
    form = _REGISTRY.get(name) if isinstance(name, str) else None
    if form is None:
        raise InvalidInputError(f"{what} declares format {name!r}, which this fmhub cannot load",
                                hint=f"known formats: {', '.join(_REGISTRY)}")
    return form


def card_metadata(folder: Path) -> dict[str, Any]:
    """The YAML of the folder's ``README.md`` card (``{}`` without one, or when it does not parse)."""
    readme = folder / "README.md"
    if not readme.is_file():
        return {}
    try:
        return parse_card(readme.read_text(encoding="utf-8", errors="replace")).metadata
    except InvalidInputError:
        return {}


def variant_of(folder: Path) -> dict[str, Any]:
    """The card's ``fmhub.variant`` mapping (``{}`` for a plain transformers model)."""
    return fmhub_section(card_metadata(folder), "variant")


def format_of(folder: Path, what: str = "this model") -> ModelFormat:
    """The format a downloaded version's card declares (default :data:`DEFAULT`)."""
    return get(variant_of(folder).get("format", DEFAULT), what=what)


def require_trainable(folder: Path, repo: str, role: str) -> None:
    """Refuse, as an input error, a variant whose weights plain transformers cannot load (ONNX, torch int8...).

    Training (``--model``, ``--teacher``) loads weights with ``from_pretrained``; an optimized variant is an
    end product, so the fix is to start from the model it was made from (its ``fmhub.lineage`` parent).
    """
    metadata = card_metadata(folder)
    name = fmhub_section(metadata, "variant").get("format", DEFAULT)
    form = _REGISTRY.get(name)
    if form is not None and form.trainable:
        require_safetensors(folder, f"{role} {repo}")
        return
    parent = fmhub_section(metadata, "lineage").get("parent")
    named = form.description if form is not None else f"a {name}"
    raise InvalidInputError(f"{role} {repo} is {named} variant; training needs a model with torch weights",
                            hint=f"use the model it was made from ({parent})" if parent else
                            "use the torch model it was made from (see its card)")


def load_folder(folder: Path, repo: str = "", commit: str = "", threads: int | None = None) -> LoadedModel:
    """Load a downloaded model version (see :func:`load`)."""
    from transformers import AutoConfig

    what = repo or str(folder)
    form = format_of(folder, what)
    config = AutoConfig.from_pretrained(folder)
    task = tasks.for_model(config, what)
    preprocessor = task.load_preprocessor(folder)
    model, used = form.load(folder, config, task.model_class(), threads)
    return LoadedModel(repo, commit, folder, form, task, config, preprocessor, model, variant_of(folder), used)


def load(ref: str, *, hub: Hub | None = None, threads: int | None = None, verify: bool = False,
         trust: Sequence[TrustedKey | Path | str] = ()) -> LoadedModel:
    """Download ``REPO[@REV]`` (embedded store or ``FMHUB_ENDPOINT``) and load it by its declared format.

    Args:
        verify: refuse the version (:class:`~fmhub.errors.SignatureError`, nothing loaded) unless its
            ``model.sig`` holds: signed by a key the repo's namespace trusts on the hub (or one of ``trust``), not
            revoked, over exactly the version's files.
        trust: more trusted public keys: :class:`~fmhub.signing.TrustedKey` or paths of ``.pub`` files.

    Example:
        >>> model = fmhub.load("acme/bert@prod", verify=True, trust=["release.pub"])
    """
    repo, revision = split_ref(ref, "MODEL")
    keys = [k if isinstance(k, TrustedKey) else TrustedKey.from_pem(Path(k).read_bytes(), name=Path(k).stem)
            for k in trust]
    owned = hub is None
    opened = hub or Hub.open()
    try:
        commit = opened.repo_info(repo, revision=revision).commit.oid
        if verify:  # the whole version (cards too: the signature covers them), every byte hashed once
            folder = opened.verify(repo, commit, trust=keys).folder
        else:
            folder = opened.download(repo, revision=commit, exclude=["eval/*"])
    finally:
        if owned:
            opened.close()
    return load_folder(folder, repo, commit, threads)
