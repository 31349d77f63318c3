"""The inference server's FastAPI app: endpoints by the model's task, dynamic batching, limits, metrics.

Bodies follow the Hugging Face inference convention — ``{"inputs": "text" | ["text", ...],
"parameters": {...}}`` — and every answer carries the served commit in ``X-Model-Commit``. An endpoint
that takes uploads (``Endpoint.uploads``: images) also takes a raw body of such a content type, or a
``multipart/form-data`` body whose file parts are the inputs; either becomes the JSON body it stands for
before the route reads it (:class:`_Bodies`), so batching, limits and errors are the same for every form.
Client errors answer 4xx with a JSON ``{"error", "hint"}`` body: 413 (body over ``--max-body-bytes``, an
image over ``--max-image-pixels``), 415 (a content type the endpoint does not take), 422 (malformed JSON,
unknown parameter, input over the token limit, an image that does not decode), 429 with ``Retry-After``
(queue full), 404 (an endpoint this model's task has not), 504 (no answer within ``--timeout``), and 503
while the model is still loading.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fmhub import tasks
from fmhub._version import __version__
from fmhub.cards import parse_card
from fmhub.errors import FmhubError, InvalidInputError, OverloadedError, RequestTimeoutError
from fmhub.http import BodyLimitMiddleware, document_errors, error_response, serve_docs
from fmhub.serve._batcher import Batcher, QueueGauge
from fmhub.serve._config import ServeConfig
from fmhub.serve._explain import ExplainRequest, explainable, run_explain
from fmhub.serve._metrics import ServeMetrics
from fmhub.serve._model import ServedModel

__all__ = ["create_app"]

_log = logging.getLogger("uvicorn.error")

class _ServerState:
    """What the app holds once started: the model (None while loading), batchers, executor, metrics."""

    def __init__(self, config: ServeConfig) -> None:
        self.config = config
        self.served: ServedModel | None = None
        self.load_error: BaseException | None = None
        self.batchers: dict[str, Batcher] = {}
        self.metrics: ServeMetrics | None = None
        self.queue = QueueGauge(config.max_queue)
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fmhub-model")


def create_app(config: ServeConfig, load: Callable[[], ServedModel], *, load_first: bool = False) -> FastAPI:
    """The app serving what ``load()`` returns; ``load`` runs in the model thread after startup, so /healthz
    answers while /readyz says 503 until it is done — or, with ``load_first``, before the app accepts any
    request (each of several workers: one still loading must not answer 503 beside a ready one)."""
    state = _ServerState(config)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        loading = loop.run_in_executor(state.executor, load)

        def loaded(done: asyncio.Future[ServedModel]) -> None:
            if done.exception() is not None:
                state.load_error = done.exception()
                _log.error("fmhub serve: the model failed to load: %s", state.load_error)
                return
            served = done.result()
            state.metrics = ServeMetrics(served.loaded.commit)
            state.queue = QueueGauge(config.max_queue, state.metrics.queue_depth.set)
            for name in served.endpoints:
                if served.endpoint(name).batched:
                    state.batchers[name] = Batcher(name, served.batch_function(name), state.executor,
                                                   max_batch_size=config.max_batch_size,
                                                   max_wait_ms=config.max_wait_ms, queue=state.queue,
                                                   on_batch=state.metrics.batch)
                    state.batchers[name].start()
            state.served = served

        loading.add_done_callback(loaded)
        if load_first:
            await asyncio.wait([loading])
            await asyncio.sleep(0)  # let the done callback run
        try:
            yield
        finally:
            for batcher in state.batchers.values():
                await batcher.stop()
            state.executor.shutdown(wait=True, cancel_futures=False)

    app = FastAPI(title="fmhub serve", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Inference for one model version of an fmhub hub.")
    serve_docs(app)
    app.state.server = state
    _install_errors(app)

    def ready() -> ServedModel:
        if state.served is None:
            if state.load_error is not None:
                raise _NotReady(f"the model failed to load: {state.load_error}",
                                hint="see the server's log; fix the model version and restart")
            raise _NotReady("the model is still loading", hint="retry when /readyz answers 200")
        return state.served

    def inputs_of(body: Any) -> list[Any]:
        given = [body.inputs] if isinstance(body.inputs, str) else list(body.inputs)
        if not given:
            raise InvalidInputError("inputs is an empty list", hint='send {"inputs": "text"} or a non-empty list')
        if len(given) > config.max_inputs:
            raise InvalidInputError(f"{len(given)} inputs in one request; this server takes at most "
                                    f"{config.max_inputs}", hint="split the request")
        return given

    async def run_batched(name: str, body: Any) -> JSONResponse:
        ready().endpoint(name)
        futures = state.batchers[name].submit(inputs_of(body), body.parameters.model_dump())
        try:
            results = await asyncio.wait_for(asyncio.gather(*futures), config.timeout_s)
        except TimeoutError:
            raise RequestTimeoutError(f"no answer within {config.timeout_s:g} s",
                                      hint="retry later, or send fewer or shorter inputs") from None
        return JSONResponse(results)

    async def run_unbatched(name: str, body: Any) -> Response:
        served = ready()
        served.endpoint(name)
        given = inputs_of(body)
        parameters = body.parameters.model_dump()
        if parameters.get("stream"):
            if len(given) != 1:
                raise InvalidInputError("stream=true takes one input", hint='send {"inputs": "text"}')
            return await _stream(state, served, name, given[0], parameters)
        loop = asyncio.get_running_loop()
        state.queue.reserve(len(given))
        try:
            answers = []
            for one in given:
                answers.append(await asyncio.wait_for(
                    loop.run_in_executor(state.executor, served.run_one, name, one, parameters), config.timeout_s))
        except TimeoutError:
            raise RequestTimeoutError(f"no answer within {config.timeout_s:g} s",
                                      hint="ask for fewer max_new_tokens") from None
        finally:
            state.queue.release(len(given))
        return JSONResponse([{"generated_text": one + answer} for one, answer in zip(given, answers, strict=True)])

    routes = tasks.endpoints()
    for endpoint in routes.values():  # every task's routes; a model answers its own, 404 the others
        _route(app, endpoint, run_batched if endpoint.batched else run_unbatched)

    @app.post("/v1/explain", summary="Attributions of the prediction (or a chosen label) to each token or image "
                                     "region: integrated gradients, occlusion or attention rollout")
    async def explain_route(body: ExplainRequest) -> JSONResponse:
        served = ready()
        given = inputs_of(body)
        loop = asyncio.get_running_loop()
        state.queue.reserve(len(given))
        try:
            answers = await asyncio.wait_for(loop.run_in_executor(
                state.executor, lambda: run_explain(served, given, body.parameters.model_dump(),
                                                    max_steps=config.max_explain_steps,
                                                    max_inputs=config.max_explain_inputs)), config.timeout_s)
        except TimeoutError:
            raise RequestTimeoutError(f"no explanation within {config.timeout_s:g} s",
                                      hint="send fewer or shorter inputs, fewer steps, or use occlusion") from None
        finally:
            state.queue.release(len(given))
        return JSONResponse(answers)

    @app.get("/v1/model", summary="The served version: repo, commit, task, labels, endpoints, card summary")
    async def model_info() -> JSONResponse:
        served = ready()
        return JSONResponse(_summary(served, config))

    @app.get("/healthz", summary="The process is up")
    async def healthz() -> JSONResponse:
        return JSONResponse({"status": "ok"})

    @app.get("/readyz", summary="The model is loaded (503 until then)")
    async def readyz() -> JSONResponse:
        served = ready()
        return JSONResponse({"status": "ready", "commit": served.loaded.commit})

    @app.get("/metrics", summary="Prometheus metrics", response_class=Response,
             responses={200: {"description": "Prometheus text exposition format",
                              "content": {"text/plain": {"schema": {"type": "string"}}}}})
    async def metrics() -> Response:
        if state.metrics is None:
            return Response(b"", media_type="text/plain; version=0.0.4")
        return Response(state.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    # Innermost first: uploads become JSON inside the body limit (which counts the bytes as sent).
    app.add_middleware(_Bodies, uploads={f"/v1/{e.name}": e for e in routes.values() if e.uploads})
    app.add_middleware(BodyLimitMiddleware, limit=config.max_body_bytes, server="server")
    app.add_middleware(_Observed, state=state)  # added last: outermost, so it sees every answer
    document_errors(app, SERVE_ERRORS)
    return app


#: The error answers of fmhub serve (module docstring), documented on every route of its OpenAPI document.
SERVE_ERRORS = {
    "404": "An endpoint this model's task has not, or no such route",
    "413": "The body is over --max-body-bytes, or an image over --max-image-pixels",
    "415": "A content type the endpoint does not take",
    "422": "Malformed JSON, a wrong type, an unknown parameter, an input over the token limit",
    "429": "The queue is full (Retry-After says when to retry)",
    "503": "The model is still loading (or failed to load)",
    "504": "No answer within --timeout",
}


class _NotReady(FmhubError):
    """503: no model to answer with (yet)."""


def _route(app: FastAPI, endpoint: tasks.Endpoint, run: Callable[[str, Any], Any]) -> None:
    """``POST /v1/<name>`` with the endpoint's own request schema (in the OpenAPI document)."""

    async def route(body: Any) -> Response:
        return await run(endpoint.name, body)

    route.__annotations__ = {"body": endpoint.request, "return": Response}
    extra = None
    if endpoint.uploads:  # the other bodies the route takes (made JSON by _Bodies), in the OpenAPI document
        binary = {"type": "string", "format": "binary"}
        extra = {"requestBody": {"required": True, "content": {
            "application/json": {"schema": {"$ref": f"#/components/schemas/{endpoint.request.__name__}"}},
            **{media: {"schema": binary} for media in endpoint.uploads},
            "multipart/form-data": {"schema": {"type": "object", "properties": {
                "files": {"type": "array", "items": binary, "description": "One input per file part."}},
                "additionalProperties": {"type": "string", "description": "A parameter (e.g. top_k)."}}}}}}
    app.post(f"/v1/{endpoint.name}", summary=endpoint.summary, name=endpoint.name.replace("-", "_"),
             openapi_extra=extra)(route)


