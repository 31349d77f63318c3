"""Checkpoints without pickle: weights, optimizer moments and RNG state in safetensors, the rest in JSON.

A checkpoint is a folder ``step-NNNNNNNN`` holding ``model.safetensors``, ``optimizer.safetensors``
(every tensor of the optimizer state, keyed ``<param index>.<name>``), ``optimizer.json`` (the
parameter groups and which entries were tensors), ``rng.safetensors`` (torch's CPU generator) and
``state.json`` (step, epoch, position in the epoch, best metric, patience...), and for an fp16 run
``scaler.json`` (the gradient scaler's loss scale and growth tracker, so a resumed run scales its loss as the
uninterrupted one would). It is written to a
temporary folder and renamed, so a kill leaves either the whole checkpoint or none of it.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["save_checkpoint", "load_checkpoint", "latest_checkpoint", "checkpoint_path"]

_PREFIX = "step-"


def save_checkpoint(folder: Path, step: int, model: Any, optimizer: Any, state: dict[str, Any], *,
                    keep: int = 2, scaler: Any = None) -> Path:
    """Write checkpoint ``step`` under ``folder`` and keep only the newest ``keep`` (plus ``state["best_step"]``).

    ``scaler``: the fp16 run's ``torch.amp.GradScaler`` (its state is a few numbers: kept as JSON).
    """
    import torch
    from safetensors.torch import save_file, save_model

    folder.mkdir(parents=True, exist_ok=True)
    target = checkpoint_path(folder, step)
    tmp = Path(tempfile.mkdtemp(prefix=".partial-", dir=folder))
    try:
        save_model(model, str(tmp / "model.safetensors"))
        optimizer_state = optimizer.state_dict()
        tensors: dict[str, Any] = {}
        scalars: dict[str, dict[str, Any]] = {}
        for index, entry in optimizer_state["state"].items():
            for name, value in entry.items():
                if isinstance(value, torch.Tensor):
                    tensors[f"{index}.{name}"] = value.detach().contiguous()
                else:
                    scalars.setdefault(str(index), {})[name] = value
        save_file(tensors, str(tmp / "optimizer.safetensors"))
        (tmp / "optimizer.json").write_text(json.dumps({"param_groups": optimizer_state["param_groups"],
                                                        "scalars": scalars}))
        save_file({"torch": torch.get_rng_state()}, str(tmp / "rng.safetensors"))
        if scaler is not None:
            (tmp / "scaler.json").write_text(json.dumps(scaler.state_dict()))
        (tmp / "state.json").write_text(json.dumps({**state, "step": step}, indent=2, sort_keys=True))
        for path in tmp.iterdir():
            with open(path, "rb") as f:
                os.fsync(f.fileno())
        if target.exists():
            shutil.rmtree(target)
        tmp.rename(target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    keep_steps = {state.get("best_step")}
    for old in sorted(_checkpoints(folder))[:-keep]:
        if int(old.name[len(_PREFIX):]) not in keep_steps:
            shutil.rmtree(old, ignore_errors=True)
    return target


def checkpoint_path(folder: Path, step: int) -> Path:
    """Where the checkpoint of ``step`` lives under ``folder``."""
    return folder / f"{_PREFIX}{step:08d}"


def _checkpoints(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return [p for p in folder.iterdir() if p.is_dir() and p.name.startswith(_PREFIX) and (p / "state.json").exists()]


def latest_checkpoint(folder: Path) -> Path | None:
    """The newest complete checkpoint under ``folder``, or None."""
    found = sorted(_checkpoints(folder))
    return found[-1] if found else None


def load_checkpoint(path: Path, model: Any, optimizer: Any | None = None, scaler: Any = None) -> dict[str, Any]:
    """Load weights (and optimizer, RNG and fp16 gradient-scaler state) from checkpoint ``path``; return its
    ``state.json``. A checkpoint without ``scaler.json`` (an fp32/bf16 run, or one written before it was kept) leaves
    ``scaler`` at its initial scale."""
    import torch
    from safetensors.torch import load_file, load_model

    load_model(model, str(path / "model.safetensors"))
    if optimizer is not None:
        tensors = load_file(str(path / "optimizer.safetensors"))
        meta = json.loads((path / "optimizer.json").read_text())
        state: dict[int, dict[str, Any]] = {}
        for key, value in tensors.items():
            index, name = key.split(".", 1)
            state.setdefault(int(index), {})[name] = value
        for index, values in meta["scalars"].items():
            state.setdefault(int(index), {}).update(values)
        optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
        torch.set_rng_state(load_file(str(path / "rng.safetensors"))["torch"])
    if scaler is not None and (path / "scaler.json").is_file():
        scaler.load_state_dict(json.loads((path / "scaler.json").read_text()))
    return json.loads((path / "state.json").read_text())
