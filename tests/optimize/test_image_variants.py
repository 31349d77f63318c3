"""ONNX export and int8 quantization of an image classifier: parity on real images, the variant loads and serves
the same decisions, its card compares it with its parent."""

from __future__ import annotations

import numpy as np
import pytest

import fmhub
from fmhub.client import Hub
from fmhub.data import load
from fmhub.errors import InvalidInputError
from fmhub.optimize import export_onnx, quantize


def test_onnx_export_and_int8_of_an_image_model(image_classifier: str, tiny_images: str) -> None:
    import onnx

    parent = fmhub.load(image_classifier)
    images = [row["image"] for row in load(tiny_images, split="test")]
    batch = parent.task.encode_batch(parent.preprocessor, images, 0)
    expected = parent.logits(batch)

    exported = export_onnx(image_classifier, "acme/digits-onnx", report=False)
    assert exported.variant["parity"]["max_abs_logit_diff"] <= 1e-3
    assert "rows of acme/digits" in exported.variant["parity"]["inputs"]  # real images of its training data
    graph = fmhub.load(exported.repo)
    assert graph.format == "onnx" and [i.name for i in graph.model.get_inputs()] == ["pixel_values"]
    np.testing.assert_allclose(graph.logits(batch), expected, atol=1e-3)  # dynamic batch axis: 20 images

    int8 = quantize(image_classifier, "acme/digits-int8", backend="onnx", eval_skip=("robustness", "baseline"))
    with Hub.open() as hub:
        folder = hub.download(int8.repo, revision=int8.commit)
    ops = {n.op_type for n in onnx.load(str(folder / "model.onnx")).graph.node}
    assert "ConvInteger" in ops and "ConvInteger" in int8.variant["weights"]  # the convolutions are int8
    assert (folder / "preprocessor_config.json").is_file()  # served and loaded as the parent
    loaded = fmhub.load(int8.repo)
    agreement = float((loaded.logits(batch).argmax(-1) == expected.argmax(-1)).mean())
    assert agreement >= 0.9 and int8.variant["parity"]["argmax_agreement"] >= 0.9
    parent_section = int8.report["parent"]
    assert parent_section["repo"] == image_classifier and parent_section["speedup"] is not None
    assert int8.report["efficiency"]["format"] == "onnx"

    static = quantize(image_classifier, "acme/digits-static", method="static-int8", calibration_rows=40, report=False)
    with Hub.open() as hub:
        graph = onnx.load(str(hub.download(static.repo, revision=static.commit) / "model.onnx")).graph
    assert {"QuantizeLinear", "DequantizeLinear"} <= {n.op_type for n in graph.node}
    assert "Conv" in static.variant["weights"] and "QDQ" in static.variant["weights"]
    assert "calibrated (MinMax) on 40 training rows" in static.variant["activations"]
    calibrated = fmhub.load(static.repo)
    assert float((calibrated.logits(batch).argmax(-1) == expected.argmax(-1)).mean()) >= 0.9
    with pytest.raises(InvalidInputError, match="static-int8 quantizes ONNX graphs"):
        quantize(image_classifier, "acme/never", method="static-int8", backend="torch", report=False)
