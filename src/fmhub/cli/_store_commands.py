"""Store commands: repo, upload, download, ls, log, branch, tag (embedded or --endpoint); fsck, gc, db (local).

The repository commands go through the Hub client, so each works unchanged on the embedded store or on
a hub server (``--endpoint`` / ``FMHUB_ENDPOINT``, with ``--token`` / ``FMHUB_TOKEN``). Maintenance
commands work on the store's files and database directly, so they stay local.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from fmhub.cli._common import (
    EndpointOption,
    JsonOption,
    LateProgress,
    RepoIdArgument,
    RepoType,
    RepoTypeOption,
    RevisionOption,
    TokenOption,
    console,
    err_console,
    human_size,
    opened_hub,
    opened_store,
    parse_duration,
    print_json_lines,
    transfer_bars,
    trusted_files,
)
from fmhub.errors import EmptyCommitError, InvalidInputError
from fmhub.store import DEFAULT_BRANCH, Database
from fmhub.store.maintenance import DEFAULT_GC_GRACE_SECONDS, fsck, gc
from fmhub.store.transfer import PlannedFile

repo_app = typer.Typer(help="Create, inspect, list and delete repositories.", no_args_is_help=True)
branch_app = typer.Typer(help="Create, delete and list branches.", no_args_is_help=True)
tag_app = typer.Typer(help="Create, delete and list tags (immutable names for commits).", no_args_is_help=True)
db_app = typer.Typer(help="Metadata database schema (Alembic migrations). Local only: the database FMHUB_DB_URL "
                          "names, never --endpoint / FMHUB_ENDPOINT.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(repo_app, name="repo")
    app.command("upload")(upload_command)
    app.command("download")(download_command)
    app.command("ls")(ls_command)
    app.command("log")(log_command)
    app.add_typer(branch_app, name="branch")
    app.add_typer(tag_app, name="tag")
    app.command("fsck")(fsck_command)
    app.command("gc")(gc_command)
    app.add_typer(db_app, name="db")


# -- repo ------------------------------------------------------------------------------------------


@repo_app.command("create")
def repo_create(
    repo_id: RepoIdArgument,
    repo_type: RepoTypeOption = RepoType.model,
    private: Annotated[bool, typer.Option("--private", help="Only its owner and org members may see it.")] = False,
    exist_ok: Annotated[bool, typer.Option("--exist-ok", help="Succeed if the repo already exists.")] = False,
    endpoint: EndpointOption = None,
    token: TokenOption = None,
) -> None:
    """Create a repository (with an initial commit on main)."""
    with opened_hub(endpoint, token) as hub:
        repo = hub.create_repo(repo_id, repo_type=repo_type.value, private=private, exist_ok=exist_ok)
    console.print(f"{repo.repo_type} [bold]{repo.repo_id}[/] ready (default branch {repo.default_branch})")


@repo_app.command("delete")
def repo_delete(
    repo_id: RepoIdArgument,
    repo_type: RepoTypeOption = RepoType.model,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    endpoint: EndpointOption = None,
    token: TokenOption = None,
) -> None:
    """Delete a repository with its branches, tags and history (blobs go at the next `fmhub gc`)."""
    with opened_hub(endpoint, token) as hub:
        repo = hub.get_repo(repo_id, repo_type=repo_type.value)
        if not yes:
            if not sys.stdin.isatty():
                raise InvalidInputError(f"refusing to delete {repo.repo_id!r} without confirmation",
                                        hint="pass --yes to delete non-interactively")
            where = f" on {hub.location}" if hub.remote else ""
            typer.confirm(f"Delete {repo.repo_type} {repo.repo_id}{where} and all its history?", abort=True)
        hub.delete_repo(repo.repo_id, repo_type=repo.repo_type)
    console.print(f"deleted {repo.repo_type} {repo.repo_id}")


@repo_app.command("list")
def repo_list(
    repo_type: Annotated[RepoType | None, typer.Option("--repo-type", help="Only this kind (default: all).")] = None,
    author: Annotated[str | None, typer.Option("--author", help="Only repos in this namespace.")] = None,
    search: Annotated[str | None, typer.Option("--search", help="Only ids containing this text.")] = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="At most this many.")] = None,
    as_json: JsonOption = False,
    endpoint: EndpointOption = None,
    token: TokenOption = None,
) -> None:
    """List repositories (on a hub: those the token may see)."""
    with opened_hub(endpoint, token) as hub:
        repos = hub.list_repos(repo_type=repo_type.value if repo_type else None, author=author, search=search,
                               limit=limit)
    if as_json:
        print_json_lines({"repo_type": r.repo_type, "repo_id": r.repo_id, "private": r.private,
                          "default_branch": r.default_branch, "created_at": r.created_at,
                          "updated_at": r.updated_at} for r in repos)
        return
    table = Table("type", "id", "private", "updated", box=None)
    for repo in repos:
        table.add_row(repo.repo_type, repo.repo_id, "yes" if repo.private else "",
                      repo.updated_at.strftime("%Y-%m-%d %H:%M"))
    console.print(table if repos else "no repositories")


@repo_app.command("info")
def repo_info(repo_id: RepoIdArgument, repo_type: RepoTypeOption = RepoType.model,
              revision: RevisionOption = None, endpoint: EndpointOption = None, token: TokenOption = None) -> None:
    """Show a repository: head commit, size, branches and tags."""
    with opened_hub(endpoint, token) as hub:
        info = hub.repo_info(repo_id, repo_type=repo_type.value, revision=revision)
        repo, commit, files = info.repo, info.commit, info.files
        refs = hub.list_refs(repo.repo_id, repo_type=repo.repo_type)
    console.print(f"[bold]{repo.repo_id}[/] ({repo.repo_type}{', private' if repo.private else ''})")
    console.print(f"  revision     {revision or repo.default_branch} → {commit.oid}")
    console.print(f"  last commit  {commit.title} — {commit.author}, {commit.created_at:%Y-%m-%d %H:%M} UTC")
    console.print(f"  files        {len(files)} ({human_size(sum(f.size for f in files))})")
    console.print(f"  branches     {', '.join(r.name for r in refs.branches)}")
    console.print(f"  tags         {', '.join(r.name for r in refs.tags) or '-'}")
    console.print(f"  created      {repo.created_at:%Y-%m-%d %H:%M} UTC")


# -- files -----------------------------------------------------------------------------------------


def upload_command(
    repo_id: RepoIdArgument,
    local_path: Annotated[Path, typer.Argument(help="File or folder to upload.", show_default=False)],
    path_in_repo: Annotated[str | None, typer.Argument(
        help="Where it goes in the repo (default: the file's name, or the root for a folder).")] = None,
    repo_type: RepoTypeOption = RepoType.model,
    revision: Annotated[str | None, typer.Option(
        "--revision", "-r", help="Branch to commit to; created from the default branch if missing.")] = None,
    commit_message: Annotated[str | None, typer.Option("--commit-message", "-m", help="Commit title.")] = None,
    commit_description: Annotated[str, typer.Option("--commit-description", help="Commit body.")] = "",
    private: Annotated[bool, typer.Option("--private", help="Create the repo private if it does not exist.")] = False,
    include: Annotated[list[str] | None, typer.Option(
        "--include", help="Only a folder's files matching this glob (repeatable), e.g. '*.json'.")] = None,
    exclude: Annotated[list[str] | None, typer.Option(
        "--exclude", help="Skip a folder's files matching this glob (repeatable).")] = None,
    allow_pickle: Annotated[bool, typer.Option(
        "--allow-pickle", help="Store files holding a pickle (found by content, whatever the name) marked unsafe "
                               "instead of refusing them; fmhub never loads them. Convert with `fmhub "
                               "import-model` instead.")] = False,
    endpoint: EndpointOption = None,
    token: TokenOption = None,
) -> None:
    """Upload a file or folder in one commit (creating the repo and branch if needed, like huggingface-cli).

    On a hub (--endpoint), files the branch already holds with the same sha256 are not sent again.
    """
    planned: list[PlannedFile] = []
    with opened_hub(endpoint, token) as hub, contextlib.ExitStack() as bars:
        advance = {"hashing": _ignore, "storing": _ignore}

        def on_plan(files: list[PlannedFile]) -> None:  # the bars start once the total is known
            planned.extend(files)
            advance["hashing"], advance["storing"] = bars.enter_context(
                transfer_bars(sum(f.size for f in files), "hashing", "uploading" if hub.remote else "storing"))

        try:
            commit = hub.upload(local_path, repo_id, path_in_repo, repo_type=repo_type.value, revision=revision,
                                title=commit_message, message=commit_description, include=include, exclude=exclude,
                                private=private, allow_pickle=allow_pickle, on_plan=on_plan,
                                progress=lambda n: advance["storing"](n),
                                hash_progress=lambda n: advance["hashing"](n),
                                notify=lambda line: err_console.print(line, markup=False, highlight=False))
        except EmptyCommitError:
            bars.close()
            console.print(f"no changes: {repo_id}@{revision or DEFAULT_BRANCH} already has "
                          f"{'this file' if len(planned) == 1 else 'these files'}")
            return
    console.print(f"committed {commit.oid} to {repo_id}@{revision or DEFAULT_BRANCH}: "
                  f"{len(planned)} file{'s' if len(planned) != 1 else ''}, {human_size(sum(f.size for f in planned))}")


def _ignore(_n: int) -> None:
    return None


def download_command(
    repo_id: RepoIdArgument,
    filenames: Annotated[list[str] | None, typer.Argument(
        help="Only these files (default: the whole revision).", show_default=False)] = None,
    repo_type: RepoTypeOption = RepoType.model,
    revision: RevisionOption = None,
    include: Annotated[list[str] | None, typer.Option(
        "--include", help="Glob of repo paths to fetch (repeatable), e.g. '*.json' or 'onnx/'.")] = None,
    exclude: Annotated[list[str] | None, typer.Option("--exclude", help="Glob of repo paths to skip (repeatable).")
                       ] = None,
    local_dir: Annotated[Path | None, typer.Option(
        "--local-dir", help="Put the files here instead of the snapshot cache ($FMHUB_HOME/cache).")] = None,
    verify: Annotated[bool, typer.Option(
        "--verify", help="Refuse the version unless its model.sig holds: signed by a key the namespace trusts on the "
                         "hub (or --trust), not revoked, over exactly these files (every byte re-hashed). Exit code 2 "
                         "names the file or key that failed.")] = False,
    trust: Annotated[list[Path] | None, typer.Option(
        "--trust", help="With --verify: a public key file (.pub) to trust besides the hub's keys (repeatable).",
        show_default=False)] = None,
    fsync: Annotated[bool, typer.Option(
        "--fsync", help="Flush each file to disk before it appears (survives power loss; slower).")] = False,
    endpoint: EndpointOption = None,
    token: TokenOption = None,
) -> None:
    """Download a revision (or some of its files); prints the folder holding them.

    From a hub (--endpoint), every file is hashed as it arrives and checked against the commit. With --verify
    the whole version is fetched and its signature checked before the folder is printed.
    """
    if filenames and include:
        raise InvalidInputError("give file names or --include, not both", hint="use only --include globs")
    if verify and (filenames or include or exclude):
        raise InvalidInputError("--verify checks a whole version: it cannot be combined with file names, --include "
                                "or --exclude", hint="drop the file selection, or --verify")
    if trust and not verify:
        raise InvalidInputError("--trust only applies with --verify", hint="add --verify")
    planned: dict[str, object] = {}
    with opened_hub(endpoint, token) as hub, LateProgress("downloading") as bar:

        def on_plan(commit, todo) -> None:
            planned.update(commit=commit, count=len(todo))
            bar.start(sum(entry.size for entry in todo))

        folder = hub.download(repo_id, filenames, revision=revision, repo_type=repo_type.value, local_dir=local_dir,
                              include=include, exclude=exclude, verify=verify, fsync=fsync, progress=bar.advance,
                              on_plan=on_plan)
        if verify:
            verified = hub.verify_folder(repo_id, planned["commit"].oid, folder, trust=trusted_files(trust))
            err_console.print(f"signature verified: {len(verified.signature.files)} files signed by key "
                              f"{verified.signature.key.label}", highlight=False)
    err_console.print(f"{planned['count']} file(s) fetched from commit {planned['commit'].oid[:12]}")
    console.print(str(folder), highlight=False, soft_wrap=True)


def ls_command(
    repo_id: RepoIdArgument,
    folder: Annotated[str | None, typer.Argument(help="Only files under this folder.")] = None,
    repo_type: RepoTypeOption = RepoType.model,
    revision: RevisionOption = None,
    as_json: JsonOption = False,
    endpoint: EndpointOption = None,
    token: TokenOption = None,
) -> None:
    """List the files of a revision with sizes and sha256."""
    with opened_hub(endpoint, token) as hub:
        files = hub.list_files(repo_id, revision, repo_type=repo_type.value, folder=folder)
    if as_json:
        print_json_lines({"path": e.path, "size": e.size, "sha256": e.blob_sha256} for e in files)
        return
    table = Table("size", "sha256", "path", box=None)
    for entry in files:
        table.add_row(human_size(entry.size), entry.blob_sha256[:12], entry.path)
    console.print(table)


def log_command(
    repo_id: RepoIdArgument,
    repo_type: RepoTypeOption = RepoType.model,
    revision: RevisionOption = None,
    max_count: Annotated[int | None, typer.Option("--max-count", "-n", min=1, help="Show at most this many.")
                         ] = None,
    as_json: JsonOption = False,
    endpoint: EndpointOption = None,
    token: TokenOption = None,
) -> None:
    """Show the commit history of a revision, newest first."""
    with opened_hub(endpoint, token) as hub:
        commits = hub.list_commits(repo_id, revision, repo_type=repo_type.value, limit=max_count)
    if as_json:
        print_json_lines({"oid": c.oid, "parents": list(c.parents), "author": c.author, "title": c.title,
                          "message": c.message, "created_at": c.created_at} for c in commits)
        return
    for commit in commits:
        console.print(f"[yellow]{commit.oid}[/]  {commit.created_at:%Y-%m-%d %H:%M}  {commit.author}", highlight=False)
        console.print(f"    {commit.title}", highlight=False)
        if commit.message:
            for line in commit.message.splitlines():
                console.print(f"    {line}", highlight=False)


# -- refs ------------------------------------------------------------------------------------------


@branch_app.command("create")
def branch_create(repo_id: RepoIdArgument,
                  branch: Annotated[str, typer.Argument(help="New branch name.", show_default=False)],
                  repo_type: RepoTypeOption = RepoType.model,
                  revision: Annotated[str | None, typer.Option(
                      "--revision", "-r", help="Where it starts (default: the default branch's head).")] = None,
                  exist_ok: Annotated[bool, typer.Option("--exist-ok", help="Succeed if it already exists there.")
                                      ] = False,
                  endpoint: EndpointOption = None, token: TokenOption = None) -> None:
    """Create a branch at a revision."""
    with opened_hub(endpoint, token) as hub:
        ref = hub.create_branch(repo_id, branch, revision=revision, repo_type=repo_type.value, exist_ok=exist_ok)
    console.print(f"branch {ref.name} → {ref.commit_oid}")


@branch_app.command("delete")
def branch_delete(repo_id: RepoIdArgument,
                  branch: Annotated[str, typer.Argument(help="Branch to delete.", show_default=False)],
                  repo_type: RepoTypeOption = RepoType.model, endpoint: EndpointOption = None,
                  token: TokenOption = None) -> None:
    """Delete a branch (never the default branch)."""
    with opened_hub(endpoint, token) as hub:
        hub.delete_branch(repo_id, branch, repo_type=repo_type.value)
    console.print(f"deleted branch {branch}")


@branch_app.command("list")
def branch_list(repo_id: RepoIdArgument, repo_type: RepoTypeOption = RepoType.model, as_json: JsonOption = False,
                endpoint: EndpointOption = None, token: TokenOption = None) -> None:
    """List branches and their heads."""
    with opened_hub(endpoint, token) as hub:
        refs = hub.list_refs(repo_id, repo_type=repo_type.value)
    if as_json:
        print_json_lines(_ref_json(ref) for ref in refs.branches)
        return
    for ref in refs.branches:
        console.print(f"{ref.commit_oid}  {ref.name}", highlight=False)


@tag_app.command("create")
def tag_create(repo_id: RepoIdArgument,
               tag: Annotated[str, typer.Argument(help="New tag name, e.g. v1.0.", show_default=False)],
               repo_type: RepoTypeOption = RepoType.model,
               revision: Annotated[str | None, typer.Option(
                   "--revision", "-r", help="What it names (default: the default branch's head).")] = None,
               message: Annotated[str | None, typer.Option("--message", "-m", help="Tag description.")] = None,
               endpoint: EndpointOption = None, token: TokenOption = None) -> None:
    """Tag a revision (tags never move)."""
    with opened_hub(endpoint, token) as hub:
        ref = hub.create_tag(repo_id, tag, revision=revision, message=message, repo_type=repo_type.value)
    console.print(f"tag {ref.name} → {ref.commit_oid}")


@tag_app.command("delete")
def tag_delete(repo_id: RepoIdArgument,
               tag: Annotated[str, typer.Argument(help="Tag to delete.", show_default=False)],
               repo_type: RepoTypeOption = RepoType.model, endpoint: EndpointOption = None,
               token: TokenOption = None) -> None:
    """Delete a tag."""
    with opened_hub(endpoint, token) as hub:
        hub.delete_tag(repo_id, tag, repo_type=repo_type.value)
    console.print(f"deleted tag {tag}")


@tag_app.command("list")
def tag_list(repo_id: RepoIdArgument, repo_type: RepoTypeOption = RepoType.model, as_json: JsonOption = False,
             endpoint: EndpointOption = None, token: TokenOption = None) -> None:
    """List tags and the commits they name."""
    with opened_hub(endpoint, token) as hub:
        refs = hub.list_refs(repo_id, repo_type=repo_type.value)
    if as_json:
        print_json_lines(_ref_json(ref) for ref in refs.tags)
        return
    for ref in refs.tags:
        console.print(f"{ref.commit_oid}  {ref.name}" + (f"  {ref.message}" if ref.message else ""), highlight=False)


def _ref_json(ref: Any) -> dict[str, Any]:
    return {"kind": ref.kind, "name": ref.name, "commit": ref.commit_oid, "message": ref.message,
            "created_at": ref.created_at, "updated_at": ref.updated_at}


# -- maintenance -----------------------------------------------------------------------------------


def fsck_command(
    verify_blobs: Annotated[bool, typer.Option(
        "--verify-blobs/--no-verify-blobs", help="Re-hash every blob's bytes (thorough, reads everything).")] = True,
) -> int:
    """Check the whole store: blob hashes, trees → blobs, commits → trees, refs → commits.

    Local only: checks the store FMHUB_DB_URL / FMHUB_BLOB_URL / FMHUB_HOME name (run it where the hub's
    store is); FMHUB_ENDPOINT does not apply.
    """
    with opened_store() as store, LateProgress("re-hashing blobs") as bar:
        report = fsck(store, verify_blobs=verify_blobs, progress=bar.advance, on_total=bar.start)
    for warning in report.warnings:
        err_console.print(f"[yellow]warning:[/] {warning}", highlight=False)
    for problem in report.problems:
        console.print(f"[red]{problem.kind}[/] {problem.subject}: {problem.detail}", highlight=False)
    console.print(f"checked {report.blobs_checked} blobs ({human_size(report.bytes_checked)}), "
                  f"{report.trees_checked} trees, {report.commits_checked} commits, {report.refs_checked} refs: "
                  + ("[green]ok[/]" if report.ok else f"[red]{len(report.problems)} problem(s)[/]"))
    return 0 if report.ok else 1


def gc_command(
    grace: Annotated[str, typer.Option(
        "--grace", help="Keep unreferenced blobs uploaded within this long (e.g. 30m, 1h, 0 for none): an "
                        "upload's commit may be on its way.")] = f"{int(DEFAULT_GC_GRACE_SECONDS // 3600)}h",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only report what would be deleted.")] = False,
) -> None:
    """Delete blobs and trees no commit references.

    Local only: cleans the store FMHUB_DB_URL / FMHUB_BLOB_URL / FMHUB_HOME name (run it where the hub's
    store is); FMHUB_ENDPOINT does not apply.
    """
    seconds = parse_duration(grace, flag="--grace")
    with opened_store() as store:
        report = gc(store, grace_seconds=seconds, dry_run=dry_run)
    summary = (f"{human_size(report.bytes_freed + report.temporary_bytes_freed)}: {report.blobs_deleted} blob(s), "
               f"{report.trees_deleted} tree(s), {report.temporary_files_removed} upload leftover(s); "
               f"kept {report.blobs_kept_in_grace} unreferenced blob(s) younger than {grace}")
    if dry_run:
        console.print(f"would free {summary} (dry run: nothing deleted)")
    else:
        console.print(f"freed {summary}")


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument(help="Target schema revision.")] = "head") -> None:
    """Create or migrate the metadata database schema (needed once per server database). Local only."""
    from fmhub.constants import settings

    db = Database(settings().db_url, auto_upgrade=False)
    try:
        before = db.current_revision()
        after = db.upgrade(revision)
    finally:
        db.dispose()
    console.print(f"schema of {db.safe_url}: {before or 'empty'} → {after}")


@db_app.command("current")
def db_current() -> None:
    """Show the metadata database's schema revision. Local only."""
    from fmhub.constants import settings
    from fmhub.store import SCHEMA_HEAD

    db = Database(settings().db_url, auto_upgrade=False)
    try:
        current = db.current_revision()
    finally:
        db.dispose()
    state = "up to date" if current == SCHEMA_HEAD else f"needs `fmhub db upgrade` to {SCHEMA_HEAD}"
    console.print(f"{db.safe_url}: {current or 'empty'} ({state})")
