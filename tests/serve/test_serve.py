"""fmhub serve on a live loopback server: every endpoint, batching, limits, the served commit, backends."""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest

import fmhub
from fmhub.client import Hub
from fmhub.errors import InvalidInputError
from fmhub.serve import ServeConfig, prepare

TEXTS = ["goal match team win score", "data cloud server code", "team score goal", "cloud code data server data"]


def _metric(text: str, name: str, **labels: str) -> float:
    """The value of one Prometheus sample (0 when absent)."""
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    for line in text.splitlines():
        match = re.match(rf"^{re.escape(name)}\{{(.*)\}} (\S+)$", line)
        if match and all(part in match.group(1).split(",") for part in wanted.split(",") if part):
            return float(match.group(2))
    return 0.0


def test_classify_answers_as_the_model_does_offline(classifier: str, live) -> None:
    offline = fmhub.load(classifier)
    batch = offline.tokenizer(TEXTS, padding=True, return_tensors="np")
    expected = offline.logits(batch["input_ids"], batch["attention_mask"])
    labels = [offline.config.id2label[i] for i in range(len(offline.config.id2label))]
    with live(classifier) as url:
        answer = httpx.post(f"{url}/v1/classify", json={"inputs": TEXTS})
        assert answer.status_code == 200 and answer.headers["x-model-commit"] == offline.commit
        for scores, row in zip(answer.json(), expected, strict=True):
            assert [s["label"] for s in scores][0] == labels[int(row.argmax())]
            assert sum(s["score"] for s in scores) == pytest.approx(1.0, abs=1e-5)
            probabilities = np.exp(row - row.max()) / np.exp(row - row.max()).sum()
            assert {s["label"]: s["score"] for s in scores} == pytest.approx(
                {labels[i]: float(p) for i, p in enumerate(probabilities)}, abs=1e-5)
        one = httpx.post(f"{url}/v1/classify", json={"inputs": TEXTS[0], "parameters": {"top_k": 1}}).json()
        assert len(one) == 1 and len(one[0]) == 1
        info = httpx.get(f"{url}/v1/model").json()
        assert info["commit"] == offline.commit and info["task"] == "text-classification"
        assert info["labels"] == labels and "/v1/classify" in info["endpoints"] and "/v1/embed" in info["endpoints"]
        assert info["card"]["lineage"]["dataset"] == "acme/topics"
        assert httpx.get(f"{url}/healthz").json() == {"status": "ok"}
        assert httpx.get(f"{url}/docs").status_code == 200
        assert "/v1/classify" in httpx.get(f"{url}/openapi.json").json()["paths"]
        embedded = httpx.post(f"{url}/v1/embed", json={"inputs": TEXTS[:2]}).json()
        assert len(embedded) == 2 and len(embedded[0]) == offline.config.hidden_size
        assert np.linalg.norm(embedded[0]) == pytest.approx(1.0, abs=1e-5)
        wrong = httpx.post(f"{url}/v1/generate", json={"inputs": "x"})
        assert wrong.status_code == 404 and "/v1/classify" in wrong.json()["hint"]


def test_concurrent_requests_are_batched(classifier: str, live) -> None:
    with live(classifier, max_wait_ms=100, max_batch_size=16) as url:
        with ThreadPoolExecutor(12) as pool:
            answers = list(pool.map(lambda i: httpx.post(f"{url}/v1/classify", json={"inputs": TEXTS[i % 4]},
                                                         timeout=30), range(12)))
        assert all(a.status_code == 200 for a in answers)
        metrics = httpx.get(f"{url}/metrics").text
        batches = _metric(metrics, "fmhub_batch_size_count", endpoint="classify")
        inputs = _metric(metrics, "fmhub_inputs_total", endpoint="classify")
        assert inputs == 12 and batches < 12  # some batch held more than one request
        assert _metric(metrics, "fmhub_requests_total", endpoint="/v1/classify", status="200") == 12
        assert _metric(metrics, "fmhub_request_duration_seconds_count", endpoint="/v1/classify", status="200") == 12
        assert "fmhub_queue_depth" in metrics


def test_a_lone_request_does_not_wait_for_a_batch(classifier: str, live) -> None:
    """With nothing else queued the batcher runs at once: --max-wait-ms is paid only when others are waiting."""
    import time

    with live(classifier, max_wait_ms=3000, max_batch_size=16) as url:
        for text in TEXTS:
            began = time.perf_counter()
            answer = httpx.post(f"{url}/v1/classify", json={"inputs": text}, timeout=30)
            assert answer.status_code == 200
            assert time.perf_counter() - began < 2.5  # a wait for company would take the whole 3 s
        batches = _metric(httpx.get(f"{url}/metrics").text, "fmhub_batch_size_count", endpoint="classify")
        assert batches == len(TEXTS)


