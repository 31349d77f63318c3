"""The ``fmhub`` command line.

Every command is a typed function (its signature is the spec); errors a user can cause end as one
line naming the fix, with exit code 2, never a traceback.
"""

from __future__ import annotations

import importlib
from typing import Annotated, Any

import typer
from rich.markup import escape
from typer.core import TyperGroup

from fmhub.cli._common import err_console
from fmhub.errors import FmhubError

__all__ = ["app", "main"]

#: The packages of the ``ml`` extra: a command that needs one of them on a hub-only install says how to add them.
_ML_PACKAGES = frozenset({"torch", "transformers", "datasets", "safetensors", "onnx", "onnxruntime", "sklearn",
                          "matplotlib", "tensorboard", "charset_normalizer", "seqeval", "captum"})

#: Every top-level command → the module whose ``register`` adds it, in the order ``fmhub --help`` lists them.
COMMAND_MODULES = {
    "upload": "_store_commands", "download": "_store_commands", "ls": "_store_commands", "log": "_store_commands",
    "fsck": "_store_commands", "gc": "_store_commands", "server": "_server_commands",
    "import-model": "_import_commands", "audit": "_account_commands", "train": "_train_commands",
    "eval": "_eval_commands", "compare": "_eval_commands", "evals": "_eval_commands", "explain": "_explain_commands",
    "serve": "_serve_commands", "run": "_pipeline_commands", "sign": "_signing_commands",
    "verify": "_signing_commands", "search": "_lineage_commands", "repo": "_store_commands",
    "branch": "_store_commands", "tag": "_store_commands", "db": "_store_commands",
    "encryption": "_encryption_commands", "pr": "_pr_commands", "user": "_account_commands",
    "org": "_account_commands", "token": "_account_commands", "data": "_data_commands", "runs": "_runs_commands",
    "optimize": "_optimize_commands", "keys": "_signing_commands", "lineage": "_lineage_commands",
    "mirror": "_mirror_commands",
}


class _LazyCommands(TyperGroup):
    """The root group: a command's module is imported when the command is looked up, not before (click's lazily
    loaded subcommands). ``fmhub verify`` imports the signing commands only; ``fmhub train``'s options, built from
    the training config, are not built for it; ``fmhub --version`` imports no command at all."""

    def list_commands(self, ctx: Any) -> list[str]:
        return list(COMMAND_MODULES)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in self.commands and cmd_name in COMMAND_MODULES:
            self._load(COMMAND_MODULES[cmd_name])
        return self.commands.get(cmd_name)

    def _load(self, module_name: str) -> None:
        module = importlib.import_module(f"fmhub.cli.{module_name}")
        commands = typer.Typer(rich_markup_mode="rich", add_completion=False)
        commands.callback()(_no_options)  # a group even when the module adds one command
        module.register(commands)
        group: Any = typer.main.get_command(commands)
        for name, command in group.commands.items():
            self.add_command(command, name)


def _no_options() -> None:
    return None


app = typer.Typer(
    name="fmhub",
    cls=_LazyCommands,
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

