"""``fmhub server``: run the hub over the configured store."""

from __future__ import annotations

import os
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
    require_auth: Annotated[bool, typer.Option(
        "--require-auth", help="Refuse anonymous requests, even to public repos (air-gapped orgs).")] = False,
    allow_pickle: Annotated[bool, typer.Option(
        "--allow-pickle", help="Accept files holding a pickle (found by content, whatever the name: torch.save "
                               "archives, .npy object arrays, joblib...), reported unsafe with the imports found; "
                               "fmhub never loads them.")] = False,
    max_commit_mb: Annotated[int, typer.Option(
        "--max-commit-mb", help="Largest commit request (inline files are base64 in it) → 413 beyond.")] = 1024,
    max_file_gb: Annotated[int, typer.Option(
        "--max-file-gb", help="Largest single file uploaded through Git LFS → refused beyond.")] = 100,
    accel_redirect: Annotated[str | None, typer.Option(
        "--accel-redirect", help="Behind nginx: the internal location that serves the blob folder (e.g. "
                                 "/_fmhub_blobs/); downloads are handed to nginx (sendfile). See the README.")
    ] = None,
) -> None:
    """Serve the store over HTTP in the Hugging Face Hub protocol (HF_ENDPOINT=http://HOST:PORT), with its web UI at /.

    On first start an administrator `admin` is created and its token printed once; set
    FMHUB_ADMIN_TOKEN to choose that token instead (automation). Manage accounts with
    `fmhub user|org|token`.

    huggingface_hub 2.x uploads and downloads files ≥ 10 MB through Xet storage, which the hub serves
    (only changed chunks of a new version are sent and stored); LFS clients keep working.
    """
    import uvicorn

    from fmhub._net import check_port
    from fmhub.server._auth import HubConfig  # here, not at import: the rest of the CLI does not need FastAPI

    if not 0 <= port <= 65535:
        raise InvalidInputError(f"--port {port} is not a TCP port", hint="use 1-65535, or 0 for any free port")
    if workers < 1:
        raise InvalidInputError(f"--workers {workers} must be ≥ 1")
    if log_level not in ("critical", "error", "warning", "info", "debug"):
        raise InvalidInputError(f"--log-level {log_level!r} is unknown", hint="use info, warning, error or debug")
    if max_commit_mb < 1 or max_file_gb < 1:
        raise InvalidInputError("--max-commit-mb and --max-file-gb must be ≥ 1")
    check_port(host, port)  # before announcing the hub: uvicorn would log the failed bind and exit 1
    # Flags travel as environment variables so every worker process (and the app factory) agrees.
    os.environ.update({
        "FMHUB_REQUIRE_AUTH": "1" if require_auth else "0",
        "FMHUB_ALLOW_PICKLE": "1" if allow_pickle else "0",
        "FMHUB_MAX_COMMIT_BYTES": str(max_commit_mb * 1024 * 1024),
        "FMHUB_MAX_FILE_BYTES": str(max_file_gb * 1024**3),
    })
    if accel_redirect:
        os.environ["FMHUB_ACCEL_REDIRECT"] = accel_redirect
    HubConfig.from_env()  # a bad value fails here, with its message, not in every worker
    err_console.print(f"fmhub hub on http://{host}:{port} (web UI at /) — clients: export HF_ENDPOINT=http://{host}:{port}")
    uvicorn.run("fmhub.server:create_app", factory=True, host=host, port=port, workers=workers, log_level=log_level)
