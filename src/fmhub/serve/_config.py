"""What ``fmhub serve`` runs: one dataclass, filled from the CLI, checked before the model loads."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from typing import Any

from fmhub.errors import InvalidInputError

__all__ = ["ServeConfig", "BACKENDS"]

#: auto: the form the model version's card declares (torch weights, ONNX graph, torch int8).
BACKENDS = ("auto", "torch", "onnx")


@dataclass(frozen=True)
class ServeConfig:
    """How to serve one model version (see ``fmhub serve --help`` for each field)."""

    model: str  # REPO[@REV]
    backend: str = "auto"
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    max_batch_size: int = 32
    max_wait_ms: float = 5.0
    max_queue: int = 256  # texts waiting for a batch; beyond: 429
    threads: int | None = None  # torch / onnxruntime threads per worker (default: cores / workers)
    max_body_bytes: int = 1_000_000
    max_input_tokens: int | None = None  # default: the model's positions
    max_image_pixels: int = 16_777_216  # an image input with more pixels: 413, refused before it is decoded
    max_inputs: int = 64  # texts in one request
    timeout_s: float = 30.0  # per request: 504 beyond
    max_explain_steps: int = 256  # /v1/explain: most integrated-gradients steps (more asked: 422)
    max_explain_inputs: int = 8  # /v1/explain: inputs in one request
    log_level: str = "info"
    require_signature: bool = False  # refuse the version unless its model.sig holds (trusted key, unchanged files)
    trust: tuple[str, ...] = ()  # public key files trusted besides the hub's keys of the repo's namespace

    def trusted_keys(self) -> list[Any] | None:
        """The keys to verify the version with (``--trust`` files read and checked), or None: no check."""
        from pathlib import Path

        from fmhub.signing import TrustedKey

        if not self.require_signature:
            return None
        keys = []
        for path in self.trust:
            try:
                keys.append(TrustedKey.from_pem(Path(path).read_bytes(), name=Path(path).stem))
            except OSError as exc:
                raise InvalidInputError(f"--trust {path}: {exc.strerror}", hint="give a .pub file") from exc
        return keys

    def validate(self) -> None:
        """Raise InvalidInputError naming the first bad option and its fix."""
        if self.backend not in BACKENDS:
            raise InvalidInputError(f"--backend {self.backend!r} is unknown", hint=f"choose from {', '.join(BACKENDS)}")
        if self.log_level not in ("critical", "error", "warning", "info", "debug"):
            raise InvalidInputError(f"--log-level {self.log_level!r} is unknown",
                                    hint="use info, warning, error or debug")
        checks = [
            ("port", 0 <= self.port <= 65535, "a TCP port (0: any free one)"),
            ("workers", self.workers >= 1, "≥ 1"),
            ("max_batch_size", 1 <= self.max_batch_size <= 1024, "between 1 and 1024"),
            ("max_wait_ms", 0 <= self.max_wait_ms <= 10_000 and math.isfinite(self.max_wait_ms),
             "between 0 and 10000"),
            ("max_queue", self.max_queue >= 1, "≥ 1"),
            ("threads", self.threads is None or self.threads >= 1, "≥ 1"),
            ("max_body_bytes", self.max_body_bytes >= 1024, "at least 1024"),
            ("max_input_tokens", self.max_input_tokens is None or self.max_input_tokens >= 2, "at least 2"),
            ("max_image_pixels", self.max_image_pixels >= 1, "≥ 1"),
            ("max_inputs", self.max_inputs >= 1, "≥ 1"),
            ("timeout_s", self.timeout_s > 0 and math.isfinite(self.timeout_s), "positive"),
            ("max_explain_steps", 2 <= self.max_explain_steps <= 4096, "between 2 and 4096"),
            ("max_explain_inputs", self.max_explain_inputs >= 1, "≥ 1"),
        ]
        for name, ok, rule in checks:
            if not ok:
                raise InvalidInputError(f"--{name.replace('_', '-')} {getattr(self, name)!r} must be {rule}")
        if self.trust and not self.require_signature:
            raise InvalidInputError("--trust only applies with --require-signature", hint="add --require-signature")
        if self.max_inputs > self.max_queue:
            raise InvalidInputError(f"--max-inputs {self.max_inputs} is more than --max-queue {self.max_queue}: such "
                                    "a request could never be queued", hint="lower --max-inputs or raise --max-queue")

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ServeConfig:
        data: dict[str, Any] = json.loads(text)
        return cls(**{**data, "trust": tuple(data.get("trust") or ())})
