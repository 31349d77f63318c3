"""Import a local Hugging Face model folder into a new model repo, pickle weights made safetensors.

A folder that ``save_pretrained`` (or a snapshot download) produced holds ``config.json`` and its
weights. Weights in pickle form (``pytorch_model.bin``, or shards with
``pytorch_model.bin.index.json``) are converted to safetensors, the format transformers prefers and
that cannot run code when loaded. They are read only through
``torch.load(..., weights_only=True, mmap=True)``, whose unpickler builds tensors and plain
containers and nothing else; a file that needs more is refused, never loaded another way. Any other
pickle file (``.pt``, ``.pkl``, ``training_args.bin``...) is refused unless the caller allows it,
and then stored as-is: fmhub never loads it.

Conversions happen on this machine, into a temporary folder that is removed afterwards (the source
folder is only read); the result is committed through the Hub client, so an import into a hub server
(``FMHUB_ENDPOINT``) sends safetensors, never the pickle weights.

Example:
    >>> from fmhub.client import Hub
    >>> from fmhub.importing import import_model
    >>> with Hub.open() as hub:                          # FMHUB_ENDPOINT set? that server : the embedded store
    ...     commit = import_model(hub, "./tiny-bert", "acme/tiny-bert")
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import re
import tempfile
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from fmhub.client import Hub, LocalHub, UploadFile
from fmhub.errors import InvalidInputError, RepoExistsError, RepoNotFoundError
from fmhub.store import Repo, Store
from fmhub.store.blobs import Progress
from fmhub.store.objects import Commit
from fmhub.store.paths import validate_path, validate_repo_id
from fmhub.store.safety import is_pickle_path
from fmhub.store.transfer import PlannedFile

__all__ = [
    "ConvertedWeights",
    "Conversion",
    "ImportPlan",
    "import_model",
    "prepare_import",
    "convert_pickle_weights",
    "tied_weight_names",
]

#: Never imported: version-control internals, client caches, bytecode.
_SKIPPED_DIRS = {".git", ".hg", ".svn", ".cache", "__pycache__"}

# transformers' file names (transformers.utils: WEIGHTS_NAME, SAFE_WEIGHTS_NAME and their indexes).
_WEIGHTS = "pytorch_model.bin"
_WEIGHTS_INDEX = "pytorch_model.bin.index.json"
_SAFE_WEIGHTS = "model.safetensors"
_SAFE_WEIGHTS_INDEX = "model.safetensors.index.json"
_SHARD = re.compile(r"pytorch_model-\d{5}-of-\d{5}\.bin")


@dataclass(frozen=True)
class ConvertedWeights:
    """What :func:`convert_pickle_weights` wrote.

    Attributes:
        names: tensor names in the safetensors file.
        dropped: tied duplicates left out, each mapped to the name that holds its values (the model
            class re-ties them on load, as it does for files ``save_pretrained`` writes).
        copied: names that shared memory with another saved name and were written as copies.
        nbytes: bytes of tensor data written.
    """

    names: tuple[str, ...]
    dropped: dict[str, str]
    copied: tuple[str, ...]
    nbytes: int


@dataclass(frozen=True)
class Conversion:
    """Pickle weight files turned into safetensors files (paths relative to the folder)."""

    sources: tuple[str, ...]
    targets: tuple[str, ...]
    dropped: dict[str, str] = field(default_factory=dict)
    copied: tuple[str, ...] = ()

    def describe(self) -> str:
        """One line for people: what became what, and what happened to shared tensors."""
        def short(paths: tuple[str, ...]) -> str:
            return ", ".join(paths) if len(paths) <= 3 else f"{paths[0]}, {paths[1]} … {paths[-1]} ({len(paths)} files)"

        line = f"converted {short(self.sources)} → {short(self.targets)}"
        if self.dropped:
            ties = ", ".join(f"{name} (= {kept})" for name, kept in sorted(self.dropped.items()))
            line += f"; tied duplicates left for the model to re-tie: {ties}"
        if self.copied:
            line += f"; tensors sharing memory stored as copies: {', '.join(self.copied)}"
        return line


@dataclass(frozen=True)
class ImportPlan:
    """What an import commits: the files (converted ones from a temporary folder) and why."""

    folder: Path
    files: list[PlannedFile]
    conversions: list[Conversion]
    skipped: list[tuple[str, str]]  # (path, reason)
    pickles: list[str]  # pickle files stored as-is because the caller allowed it

    @property
    def total_size(self) -> int:
        return sum(f.size for f in self.files)


# -- the import ------------------------------------------------------------------------------------


def import_model(hub: Hub | Store, path: Path | str, repo_id: str, *, private: bool = False,
                 revision: str | None = None, title: str | None = None, message: str | None = None,
                 author: str | None = None, exist_ok: bool = False, allow_pickle: bool = False,
                 progress: Progress | None = None, hash_progress: Progress | None = None,
                 on_plan: Callable[[ImportPlan], None] | None = None,
                 notify: Callable[[str], None] | None = None) -> Commit:
    """Commit a local Hugging Face model folder to a new model repo, pickle weights as safetensors.

    Args:
        hub: the hub to import into (embedded or remote); a :class:`~fmhub.store.Store` is used through a
            :class:`~fmhub.client.LocalHub` over it.
        path: a folder holding ``config.json`` (what ``save_pretrained`` writes).
        revision: branch to commit to (created from the default branch if missing).
        title: commit title (default ``Import <folder name>``).
        message: commit body (default: a note of each conversion and skipped file).
        author: who the commit is by when ``hub`` is a store (default ``fmhub``); a hub names its own
            (``$FMHUB_USER`` on the embedded store, the token's user on a server).
        exist_ok: commit onto the repo if it already exists (adding and replacing files).
        allow_pickle: store pickle files other than the model's weights as-is instead of refusing.
        progress / hash_progress: called with byte counts while files are stored (sent) / hashed.
        on_plan: called once with the plan, after conversions and before any byte is stored.
        notify: called with a line before each conversion (they can take a while).

    Returns:
        The new commit.

    Raises:
        InvalidInputError: no ``config.json``, a refused pickle, weights that are not plain
            tensors, a symlink leading out of the folder.
        RepoExistsError: the repo exists and ``exist_ok`` is false.
        EmptyCommitError: with ``exist_ok``, the branch already holds exactly these files.
    """
    if isinstance(hub, Store):
        with LocalHub(hub, author=author or "fmhub") as local:
            return import_model(local, path, repo_id, private=private, revision=revision, title=title,
                                message=message, exist_ok=exist_ok, allow_pickle=allow_pickle, progress=progress,
                                hash_progress=hash_progress, on_plan=on_plan, notify=notify)
    folder = Path(path).expanduser()
    repo_id = validate_repo_id(repo_id)
    _check_model_folder(folder)
    if not exist_ok and _repo_exists(hub, repo_id):  # fail before converting gigabytes
        raise RepoExistsError("model", repo_id)
    with tempfile.TemporaryDirectory(prefix="fmhub-import-") as workdir:
        plan = prepare_import(folder, Path(workdir), allow_pickle=allow_pickle, notify=notify)
        if on_plan:
            on_plan(plan)
        created = False
        try:
            repo = hub.create_repo(repo_id, private=private)
            created = True
        except RepoExistsError:
            if not exist_ok:
                raise
            repo = hub.get_repo(repo_id)
        try:
            return hub.commit(repo.repo_id, [UploadFile(f.path_in_repo, f.local) for f in plan.files],
                              revision=_branch(hub, repo, revision), title=title or f"Import {folder.resolve().name}",
                              message=_describe(plan) if message is None else message, allow_pickle=allow_pickle,
                              progress=progress, hash_progress=hash_progress)
        except BaseException:
            if created:  # leave nothing behind: the repo was made for this commit only
                with contextlib.suppress(Exception):
                    hub.delete_repo(repo.repo_id)
            raise


def _repo_exists(hub: Hub, repo_id: str) -> bool:
    try:
        hub.get_repo(repo_id)
    except RepoNotFoundError:
        return False
    return True


def _branch(hub: Hub, repo: Repo, revision: str | None) -> str | None:
    """The branch to commit to, created from the default branch when missing (as ``fmhub upload`` does)."""
    if revision is None:
        return None
    branch = revision.removeprefix("refs/heads/")
    if branch != repo.default_branch and branch not in {r.name for r in hub.list_refs(repo.repo_id).branches}:
        hub.create_branch(repo.repo_id, branch)
    return branch


def _describe(plan: ImportPlan) -> str:
    lines = [conversion.describe() for conversion in plan.conversions]
    lines += [f"skipped {path}: {reason}" for path, reason in plan.skipped]
    lines += [f"stored {path} as-is (pickle; fmhub never loads it)" for path in plan.pickles]
    return "\n".join(lines)


def prepare_import(folder: Path | str, workdir: Path | str, *, allow_pickle: bool = False,
                   notify: Callable[[str], None] | None = None) -> ImportPlan:
    """Check a model folder, convert its pickle weights into ``workdir``, and list what to commit.

    Every check runs before the first (slow) conversion. Nothing is written into ``folder``.
    """
    folder, workdir = Path(folder).expanduser(), Path(workdir)
    _check_model_folder(folder)
    files = _collect_files(folder)
    by_dir: dict[str, list[str]] = defaultdict(list)
    for relative in files:
        parent, _, name = relative.rpartition("/")
        by_dir[parent].append(name)

    pending: list[tuple[str, list[str], bool]] = []  # (dir, pickle weight files, sharded)
    consumed: set[str] = set()
    skipped: list[tuple[str, str]] = []
    for directory, names in sorted(by_dir.items()):
        prefix = directory + "/" if directory else ""
        shards = sorted(n for n in names if _SHARD.fullmatch(n))
        ours = [n for n in (_WEIGHTS, _WEIGHTS_INDEX) if n in names] + shards
        if not ours:
            continue
        present = next((n for n in (_SAFE_WEIGHTS, _SAFE_WEIGHTS_INDEX) if n in names), None)
        if present is not None:  # the safe copy is there: the pickle is neither needed nor read
            for name in ours:
                skipped.append((prefix + name, f"{prefix + present} is already there"))
                consumed.add(prefix + name)
            continue
        if _WEIGHTS in names:
            pending.append((directory, [_WEIGHTS], False))
            consumed.add(prefix + _WEIGHTS)
        if _WEIGHTS_INDEX in names:
            index_shards = _index_shards(folder, prefix + _WEIGHTS_INDEX, names)
            pending.append((directory, index_shards, True))
            consumed.update(prefix + n for n in [_WEIGHTS_INDEX, *index_shards])
        elif shards:
            raise InvalidInputError(f"{prefix + shards[0]} is a weights shard but {prefix + _WEIGHTS_INDEX} is missing",
                                    hint="add the index that save_pretrained wrote beside the shards")

    pickles = sorted(p for p in files if p not in consumed and is_pickle_path(p))
    if pickles and not allow_pickle:
        raise InvalidInputError(
            f"refusing pickle file{'s' if len(pickles) > 1 else ''} {', '.join(pickles)}: loading a pickle can run "
            "arbitrary code, and only the model's own weights (pytorch_model*.bin) can be converted to safetensors",
            hint="remove them from the folder if the model does not need them (training_args.bin, optimizer.pt "
                 "and the like), or pass --allow-pickle to store them as-is (fmhub never loads them)")

    planned = [PlannedFile(files[p], validate_path(p), files[p].stat().st_size)
               for p in sorted(files) if p not in consumed]
    conversions = []
    for directory, sources, sharded in pending:
        conversion, outputs = _convert(folder, workdir, directory, sources, sharded, notify)
        clash = [p for p in conversion.targets if p in files]
        if clash:
            raise InvalidInputError(f"converting {conversion.sources[0]} would overwrite {clash[0]}, "
                                    "which the folder already holds",
                                    hint="remove one of the two copies of the weights from the folder")
        conversions.append(conversion)
        planned += outputs
    return ImportPlan(folder=folder, files=sorted(planned, key=lambda f: f.path_in_repo), conversions=conversions,
                      skipped=skipped, pickles=pickles)


def _check_model_folder(folder: Path) -> None:
    if not folder.exists():
        raise InvalidInputError(f"{str(folder)!r} does not exist", hint="give the folder save_pretrained wrote")
    if not folder.is_dir():
        raise InvalidInputError(f"{str(folder)!r} is not a folder",
                                hint="give the folder save_pretrained wrote (it holds config.json)")
    config = folder / "config.json"
    if not config.is_file():
        raise InvalidInputError(
            f"{str(folder)!r} has no config.json, so it is not a Hugging Face model folder",
            hint="give the folder save_pretrained wrote (it holds config.json); to store any other files, "
                 "use: fmhub upload REPO_ID PATH")
    try:
        parsed = json.loads(config.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInputError(f"{str(config)!r} is not valid JSON: {exc}",
                                hint="fix or re-create it with config.save_pretrained") from None
    if not isinstance(parsed, dict):
        raise InvalidInputError(f"{str(config)!r} is not a JSON object",
                                hint="re-create it with config.save_pretrained")


def _collect_files(folder: Path) -> dict[str, Path]:
    """Every file to consider, by POSIX path relative to ``folder``; symlinks must stay inside it.

    A Hugging Face cache snapshot (``…/snapshots/<commit>/``) is made of symlinks into the sibling
    ``…/blobs/`` folder of the same cached repo: those are allowed too.
    """
    root = folder.resolve()
    allowed = [root]
    if root.parent.name == "snapshots" and (root.parent.parent / "blobs").is_dir():
        allowed.append(root.parent.parent / "blobs")

    def inside(target: Path) -> bool:
        return any(target.is_relative_to(base) for base in allowed)

    files: dict[str, Path] = {}
    seen_dirs = {root}
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        here = Path(dirpath)
        kept = []
        for name in sorted(dirnames):
            if name in _SKIPPED_DIRS:
                continue
            target = (here / name).resolve()
            if not inside(target):
                raise _escaping_symlink(folder, here / name)
            if target not in seen_dirs:  # a symlink loop, or a folder reached twice
                seen_dirs.add(target)
                kept.append(name)
        dirnames[:] = kept
        for name in sorted(filenames):
            path = here / name
            try:
                target = path.resolve(strict=True)
            except (FileNotFoundError, RuntimeError):
                raise InvalidInputError(f"{str(path)!r} is a broken symlink",
                                        hint="remove it or point it at a file inside the folder") from None
            if not inside(target):
                raise _escaping_symlink(folder, path)
            if target.is_file():  # not sockets, pipes or devices
                files[path.relative_to(folder).as_posix()] = path
    return files


def _escaping_symlink(folder: Path, path: Path) -> InvalidInputError:
    return InvalidInputError(
        f"{str(path)!r} is a symlink to {str(path.resolve())!r}, outside {str(folder)!r}; refusing to import it",
        hint="copy the file into the folder if it belongs to the model")


def _index_shards(folder: Path, index_path: str, names: list[str]) -> list[str]:
    """The shard file names a ``pytorch_model.bin.index.json`` names, each checked to be beside it."""
    index = _read_index(folder / index_path)
    shards = sorted(set(index["weight_map"].values()))
    for shard in shards:
        if "/" in shard or "\\" in shard or not shard.endswith(".bin"):
            raise InvalidInputError(f"{index_path} names shard {shard!r}; shards must be .bin files beside it",
                                    hint="re-save the model with save_pretrained")
        if shard not in names:
            raise InvalidInputError(f"{index_path} names shard {shard!r}, which is not in the folder",
                                    hint="copy every shard the index lists into the folder")
    return shards


def _read_index(path: Path) -> dict:
    try:
        index = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInputError(f"{path.name} is not valid JSON: {exc}") from None
    weight_map = index.get("weight_map") if isinstance(index, dict) else None
    if not isinstance(weight_map, dict) or not weight_map or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in weight_map.items()):
        raise InvalidInputError(f"{path.name} has no weight_map of tensor names to shard files",
                                hint="re-save the model with save_pretrained")
    return index


def _safetensors_name(pickle_name: str) -> str:
    """``pytorch_model.bin`` → ``model.safetensors``, ``pytorch_model-00001-of-00002.bin`` → ``model-00001-…``."""
    stem = pickle_name.removesuffix(".bin")
    return ("model" + stem[len("pytorch_model"):] if stem.startswith("pytorch_model") else stem) + ".safetensors"


def _convert(folder: Path, workdir: Path, directory: str, sources: list[str], sharded: bool,
             notify: Callable[[str], None] | None) -> tuple[Conversion, list[PlannedFile]]:
    """Convert one folder's pickle weights (a file, or an index's shards) into ``workdir``."""
    prefix = directory + "/" if directory else ""
    source_dir, target_dir = folder / directory, workdir / directory
    target_dir.mkdir(parents=True, exist_ok=True)
    tied = tied_weight_names(source_dir)
    weight_map: dict[str, str] = {}
    dropped: dict[str, str] = {}
    copied: list[str] = []
    outputs: list[PlannedFile] = []
    total = 0
    for source in sources:
        target = _safetensors_name(source)
        if notify:
            notify(f"converting {prefix + source} → {prefix + target}")
        converted = convert_pickle_weights(source_dir / source, target_dir / target, tied_weights=tied,
                                           display_name=prefix + source)
        for name in converted.names:
            if name in weight_map:
                raise InvalidInputError(f"tensor {name!r} is in both {weight_map[name]} and {target}",
                                        hint="re-save the model with save_pretrained")
            weight_map[name] = target
        dropped.update(converted.dropped)
        copied += converted.copied
        total += converted.nbytes
        outputs.append(PlannedFile(target_dir / target, validate_path(prefix + target),
                                   (target_dir / target).stat().st_size))
    if sharded:
        # The same index transformers writes, naming the new shards; dropped tied names are left out
        # (the model re-ties them), and total_size counts the bytes actually stored.
        metadata = _read_index(source_dir / _WEIGHTS_INDEX).get("metadata")
        metadata = dict(metadata) if isinstance(metadata, dict) else {}
        metadata["total_size"] = total
        index_file = target_dir / _SAFE_WEIGHTS_INDEX
        index_file.write_text(json.dumps({"metadata": metadata, "weight_map": weight_map}, indent=2,
                                         sort_keys=True) + "\n", encoding="utf-8")
        outputs.append(PlannedFile(index_file, validate_path(prefix + _SAFE_WEIGHTS_INDEX),
                                   index_file.stat().st_size))
        sources = [_WEIGHTS_INDEX, *sources]
    conversion = Conversion(sources=tuple(prefix + s for s in sources),
                            targets=tuple(f.path_in_repo for f in outputs), dropped=dropped, copied=tuple(copied))
    return conversion, outputs


# -- pickle → safetensors --------------------------------------------------------------------------


def convert_pickle_weights(src: Path | str, dst: Path | str, *, tied_weights: Mapping[str, str] | None = None,
                           display_name: str | None = None) -> ConvertedWeights:
    """Convert a PyTorch state-dict file (``pytorch_model.bin``) to a safetensors file.

    The file is read only with ``torch.load(src, map_location="cpu", weights_only=True, mmap=True)``:
    objects other than tensors and plain containers are refused by the unpickler before any of their
    code runs, and fmhub never retries another way. ``dst`` appears atomically.

    Tensors that share memory are handled as ``save_pretrained`` does (safetensors stores no
    aliases): a name the model class declares tied to another name holding the very same tensor
    is left out, since ``from_pretrained`` re-ties it; other names sharing memory are stored as
    copies, so every name keeps its values whichever class loads the file.

    Args:
        tied_weights: ``{tied name: name it is tied to}`` as the model class declares them
            (default: read from the ``config.json`` beside ``src``, see :func:`tied_weight_names`).
        display_name: how errors name ``src`` (default: its file name).

    Raises:
        InvalidInputError: the file is not a zip-format checkpoint, holds anything but a flat
            ``{name: tensor}`` dict, or holds tensors safetensors cannot store.
    """
    src, dst = Path(src), Path(dst)
    name = display_name or src.name
    if tied_weights is None:
        tied_weights = tied_weight_names(src.parent)
    state_dict = _load_state_dict(src, name)
    tensors, dropped, copied = _without_aliases(state_dict, tied_weights)
    _save_safetensors(tensors, dst, name)
    return ConvertedWeights(names=tuple(tensors), dropped=dropped, copied=tuple(copied),
                            nbytes=sum(t.numel() * t.element_size() for t in tensors.values()))


def _load_state_dict(src: Path, name: str) -> dict:
    import torch

    try:
        # The one way fmhub reads a pickle: the restricted unpickler, tensors memory-mapped.
        loaded = torch.load(src, map_location="cpu", weights_only=True, mmap=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"WeightsUnpickler error: (.*?\.)(?:\s|$)", str(exc))
        detail = found.group(1) if found else str(exc).splitlines()[0]
        raise InvalidInputError(
            f"{name} holds more than tensors ({detail}); fmhub refuses to unpickle it, because loading such a "
            "file can run arbitrary code",
            hint="if you trust its source, load it yourself and save the state dict with "
                 "safetensors.torch.save_file, then import the folder again") from None
    except RuntimeError as exc:
        if "_use_new_zipfile_serialization" in str(exc):
            raise InvalidInputError(
                f"{name} is not a zip-format PyTorch checkpoint (the format of torch.save since PyTorch 1.6)",
                hint="re-save it with a current PyTorch: torch.save(torch.load(path, weights_only=True), path)"
            ) from None
        raise InvalidInputError(f"{name} is not a readable PyTorch checkpoint: {str(exc).splitlines()[0]}",
                                hint="re-save it with save_pretrained") from None
    except (EOFError, ValueError, OSError) as exc:
        raise InvalidInputError(f"{name} is not a readable PyTorch checkpoint: {exc}",
                                hint="re-save it with save_pretrained") from None
    if not isinstance(loaded, dict):
        raise InvalidInputError(f"{name} holds a {type(loaded).__name__}, not a state dict of tensors",
                                hint="save model.state_dict() with safetensors.torch.save_file instead")
    for key, value in loaded.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise InvalidInputError(
                f"{name}: entry {key!r} is a {type(value).__name__}, not a tensor; only a flat "
                "{name: tensor} state dict can be converted",
                hint="save model.state_dict() alone (a training checkpoint's {'model': ..., 'optimizer': ...} "
                     "is not a model's weights)")
        if value.layout != torch.strided:
            raise InvalidInputError(f"{name}: tensor {key!r} is {value.layout}, which safetensors cannot store",
                                    hint="make it dense with .to_dense() and save again")
    return loaded


def _without_aliases(state_dict: dict, tied: Mapping[str, str]) -> tuple[dict, dict[str, str], list[str]]:
    """A copy of ``state_dict`` in which no two tensors share memory (safetensors refuses aliases).

    Returns the tensors to save, the tied duplicates dropped (name → name kept) and the names copied.
    """
    tensors = {key: value.detach() for key, value in state_dict.items()}  # nn.Parameter → plain tensor
    by_storage: dict[tuple[int, int], list[str]] = defaultdict(list)
    for key, tensor in tensors.items():
        storage = tensor.untyped_storage()
        if storage.nbytes():  # empty tensors alias nothing
            by_storage[(storage.data_ptr(), storage.nbytes())].append(key)

    dropped: dict[str, str] = {}
    copied: list[str] = []
    for names in by_storage.values():
        if len(names) < 2:
            continue
        # Names viewing exactly the same elements: drop those the model re-ties on load, as
        # transformers.modeling_utils.remove_tied_weights_from_state_dict does for save_pretrained.
        # A name is dropped only when its declared source holds the same tensor and is kept, so
        # from_pretrained restores it; nothing is dropped on a guess.
        views: dict[tuple, list[str]] = defaultdict(list)
        for key in names:
            t = tensors[key]
            views[(t.data_ptr(), t.dtype, tuple(t.shape), t.stride())].append(key)
        for same in views.values():
            targets = {key for key in same if tied.get(key) in same and tied[key] != key}
            for key in sorted(targets):
                if tied[key] not in targets:
                    dropped[key] = tied[key]
        remaining = sorted(key for key in names if key not in dropped)
        for key in remaining[1:]:  # the first keeps the memory; the others get their own
            tensors[key] = tensors[key].clone()
            copied.append(key)
    for key in dropped:
        del tensors[key]
    # safetensors stores dense row-major bytes: strided views are made contiguous (a no-op for most).
    return {key: t.contiguous() for key, t in tensors.items()}, dropped, copied


def _save_safetensors(tensors: dict, dst: Path, name: str) -> None:
    from safetensors.torch import save_file

    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dst.parent, prefix=f".{dst.name}.", suffix=".incomplete")
    os.close(fd)
    try:
        try:
            # {"format": "pt"} is what save_pretrained writes; transformers checks it on load.
            save_file(tensors, tmp_name, metadata={"format": "pt"})
        except (ValueError, RuntimeError, TypeError) as exc:
            raise InvalidInputError(f"{name} cannot be stored as safetensors: {str(exc).strip().splitlines()[0]}",
                                    hint="convert the offending tensors to a standard dtype and save again"
                                    ) from None
        os.replace(tmp_name, dst)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def tied_weight_names(folder: Path | str) -> dict[str, str]:
    """``{tied name: name it is tied to}`` for the model class ``folder/config.json`` names.

    The architecture (``config.architectures``) is built from transformers' own classes on the
    ``meta`` device (no memory, no weights read); its ``all_tied_weights_keys`` are the names
    ``from_pretrained`` re-ties, which depends on the config (``tie_word_embeddings``). Remote code
    is never run. Returns ``{}`` when the config or the class is unknown to transformers: then
    aliased tensors are all kept, as copies.
    """
    folder = Path(folder)
    if not (folder / "config.json").is_file():
        return {}
    try:
        import torch
        import transformers

        with _quiet_transformers():
            config = transformers.AutoConfig.from_pretrained(folder, local_files_only=True, trust_remote_code=False)
            tied: dict[str, str] = {}
            for architecture in getattr(config, "architectures", None) or []:
                cls = getattr(transformers, str(architecture), None)
                if isinstance(cls, type) and issubclass(cls, transformers.PreTrainedModel):
                    with torch.device("meta"):
                        model = cls(config)
                    tied.update(getattr(model, "all_tied_weights_keys", None) or {})
            return tied
    except Exception:  # noqa: BLE001 - any failure only means "no ties known": every alias is kept, as a copy
        return {}


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    from transformers.utils import logging

    verbosity = logging.get_verbosity()
    logging.set_verbosity_error()
    try:
        yield
    finally:
        logging.set_verbosity(verbosity)
