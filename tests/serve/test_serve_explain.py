"""POST /v1/explain on a live server: text and image models, torch and ONNX, bounded cost (4xx)."""

from __future__ import annotations

import base64
import io

import httpx
import numpy as np
from PIL import Image

import fmhub
from fmhub.explain import ExplainArgs, explain

TEXTS = ["goal match team win score", "data cloud chip app"]


def _png(side: int = 32, seed: int = 0) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (side, side, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(out, format="PNG")
    return out.getvalue()


def test_explain_texts_as_offline_and_bounded(classifier: str, live) -> None:
    offline = fmhub.load(classifier)
    expected = explain(offline, TEXTS, ExplainArgs(method="integrated-gradients"))
    with live(classifier, max_input_tokens=16) as url:
        assert "/v1/explain" in httpx.get(f"{url}/v1/model").json()["endpoints"]
        answer = httpx.post(f"{url}/v1/explain", json={"inputs": TEXTS, "parameters": {"faithfulness": True}},
                            timeout=60)
        assert answer.status_code == 200, answer.text
        for got, (want, _) in zip(answer.json(), expected, strict=True):
            assert got["method"] == "integrated-gradients" and got["label"] == want.label
            assert got["units"] == want.units and len(got["spans"]) == len(got["units"])
            np.testing.assert_allclose(got["scores"], want.scores, atol=1e-4)
            assert got["completeness"]["holds"] and set(got["faithfulness"]) == {"comprehensiveness",
                                                                                 "sufficiency", "deletion_auc"}
        chosen = httpx.post(f"{url}/v1/explain", json={"inputs": TEXTS[0], "parameters": {
            "method": "occlusion", "label": offline.labels[1]}}, timeout=60).json()
        assert chosen[0]["label"] == offline.labels[1] and chosen[0]["method"] == "occlusion"

        def refused(body: dict, status: int, words: str) -> None:
            r = httpx.post(f"{url}/v1/explain", json=body, timeout=60)
            assert r.status_code == status and words in r.json()["error"], (r.status_code, r.text)

        refused({"inputs": TEXTS[0], "parameters": {"steps": 10_000}}, 422, "more than this server's 256")
        refused({"inputs": TEXTS * 5}, 422, "at most 8")
        refused({"inputs": " ".join(["goal"] * 40)}, 422, "this server takes at most 16")
        refused({"inputs": TEXTS[0], "parameters": {"method": "lime"}}, 422, "method")
        refused({"inputs": TEXTS[0], "parameters": {"label": "nope"}}, 422, "not one of the model's labels")
        refused({"inputs": []}, 422, "empty")
        cut = httpx.post(f"{url}/v1/explain", json={"inputs": " ".join(["goal"] * 40),
                                                    "parameters": {"truncate": True, "method": "occlusion"}},
                         timeout=60)
        assert cut.status_code == 200 and len(cut.json()[0]["units"]) == 14  # 16 less [CLS] and [SEP]


def test_onnx_backend_explains_by_occlusion_only(classifier: str, live) -> None:
    with live(classifier, backend="onnx") as url:
        answer = httpx.post(f"{url}/v1/explain", json={"inputs": TEXTS[0]}, timeout=60)
        assert answer.status_code == 200 and answer.json()[0]["method"] == "occlusion"
        ig = httpx.post(f"{url}/v1/explain", json={"inputs": TEXTS[0],
                                                   "parameters": {"method": "integrated-gradients"}}, timeout=60)
        assert ig.status_code == 422 and "occlusion" in ig.json()["hint"]


def test_explain_images(image_classifier: str, live) -> None:
    with live(image_classifier, max_image_pixels=10_000) as url:
        image = base64.b64encode(_png()).decode()
        answer = httpx.post(f"{url}/v1/explain", json={"inputs": [image]}, timeout=60)
        assert answer.status_code == 200, answer.text
        [got] = answer.json()
        rows, columns = got["grid"]
        assert rows * columns == len(got["scores"]) == len(got["units"]) and got["completeness"]["holds"]
        rollout = httpx.post(f"{url}/v1/explain", json={"inputs": image,
                                                        "parameters": {"method": "attention-rollout"}}, timeout=60)
        assert rollout.status_code == 422 and "vision transformer" in rollout.json()["error"]
        big = base64.b64encode(_png(side=120)).decode()
        assert httpx.post(f"{url}/v1/explain", json={"inputs": big}, timeout=60).status_code == 413
        assert httpx.post(f"{url}/v1/explain", json={"inputs": "%%%"}, timeout=60).status_code == 422
