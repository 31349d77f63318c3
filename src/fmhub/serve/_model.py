"""The served model version: pulled and verified, loaded for the chosen backend, and its endpoints.

:func:`pull` resolves ``REPO[@REV]`` to a commit, refuses versions whose weights are only pickle files,
downloads the rest into the local cache and re-hashes every file against the commit's sha256.
:func:`open_model` loads it with :func:`fmhub.formats.load_folder` (``--backend onnx`` on a torch
version exports an ONNX graph once per commit and export recipe into the cache). :class:`ServedModel` holds
it with the endpoints its task serves (``fmhub.tasks``) that its loaded form can answer (an endpoint that
needs hidden states or generation is served only where the format has them).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fmhub import formats
from fmhub.client import Hub
from fmhub.errors import EndpointNotServedError, IntegrityError, InvalidInputError
from fmhub.formats import LoadedModel, load_folder
from fmhub.formats.onnx import DEFAULT_OPSET, EXPORT_RECIPE, write_onnx
from fmhub.refs import split_ref
from fmhub.signing import TrustedKey
from fmhub.store.blobs import hash_file
from fmhub.store.safety import PICKLE_SUFFIXES, is_pickle_path
from fmhub.tasks import Endpoint, ServingContext, for_model

__all__ = ["ServedModel", "pull", "open_model"]

_WEIGHTS = (".safetensors", ".onnx")


def pull(hub: Hub, ref: str, signed_by: Sequence[TrustedKey] | None = None) -> tuple[str, str, Path]:
    """``(repo, commit, folder)`` of a verified local copy of ``ref`` (no pickle files, no card folder): every
    file is re-hashed against the commit's sha256 (a damaged cached file is fetched again).

    ``signed_by`` (``--require-signature``): first verify the version's model.sig over all its files, by one of
    these keys or a key the hub trusts for the namespace (SignatureError otherwise: nothing is loaded).
    """
    repo, revision = split_ref(ref, "MODEL")
    commit = hub.repo_info(repo, revision=revision).commit.oid
    if signed_by is not None:
        hub.verify(repo, commit, trust=signed_by)
    entries = [e for e in hub.list_files(repo, commit) if not e.path.startswith("eval/")]
    kept = [e for e in entries if not is_pickle_path(e.path)]
    if not any(e.path.endswith(_WEIGHTS) for e in kept):
        pickles = sorted(e.path for e in entries if is_pickle_path(e.path))
        found = f" (only pickle files: {', '.join(pickles[:5])})" if pickles else ""
        raise InvalidInputError(f"{repo}@{commit[:12]} holds no safetensors or ONNX weights{found}",
                                hint="fmhub serves safetensors and ONNX only: push the model saved with "
                                     "save_pretrained(safe_serialization=True)")
    exclude = ["eval/*", *(f"*{suffix}" for suffix in PICKLE_SUFFIXES)]
    folder = hub.download(repo, revision=commit, exclude=exclude, verify=True)
    damaged = [e for e in kept if hash_file(folder / e.path)[0] != e.blob_sha256]
    if damaged:  # the cache checks sizes only: a file changed in place is fetched again, once
        for entry in damaged:
            (folder / entry.path).unlink()
        folder = hub.download(repo, revision=commit, exclude=exclude, verify=True)
        for entry in damaged:
            if hash_file(folder / entry.path)[0] != entry.blob_sha256:
                raise IntegrityError(f"{entry.path} of {repo}@{commit[:12]} does not match the commit's sha256 even "
                                     "after fetching it again", expected=entry.blob_sha256)
    return repo, commit, folder


def open_model(hub: Hub, ref: str, backend: str, threads: int | None, cache: Path,
               max_pixels: int | None = None, signed_by: Sequence[TrustedKey] | None = None) -> ServedModel:
    """Pull ``ref`` and load it for ``backend`` (auto: the form its card declares); ``max_pixels``: the image
    inputs' limit; ``signed_by``: verify its signature first (see :func:`pull`)."""
    repo, commit, folder = pull(hub, ref, signed_by)
    declared = check_servable(folder, repo, commit, backend)
    if backend == "onnx" and declared.name != "onnx":
        folder = _onnx_copy(folder, repo, commit, threads, cache)
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    served = ServedModel(load_folder(folder, repo, commit, threads), max_pixels=max_pixels)
    if not served.endpoints:
        wanted = ", ".join(f"/v1/{e.name} needs {e.needs}" for e in served.loaded.task.endpoints if e.needs)
        raise InvalidInputError(f"{repo}@{commit[:12]} as {served.loaded.format} answers none of its task's endpoints"
                                f" ({wanted})", hint="serve this model with --backend torch")
    return served