async def _stream(state: _ServerState, served: ServedModel, name: str, text: str, parameters: dict[str, Any]
                  ) -> Response:
    """Server-sent events: one ``data:`` line per new piece of text, then the whole generation, then [DONE]."""
    loop = asyncio.get_running_loop()
    pieces: asyncio.Queue[str | None] = asyncio.Queue()
    state.queue.reserve(1)

    def on_text(piece: str) -> None:
        loop.call_soon_threadsafe(pieces.put_nowait, piece)

    job = loop.run_in_executor(state.executor, served.run_one, name, text, parameters, on_text)
    job.add_done_callback(lambda _: (state.queue.release(1), pieces.put_nowait(None)))

    async def events() -> AsyncIterator[bytes]:
        while (piece := await pieces.get()) is not None:
            yield f"data: {json.dumps({'token': {'text': piece}, 'generated_text': None})}\n\n".encode()
        try:
            answer = await job
        except FmhubError as exc:
            yield f"data: {json.dumps({'error': exc.message})}\n\n".encode()
            return
        yield f"data: {json.dumps({'token': None, 'generated_text': text + answer})}\n\n".encode()
        yield b"data: [DONE]\n\n"

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


def _summary(served: ServedModel, config: ServeConfig) -> dict[str, Any]:
    loaded = served.loaded
    readme = loaded.folder / "README.md"
    metadata: dict[str, Any] = {}
    if readme.is_file():
        try:
            metadata = parse_card(readme.read_text(encoding="utf-8", errors="replace")).metadata
        except FmhubError:
            metadata = {}
    card = {k: metadata[k] for k in ("license", "base_model", "datasets", "pipeline_tag", "tags") if k in metadata}
    fmhub_section = metadata.get("fmhub") if isinstance(metadata.get("fmhub"), dict) else {}
    card.update({k: fmhub_section[k] for k in ("lineage", "variant") if k in fmhub_section})
    return {"repo": loaded.repo, "commit": loaded.commit, "task": loaded.task.name, "backend": loaded.format,
            "labels": served.labels,
            "endpoints": [f"/v1/{e}" for e in served.endpoints] + (["/v1/explain"] if explainable(loaded) else []),
            "max_input_tokens": served.max_tokens, "max_length": served.context.max_length,
            "max_image_pixels": config.max_image_pixels,
            "max_batch_size": config.max_batch_size,
            "max_wait_ms": config.max_wait_ms, "threads": loaded.threads, "card": card}


