"""Repo pages in the Hugging Face Hub's URL shapes: card, files, file view, commits, commit, compare, refs.

``/{ns}/{name}`` (models) and ``/datasets/{ns}/{name}``, then ``/tree/{rev}/{path}``,
``/blob/{rev}/{path}``, ``/commits/{rev}``, ``/commit/{sha}``, ``/compare/{a}...{b}`` and ``/refs``.
A revision with a ``/`` travels quoted (``refs%2Fpr%2F1``), as on the Hub. The API's own routes
(``/{repo}/resolve/...``, ``/api/...``) are left to it: no page route shadows them.
"""

from __future__ import annotations

import json
from typing import Any

import yaml
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from fmhub.errors import EntryNotFoundError, InvalidInputError
from fmhub.server.web._markdown import render_markdown
from fmhub.server.web._parquet import open_parquet, split_names
from fmhub.server.web._records import runs_of_repo
from fmhub.server.web._render import render, rev_part
from fmhub.server.web._repo import RepoView, diff_files, lineage_links, open_repo, read_card, snippets, store_of
from fmhub.server.web._reports import headline, read_report, report_cards
from fmhub.server.web._routing import PageRoute, int_param, raw_segments
from fmhub.server.web._signature import signature_panel
from fmhub.store.paths import validate_folder, validate_path

__all__ = ["router", "repo_segments"]

router = APIRouter(route_class=PageRoute, include_in_schema=False)

#: Files up to this size are shown in the page; larger ones are only offered for download.
PREVIEW_BYTES = 512 * 1024
_TEXT_SUFFIXES = (".md", ".txt", ".json", ".yaml", ".yml", ".py", ".cfg", ".toml", ".csv", ".tsv", ".jsonl",
                  ".gitattributes", ".ini", ".sh", ".vocab", ".model.txt", ".html", ".xml", ".conll", ".log")
COMMITS_PER_PAGE = 30


def repo_segments(request: Request, repo_type: str) -> tuple[str, list[str]]:
    """(repo id, the segments after it) from the raw path."""
    parts = raw_segments(request)
    if repo_type == "dataset":
        parts = parts[1:]
    return f"{parts[0]}/{parts[1]}", parts[2:]


def _sidebar(request: Request, view: RepoView) -> dict[str, Any]:
    """The side panel: metadata, lineage, the latest report cards' headline metrics, snippets."""
    store = store_of(request)
    cards = []
    for ref in report_cards(view.files)[:4]:
        try:
            report, _ = read_report(store, view.repo, view.commit.oid, ref)
        except (InvalidInputError, EntryNotFoundError):
            continue
        cards.append({"ref": ref, "headline": headline(report), "url": f"{view.base}/eval/{view.rev}/{ref.url_tail}"})
    meta = view.metadata

    def listed(key: str) -> list[str]:
        value = meta.get(key)
        items = value if isinstance(value, list) else [value] if value else []
        return [str(v) for v in items if isinstance(v, (str, int, float))][:12]

    variant = (meta.get("fmhub") or {}).get("variant") if isinstance(meta.get("fmhub"), dict) else None
    return {"cards": cards, "lineage": lineage_links(meta), "snippets": snippets(request, view),
            "signature": signature_panel(store, view),
            "task": meta.get("pipeline_tag") or ", ".join(listed("task_categories")) or None,
            "license": meta.get("license"), "library": meta.get("library_name"),
            "datasets": listed("datasets"), "tags": listed("tags"),
            "variant": variant if isinstance(variant, dict) else None,
            "metadata_yaml": yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, width=80) if meta else ""}


def _card_page(request: Request, repo_type: str, repo_id: str, revision: str | None = None) -> HTMLResponse:
    store = store_of(request)
    view = open_repo(request, repo_type, repo_id, revision, tab="card")
    body, sha = read_card(store, view)
    html = render_markdown(body, base=f"{view.base}/resolve/{view.commit.oid}/", cache_key=sha,
                           files=frozenset(e.path for e in view.files)) if sha else ""
    splits = []
    if repo_type == "dataset":
        for split in split_names(view.files):
            rows = 0
            for entry in view.files:
                if entry.path.startswith(f"data/{split}-") or entry.path == f"data/{split}.parquet":
                    rows += open_parquet(store, entry).metadata.num_rows
            splits.append((split, rows))
    return render(request, "repo_card.html", view=view, card_html=html, side=_sidebar(request, view), splits=splits)


