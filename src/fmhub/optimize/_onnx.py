"""``fmhub optimize export-onnx``: a transformers model as ONNX, graph-optimized, checked against its parent.

How a torch model becomes an ONNX graph (tracing, the transformer fusions, what keeps it fast on the CPU) is
the ONNX format's own knowledge: :mod:`fmhub.formats.onnx`. Here the export becomes a variant: it must match
the parent on real rows (:func:`check_parity`) or nothing is pushed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fmhub.client import Hub
from fmhub.errors import InvalidInputError
from fmhub.formats.onnx import DEFAULT_OPSET, MIN_OPSET, write_onnx
from fmhub.explain import ExplainOptions
from fmhub.optimize._variant import Parent, VariantOutcome, check_parity, make_variant

__all__ = ["export_onnx"]


def export_onnx(model: str, output: str, *, data: str | None = None, opset: int = DEFAULT_OPSET,
                tolerance: float = 1e-3, optimize: bool = True, max_length: int = 128, private: bool = False,
                hub: Hub | None = None, report: bool = True, eval_data: str | None = None, eval_split: str = "test",
                eval_skip: tuple[str, ...] = (), explain: ExplainOptions | None = None,
                progress: Any = None) -> VariantOutcome:
    """Export ``model`` (REPO[@REV]) to ONNX and commit it to ``output``; see the module docstring.

    ``report``: then push the variant's report card against its parent (:func:`fmhub.optimize._variant.report_against_parent`).
    """
    if opset < MIN_OPSET:
        raise InvalidInputError(f"--opset {opset} is below {MIN_OPSET}", hint=f"use --opset {MIN_OPSET} or more")
    if not tolerance > 0:
        raise InvalidInputError(f"--tolerance {tolerance} must be positive")

    def build(parent: Parent, batch: dict[str, Any], folder: Path) -> dict[str, Any]:
        return {**write_onnx(parent.loaded, batch, folder, opset, optimize), "method": "export-onnx",
                "description": "an ONNX graph (fp32)"}

    def check(parent: Parent, variant: Any, batch: dict[str, Any]) -> dict[str, Any]:
        return check_parity(f"the ONNX export of {parent.repo}", parent.loaded, variant, batch, tolerance)

    return make_variant(model, output, build=build, check=check, title="Export {parent} to ONNX",
                        args={"method": "export-onnx", "opset": opset, "tolerance": tolerance, "optimize": optimize},
                        data=data, max_length=max_length, private=private, hub=hub, report=report,
                        eval_data=eval_data, eval_split=eval_split, eval_skip=eval_skip, explain=explain,
                        progress=progress)
