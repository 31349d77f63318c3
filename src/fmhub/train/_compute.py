"""How the training arithmetic runs: mixed precision (``--precision``) and compilation (``--compile``).

Mixed precision is PyTorch's autocast, as ``transformers.Trainer``'s ``bf16=True`` / ``fp16=True``: the weights,
gradients and optimizer state stay float32, and the forward pass (and so the backward) runs matrix products
in bfloat16 or float16. float16 has a narrow range, so its loss is scaled up before the backward pass and the
gradients scaled back before clipping (``torch.amp.GradScaler``); bfloat16 has float32's range and needs no
scaler. ``auto`` picks bfloat16 where the hardware computes it natively — a GPU that supports it, a CPU with
AVX512-BF16 or AMX (oneDNN then runs bfloat16 matrix products about 1.4× faster than float32) — and float32
elsewhere: emulated bfloat16 is slower than float32.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from fmhub.errors import InvalidInputError

__all__ = ["resolve_precision", "native_bf16", "Precision", "compiled"]


def native_bf16(device: str) -> bool:
    """Whether ``device`` ("cpu", "cuda") computes bfloat16 matrix products natively (faster than float32)."""
    import torch

    if device == "cuda":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    if device != "cpu":
        return False
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in checks)


def resolve_precision(requested: str, device: str) -> str:
    """The precision a run uses on ``device``: ``requested``, with ``auto`` made concrete."""
    if requested == "auto":
        if device == "cuda":
            return "bf16" if native_bf16(device) else "fp16"
        return "bf16" if native_bf16(device) else "fp32"
    if requested == "fp16" and device not in ("cpu", "cuda", "xpu"):
        raise InvalidInputError(f"--precision fp16 is not supported on {device}", hint="use --precision bf16 or fp32")
    return requested


class Precision:
    """The autocast context of a training step and, for float16, its gradient scaler."""

    def __init__(self, name: str, device: str) -> None:
        import torch

        self.name, self.device = name, device
        self.dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(name)
        self.scaler = torch.amp.GradScaler(device) if name == "fp16" else None

    @contextlib.contextmanager
    def autocast(self) -> Iterator[None]:
        """The forward pass and loss of a training step run inside this."""
        if self.dtype is None:
            yield
            return
        import torch

        with torch.autocast(self.device, dtype=self.dtype):
            yield

    def backward(self, loss: Any) -> None:
        (self.scaler.scale(loss) if self.scaler is not None else loss).backward()

    def step(self, optimizer: Any, parameters: list[Any], max_norm: float = 0.0) -> bool:
        """Clip the gradients of ``parameters`` to the total norm ``max_norm`` (0: no clipping), then take the
        optimizer step; False when float16 gradients overflowed and the scaler skipped it.

        A fused optimizer (fp32 and bf16 runs) takes the clipping as its ``grad_scale``: the kernel divides each
        gradient by it as it reads it, where ``clip_grad_norm_`` multiplies every gradient in memory first (a pass
        over all of them; on a MiniLM step on CPU its saving was below the measurement noise). The same arithmetic
        to float rounding; no host sync either (the factor stays a tensor: 1 when the norm is within ``max_norm``).
        """
        import torch

        if self.scaler is not None:  # fp16: the gradients back at their true size before clipping
            self.scaler.unscale_(optimizer)
            if max_norm:
                torch.nn.utils.clip_grad_norm_(parameters, max_norm)
            scale = self.scaler.get_scale()
            self.scaler.step(optimizer)
            self.scaler.update()
            return self.scaler.get_scale() >= scale
        if not max_norm:
            optimizer.step()
            return True
        grads = [p.grad for p in parameters if p.grad is not None]
        if not all(group.get("fused") for group in optimizer.param_groups):
            torch.nn.utils.clip_grad_norm_(parameters, max_norm)
            optimizer.step()
            return True
        norm = torch.nn.utils.get_total_norm(grads, 2.0, foreach=True)
        optimizer.grad_scale = torch.clamp((norm + 1e-6) / max_norm, min=1.0)  # clip_grad_norm_'s factor, inverted
        try:
            optimizer.step()
        finally:
            optimizer.grad_scale = None
        return True


def compiled(module: Any) -> Any:
    """``torch.compile`` a training module, shapes dynamic (length-grouped batches vary in length)."""
    import torch

    return torch.compile(module, dynamic=True)
