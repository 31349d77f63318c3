"""``fmhub serve``: one model version of the hub as an HTTP inference service."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fmhub.cli._common import EndpointOption, TokenOption, err_console, quiet_ml_libraries


def register(app: typer.Typer) -> None:
    app.command("serve", no_args_is_help=True)(serve_command)


def serve_command(
    model: Annotated[str, typer.Argument(help="The model version, REPO or REPO@REVISION (branch, tag or commit).",
                                         show_default=False)],
    backend: Annotated[str, typer.Option("--backend", help="auto: the form the card declares (torch, ONNX, torch "
                                                           "int8); torch; onnx (a torch version is exported once "
                                                           "per commit into the cache).")] = "auto",
    host: Annotated[str, typer.Option("--host", help="Address to listen on (0.0.0.0 for every interface).")
                    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port (0 picks a free one).")] = 8080,
    workers: Annotated[int, typer.Option("--workers", help="Server processes; each loads the model from the "
                                                           "shared cache and batches its own requests.")] = 1,
    max_batch_size: Annotated[int, typer.Option("--max-batch-size", help="Inputs per model call at most.")] = 32,
    max_wait_ms: Annotated[float, typer.Option("--max-wait-ms", help="How long the first input of a batch waits "
                                                                     "for others.")] = 5.0,
    max_queue: Annotated[int, typer.Option("--max-queue", help="Inputs waiting at most; beyond, 429 with "
                                                               "Retry-After.")] = 256,
    threads: Annotated[int | None, typer.Option("--threads", help="Torch / ONNX Runtime threads per worker "
                                                                  "\\[default: cores / workers].")] = None,
    max_input_tokens: Annotated[int | None, typer.Option("--max-input-tokens", help="Longest input in tokens; "
                                                         "longer answers 422 unless the request asks truncate "
                                                         "\\[default: the model's positions].")] = None,
    max_image_pixels: Annotated[int, typer.Option("--max-image-pixels", help="Most pixels of an image input; more "
                                                  "answers 413 before the image is decoded (a decompression bomb "
                                                  "never expands).")] = 16_777_216,
    max_inputs: Annotated[int, typer.Option("--max-inputs", help="Inputs (texts, images) in one request at most.")
                          ] = 64,
    max_body_bytes: Annotated[int, typer.Option("--max-body-bytes", help="Largest request body; beyond, 413.")
                              ] = 1_000_000,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds a request may wait for its answer; beyond, "
                                                             "504.")] = 30.0,
    max_explain_steps: Annotated[int, typer.Option("--max-explain-steps", help="/v1/explain: most integrated-"
                                                   "gradients steps a request may ask for (or the automatic raise "
                                                   "reach); more answers 422.")] = 256,
    max_explain_inputs: Annotated[int, typer.Option("--max-explain-inputs", help="/v1/explain: inputs in one "
                                                    "request at most; more answers 422.")] = 8,
    log_level: Annotated[str, typer.Option("--log-level", help="critical|error|warning|info|debug.")] = "info",
    require_signature: Annotated[bool, typer.Option(
        "--require-signature", help="Refuse to serve the version unless its model.sig holds: signed by a key the "
                                    "repo's namespace trusts on the hub (or --trust), not revoked, over exactly its "
                                    "files. Exit code 2 names the file or key that failed; nothing is loaded.")
                         ] = False,
    trust: Annotated[list[Path] | None, typer.Option(
        "--trust", help="With --require-signature: a public key file (.pub) to trust besides the hub's keys "
                        "(repeatable).", show_default=False)] = None,
    endpoint: EndpointOption = None,
    token: TokenOption = None,
) -> None:
    """Serve a model version over HTTP with dynamic batching (SIGTERM drains in-flight requests, then exits 0).

    The endpoints follow the model's task: POST /v1/classify, /v1/tokens, /v1/fill-mask, /v1/generate
    (stream with server-sent events), /v1/embed, /v1/classify-image, /v1/explain (attributions of text and
    image classifiers); GET /v1/model, /healthz, /readyz,
    /metrics (Prometheus), /docs. Bodies: {"inputs": "text" or ["text", ...], "parameters": {...}};
    images as base64 in that JSON, as a raw body with their image content type, or as multipart file
    parts. Every answer names the served commit in X-Model-Commit.

    Example:
        fmhub serve acme/bbc-minilm@prod --backend onnx --port 8080
        curl -s localhost:8080/v1/classify -d '{"inputs": "Shares rose on Monday", "parameters": {"top_k": 2}}'
        curl -s localhost:8080/v1/classify-image -H 'Content-Type: image/png' --data-binary @digit.png
    """
    import os

    from fmhub.serve import ServeConfig, prepare, serve

    quiet_ml_libraries()
    if endpoint:
        os.environ["FMHUB_ENDPOINT"] = endpoint  # the workers open the hub from the environment
    if token:
        os.environ["FMHUB_TOKEN"] = token
    config = ServeConfig(model=model, backend=backend, host=host, port=port, workers=workers,
                         max_batch_size=max_batch_size, max_wait_ms=max_wait_ms, max_queue=max_queue,
                         threads=threads, max_input_tokens=max_input_tokens, max_image_pixels=max_image_pixels,
                         max_inputs=max_inputs,
                         max_body_bytes=max_body_bytes, timeout_s=timeout, log_level=log_level,
                         require_signature=require_signature,
                         trust=tuple(str(p.resolve()) for p in trust or ()),
                         max_explain_steps=max_explain_steps, max_explain_inputs=max_explain_inputs)
    ref = prepare(config)
    err_console.print(f"fmhub serve {ref} ({backend} backend) on http://{host}:{port} — docs at /docs",
                      highlight=False)
    serve(config, ref)