def _tree_page(request: Request, repo_type: str) -> HTMLResponse:
    repo_id, rest = repo_segments(request, repo_type)
    if len(rest) < 2:
        raise EntryNotFoundError(repo_id, "", "")
    revision, folder = rest[1], "/".join(rest[2:]).strip("/")
    folder = validate_folder(folder) if folder else ""
    view = open_repo(request, repo_type, repo_id, revision, tab="files")
    prefix = folder + "/" if folder else ""
    dirs: dict[str, dict[str, Any]] = {}
    files = []
    for entry in view.files:
        if not entry.path.startswith(prefix):
            continue
        rest_path = entry.path[len(prefix):]
        if "/" in rest_path:
            name = rest_path.split("/", 1)[0]
            d = dirs.setdefault(name, {"name": name, "path": prefix + name, "size": 0, "count": 0})
            d["size"] += entry.size
            d["count"] += 1
        else:
            files.append(entry)
    if folder and not dirs and not files:
        raise EntryNotFoundError(view.repo.repo_id, revision, folder + "/")
    crumbs = []
    acc = []
    for part in folder.split("/") if folder else []:
        acc.append(part)
        crumbs.append((part, "/".join(acc)))
    return render(request, "repo_tree.html", view=view, folder=folder, crumbs=crumbs,
                  dirs=sorted(dirs.values(), key=lambda d: d["name"].lower()), files=files)


def _preview(store: Any, view: RepoView, entry: Any) -> dict[str, Any]:
    """How the file view shows a file: rendered markdown, pretty JSON, text, a Parquet table, or nothing."""
    name = entry.path.rsplit("/", 1)[-1].lower()
    if name.endswith(".parquet"):
        parquet = open_parquet(store, entry)
        table = parquet.read_row_group(0).slice(0, 20) if parquet.metadata.num_row_groups else None
        rows = table.to_pylist() if table is not None else []
        return {"kind": "parquet", "schema": [(f.name, str(f.type)) for f in parquet.schema_arrow],
                "rows": [{k: _cell(v) for k, v in row.items()} for row in rows],
                "num_rows": parquet.metadata.num_rows, "row_groups": parquet.metadata.num_row_groups}
    if entry.size > PREVIEW_BYTES:
        return {"kind": "large"}
    data = b"".join(store.iter_file(entry))
    if b"\0" in data[:8192]:
        return {"kind": "binary"}
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return {"kind": "binary"}
    if name.endswith(".md"):
        body = text
        if name == "readme.md":
            from fmhub.cards import parse_card
            from fmhub.errors import FmhubError

            try:
                body = parse_card(text).body
            except FmhubError:
                pass
        folder = entry.path.rsplit("/", 1)[0] if "/" in entry.path else ""
        return {"kind": "markdown", "html": render_markdown(body, base=f"{view.base}/resolve/{view.commit.oid}/",
                                                            folder=folder, cache_key=entry.blob_sha256,
                                                            files=frozenset(e.path for e in view.files)),
                "text": text}
    if name.endswith(".json"):
        try:
            text = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
        except ValueError:
            pass
    return {"kind": "text", "text": text, "lines": text.count("\n") + 1}


def _cell(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str) if not isinstance(value, str) else value
    return text if len(text) <= 300 else text[:300] + "…"


def _blob_page(request: Request, repo_type: str) -> HTMLResponse:
    repo_id, rest = repo_segments(request, repo_type)
    if len(rest) < 3:
        raise EntryNotFoundError(repo_id, rest[1] if len(rest) > 1 else "", "")
    revision, path = rest[1], validate_path("/".join(rest[2:]))
    view = open_repo(request, repo_type, repo_id, revision, tab="files")
    entry = next((e for e in view.files if e.path == path), None)
    if entry is None:
        raise EntryNotFoundError(view.repo.repo_id, revision, path)
    if path == "README.md":
        view.tab = "card"
    parts = path.split("/")
    crumbs = [(p, "/".join(parts[:i + 1])) for i, p in enumerate(parts[:-1])]
    return render(request, "repo_blob.html", view=view, entry=entry, crumbs=crumbs, name=parts[-1],
                  preview=_preview(store_of(request), view, entry), raw=request.query_params.get("view") == "raw")


def _commits_page(request: Request, repo_type: str) -> HTMLResponse:
    repo_id, rest = repo_segments(request, repo_type)
    revision = rest[1] if len(rest) > 1 else None
    view = open_repo(request, repo_type, repo_id, revision, tab="commits")
    page = int_param(request, "p", 1, low=1)
    history = store_of(request).list_commits(view.repo.repo_id, view.commit.oid, repo_type=repo_type,
                                             limit=page * COMMITS_PER_PAGE + 1)
    shown = history[(page - 1) * COMMITS_PER_PAGE: page * COMMITS_PER_PAGE]
    return render(request, "repo_commits.html", view=view, commits=shown, page=page,
                  more=len(history) > page * COMMITS_PER_PAGE)


