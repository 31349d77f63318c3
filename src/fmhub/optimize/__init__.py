"""Model optimization: every variant is a new model version whose card names its parent.

``export_onnx`` writes an ONNX graph checked against its parent on real rows; ``quantize`` makes
dynamic int8 variants (ONNX Runtime or PyTorch); ``prune`` zeroes weights by magnitude or removes
FFN neurons (optionally recovered by a short fine-tune); ``distill`` trains a smaller student on a
teacher's soft targets. Each takes a parent version and commits a variant.
"""

from fmhub.optimize._distill import distill
from fmhub.optimize._onnx import export_onnx
from fmhub.optimize._prune import prune
from fmhub.optimize._quantize import quantize
from fmhub.optimize._variant import VariantOutcome

__all__ = ["export_onnx", "quantize", "prune", "distill", "VariantOutcome"]
