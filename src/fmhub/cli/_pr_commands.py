"""``fmhub pr``: pull requests, the review workflow (propose a model version, review it, merge it).

Works on the embedded store or a hub server (``--endpoint`` / ``FMHUB_ENDPOINT``) through the Hub client.
A pull request is a ref, ``refs/pr/N``; push to it with ``fmhub upload … --revision refs/pr/N`` (or
``huggingface_hub``'s ``create_commit(create_pr=True)``), evaluate it with ``fmhub eval --revision refs/pr/N``.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from fmhub.cli._common import (
    EndpointOption,
    RepoIdArgument,
    RepoType,
    RepoTypeOption,
    TokenOption,
    console,
    opened_hub,
)
from fmhub.client import Hub
from fmhub.evaluations import metric_changes

pr_app = typer.Typer(help="Pull requests: open, list, show (files, diff, report-card metrics), merge, close.",
                     no_args_is_help=True)

NumberArgument = Annotated[int, typer.Argument(help="The pull request's number (N of refs/pr/N).", min=1,
                                               show_default=False)]
CommentOption = Annotated[str | None, typer.Option("--comment", "-c", help="A comment to add with the change.")]


def register(app: typer.Typer) -> None:
    app.add_typer(pr_app, name="pr")


@pr_app.command("create")
def pr_create(repo_id: RepoIdArgument,
              title: Annotated[str, typer.Option("--title", "-t", help="What the pull request proposes.",
                                                 show_default=False)],
              description: Annotated[str | None, typer.Option("--description", "-d",
                                                              help="Its first comment (Markdown).")] = None,
              repo_type: RepoTypeOption = RepoType.model, endpoint: EndpointOption = None,
              token: TokenOption = None) -> None:
    """Open a pull request against the default branch, as a draft; its first commit (pushed to its ref, printed)
    opens it."""
    with opened_hub(endpoint, token) as hub:
        pr = hub.create_discussion(repo_id, title=title, description=description, pull_request=True,
                                   repo_type=repo_type.value)
    console.print(f"opened pull request #{pr.num} ({pr.git_reference}) against {pr.target_branch}, a draft until "
                  "its first commit")
    console.print(f"push to it with: fmhub upload {repo_id} PATH --revision {pr.git_reference}", highlight=False)


@pr_app.command("list")
def pr_list(repo_id: RepoIdArgument,
            status: Annotated[str, typer.Option("--status", help="open, closed, merged or all.")] = "open",
            repo_type: RepoTypeOption = RepoType.model, endpoint: EndpointOption = None,
            token: TokenOption = None) -> None:
    """List pull requests, newest first."""
    if status not in ("open", "closed", "merged", "all"):
        raise typer.BadParameter("use open, closed, merged or all", param_hint="--status")
    with opened_hub(endpoint, token) as hub:
        found = hub.list_discussions(repo_id, repo_type=repo_type.value, pull_requests=True,
                                     status=None if status == "all" else status)
    table = Table("#", "status", "title", "author", "opened")
    for pr in found:
        table.add_row(str(pr.num), pr.status, escape(pr.title), pr.author, pr.created_at.strftime("%Y-%m-%d %H:%M"))
    console.print(table if found else f"no {'' if status == 'all' else status + ' '}pull requests")


def _metric_rows(hub: Hub, repo_id: str, repo_type: str, base: str | None,
                 head: str | None) -> list[tuple[str, str, str, str]]:
    """Report-card metrics of the pull request against its base (see :func:`fmhub.evaluations.metric_changes`)."""
    if not base or not head or repo_type != "model":
        return []
    cards = hub.list_evaluations(model=repo_id, limit=1000)
    if not cards:
        return []
    proposed = []
    for commit in hub.list_commits(repo_id, head, repo_type=repo_type, limit=500):
        if commit.oid == base:
            break
        proposed.append(commit.oid)
    before = [c.oid for c in hub.list_commits(repo_id, base, repo_type=repo_type, limit=500)]
    return [(f"{c.dataset}:{c.split}", c.metric, "-" if c.base is None else f"{c.base:.4f}",
             f"{c.proposed:.4f}" + ("" if c.delta is None else f" ({c.delta:+.4f})"))
            for c in metric_changes(cards, proposed, before)]


@pr_app.command("show")
def pr_show(repo_id: RepoIdArgument, num: NumberArgument,
            diff: Annotated[bool, typer.Option("--diff", help="Print the line diff of changed text files.")] = False,
            repo_type: RepoTypeOption = RepoType.model, endpoint: EndpointOption = None,
            token: TokenOption = None) -> None:
    """Show a pull request: status, changed files, conflicts, report-card metrics against its base, timeline."""
    with opened_hub(endpoint, token) as hub:
        details = hub.get_pull_request(repo_id, num, repo_type=repo_type.value)
        pr = details.discussion
        metrics = _metric_rows(hub, repo_id, repo_type.value, pr.base_commit, pr.head_commit) \
            if pr.is_pull_request else []
    kind = "pull request" if pr.is_pull_request else "discussion"
    console.print(f"[b]#{pr.num} {escape(pr.title)}[/b]  ({kind}, {pr.status}, by {pr.author})")
    if pr.is_pull_request:
        console.print(f"{pr.git_reference} → {pr.target_branch}   base {pr.base_commit}   head {pr.head_commit}",
                      highlight=False)
        if pr.merge_commit:
            console.print(f"merged as {pr.merge_commit}", highlight=False)
        files = Table("change", "file")
        for change in details.files:
            files.add_row(change.change, escape(change.path))
        console.print(files if details.files else "no file changes yet")
        if details.conflicts:
            console.print(f"[red]conflicts with {pr.target_branch}:[/red] {escape(', '.join(details.conflicts))}")
        if metrics:
            table = Table("dataset:split", "metric", "base", "pull request (Δ)", title="report cards")
            for row in metrics:
                table.add_row(*row)
            console.print(table)
    for event in pr.events:
        what = {"comment": f"commented: {event.content}", "status-change": f"set the status to {event.content}",
                "title-change": f"renamed it from {event.detail!r} to {event.content!r}",
                "commit": f"committed {str(event.content)[:12]} {event.detail}"}.get(event.kind, event.kind)
        console.print(f"  {event.created_at:%Y-%m-%d %H:%M}  {event.author} {escape(what)}", highlight=False)
    if diff and details.diff:
        console.print(details.diff, markup=False, highlight=False)


@pr_app.command("merge")
def pr_merge(repo_id: RepoIdArgument, num: NumberArgument, comment: CommentOption = None,
             repo_type: RepoTypeOption = RepoType.model, endpoint: EndpointOption = None,
             token: TokenOption = None) -> None:
    """Merge an open pull request into its target branch (refused, with the files, on a conflict)."""
    with opened_hub(endpoint, token) as hub:
        oid = hub.merge_pull_request(repo_id, num, repo_type=repo_type.value, comment=comment)
    console.print(f"merged #{num} as {oid}", highlight=False)


@pr_app.command("close")
def pr_close(repo_id: RepoIdArgument, num: NumberArgument, comment: CommentOption = None,
             repo_type: RepoTypeOption = RepoType.model, endpoint: EndpointOption = None,
             token: TokenOption = None) -> None:
    """Close a pull request without merging it (reopen with: fmhub pr reopen)."""
    with opened_hub(endpoint, token) as hub:
        hub.change_discussion_status(repo_id, num, "closed", repo_type=repo_type.value, comment=comment)
    console.print(f"closed #{num}")


@pr_app.command("reopen")
def pr_reopen(repo_id: RepoIdArgument, num: NumberArgument, comment: CommentOption = None,
              repo_type: RepoTypeOption = RepoType.model, endpoint: EndpointOption = None,
              token: TokenOption = None) -> None:
    """Reopen a closed pull request."""
    with opened_hub(endpoint, token) as hub:
        hub.change_discussion_status(repo_id, num, "open", repo_type=repo_type.value, comment=comment)
    console.print(f"reopened #{num}")
