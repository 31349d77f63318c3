"""The served model version: pulled and verified, loaded for the chosen backend, and its batch operations.

:func:`pull` resolves ``REPO[@REV]`` to a commit, refuses versions whose weights are only pickle files,
downloads the rest into the local cache and re-hashes every file against the commit's sha256.
:func:`open_model` loads it with :func:`fmhub.loading.load_folder` (``--backend onnx`` on a torch
version exports an ONNX graph once per commit and export recipe into the cache). :class:`ServedModel` runs
one batch of one endpoint: tokenize the batch at once with the fast tokenizer, sort by length, pad each
group of similar lengths only to its longest, run the forward pass and shape each input's answer.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fmhub.errors import EndpointNotServedError, InputTooLongError, IntegrityError, InvalidInputError
from fmhub.loading import EXPORTABLE_FORMATS, TORCH_FORMATS, LoadedModel, load_folder, variant_of
from fmhub.serve._batcher import Item

__all__ = ["ServedModel", "pull", "open_model", "ENDPOINTS"]

#: The endpoints of each task (``embed``: encoders with torch weights).
ENDPOINTS = {"text-classification": ("classify", "embed"), "token-classification": ("tokens", "embed"),
             "masked-lm": ("fill-mask", "embed"), "causal-lm": ("generate",)}
_WEIGHTS = (".safetensors", ".onnx")
_GROUP_SPREAD = 1.5  # a padding group's longest input is at most this many times its shortest


def pull(hub: Any, ref: str) -> tuple[str, str, Path]:
    """``(repo, commit, folder)`` of a verified local copy of ``ref`` (no pickle files, no card folder): every
    file is re-hashed against the commit's sha256 (a damaged cached file is fetched again)."""
    from fmhub.store.blobs._base import hash_file
    from fmhub.store.safety import PICKLE_SUFFIXES, is_pickle_path
    from fmhub.train._config import split_ref

    repo, revision = split_ref(ref, "MODEL")
    commit = hub.repo_info(repo, revision=revision).commit.oid
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


def open_model(hub: Any, ref: str, backend: str, threads: int | None, cache: Path) -> ServedModel:
    """Pull ``ref`` and load it for ``backend`` (auto: the form its card declares)."""
    repo, commit, folder = pull(hub, ref)
    declared = variant_of(folder).get("format", "torch")
    if backend == "torch" and declared == "onnx":
        raise InvalidInputError(f"{repo}@{commit[:12]} is an ONNX model; --backend torch needs torch weights",
                                hint="serve it with --backend onnx (or auto), or serve the torch model it came from")
    if backend == "onnx" and declared == "torch-int8":
        raise InvalidInputError(f"{repo}@{commit[:12]} is PyTorch int8; it has no ONNX form",
                                hint="serve it with --backend torch, or quantize its parent with --backend onnx")
    if backend == "onnx" and declared in EXPORTABLE_FORMATS:
        folder = _onnx_copy(folder, repo, commit, threads, cache)
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    loaded = load_folder(folder, repo, commit, threads)
    if loaded.task == "causal-lm" and loaded.format == "onnx":
        raise InvalidInputError("generation needs torch weights (the ONNX graph has no cache for decoding)",
                                hint="serve this model with --backend torch")
    return ServedModel(loaded)


def _onnx_copy(folder: Path, repo: str, commit: str, threads: int | None, cache: Path) -> Path:
    """An ONNX export of a torch version, made once per commit and export recipe under ``cache`` (written whole,
    then renamed)."""
    import shutil
    import tempfile

    from fmhub.optimize._onnx import DEFAULT_OPSET, EXPORT_RECIPE, write_onnx

    target = cache / "serve-onnx" / f"{commit}-r{EXPORT_RECIPE}"
    if (target / "model.onnx").is_file():
        return target
    loaded = load_folder(folder, repo, commit, threads)
    if loaded.task == "causal-lm":
        raise InvalidInputError("generation needs torch weights (the ONNX graph has no cache for decoding)",
                                hint="serve this model with --backend torch")
    sample = loaded.tokenizer(["a first sample", "a second, longer sample text"], padding=True, return_tensors="np")
    batch = {"input_ids": sample["input_ids"].astype(np.int64),
             "attention_mask": sample["attention_mask"].astype(np.int64)}
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