def _install_errors(app: FastAPI) -> None:
    @app.exception_handler(FmhubError)
    async def _fmhub_error(_request: Request, exc: FmhubError) -> JSONResponse:
        response = error_response(exc)
        if isinstance(exc, InvalidInputError):
            response.status_code = 422  # the request was understood; its content cannot be processed
        elif isinstance(exc, _NotReady):
            response.status_code = 503
            response.headers["Retry-After"] = "1"
        elif isinstance(exc, OverloadedError):
            response.headers["Retry-After"] = str(exc.retry_after)
        return response

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'] if p != 'body') or 'body'}: {e['msg']}"
                             for e in exc.errors())
        return JSONResponse({"error": f"invalid request: {problems}",
                             "hint": 'send JSON like {"inputs": "text", "parameters": {...}}'}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # Routing's own answers (404 no such route, 405 wrong method) in the same {error, hint} shape.
        hints = {404: "see /docs for this server's routes; GET /v1/model names the endpoints of its model",
                 405: "see /docs for the methods each route takes"}
        return JSONResponse({"error": str(exc.detail), "hint": hints.get(exc.status_code, "see /docs")},
                            status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def _server_error(_request: Request, exc: Exception) -> JSONResponse:  # a bug: say so, keep serving
        return JSONResponse({"error": f"internal error: {type(exc).__name__}: {exc}"}, status_code=500)


class _Bodies:
    """Read every POST body under /v1/ as JSON, whatever content type the client sent or left out — except the
    uploads an endpoint takes (``Endpoint.uploads``), which become the JSON body they stand for.

    ``curl -d '{"inputs": …}'`` says ``application/x-www-form-urlencoded``; a JSON endpoint takes JSON only, so
    such a body is read as the JSON it is, and a body that is not JSON still gets 422. On an endpoint that takes
    uploads, a raw body of one of its media types is one input (query parameters are its parameters), a
    ``multipart/form-data`` body's file parts are the inputs (its other fields the parameters), and any other
    declared content type is refused with 415.
    """

    _JSON_LIKE = ("", "application/json", "application/x-www-form-urlencoded", "text/plain+json")

    def __init__(self, app: ASGIApp, uploads: dict[str, tasks.Endpoint]) -> None:
        self.app = app
        self.uploads = uploads

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or not scope["path"].startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        headers = [(k, v) for k, v in scope["headers"] if k != b"content-type"]
        declared = dict(scope["headers"]).get(b"content-type", b"").decode("latin-1")
        media = declared.split(";", 1)[0].strip().lower()
        endpoint = self.uploads.get(scope["path"])
        if endpoint is None or media in self._JSON_LIKE:
            await self.app({**scope, "headers": [*headers, (b"content-type", b"application/json")]}, receive, send)
            return
        try:
            if endpoint.takes_upload(media):
                files, fields = [await _read_body(receive)], dict(parse_qsl(scope.get("query_string", b"").decode()))
            elif media == "multipart/form-data":
                files, fields = await _multipart(scope, receive, endpoint)
            else:
                raise _Unsupported(f"{scope['path']} takes JSON, {', '.join(endpoint.uploads)} or multipart/form-data "
                                   f"bodies, not {media}", hint="send the image with its image content type (e.g. "
                                                                "-H 'Content-Type: image/png'), as multipart file "
                                                                "parts, or as base64 in JSON")
        except FmhubError as exc:
            response = error_response(exc)
            response.status_code = 415 if isinstance(exc, _Unsupported) else 422
            await response(scope, receive, send)
            return
        body = json.dumps(endpoint.from_uploads(files, fields) if endpoint.from_uploads else {}).encode()
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                return await receive()  # the client's disconnect, if it comes
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        rewritten = [(k, v) for k, v in headers if k != b"content-length"]
        rewritten += [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await self.app({**scope, "headers": rewritten}, replay, send)


class _Unsupported(InvalidInputError):
    """415: a body of a content type the endpoint does not take."""


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise InvalidInputError("the client went away before sending the whole body")
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def _multipart(scope: Scope, receive: Receive, endpoint: tasks.Endpoint) -> tuple[list[bytes], dict[str, str]]:
    """The file parts (in order) and the other fields of a ``multipart/form-data`` body."""
    from starlette.datastructures import UploadFile
    from starlette.formparsers import MultiPartException
    from starlette.requests import Request

    try:
        form = await Request(scope, receive).form(max_files=1024, max_fields=64)
    except (MultiPartException, ValueError) as exc:  # a malformed body (a body over the limit is not caught here)
        raise InvalidInputError(f"a malformed multipart/form-data body: {exc}",
                                hint="send one file part per image, e.g. curl -F 'file=@cat.png'") from None
    files: list[bytes] = []
    fields: dict[str, str] = {}
    try:
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                media = (value.content_type or "").split(";", 1)[0].strip().lower()
                if media not in ("", "application/octet-stream") and not endpoint.takes_upload(media):
                    raise _Unsupported(f"the file part {value.filename or key!r} is {media}, not "
                                       f"{' or '.join(endpoint.uploads)}", hint="upload image files")
                files.append(await value.read())
            else:
                fields[key] = value
    finally:
        await form.close()
    if not files:
        raise InvalidInputError("the multipart/form-data body has no file part",
                                hint="send one file part per image, e.g. curl -F 'file=@cat.png'")
    return files, fields


class _Observed:
    """Outermost ASGI layer: ``X-Model-Commit`` on every answer, request count and latency into /metrics."""

    def __init__(self, app: ASGIApp, state: _ServerState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def observed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                served = self.state.served
                if served is not None:
                    message = {**message, "headers": [*message.get("headers", []),
                                                      (b"x-model-commit", served.loaded.commit.encode())]}
            await send(message)

        try:
            await self.app(scope, receive, observed_send)
        finally:
            if self.state.metrics is not None:
                path = scope.get("path", "")
                endpoint = path if path.startswith("/v1/") or path in ("/healthz", "/readyz", "/metrics") \
                    else "other"
                self.state.metrics.observe(endpoint, status, time.perf_counter() - started)