def _commit_page(request: Request, repo_type: str) -> HTMLResponse:
    repo_id, rest = repo_segments(request, repo_type)
    if len(rest) != 2:
        raise EntryNotFoundError(repo_id, "", "")
    view = open_repo(request, repo_type, repo_id, rest[1], tab="commits")
    store = store_of(request)
    commit = view.commit
    parent_files = store.list_files(view.repo.repo_id, commit.parents[0], repo_type=repo_type) if commit.parents else []
    return render(request, "repo_commit.html", view=view, commit=commit, changes=diff_files(parent_files, view.files),
                  compare=None)


def _compare_page(request: Request, repo_type: str) -> Response:
    repo_id, rest = repo_segments(request, repo_type)
    if len(rest) == 1:  # the commits page's form without script: ?a=OLD&b=NEW
        old, new = request.query_params.get("a"), request.query_params.get("b")
        if not old or not new:
            raise InvalidInputError("pick two commits to compare (a and b)")
        view = open_repo(request, repo_type, repo_id, tab="commits")
        return RedirectResponse(f"{view.base}/compare/{rev_part(old)}...{rev_part(new)}", status_code=303)
    spec = "/".join(rest[1:])
    if "..." not in spec:
        raise InvalidInputError("compare two revisions as /compare/A...B")
    old_rev, new_rev = spec.split("...", 1)
    view = open_repo(request, repo_type, repo_id, new_rev, tab="commits")
    store = store_of(request)
    old = store.resolve_revision(view.repo.repo_id, old_rev, repo_type=repo_type)
    old_files = store.list_files(view.repo.repo_id, old.oid, repo_type=repo_type)
    return render(request, "repo_commit.html", view=view, commit=view.commit, changes=diff_files(old_files, view.files),
                  compare={"old": old, "old_rev": old_rev, "new_rev": new_rev})


def _refs_page(request: Request, repo_type: str) -> HTMLResponse:
    repo_id, _ = repo_segments(request, repo_type)
    view = open_repo(request, repo_type, repo_id, tab="refs")
    return render(request, "repo_refs.html", view=view)


def _runs_tab(request: Request, repo_type: str) -> HTMLResponse:
    repo_id, _ = repo_segments(request, repo_type)
    view = open_repo(request, repo_type, repo_id, tab="runs")
    runs = runs_of_repo(store_of(request), view.caller, view.repo.repo_id)
    return render(request, "repo_runs.html", view=view, runs=runs)


def _register() -> None:
    """The same pages for models (``/ns/name``) and datasets (``/datasets/ns/name``); datasets first, since
    ``/datasets/a/b`` must not be read as the model ``datasets/a`` (``datasets`` is a reserved account name)."""
    for repo_type, prefix in (("dataset", "/datasets"), ("model", "")):
        base = prefix + "/{namespace}/{name}"

        def card(request: Request, namespace: str, name: str, _t: str = repo_type) -> HTMLResponse:
            return _card_page(request, _t, f"{namespace}/{name}")

        def bind(function: Any, _t: str = repo_type) -> Any:
            def page(request: Request) -> Response:
                return function(request, _t)
            page.__name__ = f"{function.__name__.strip('_')}_{_t}"
            return page

        router.add_api_route(base, card, methods=["GET"], name=f"card_{repo_type}")
        router.add_api_route(base + "/tree/{rest:path}", bind(_tree_page), methods=["GET"])
        router.add_api_route(base + "/blob/{rest:path}", bind(_blob_page), methods=["GET"])
        router.add_api_route(base + "/commits/{rest:path}", bind(_commits_page), methods=["GET"])
        router.add_api_route(base + "/commits", bind(_commits_page), methods=["GET"])
        router.add_api_route(base + "/commit/{sha}", bind(_commit_page), methods=["GET"])
        router.add_api_route(base + "/compare/{rest:path}", bind(_compare_page), methods=["GET"])
        router.add_api_route(base + "/compare", bind(_compare_page), methods=["GET"])
        router.add_api_route(base + "/refs", bind(_refs_page), methods=["GET"])
        if repo_type == "model":
            router.add_api_route(base + "/runs", bind(_runs_tab), methods=["GET"])


_register()
