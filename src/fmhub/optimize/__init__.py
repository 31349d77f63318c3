"""Model optimization: every variant is a new model version whose card names its parent.

``export_onnx`` writes an ONNX graph checked against its parent on real rows; further methods
(quantize, prune, distill) follow the same shape: parent in, variant commit out.
"""

from fmhub.optimize._onnx import export_onnx
from fmhub.optimize._variant import VariantOutcome

__all__ = ["export_onnx", "VariantOutcome"]
