"""``fmhub lineage`` (show, impact, reindex) and ``fmhub search``: what came from what, and finding repos."""

from __future__ import annotations

import json
from collections.abc import Callable
from enum import StrEnum
from typing import Annotated, Any

import click
import typer
from rich.markup import escape
from rich.table import Table
from rich.tree import Tree
from typer.core import TyperGroup

from fmhub.cli._common import EndpointOption, TokenOption, console, err_console, opened_hub, opened_store
from fmhub.errors import InvalidInputError, RepoNotFoundError
from fmhub.refs import split_ref

__all__ = ["register", "render_dot"]


class _DefaultShow(TyperGroup):
    """``fmhub lineage REPO[@REV]`` is ``fmhub lineage show REPO[@REV]``: a first word that is no subcommand
    (nor an option) is a repo."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["show", *args]
        return super().parse_args(ctx, args)


lineage_app = typer.Typer(cls=_DefaultShow, no_args_is_help=True, rich_markup_mode="rich",
                          help="What each version was made from and what was made from it.\n\n"
                               "fmhub lineage REPO[@REV] shows the graph (same as fmhub lineage show); "
                               "fmhub lineage impact DATASET[@REV] lists everything built from a version; "
                               "fmhub lineage reindex rebuilds the index of an existing store.")


def register(app: typer.Typer) -> None:
    app.add_typer(lineage_app, name="lineage")
    app.command("search")(search_command)


class Kind(StrEnum):
    auto = "auto"
    model = "model"
    dataset = "dataset"


KindOption = Annotated[Kind, typer.Option("--repo-type", help="model or dataset; auto: the kind of repo that has "
                                                              "this id (models first for show, datasets first for "
                                                              "impact).")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the answer as JSON (the API's shape).")]


def _kinds(kind: Kind, first: str) -> list[str]:
    if kind is not Kind.auto:
        return [kind.value]
    return [first, "dataset" if first == "model" else "model"]


def _first_found(kinds: list[str], call: Callable[[str], dict[str, Any]]) -> dict[str, Any]:
    """The answer for the first kind of repo that has the id; else the first kind's not-found error."""
    first: RepoNotFoundError | None = None
    for repo_type in kinds:
        try:
            return call(repo_type)
        except RepoNotFoundError as exc:
            first = first or exc
    assert first is not None
    raise first


def serving_detail(node: dict[str, Any]) -> str:
    """What a serving record says, in a few words: the pipeline step and how the server agreed with offline."""
    info = node.get("info") or {}
    where = "/".join(str(info[k]) for k in ("pipeline", "step") if info.get(k))
    agreement, rows = info.get("agreement"), info.get("rows")
    said = f"{agreement:.0%} as offline" if isinstance(agreement, (int, float)) else ""
    if said and isinstance(rows, (int, float)):
        said += f" on {int(rows)} rows"
    return ": ".join(part for part in (where, said) if part)


def _short(node: dict[str, Any]) -> str:
    """A node as one line of text (no markup)."""
    if node.get("hidden"):
        return "hidden (a version you cannot read)"
    kind, repo, commit = node["kind"], node["repo"], node.get("commit")
    refs = ", ".join(r["name"] for r in node.get("refs", []))
    where = f"@{commit[:12]}" if commit else ""
    text = f"{kind} {repo}{where}"
    if kind == "evaluation":
        info = node.get("info") or {}
        metrics = ", ".join(f"{k} {v:.4g}" for k, v in list((info.get("metrics") or {}).items())[:3])
        text = f"evaluation {repo}@{(commit or '')[:12]} on {info.get('dataset')}:{info.get('split')}" + \
            (f" ({metrics})" if metrics else "")
    elif kind in ("serve-check", "deployment"):
        detail = serving_detail(node)
        text = f"{kind} of {repo}@{(commit or '')[:12]}" + (f" ({detail})" if detail else "")
    elif kind == "model" and (node.get("info") or {}).get("method"):
        text += f" [{node['info']['method']}]"
    if refs:
        text += f" ({refs})"
    if not node.get("exists", True):
        text += " — deleted"
    return text


