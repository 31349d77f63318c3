"""The ``fmhub`` command line.

Every command is a typed function (its signature is the spec); errors a user can cause end as one
line naming the fix, with exit code 2, never a traceback.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from fmhub.cli import _account_commands, _data_commands, _import_commands, _server_commands, _store_commands
from fmhub.cli import _eval_commands, _explain_commands, _lineage_commands, _optimize_commands, _pipeline_commands
from fmhub.cli import _encryption_commands, _pr_commands, _runs_commands, _serve_commands, _signing_commands
from fmhub.cli import _mirror_commands, _train_commands
from fmhub.cli._common import err_console
from fmhub.errors import FmhubError

__all__ = ["app", "main"]

#: The packages of the ``ml`` extra: a command that needs one of them on a hub-only install says how to add them.
_ML_PACKAGES = frozenset({"torch", "transformers", "datasets", "safetensors", "onnx", "onnxruntime", "sklearn",
                          "matplotlib", "tensorboard", "charset_normalizer", "seqeval", "captum"})

app = typer.Typer(
    name="fmhub",
    help="Self-hosted hub and toolchain for foundation models.\n\n"
         "Uses the embedded store under $FMHUB_HOME (default ~/.local/share/fmhub); point FMHUB_DB_URL "
         "(sqlite:///… | postgresql+psycopg://…) and FMHUB_BLOB_URL (file:///… | s3://bucket/prefix, "
         "with FMHUB_S3_ENDPOINT_URL for MinIO/Ceph) elsewhere to share one.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


def _version(value: bool) -> None:
    if value:
        from fmhub._version import __version__

        typer.echo(f"fmhub {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: Annotated[bool, typer.Option("--version", help="Print fmhub's version and exit.",
                                                callback=_version, is_eager=True)] = False) -> None:
    """Self-hosted hub and toolchain for foundation models."""


_store_commands.register(app)
_encryption_commands.register(app)
_pr_commands.register(app)
_server_commands.register(app)
_import_commands.register(app)
_account_commands.register(app)
_data_commands.register(app)
_runs_commands.register(app)
_train_commands.register(app)
_eval_commands.register(app)
_explain_commands.register(app)
_optimize_commands.register(app)
_serve_commands.register(app)
_pipeline_commands.register(app)
_signing_commands.register(app)
_lineage_commands.register(app)
_mirror_commands.register(app)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code (the console script passes it to ``sys.exit``)."""
    try:
        result = app(args=argv, prog_name="fmhub", standalone_mode=False)
    except FmhubError as exc:
        err_console.print(f"[bold red]error:[/] {escape(exc.message)}", highlight=False, markup=True, soft_wrap=True)
        if exc.hint:
            err_console.print(f"[bold]hint:[/] {escape(exc.hint)}", highlight=False, soft_wrap=True)
        return 2
    except typer.Abort:
        err_console.print("aborted")
        return 1
    except typer.TyperException as exc:  # usage errors (typer's own click): bad option, missing argument
        exc.show()
        return exc.exit_code
    except KeyboardInterrupt:
        err_console.print("interrupted")
        return 130
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] not in _ML_PACKAGES:
            raise
        err_console.print(f"[bold red]error:[/] this command needs the ML stack ({exc.name} is not installed); this "
                          "is a hub-only install", highlight=False, soft_wrap=True)
        err_console.print("[bold]hint:[/] " + escape("pip install 'fmhub[ml]'"), highlight=False, soft_wrap=True)
        return 2
    return result if isinstance(result, int) else 0