def check_servable(folder: Path, repo: str, commit: str, backend: str) -> formats.ModelFormat:
    """What can be told without loading the weights: the model has a task head and ``backend`` suits its format
    (an input error naming the fix otherwise); returns its declared format."""
    from transformers import AutoConfig

    what = f"{repo}@{commit[:12]}"
    declared = formats.format_of(folder, what)
    if not (folder / "config.json").is_file():
        raise InvalidInputError(f"{what} has no config.json", hint="push the model saved with save_pretrained")
    for_model(AutoConfig.from_pretrained(folder), what)
    if backend == "torch" and not declared.torch:
        raise InvalidInputError(f"{repo}@{commit[:12]} is {declared.description} model; --backend torch needs torch "
                                "weights", hint="serve it with --backend onnx (or auto), or serve the torch model it "
                                                "came from")
    if backend == "onnx" and declared.name != "onnx":
        if not declared.exportable:
            raise InvalidInputError(f"{repo}@{commit[:12]} is {declared.description} model; it has no ONNX form",
                                    hint="serve it with --backend torch, or quantize its parent with --backend onnx")
    return declared


def _onnx_copy(folder: Path, repo: str, commit: str, threads: int | None, cache: Path) -> Path:
    """An ONNX export of a torch version, made once per commit and export recipe under ``cache`` (written whole,
    then renamed)."""
    import shutil
    import tempfile

    target = cache / "serve-onnx" / f"{commit}-r{EXPORT_RECIPE}"
    if (target / "model.onnx").is_file():
        return target
    loaded = load_folder(folder, repo, commit, threads)
    if not any(e.needs is None for e in loaded.task.endpoints):
        needs = ", ".join(sorted({e.needs for e in loaded.task.endpoints if e.needs}))
        raise InvalidInputError(f"every endpoint of a {loaded.task.name} model needs {needs}, which an ONNX graph has "
                                "not", hint="serve this model with --backend torch")
    batch = loaded.task.example_inputs(loaded.preprocessor)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".partial-", dir=target.parent))
    try:
        fields = write_onnx(loaded, batch, tmp, DEFAULT_OPSET, optimize=True)
        (tmp / "README.md").write_text(f"---\nfmhub:\n  variant:\n    format: onnx\n    graph_optimization: "
                                       f"{fields['graph_optimization']}\n---\nONNX export of {repo}@{commit}\n")
        if target.exists():
            shutil.rmtree(target)
        tmp.rename(target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


class ServedModel:
    """One loaded model version and the endpoints it answers (their batch functions run in the model thread)."""

    def __init__(self, loaded: LoadedModel, max_tokens: int | None = None, max_pixels: int | None = None) -> None:
        self.loaded = loaded
        config = loaded.config
        positions = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)
        self.positions = int(positions) if positions else None
        self.labels = loaded.labels
        self.context = ServingContext(loaded, self.labels, max_tokens or self.positions or 512,
                                      loaded.task.multi_label)
        declared = loaded.variant.get("max_length")  # a variant picked at that length reads texts cut to it
        if isinstance(declared, int) and not isinstance(declared, bool) and declared > 0:
            self.context.max_length = declared
        if max_pixels is not None:
            self.context.max_pixels = max_pixels
        self._endpoints = {e.name: e for e in loaded.task.endpoints
                           if e.needs is None or e.needs in loaded.capabilities}

    @property
    def endpoints(self) -> tuple[str, ...]:
        return tuple(self._endpoints)

    @property
    def max_tokens(self) -> int:
        return self.context.max_tokens

    def endpoint(self, name: str) -> Endpoint:
        """The endpoint ``name`` of this model, or 404 naming the ones it serves."""
        found = self._endpoints.get(name)
        if found is None:
            served = ", ".join(f"/v1/{e}" for e in self._endpoints)
            raise EndpointNotServedError(f"/v1/{name} is not served for this {self.loaded.task.name} model "
                                         f"({self.loaded.format})", hint=f"this server answers {served}")
        return found

    def limit_tokens(self, limit: int | None) -> None:
        if limit is not None and self.positions is not None and limit > self.positions:
            raise InvalidInputError(f"--max-input-tokens {limit} is beyond the model's {self.positions} positions",
                                    hint=f"use {self.positions} or less")
        self.context.max_tokens = limit or self.context.max_tokens

    def batch_function(self, name: str) -> Any:
        """``items → results`` of a batched endpoint, for its batcher."""
        endpoint = self.endpoint(name)
        return lambda items: endpoint.run(self.context, items)

    def run_one(self, name: str, inputs: Any, parameters: dict[str, Any], on_text: Any = None) -> Any:
        """One input of an unbatched endpoint (generation)."""
        return self.endpoint(name).run(self.context, inputs, parameters, on_text)