_STYLE = {"model": "bold cyan", "dataset": "bold green", "run": "yellow", "evaluation": "magenta",
          "serve-check": "blue", "deployment": "bold blue", "hidden": "dim"}


def _label(node: dict[str, Any], relation: str | None) -> str:
    style = _STYLE.get(node.get("kind", "hidden"), "")
    via = f"[dim]{escape(relation)} →[/] " if relation else ""
    return f"{via}[{style}]{escape(_short(node))}[/]"


def render_tree(answer: dict[str, Any]) -> list[Tree]:
    """The graph as rich trees: for each root, what it came from and what was made from it."""
    nodes = {n["id"]: n for n in answer["nodes"]}
    parents: dict[str, list[tuple[str, str]]] = {}
    children: dict[str, list[tuple[str, str]]] = {}
    for edge in answer["edges"]:
        children.setdefault(edge["from"], []).append((edge["to"], edge["relation"]))
        parents.setdefault(edge["to"], []).append((edge["from"], edge["relation"]))

    def grow(tree: Tree, node_id: str, links: dict[str, list[tuple[str, str]]], seen: set[str]) -> None:
        for other, relation in sorted(links.get(node_id, [])):
            if other not in nodes:
                continue
            if other in seen:
                tree.add(_label(nodes[other], relation) + " [dim](shown above)[/]")
                continue
            seen.add(other)
            grow(tree.add(_label(nodes[other], relation)), other, links, seen)

    trees = []
    for root in answer["roots"]:
        tree = Tree(_label(nodes[root], None))
        if answer["direction"] in ("both", "up") and parents.get(root):
            grow(tree.add("[bold]made from[/]"), root, parents, {root})
        if answer["direction"] in ("both", "down") and children.get(root):
            grow(tree.add("[bold]made into[/]"), root, children, {root})
        trees.append(tree)
    return trees


