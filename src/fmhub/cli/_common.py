"""What every CLI command shares: the hub or store it opens, how it reports errors, progress bars, formats."""

from __future__ import annotations

import contextlib
import functools
import json
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from fmhub.errors import InvalidInputError, RepoNotFoundError

if TYPE_CHECKING:  # imported where used: a command's --help, or one not opening the hub, does not pay for them
    from fmhub.client import Hub
    from fmhub.signing import TrustedKey
    from fmhub.store import Store

#: Transfers smaller than this finish before a progress bar would be readable.
PROGRESS_THRESHOLD = 8 * 1024 * 1024

#: Wider than any terminal: piped or in CI, tables are never cut to 80 columns (ids and names are kept whole).
_UNLIMITED = 100_000


def _stdout_width() -> int | None:
    try:
        return None if sys.stdout.isatty() else _UNLIMITED
    except (AttributeError, ValueError):  # no usable stdout
        return _UNLIMITED


console = Console(soft_wrap=True, width=_stdout_width())
err_console = Console(stderr=True, soft_wrap=True)


class RepoType(StrEnum):
    model = "model"
    dataset = "dataset"


RepoTypeOption = Annotated[
    RepoType, typer.Option("--repo-type", help="Kind of repository, as on the Hugging Face Hub.", show_default=True)
]
RevisionOption = Annotated[
    str | None,
    typer.Option("--revision", "-r", help="Branch, tag or commit id (≥ 7 hex). Default: the repo's default branch."),
]
JsonOption = Annotated[bool, typer.Option(
    "--json", help="One JSON object per line (JSON Lines, a stable schema for scripts) instead of a table.")]


def print_json_lines(rows: Iterable[dict[str, Any]]) -> None:
    """What ``--json`` prints: one object per line, datetimes as ISO 8601 (UTC)."""
    for row in rows:
        sys.stdout.write(json.dumps(row, default=lambda v: v.isoformat() if hasattr(v, "isoformat") else str(v),
                                    ensure_ascii=False) + "\n")
    sys.stdout.flush()


RepoIdArgument = Annotated[str, typer.Argument(help="Repository id: namespace/name, e.g. acme/tiny-bert.",
                                               show_default=False)]
EndpointOption = Annotated[str | None, typer.Option(
    "--endpoint", help="URL of an fmhub server to work on, e.g. http://hub:8000 (default: $FMHUB_ENDPOINT; "
                       "neither: the embedded store).", show_default=False)]
TokenOption = Annotated[str | None, typer.Option(
    "--token", help="Access token for --endpoint (default: $FMHUB_TOKEN; neither: anonymous, read-only).",
    show_default=False)]


@contextlib.contextmanager
def opened_store() -> Iterator[Store]:
    """The store FMHUB_DB_URL / FMHUB_BLOB_URL / FMHUB_HOME name (embedded default)."""
    from fmhub.store import open_store

    with open_store() as store:
        yield store


@contextlib.contextmanager
def opened_hub(endpoint: str | None, token: str | None) -> Iterator[Hub]:
    """The hub --endpoint / FMHUB_ENDPOINT names, else the embedded store, through the one Hub client."""
    from fmhub.client import Hub

    with Hub.open(endpoint, token) as hub:
        try:
            yield hub
        except RepoNotFoundError as exc:  # a dataset given as a model (or back): say so, not "create it"
            raise hub.explain_not_found(exc) from None


def current_user() -> str:
    """Commit author on the embedded store: ``$FMHUB_USER``, else the login name."""
    from fmhub.client import default_author

    return default_author()


def human_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{int(size)} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: str, *, flag: str) -> float:
    """``90``, ``90s``, ``30m``, ``1h``, ``7d`` → seconds."""
    match = _DURATION.match(value)
    if not match:
        raise InvalidInputError(f"{flag} {value!r} is not a duration", hint=f"use e.g. {flag} 30m, 1h or 7d")
    return float(match.group(1)) * _UNITS[match.group(2)]


