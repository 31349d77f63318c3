"""``fmhub server``: run the hub over the configured store."""

from __future__ import annotations

from typing import Annotated

import typer

from fmhub.cli._common import err_console
from fmhub.errors import InvalidInputError


def register(app: typer.Typer) -> None:
    app.command("server")(server_command)


def server_command(
    host: Annotated[str, typer.Option("--host", help="Address to listen on (0.0.0.0 for every interface).")
                    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port (0 picks a free one).")] = 8000,
    workers: Annotated[int, typer.Option("--workers", help="Worker processes (each opens the store).")] = 1,
    log_level: Annotated[str, typer.Option("--log-level", help="critical|error|warning|info|debug.")] = "info",
) -> None:
    """Serve the store over HTTP in the Hugging Face Hub protocol (HF_ENDPOINT=http://HOST:PORT)."""
    import uvicorn

    if not 0 <= port <= 65535:
        raise InvalidInputError(f"--port {port} is not a TCP port", hint="use 1-65535, or 0 for any free port")
    if workers < 1:
        raise InvalidInputError(f"--workers {workers} must be ≥ 1")
    if log_level not in ("critical", "error", "warning", "info", "debug"):
        raise InvalidInputError(f"--log-level {log_level!r} is unknown", hint="use info, warning, error or debug")
    err_console.print(f"fmhub hub on http://{host}:{port} — clients: export HF_ENDPOINT=http://{host}:{port}")
    uvicorn.run("fmhub.hub:create_app", factory=True, host=host, port=port, workers=workers, log_level=log_level)
