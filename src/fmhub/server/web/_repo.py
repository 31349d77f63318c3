"""What every page of a repo shows: the repo at a revision, its files, refs, card metadata and tabs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import Request

from fmhub.accounts import Principal
from fmhub.cards import parse_card
from fmhub.errors import FmhubError
from fmhub.server._auth import visible_repo
from fmhub.server._hf import LFS_THRESHOLD, card_metadata
from fmhub.server.web._render import repo_path, rev_part
from fmhub.server.web._session import viewer
from fmhub.store import Commit, Repo, RepoRefs, Store, TreeEntry

__all__ = ["RepoView", "open_repo", "store_of", "lineage_links", "diff_files", "snippets"]


def store_of(request: Request) -> Store:
    return request.app.state.store


@dataclass
class RepoView:
    repo: Repo
    revision: str  # as the URL gave it (default: the default branch)
    commit: Commit
    files: list[TreeEntry]
    refs: RepoRefs
    metadata: dict[str, Any]
    caller: Principal | None
    tab: str = "card"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def base(self) -> str:
        return repo_path(self.repo.repo_type, self.repo.repo_id)

    @property
    def rev(self) -> str:
        """The revision as a URL segment."""
        return rev_part(self.revision)

    @property
    def is_default(self) -> bool:
        return self.revision == self.repo.default_branch

    @property
    def size(self) -> int:
        return sum(e.size for e in self.files)

    @property
    def tabs(self) -> list[tuple[str, str, str]]:
        """(id, label, url)."""
        tabs = [("card", "Card", self.base if self.is_default else f"{self.base}/blob/{self.rev}/README.md"),
                ("files", "Files", f"{self.base}/tree/{self.rev}"),
                ("commits", "Commits", f"{self.base}/commits/{self.rev}"),
                ("lineage", "Lineage", f"{self.base}/lineage/{self.rev}"),
                ("refs", "Branches & tags", f"{self.base}/refs"),
                ("discussions", "Pull requests", f"{self.base}/discussions")]
        if self.repo.repo_type == "model":
            tabs.insert(1, ("eval", "Evaluations", f"{self.base}/eval/{self.rev}"))
            tabs.append(("runs", "Runs", f"{self.base}/runs"))
        else:
            tabs.insert(1, ("viewer", "Viewer", f"{self.base}/viewer"
                            + ("" if self.is_default else f"?revision={self.rev}")))
        return tabs

    def resolve_url(self, path: str, *, download: bool = False) -> str:
        from urllib.parse import quote

        url = f"{self.base}/resolve/{self.commit.oid}/{quote(path)}"
        return url + ("?download=true" if download else "")

    def is_lfs(self, entry: TreeEntry) -> bool:
        return entry.size >= LFS_THRESHOLD


def open_repo(request: Request, repo_type: str, repo_id: str, revision: str | None = None, *,
              tab: str = "card") -> RepoView:
    """The repo the viewer asked for, at ``revision``: RepoNotFoundError alike for missing and hidden repos."""
    store = store_of(request)
    caller = viewer(request)
    repo = visible_repo(store, caller, repo_type, repo_id)
    revision = revision or repo.default_branch
    commit = store.resolve_revision(repo.repo_id, revision, repo_type=repo.repo_type)
    files = store.list_files(repo.repo_id, commit.oid, repo_type=repo.repo_type)
    refs = store.list_refs(repo.repo_id, repo_type=repo.repo_type)
    metadata = card_metadata(store, files) or {}
    return RepoView(repo, revision, commit, files, refs, metadata, caller, tab)


def read_card(store: Store, view: RepoView) -> tuple[str, str | None]:
    """The card's markdown body (without front matter) and its blob sha256, or ("", None) without README."""
    entry = next((e for e in view.files if e.path == "README.md"), None)
    if entry is None or entry.size > 2 * 1024 * 1024:
        return "", None
    text = b"".join(store.iter_file(entry)).decode("utf-8", "replace")
    try:
        return parse_card(text).body, entry.blob_sha256
    except FmhubError:  # broken front matter: show the whole text, as the Hub does
        return text, entry.blob_sha256