@dataclass
class _Encoded:
    ids: list[int]
    offsets: list[tuple[int, int]] | None
    words: list[int | None] | None


class ServedModel:
    """One loaded model version and the batch functions of its endpoints (run in the model thread)."""

    def __init__(self, loaded: LoadedModel, max_tokens: int | None = None) -> None:
        self.loaded = loaded
        config = loaded.config
        positions = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)
        self.positions = int(positions) if positions else None
        self.max_tokens = max_tokens or self.positions or 512
        tokenizer = loaded.tokenizer
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self.labels = [config.id2label[i] for i in sorted(config.id2label)] if loaded.task in (
            "text-classification", "token-classification") else []
        self.multi_label = getattr(config, "problem_type", None) == "multi_label_classification"
        encoder = loaded.task != "causal-lm" and loaded.format in TORCH_FORMATS
        self.endpoints = tuple(e for e in ENDPOINTS[loaded.task] if e != "embed" or encoder)

    def limit_tokens(self, limit: int | None) -> None:
        if limit is not None and self.positions is not None and limit > self.positions:
            raise InvalidInputError(f"--max-input-tokens {limit} is beyond the model's {self.positions} positions",
                                    hint=f"use {self.positions} or less")
        self.max_tokens = limit or self.max_tokens

    def check(self, endpoint: str) -> None:
        if endpoint not in self.endpoints:
            served = ", ".join(f"/v1/{e}" for e in self.endpoints)
            raise EndpointNotServedError(f"/v1/{endpoint} is not served for this {self.loaded.task} model "
                                         f"({self.loaded.format})", hint=f"this server answers {served}")

    # -- shared steps ---------------------------------------------------------------------------------

    def encode(self, items: list[Item], *, offsets: bool = False) -> list[_Encoded | Exception]:
        """Tokenize every text at once; inputs over the limit fail alone (or are cut, with ``truncate``)."""
        if not items:
            return []
        tokenizer = self.loaded.tokenizer
        texts = [item.text for item in items]
        encoded = tokenizer(texts, truncation=False, return_attention_mask=False, return_token_type_ids=False,
                            return_offsets_mapping=offsets)
        cut = [i for i, ids in enumerate(encoded["input_ids"]) if len(ids) > self.max_tokens
               and items[i].parameters.get("truncate")]
        again = tokenizer([texts[i] for i in cut], truncation=True, max_length=self.max_tokens,
                          return_attention_mask=False, return_token_type_ids=False,
                          return_offsets_mapping=offsets) if cut else None
        out: list[_Encoded | Exception] = []
        for i, ids in enumerate(encoded["input_ids"]):
            source, row = (again, cut.index(i)) if i in cut else (encoded, i)
            ids = source["input_ids"][row]
            if len(ids) > self.max_tokens:
                out.append(InputTooLongError(len(ids), self.max_tokens))
                continue
            out.append(_Encoded(ids, [tuple(o) for o in source["offset_mapping"][row]] if offsets else None,
                                source.word_ids(row) if offsets else None))
        return out

    def forward(self, encoded: list[_Encoded], run: Callable[[np.ndarray, np.ndarray], np.ndarray]
                ) -> list[np.ndarray]:
        """``run`` over groups of similar length (each padded to its longest); one output row per input."""
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i].ids))
        outputs: list[np.ndarray | None] = [None] * len(encoded)
        start = 0
        while start < len(order):
            end = start + 1
            shortest = max(1, len(encoded[order[start]].ids))
            while end < len(order) and len(encoded[order[end]].ids) <= _GROUP_SPREAD * shortest:
                end += 1
            group = order[start:end]
            width = len(encoded[group[-1]].ids)
            ids = np.full((len(group), width), self.pad_id, dtype=np.int64)
            mask = np.zeros((len(group), width), dtype=np.int64)
            for row, i in enumerate(group):
                n = len(encoded[i].ids)
                ids[row, :n] = encoded[i].ids
                mask[row, :n] = 1
            result = run(ids, mask)
            for row, i in enumerate(group):
                outputs[i] = result[row]
            start = end
        return outputs  # type: ignore[return-value]

    def _batch(self, items: list[Item], answer: Callable[[list[_Encoded], list[Item]], list[Any]], *,
               offsets: bool = False) -> list[Any]:
        encoded = self.encode(items, offsets=offsets)
        good = [i for i, e in enumerate(encoded) if not isinstance(e, Exception)]
        results: list[Any] = list(encoded)
        if good:
            for i, value in zip(good, answer([encoded[i] for i in good], [items[i] for i in good]), strict=True):
                results[i] = value
        return results

    # -- endpoints ------------------------------------------------------------------------------------

    def classify(self, items: list[Item]) -> list[Any]:
        """Labels with scores, best first (softmax; sigmoid per label for multi-label models)."""

        def answer(encoded: list[_Encoded], items: list[Item]) -> list[Any]:
            logits = self.forward(encoded, self.loaded.logits)
            out = []
            for row, item in zip(logits, items, strict=True):
                scores = 1 / (1 + np.exp(-row)) if self.multi_label else _softmax(row)
                top = int(item.parameters.get("top_k") or len(self.labels))
                best = np.argsort(-scores, kind="stable")[:top]
                out.append([{"label": self.labels[j], "score": float(scores[j])} for j in best])
            return out

        return self._batch(items, answer)

    def tokens(self, items: list[Item]) -> list[Any]:
        """Entities: words tagged by their first sub-word, B-/I- runs joined into spans with character offsets."""

        def answer(encoded: list[_Encoded], items: list[Item]) -> list[Any]:
            logits = self.forward(encoded, self.loaded.logits)
            return [_entities(item.text, e, _softmax(row[:len(e.ids)]), self.labels)
                    for e, row, item in zip(encoded, logits, items, strict=True)]

        return self._batch(items, answer, offsets=True)

    def fill_mask(self, items: list[Item]) -> list[Any]:
        """For each mask token, the ``top_k`` (default 5) most likely tokens and the filled-in text."""
        tokenizer = self.loaded.tokenizer
        mask_id = tokenizer.mask_token_id
        results: list[Any] = []
        usable = []
        for item in items:
            if mask_id is None or tokenizer.mask_token not in item.text:
                results.append(InvalidInputError(f"an input has no mask token {tokenizer.mask_token!r}",
                                                 hint=f"write {tokenizer.mask_token} where a word should be "
                                                      "predicted"))
            else:
                results.append(None)
                usable.append(item)

        def answer(encoded: list[_Encoded], items: list[Item]) -> list[Any]:
            logits = self.forward(encoded, self.loaded.logits)
            out = []
            for e, row, item in zip(encoded, logits, items, strict=True):
                top = int(item.parameters.get("top_k") or 5)
                masks = []
                for position in [p for p, t in enumerate(e.ids) if t == mask_id]:
                    scores = _softmax(row[position])
                    best = np.argsort(-scores, kind="stable")[:top]
                    masks.append([{"score": float(scores[t]), "token": int(t),
                                   "token_str": tokenizer.decode([int(t)]).strip(),
                                   "sequence": tokenizer.decode([int(t) if p == position else i
                                                                 for p, i in enumerate(e.ids)],
                                                                skip_special_tokens=True)} for t in best])
                out.append(masks[0] if len(masks) == 1 else masks)
            return out

        answered = iter(self._batch(usable, answer))
        return [next(answered) if r is None else r for r in results]

    def embed(self, items: list[Item]) -> list[Any]:
        """Mean of the last hidden states over real tokens, L2-normalized unless ``normalize`` is false."""
        import torch

        model = self.loaded.model
        base = getattr(model, model.base_model_prefix, model)

        def hidden(ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
            with torch.inference_mode():
                states = base(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask)
                              ).last_hidden_state.float()
                weights = torch.from_numpy(mask).unsqueeze(-1).float()
                return ((states * weights).sum(1) / weights.sum(1).clamp(min=1)).numpy()

        def answer(encoded: list[_Encoded], items: list[Item]) -> list[Any]:
            vectors = self.forward(encoded, hidden)
            out = []
            for vector, item in zip(vectors, items, strict=True):
                if item.parameters.get("normalize", True):
                    vector = vector / max(float(np.linalg.norm(vector)), 1e-12)
                out.append([float(x) for x in vector])
            return out

        return self._batch(items, answer)

    def generate(self, text: str, parameters: dict[str, Any], on_text: Callable[[str], None] | None = None) -> str:
        """Continue ``text`` (greedy at temperature 0, else sampling with top-p); ``on_text`` gets each new piece."""
        import torch
        from transformers import TextStreamer

        tokenizer, model = self.loaded.tokenizer, self.loaded.model
        encoded = self.encode([Item(text, parameters, None)])[0]  # type: ignore[arg-type]
        if isinstance(encoded, Exception):
            raise encoded
        room = self.max_tokens - len(encoded.ids)
        new = min(int(parameters.get("max_new_tokens", 32)), room)
        if new < 1:
            raise InputTooLongError(len(encoded.ids), self.max_tokens - 1)
        temperature = float(parameters.get("temperature", 0.0))
        if parameters.get("seed") is not None:
            torch.manual_seed(int(parameters["seed"]))

        class _Streamer(TextStreamer):
            def on_finalized_text(self, piece: str, stream_end: bool = False) -> None:
                if piece and on_text is not None:
                    on_text(piece)

        ids = torch.tensor([encoded.ids])
        options: dict[str, Any] = {"do_sample": temperature > 0, "max_new_tokens": new,
                                   "pad_token_id": tokenizer.pad_token_id}
        if temperature > 0:
            options.update(temperature=temperature, top_p=float(parameters.get("top_p", 1.0)), top_k=0)
        with torch.inference_mode():
            output = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids),
                                    streamer=_Streamer(tokenizer, skip_prompt=True, skip_special_tokens=True),
                                    **options)
        return tokenizer.decode(output[0, len(encoded.ids):], skip_special_tokens=True)