@contextlib.contextmanager
def transfer_progress(description: str, total: int) -> Iterator[Callable[[int], None]]:
    """A rich progress bar for transfers over a few MB; yields the ``progress(n_bytes)`` callback."""
    with transfer_bars(total, description) as (advance,):
        yield advance


@contextlib.contextmanager
def transfer_bars(total: int, *descriptions: str) -> Iterator[tuple[Callable[[int], None], ...]]:
    """One bar per phase of a transfer (e.g. hashing, storing) in one live display."""
    if total < PROGRESS_THRESHOLD:
        yield tuple(_ignore for _ in descriptions)
        return
    from rich.progress import (  # here: a command showing no bar does not import them
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    with Progress(TextColumn("{task.description:<12}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                  TimeRemainingColumn(), console=err_console, transient=False) as bar:
        tasks = [bar.add_task(description, total=total) for description in descriptions]
        yield tuple(functools.partial(bar.advance, task) for task in tasks)


def _ignore(_n: int) -> None:
    return None

class LateProgress:
    """A transfer bar whose total is learnt mid-command (after planning): ``start`` then ``advance``."""

    def __init__(self, description: str) -> None:
        self.description = description
        self._stack = contextlib.ExitStack()
        self._advance: Callable[[int], None] = _ignore

    def start(self, total: int) -> None:
        self._advance = self._stack.enter_context(transfer_progress(self.description, total))

    def advance(self, n: int) -> None:
        self._advance(n)

    def __enter__(self) -> LateProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()


class WorkProgress:
    """One live display for a long command: a bar per stage of rows (``progress(stage, rows)`` returns the
    advance function, as ``fmhub.evaluate`` calls it) and a bar of optimizer steps with loss, samples/s and
    ETA (``update`` / ``metrics``, as ``fmhub.train`` calls them); evaluation results print above the bars.

    One display, because rich allows one live display at a time and a command may train, then evaluate.
    """

    def __init__(self, train_label: str = "train") -> None:
        self._train_label = train_label
        self._train_task: Any = None

    def __enter__(self) -> WorkProgress:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._progress = Progress(TextColumn("{task.description:<28}"), BarColumn(), MofNCompleteColumn(),
                                  TextColumn("{task.fields[detail]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                                  console=err_console, transient=False)
        self._progress.__enter__()
        return self

    @property
    def console(self) -> Console:
        """Print through this to put lines above the live bars."""
        return self._progress.console

    def __call__(self, stage: str, rows: int) -> Callable[[int], None]:
        task = self._progress.add_task(stage, total=rows or None, detail="")
        return lambda n: self._progress.advance(task, n)

    def update(self, step: int, total: int, loss: float, rate: float) -> None:
        detail = f"loss {loss:.4f}  {rate:.1f} samples/s"
        if self._train_task is None:
            self._train_task = self._progress.add_task(self._train_label, total=total, detail=detail)
        self._progress.update(self._train_task, completed=step, detail=detail)

    def metrics(self, step: int, epoch: float, values: dict[str, float]) -> None:
        if any(k.startswith("eval_") for k in values):
            shown = "  ".join(f"{k.removeprefix('eval_')} {v:.4f}" for k, v in values.items())
            self._progress.console.print(f"step {step} (epoch {epoch:.2f}): {shown}", highlight=False)

    def __exit__(self, *exc: object) -> None:
        self._progress.__exit__(*exc)


def quiet_ml_libraries() -> None:
    """Our progress bars and messages replace the ML libraries' own bars and load reports."""
    import datasets
    import transformers

    datasets.disable_progress_bars()
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()


def trusted_files(paths: list[Path] | None) -> list[TrustedKey]:
    """The keys of ``--trust`` files, each read and checked (a bad file names itself)."""
    from fmhub.signing import TrustedKey

    keys = []
    for path in paths or []:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise InvalidInputError(f"--trust {path}: {exc.strerror}", hint="give a .pub file") from exc
        try:
            keys.append(TrustedKey.from_pem(data, name=path.stem))
        except InvalidInputError as exc:
            raise InvalidInputError(f"--trust {path}: {exc.message}", hint=exc.hint) from exc
    return keys