def _link(repo: Any, commit: Any, repo_type: str) -> dict[str, Any] | None:
    if not isinstance(repo, str) or "/" not in repo:
        return None
    commit = commit if isinstance(commit, str) and len(commit) == 40 else None
    base = repo_path(repo_type, repo)
    return {"repo": repo, "url": base, "commit": commit, "commit_url": f"{base}/commit/{commit}" if commit else None}


def lineage_links(metadata: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The card's ``fmhub.lineage`` (base model, dataset, run, parent) as labelled links."""
    section = metadata.get("fmhub") if isinstance(metadata.get("fmhub"), dict) else {}
    lineage = section.get("lineage") if isinstance(section.get("lineage"), dict) else {}
    out: list[tuple[str, dict[str, Any]]] = []
    for label, key, kind in (("parent", "parent", "model"), ("base model", "base_model", "model"),
                             ("dataset", "dataset", "dataset")):
        link = _link(lineage.get(key), lineage.get(f"{key}_commit"), kind)
        if link:
            out.append((label, link))
    run = lineage.get("run_id")
    if isinstance(run, str) and run.startswith("r-") and run[2:].isalnum():
        out.append(("run", {"repo": run, "url": f"/-/runs/{run}", "commit": None, "commit_url": None}))
    if not lineage and isinstance(metadata.get("base_model"), str):
        link = _link(metadata["base_model"], None, "model")
        if link:
            out.append(("base model", link))
    return out


def diff_files(old: list[TreeEntry], new: list[TreeEntry]) -> list[dict[str, Any]]:
    """Files added, removed and modified from ``old`` to ``new`` (by content), sorted by path."""
    before = {e.path: e for e in old}
    after = {e.path: e for e in new}
    out = []
    for path in sorted(before.keys() | after.keys()):
        a, b = before.get(path), after.get(path)
        if a is None:
            out.append({"status": "added", "path": path, "old": None, "new": b})
        elif b is None:
            out.append({"status": "removed", "path": path, "old": a, "new": None})
        elif a.blob_sha256 != b.blob_sha256:
            out.append({"status": "modified", "path": path, "old": a, "new": b})
    return out


def snippets(request: Request, view: RepoView) -> list[tuple[str, str]]:
    """The "use this" panel: copy-able ways to get this revision."""
    endpoint = str(request.base_url).rstrip("/")
    repo_id, rev = view.repo.repo_id, view.revision
    rev_arg = "" if view.is_default else f', revision="{rev}"'
    if view.repo.repo_type == "dataset":
        return [
            ("datasets", f'import os\nos.environ["HF_ENDPOINT"] = "{endpoint}"\nfrom datasets import load_dataset\n'
                         f'ds = load_dataset("{repo_id}"{rev_arg})'),
            ("huggingface_hub", f'from huggingface_hub import snapshot_download\n'
                                f'snapshot_download("{repo_id}", repo_type="dataset"{rev_arg}, endpoint="{endpoint}")'),
            ("fmhub", f"FMHUB_ENDPOINT={endpoint} fmhub download {repo_id} --repo-type dataset"
                      + ("" if view.is_default else f" --revision {rev}")),
        ]
    at = "" if view.is_default else f"@{rev}"
    return [
        ("transformers", f'import os\nos.environ["HF_ENDPOINT"] = "{endpoint}"\n'
                         f'from transformers import AutoModel\nmodel = AutoModel.from_pretrained("{repo_id}"{rev_arg})'),
        ("huggingface_hub", f'from huggingface_hub import snapshot_download\n'
                            f'snapshot_download("{repo_id}"{rev_arg}, endpoint="{endpoint}")'),
        ("fmhub", f"FMHUB_ENDPOINT={endpoint} fmhub download {repo_id}" + ("" if view.is_default else f" --revision {rev}")
                  + f"\nFMHUB_ENDPOINT={endpoint} fmhub serve {repo_id}{at}"),
    ]