def _softmax(x: np.ndarray) -> np.ndarray:
    z = np.exp(x - x.max(-1, keepdims=True))
    return z / z.sum(-1, keepdims=True)


def _entities(text: str, encoded: _Encoded, probabilities: np.ndarray, labels: list[str]) -> list[dict[str, Any]]:
    """Join words into entities: B-X starts one, I-X continues an X (or starts one after O or another type)."""
    assert encoded.words is not None and encoded.offsets is not None
    words: list[tuple[str, float, int, int]] = []  # (label, score, start, end) per word
    for position, word in enumerate(encoded.words):
        if word is None:
            continue
        start, end = encoded.offsets[position]
        if words and position > 0 and encoded.words[position - 1] == word:
            label, score, first, _ = words[-1]
            words[-1] = (label, score, first, end)  # a continuation sub-word widens its word
            continue
        best = int(probabilities[position].argmax())
        words.append((labels[best], float(probabilities[position, best]), start, end))
    entities: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    for label, score, start, end in words:
        prefix, _, kind = label.partition("-") if "-" in label else ("", "", label)
        if label == "O" or not kind:
            current = None
            continue
        if current is None or prefix == "B" or current["entity_group"] != kind:
            current = {"entity_group": kind, "scores": [score], "start": start, "end": end}
            entities.append(current)
        else:
            current["scores"].append(score)
            current["end"] = end
    return [{"entity_group": e["entity_group"], "score": float(math.fsum(e["scores"]) / len(e["scores"])),
             "word": text[e["start"]:e["end"]], "start": e["start"], "end": e["end"]} for e in entities]