def test_client_errors_are_4xx_with_json(classifier: str, live) -> None:
    long_text = " ".join(["goal"] * 200)
    with live(classifier, max_body_bytes=4096, max_input_tokens=16, max_inputs=4, max_queue=8) as url:
        post = lambda body, **kw: httpx.post(f"{url}/v1/classify", **body, **kw)  # noqa: E731
        too_big = post({"content": json.dumps({"inputs": "x" * 5000})})
        assert too_big.status_code == 413 and "4096" in too_big.json()["error"]
        malformed = post({"content": b"{not json", "headers": {"content-type": "application/json"}})
        assert malformed.status_code == 422 and "invalid request" in malformed.json()["error"]
        for content_type in ("application/x-www-form-urlencoded", "text/plain"):  # curl -d; a body is JSON anyway
            as_curl = post({"content": json.dumps({"inputs": "goal"}), "headers": {"content-type": content_type}})
            assert as_curl.status_code == 200 and as_curl.json()[0][0]["label"]
        not_json = post({"content": b"inputs=goal", "headers": {"content-type": "application/x-www-form-urlencoded"}})
        assert not_json.status_code == 422 and "invalid request" in not_json.json()["error"]
        unknown = post({"json": {"inputs": "x", "parameters": {"topk": 2}}})
        assert unknown.status_code == 422 and "topk" in unknown.json()["error"]
        wrong_type = post({"json": {"inputs": 3}})
        assert wrong_type.status_code == 422
        long = post({"json": {"inputs": long_text}})
        assert long.status_code == 422 and "at most 16" in long.json()["error"] and "truncate" in long.json()["hint"]
        cut = post({"json": {"inputs": long_text, "parameters": {"truncate": True}}})
        assert cut.status_code == 200
        mixed = post({"json": {"inputs": ["goal", long_text]}})
        assert mixed.status_code == 422  # one bad input fails its request
        many = post({"json": {"inputs": ["x"] * 5}})
        assert many.status_code == 422 and "at most 4" in many.json()["error"]
        empty = post({"json": {"inputs": []}})
        assert empty.status_code == 422
        assert all(r.headers["x-model-commit"] for r in (too_big, malformed, long, cut))
        metrics = httpx.get(f"{url}/metrics").text
        assert _metric(metrics, "fmhub_requests_total", endpoint="/v1/classify", status="500") == 0


def test_a_full_queue_answers_429_and_a_slow_answer_504(classifier: str, live) -> None:
    with live(classifier, max_wait_ms=400, max_batch_size=64, max_queue=4, max_inputs=4) as url:
        with ThreadPoolExecutor(6) as pool:
            answers = list(pool.map(lambda _: httpx.post(f"{url}/v1/classify", json={"inputs": TEXTS}, timeout=30),
                                    range(6)))
        statuses = sorted(a.status_code for a in answers)
        assert 200 in statuses and 429 in statuses and set(statuses) <= {200, 429}
        busy = next(a for a in answers if a.status_code == 429)
        assert busy.headers["retry-after"] == "1" and "busy" in busy.json()["error"]
    with live(classifier, max_wait_ms=2000, timeout_s=0.2) as url:  # two inputs queued: the batcher waits for more
        slow = httpx.post(f"{url}/v1/classify", json={"inputs": ["goal", "match"]}, timeout=30)
        assert slow.status_code == 504 and "0.2 s" in slow.json()["error"]


def test_token_classification_gives_entities_with_offsets(ner_model: str, live) -> None:
    text = "team win ada lovelace score new york"
    with live(ner_model) as url:
        [entities] = httpx.post(f"{url}/v1/tokens", json={"inputs": [text]}).json()
    assert entities, "the tagger found no entity"
    for entity in entities:
        assert entity["word"] == text[entity["start"]:entity["end"]]
        assert entity["entity_group"] in ("PER", "LOC") and 0 < entity["score"] <= 1
    assert {"ada lovelace", "new york"} & {e["word"] for e in entities}


def test_fill_mask(masked_lm: str, live) -> None:
    with live(masked_lm) as url:
        answer = httpx.post(f"{url}/v1/fill-mask", json={"inputs": "goal [MASK] team", "parameters": {"top_k": 3}})
        assert answer.status_code == 200
        [candidates] = answer.json()
        assert len(candidates) == 3 and candidates[0]["score"] >= candidates[1]["score"] >= candidates[2]["score"]
        assert all(c["sequence"] == f"goal {c['token_str']} team" for c in candidates if "#" not in c["token_str"])
        none = httpx.post(f"{url}/v1/fill-mask", json={"inputs": "goal team"})
        assert none.status_code == 422 and "[MASK]" in none.json()["error"]


