"""``fmhub serve``: any model version of the hub as an HTTP inference service with dynamic batching.

Example:
    >>> from fmhub.serve import ServeConfig, serve
    >>> serve(ServeConfig(model="acme/bbc-minilm@prod", backend="onnx", port=8080))   # blocks; SIGTERM drains

    $ curl -s localhost:8080/v1/classify -d '{"inputs": "Shares rose on Monday", "parameters": {"top_k": 2}}'
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
from collections.abc import Iterator
from typing import Any

from fmhub._net import check_port
from fmhub.client import Hub
from fmhub.constants import settings
from fmhub.errors import FmhubError, InvalidInputError, RepoNotFoundError
from fmhub.runs import PipelineStepRecord
from fmhub.serve._app import create_app
from fmhub.serve._config import BACKENDS, ServeConfig
from fmhub.serve._model import ServedModel, check_servable, open_model, pull

logger = logging.getLogger(__name__)

__all__ = ["ServeConfig", "ServedModel", "BACKENDS", "serve", "app_for", "prepare"]

_CONFIG_ENV = "FMHUB_SERVE_CONFIG"  # how worker processes receive the configuration


def prepare(config: ServeConfig, hub: Hub | None = None) -> str:
    """Check ``config`` and pull the exact version into the local cache (verified); return its commit.

    Runs before the server starts, so a bad model or option fails the command (exit 2), not a worker.
    """
    config.validate()
    owned = hub is None
    hub = hub or Hub.open()
    try:
        repo, commit, folder = pull(hub, config.model, config.trusted_keys())
    except RepoNotFoundError as exc:
        explained = hub.explain_not_found(exc)
        if explained.exists_as == "dataset":
            raise InvalidInputError(f"{exc.repo_id} is a dataset repository; fmhub serve serves models",
                                    hint=f"train a model on it first (fmhub train --task text-classification --model "
                                         f"BASE --data {exc.repo_id} --output NAME), then serve that model") from None
        raise explained from None
    finally:
        if owned:
            hub.close()
    check_servable(folder, repo, commit, config.backend)  # a headless model fails here, before the port is bound
    if config.max_input_tokens is not None:
        import json

        model_config = json.loads((folder / "config.json").read_text()) if (folder / "config.json").is_file() else {}
        positions = model_config.get("max_position_embeddings") or model_config.get("n_positions")
        if positions and config.max_input_tokens > positions:
            raise InvalidInputError(f"--max-input-tokens {config.max_input_tokens} is beyond the model's {positions} "
                                    "positions", hint=f"use {positions} or less")
    return f"{repo}@{commit}"


def app_for(config: ServeConfig, hub: Hub | None = None, *, load_first: bool = False) -> Any:
    """The app for ``config``; the model loads in the background after startup (``/readyz``), or before the
    app accepts requests with ``load_first``."""
    def load() -> ServedModel:
        owned = hub is None
        opened = hub or Hub.open()
        try:
            served = open_model(opened, config.model, config.backend, config.threads, settings().home / "cache",
                                config.max_image_pixels, config.trusted_keys())
        finally:
            if owned:
                opened.close()
        served.limit_tokens(config.max_input_tokens)
        return served

    return create_app(config, load, load_first=load_first)


def _server_class() -> Any:
    import uvicorn

    class DrainingServer(uvicorn.Server):
        """uvicorn's server, except that a SIGTERM/SIGINT it drained cleanly ends the process with 0.

        uvicorn re-raises the captured signal after its graceful shutdown, so the process would die by it
        (exit -15); for a service manager a requested stop that lost no request is a success.
        """

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            with super().capture_signals():
                try:
                    yield
                finally:
                    self._captured_signals.clear()

    return DrainingServer


def app_from_env() -> Any:
    """The app factory each ``--workers`` process calls (``uvicorn --factory``)."""
    return app_for(ServeConfig.from_json(os.environ[_CONFIG_ENV]), load_first=True)


def serve(config: ServeConfig, ref: str | None = None) -> None:
    """Pull the version (unless :func:`prepare` gave ``ref``), then serve it until SIGINT/SIGTERM (in-flight
    requests finish first). The hub records the deployment (a lineage node under the version) at start and
    stop."""
    import uvicorn

    ref = ref or prepare(config)
    threads = config.threads or max(1, len(os.sched_getaffinity(0)) // config.workers)
    pinned = dataclasses.replace(config, model=ref, threads=threads)  # every worker serves exactly this commit
    check_port(pinned.host, pinned.port)  # before the hub hears of a deployment that could not listen
    record_deployment(pinned, "serving")
    try:
        if pinned.workers == 1:
            config = uvicorn.Config(app_for(pinned), host=pinned.host, port=pinned.port, log_level=pinned.log_level,
                                    timeout_graceful_shutdown=pinned.timeout_s + 5)
            _server_class()(config).run()
            return
        os.environ[_CONFIG_ENV] = pinned.to_json()
        uvicorn.run("fmhub.serve:app_from_env", factory=True, host=pinned.host, port=pinned.port,
                    workers=pinned.workers, log_level=pinned.log_level, timeout_graceful_shutdown=pinned.timeout_s + 5)
    finally:
        record_deployment(pinned, "stopped")


def deployment_record(config: ServeConfig, state: str, *, host: str | None = None) -> PipelineStepRecord:
    """The step record of a deployment: ``config.model`` (``repo@commit``) served at this host and port.

    Its key is the same for the same version at the same address, so the stop updates the start's node.
    """
    import hashlib
    import socket
    from datetime import UTC, datetime

    machine = host or socket.gethostname()
    address = f"{machine}:{config.port}"
    key = hashlib.sha256(f"deployment\0{address}\0{config.model}".encode()).hexdigest()
    detail = (f"{state} since {datetime.now(UTC).isoformat(timespec='seconds')}: {config.backend} backend, "
              f"{config.workers} worker(s), http://{config.host}:{config.port} on {machine}")
    return PipelineStepRecord(key, "fmhub serve", address[:200], "deployment", config.model,
                              {"workers": float(config.workers)}, detail)


def record_deployment(config: ServeConfig, state: str) -> None:
    """Tell the hub that ``config.model`` is ``state`` (serving, stopped) here. Serving never depends on it: a
    hub that refuses (a read-only token) or cannot be reached costs a warning, not the server."""
    try:
        hub = Hub.open()
        try:
            hub.save_pipeline_step(deployment_record(config, state))
        finally:
            hub.close()
    except FmhubError as error:
        logger.warning("the hub did not record this deployment (%s): %s", state, error)