def render_dot(answer: dict[str, Any]) -> str:
    """The graph in Graphviz DOT (``dot -Tsvg``), one box per node, edges labelled by relation."""

    def quoted(value: str) -> str:
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ") + '"'

    shapes = {"model": "box", "dataset": "cylinder", "run": "ellipse", "evaluation": "note", "serve-check": "hexagon",
              "deployment": "hexagon", "hidden": "point"}
    lines = ["digraph lineage {", "  rankdir=LR;", "  node [fontname=Helvetica fontsize=10];"]
    for node in answer["nodes"]:
        kind = node.get("kind", "hidden")
        extra = ' penwidth=2' if node["id"] in answer["roots"] else ""
        lines.append(f"  {quoted(node['id'])} [label={quoted(_short(node))} shape={shapes.get(kind, 'box')}{extra}];")
    for edge in answer["edges"]:
        lines.append(f"  {quoted(edge['from'])} -> {quoted(edge['to'])} [label={quoted(edge['relation'])}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


@lineage_app.command("show", no_args_is_help=True)
def show_command(
    ref: Annotated[str, typer.Argument(help="A version: REPO or REPO@REVISION (branch, tag or commit).",
                                       show_default=False)],
    up: Annotated[bool, typer.Option("--up", help="Only what it was made from (ancestors).")] = False,
    down: Annotated[bool, typer.Option("--down", help="Only what was made from it (descendants).")] = False,
    depth: Annotated[int, typer.Option("--depth", help="How many steps to follow each way (1-50).", min=1,
                                       max=50)] = 5,
    repo_type: KindOption = Kind.auto,
    as_json: JsonOption = False,
    dot: Annotated[bool, typer.Option("--dot", help="Print Graphviz DOT (render with: dot -Tsvg).")] = False,
    endpoint: EndpointOption = None,
    token: TokenOption = None,
) -> int:
    """Show the lineage graph of a model or dataset version: data → run → model → variants → evaluations."""
    if up and down:
        raise InvalidInputError("--up and --down together are the default (both directions)",
                                hint="give one of them, or neither")
    repo_id, revision = split_ref(ref, "REPO")
    direction = "up" if up else "down" if down else "both"
    with opened_hub(endpoint, token) as hub:
        answer = _first_found(_kinds(repo_type, "model"), lambda kind: hub.lineage(
            repo_id, revision, repo_type=kind, direction=direction, depth=depth))
    if as_json and dot:
        raise InvalidInputError("--json and --dot are two output formats", hint="give one of them")
    if as_json:
        console.print_json(json.dumps(answer))
    elif dot:
        console.out(render_dot(answer), end="", highlight=False)
    elif not answer["roots"]:
        err_console.print(f"{escape(answer['repo_id'])}@{(answer['commit'] or '')[:12]} has no recorded lineage "
                          f"(no card naming its inputs, nothing made from it)")
    else:
        for tree in render_tree(answer):
            console.print(tree)
        if answer.get("truncated"):
            err_console.print("[yellow]the graph was cut at its size limit: lower --depth[/]")
    return 0


@lineage_app.command("impact", no_args_is_help=True)
def impact_command(
    ref: Annotated[str, typer.Argument(help="A version: REPO or REPO@REVISION (every version of REPO without one).",
                                       show_default=False)],
    repo_type: KindOption = Kind.auto,
    evaluations: Annotated[bool, typer.Option("--evaluations", help="Also list the report cards made on what "
                                                                     "descends (and on this version).")] = False,
    limit: Annotated[int | None, typer.Option("--limit", help="List one page of this many (1-10000), oldest "
                                              "first, and the --cursor of the next page; default: everything.",
                                              min=1, max=10_000, show_default=False)] = None,
    cursor: Annotated[str | None, typer.Option("--cursor", help="Start after this point: the cursor a previous "
                                               "page printed (with --limit).", show_default=False)] = None,
    as_json: JsonOption = False,
    endpoint: EndpointOption = None,
    token: TokenOption = None,
) -> int:
    """List every model version, variant, run, serve check and published ref built from a version — what a
    data-deletion request or a leaked-data incident must reach."""
    repo_id, revision = split_ref(ref, "REPO")
    with opened_hub(endpoint, token) as hub:
        answer = _first_found(_kinds(repo_type, "dataset"),
                              lambda kind: hub.lineage_impact(repo_id, revision, repo_type=kind,
                                                              evaluations=evaluations, limit=limit, cursor=cursor))
    if as_json:
        console.print_json(json.dumps(answer))
        return 0
    roots = set(answer["roots"])
    found = [n for n in answer["nodes"] if n["id"] not in roots]
    total = answer.get("total", len(found))
    if not found:
        err_console.print(f"nothing recorded was built from {escape(ref)}" if not total else
                          f"no more: all {total} were listed before this cursor")
        return 0
    paged = len(found) < total
    title = f"Built from {ref}" + (f" ({len(found)} of {total})" if paged else "")
    table = Table(title=title + (" (cut at the size limit)" if answer.get("truncated") else ""))
    for column in ("kind", "version", "published as", "detail"):
        table.add_column(column, overflow="fold")
    order = {"model": 0, "serve-check": 1, "deployment": 1, "evaluation": 2, "run": 3, "dataset": 4}
    for node in sorted(found, key=lambda n: (order.get(n.get("kind"), 9), n["id"])):
        if node.get("hidden"):
            table.add_row("hidden", "[dim]a version you cannot read[/]", "", "")
            continue
        info = node.get("info") or {}
        refs = ", ".join(f"{r['kind']} {r['name']}" for r in node.get("refs", []))
        version = node["repo"] + (f"@{node['commit'][:12]}" if node.get("commit") else "")
        detail = info.get("method", "") if node["kind"] == "model" else \
            f"{info.get('dataset')}:{info.get('split')}" if node["kind"] == "evaluation" else \
            serving_detail(node) if node["kind"] in ("serve-check", "deployment") else ""
        if not node.get("exists", True):
            detail = (detail + " deleted").strip()
        table.add_row(node["kind"], escape(version), escape(refs), escape(str(detail)))
    console.print(table)
    hidden = sum(1 for n in found if n.get("hidden"))
    console.print(f"{len(found)} versions and records" + (f" of {total}" if paged else "") +
                  (f" ({hidden} hidden from you)" if hidden else ""))
    if answer.get("next_cursor"):
        console.print(f"next page: fmhub lineage impact {escape(ref)} --limit {limit} --cursor {answer['next_cursor']}",
                      highlight=False)
    return 0


@lineage_app.command("reindex")
def reindex_command() -> int:
    """Rebuild the search index and the lineage graph from every repo of the embedded store (or the one
    FMHUB_DB_URL names): for stores from before fmhub kept them, or after restoring a backup. A hub server
    does this itself at start when it finds the index behind."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from fmhub.indexing import reindex

    with opened_store() as store, Progress("reindex", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                                           console=err_console) as progress:
        task = progress.add_task("repos", total=None)
        count = reindex(store, progress=lambda done, total: progress.update(task, completed=done, total=total))
    console.print(f"indexed {count} repos for search and lineage")
    return 0


def search_command(
    query: Annotated[str | None, typer.Argument(help="Words to find in repo ids, tasks, tags, libraries, licenses "
                                                     "and datasets (all must occur).", show_default=False)] = None,
    repo_type: Annotated[Kind, typer.Option("--type", help="model, dataset, or auto (both).")] = Kind.auto,
    task: Annotated[str | None, typer.Option("--task", help="The card's pipeline_tag, e.g. text-classification.")
                    ] = None,
    tag: Annotated[list[str] | None, typer.Option("--filter", help="A tag every result has (repeatable): "
                                                  "license:mit, dataset:acme/news, transformers, …")] = None,
    author: Annotated[str | None, typer.Option("--author", help="Only this namespace.")] = None,
    metric: Annotated[list[str] | None, typer.Option("--metric", help="A report-card condition (repeatable), "
                                                     "e.g. 'accuracy>=0.95'.")] = None,
    on: Annotated[str | None, typer.Option("--on", help="The dataset[:split] --metric and a metric sort refer to, "
                                           "e.g. acme/news:test.")] = None,
    sort: Annotated[str, typer.Option("--sort", help="lastModified, createdAt, id, or metric:<name> (best "
                                                     "first).")] = "lastModified",
    limit: Annotated[int, typer.Option("--limit", help="At most this many results.", min=1, max=100)] = 20,
    as_json: JsonOption = False,
    endpoint: EndpointOption = None,
    token: TokenOption = None,
) -> int:
    """Find models and datasets by words, task, tags and report-card metrics."""
    from fmhub.search import MetricFilter, SearchQuery

    filters = [MetricFilter.parse(m, on) for m in metric or []]
    q = SearchQuery(repo_type=None if repo_type is Kind.auto else repo_type.value, text=query, author=author,
                    filters=tag or [], task=task, metrics=filters, sort=sort, limit=limit, metric_on=on)
    with opened_hub(endpoint, token) as hub:
        result = hub.search(q)
    if as_json:
        console.print_json(json.dumps({"hits": [h.to_json() for h in result.hits], "total": result.total}))
        return 0
    if not result.hits:
        err_console.print("no repos match")
        return 0
    total = result.total
    table = Table(title=f"{total} repo{'' if total == 1 else 's'}" if total is not None else "repos")
    columns = ["repo", "type", "task", "library", "license", "updated"]
    if q.sort.startswith("metric:"):
        columns.append(q.sort[7:])
    for column in columns:
        table.add_column(column, overflow="fold")
    for hit in result.hits:
        row = [escape(hit.repo_id) + (" [dim](private)[/]" if hit.private else ""), hit.repo_type, hit.task or "",
               hit.library or "", hit.license or "", hit.updated_at.strftime("%Y-%m-%d %H:%MZ")]
        if q.sort.startswith("metric:"):
            row.append(f"{hit.metric:.4f}" if hit.metric is not None else "")
        table.add_row(*(escape(c) if i else c for i, c in enumerate(row)))
    console.print(table)
    return 0