def test_generate_and_stream(causal_lm: str, live) -> None:
    with live(causal_lm) as url:
        body = {"inputs": "goal match", "parameters": {"max_new_tokens": 5, "temperature": 1.0, "seed": 7}}
        first = httpx.post(f"{url}/v1/generate", json=body).json()
        again = httpx.post(f"{url}/v1/generate", json=body).json()
        text = first[0]["generated_text"]
        assert first == again and text.startswith("goal match") and text != "goal match"
        streamed = {**body, "parameters": {**body["parameters"], "stream": True}}
        with httpx.stream("POST", f"{url}/v1/generate", json=streamed) as events:
            assert events.headers["content-type"].startswith("text/event-stream")
            lines = [line.removeprefix("data: ") for line in events.iter_lines() if line.startswith("data: ")]
        assert lines[-1] == "[DONE]"
        pieces = [json.loads(line)["token"]["text"] for line in lines[:-2]]
        assert json.loads(lines[-2])["generated_text"] == text  # the same seed, streamed
        assert "".join(pieces).split() == text.removeprefix("goal match").split()
        assert httpx.post(f"{url}/v1/classify", json={"inputs": "x"}).status_code == 404
        assert httpx.post(f"{url}/v1/generate", json={"inputs": "x", "parameters": {"max_new_tokens": 0}}
                          ).status_code == 422


def test_onnx_backend_matches_torch(classifier: str, live) -> None:
    with live(classifier, backend="torch") as url:
        torch_scores = httpx.post(f"{url}/v1/classify", json={"inputs": TEXTS}).json()
    with live(classifier, backend="onnx") as url:
        onnx_scores = httpx.post(f"{url}/v1/classify", json={"inputs": TEXTS}).json()
        info = httpx.get(f"{url}/v1/model").json()
        assert info["backend"] == "onnx" and "/v1/embed" not in info["endpoints"]
        assert httpx.post(f"{url}/v1/embed", json={"inputs": "x"}).status_code == 404
    for a, b in zip(torch_scores, onnx_scores, strict=True):
        assert {s["label"]: s["score"] for s in a} == pytest.approx({s["label"]: s["score"] for s in b}, abs=1e-4)


def test_onnx_exports_are_cached_per_commit_and_export_recipe(classifier: str, tmp_path) -> None:
    from fmhub.formats.onnx import EXPORT_RECIPE
    from fmhub.serve._model import open_model

    commit = prepare(ServeConfig(model=classifier)).split("@")[1]
    stale = tmp_path / "serve-onnx" / commit  # where an fmhub before the recipe key kept its export
    stale.mkdir(parents=True)
    (stale / "model.onnx").write_bytes(b"an export of an older recipe")
    with Hub.open() as hub:
        served = open_model(hub, f"{classifier}@{commit}", "onnx", 1, tmp_path)
        assert served.loaded.folder == tmp_path / "serve-onnx" / f"{commit}-r{EXPORT_RECIPE}"
        written = (served.loaded.folder / "model.onnx").stat().st_mtime_ns
        again = open_model(hub, f"{classifier}@{commit}", "onnx", 1, tmp_path)
    assert (again.loaded.folder / "model.onnx").stat().st_mtime_ns == written  # made once


def test_bad_versions_are_refused_before_serving(classifier: str, tiny_model: str, tmp_path) -> None:
    from fmhub.serve._model import open_model

    with Hub.open() as hub, pytest.raises(InvalidInputError, match="has no task head"):
        open_model(hub, tiny_model, "auto", 1, tmp_path)
    with pytest.raises(InvalidInputError, match="--backend 'tpu' is unknown"):
        prepare(ServeConfig(model=classifier, backend="tpu"))
    with pytest.raises(InvalidInputError, match="beyond the model's 64 positions"):
        prepare(ServeConfig(model=classifier, max_input_tokens=65))
    commit = prepare(ServeConfig(model=classifier)).split("@")[1]
    with Hub.open() as hub:
        folder = hub.download(classifier, revision=commit)
    original = (folder / "config.json").read_bytes()
    (folder / "config.json").write_bytes(original.replace(b"{", b"[", 1))  # changed in place, same size
    assert prepare(ServeConfig(model=classifier)).endswith(commit)
    assert (folder / "config.json").read_bytes() == original  # fetched again


def test_cli_bad_input_exits_2(classifier: str, capsys) -> None:
    from fmhub.cli import main

    for argv, needle in ((["acme/none"], "acme/none"), ([classifier, "--backend", "gpu"], "--backend 'gpu'"),
                         ([classifier, "--max-inputs", "300"], "--max-inputs 300 is more than --max-queue 256"),
                         ([classifier, "--port", "70000"], "--port 70000")):
        assert main(["serve", *argv]) == 2
        assert needle in capsys.readouterr().err
