"""fmhub serve of an image classifier on a live loopback server: base64 JSON, a raw image body and multipart
uploads answer as the model does offline, requests are batched, and every bad image is a 4xx naming the problem."""

from __future__ import annotations

import base64
import io
import struct
import zlib
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
from PIL import Image

import fmhub
from fmhub.data import load


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _bomb() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 30_000, 30_000, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b""))


def test_images_in_every_form_answer_as_offline(image_classifier: str, tiny_images: str, live) -> None:
    offline = fmhub.load(image_classifier)
    images = [row["image"] for row in load(tiny_images, split="test")][:6]
    logits = offline.logits(offline.task.encode_batch(offline.preprocessor, images, 0))
    expected = [offline.labels[i] for i in logits.argmax(-1)]
    files = [_png(image) for image in images]
    with live(image_classifier, max_wait_ms=50) as url:
        endpoint = f"{url}/v1/classify-image"
        as_json = httpx.post(endpoint, json={"inputs": [base64.b64encode(f).decode() for f in files]})
        assert as_json.status_code == 200 and as_json.headers["x-model-commit"] == offline.commit
        assert [scores[0]["label"] for scores in as_json.json()] == expected
        probabilities = np.exp(logits[0] - logits[0].max()) / np.exp(logits[0] - logits[0].max()).sum()
        scores = {s["label"]: s["score"] for s in as_json.json()[0]}
        assert np.allclose([scores[label] for label in offline.labels], probabilities, atol=1e-5)
        raw = httpx.post(endpoint, content=files[0], headers={"content-type": "image/png"}, params={"top_k": 2})
        assert raw.status_code == 200 and len(raw.json()[0]) == 2 and raw.json()[0][0]["label"] == expected[0]
        parts = [("file", (f"{i}.png", f, "image/png")) for i, f in enumerate(files)]
        upload = httpx.post(endpoint, files=parts, data={"top_k": "1"})
        assert upload.status_code == 200 and [s[0]["label"] for s in upload.json()] == expected
        data_uri = "data:image/png;base64," + base64.b64encode(files[1]).decode()
        assert httpx.post(endpoint, json={"inputs": data_uri}).json()[0][0]["label"] == expected[1]
        with ThreadPoolExecutor(6) as pool:  # concurrent requests share batches
            answers = list(pool.map(lambda f: httpx.post(endpoint, content=f, headers={"content-type": "image/png"},
                                                         timeout=30), files))
        assert [a.json()[0][0]["label"] for a in answers] == expected
        metrics = httpx.get(f"{url}/metrics").text
        batches = next(float(line.split()[-1]) for line in metrics.splitlines()
                       if line.startswith('fmhub_batch_size_count{endpoint="classify-image"}'))
        # No request is split: at most one batch each. (A lone request now runs at once, so concurrent single
        # images may each run alone on an idle model; sharing batches under load: tests/serve/test_serve.py.)
        assert batches <= 6 + 4
        info = httpx.get(f"{url}/v1/model").json()
        assert info["task"] == "image-classification" and info["endpoints"] == ["/v1/classify-image",
                                                                                "/v1/explain"]
        body = httpx.get(f"{url}/openapi.json").json()["paths"]["/v1/classify-image"]["post"]["requestBody"]
        assert {"application/json", "image/*", "multipart/form-data"} <= set(body["content"])


def test_bad_images_are_4xx_naming_the_problem(image_classifier: str, live) -> None:
    good = _png(Image.fromarray(np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8), "RGB"))
    with live(image_classifier, max_image_pixels=10_000, max_body_bytes=200_000) as url:
        endpoint = f"{url}/v1/classify-image"

        def post(**kwargs: object) -> httpx.Response:
            return httpx.post(endpoint, **kwargs)

        checks = [
            (post(content=b"plain words", headers={"content-type": "image/png"}), 422, "not an image"),
            (post(content=good[:len(good) // 2], headers={"content-type": "image/png"}), 422, "truncated"),
            (post(content=_bomb(), headers={"content-type": "image/png"}), 413, "over the limit of 10,000"),
            (post(content=_png(Image.new("L", (120, 120))), headers={"content-type": "image/png"}), 413, "120×120"),
            (post(content=good, headers={"content-type": "application/pdf"}), 415, "not application/pdf"),
            (post(files=[("file", ("a.pdf", b"%PDF", "application/pdf"))]), 415, "application/pdf"),
            (post(files={"note": (None, "no file")}), 422, "no file part"),
            (post(json={"inputs": "%%%"}), 422, "not valid base64"),
            (post(json={"inputs": [base64.b64encode(good).decode()], "parameters": {"top": 1}}), 422, "top"),
            (post(content=b"x" * 300_000, headers={"content-type": "image/png"}), 413, "200000"),
            (post(content=good, headers={"content-type": "image/png"}, params={"top_k": "0"}), 422, "top_k"),
        ]
        for answer, status, needle in checks:
            assert answer.status_code == status, (needle, answer.status_code, answer.text)
            assert needle in answer.json()["error"], (needle, answer.json())
        mixed = post(json={"inputs": [base64.b64encode(good).decode(), "%%%"]})
        assert mixed.status_code == 422  # one bad image fails its request, not the others'
        assert post(content=good, headers={"content-type": "image/png"}).status_code == 200  # still serving
        assert httpx.post(f"{url}/v1/classify", json={"inputs": "x"}).status_code == 404
        metrics = httpx.get(f"{url}/metrics").text
        assert 'status="500"' not in metrics
