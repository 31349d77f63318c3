"""Questions about a revision's history: which commit last changed each path (``git log -1 -- path``)."""

from __future__ import annotations

from collections.abc import Iterable

from fmhub.store.objects import Commit
from fmhub.store.store import Store

__all__ = ["last_commits", "MAX_WALK"]

#: Commits walked at most per question; paths unchanged over that many commits get the oldest one walked.
MAX_WALK = 2000


def last_commits(store: Store, repo_id: str, revision: str | None, paths: Iterable[str], *,
                 repo_type: str = "model") -> dict[str, Commit]:
    """For each file or folder path, the newest commit (first-parent history of ``revision``) that changed
    it: a file's contents, or any file under a folder. Paths absent at ``revision`` are left out."""
    wanted = set(paths)
    history = store.list_commits(repo_id, revision, repo_type=repo_type, limit=MAX_WALK)
    if not wanted or not history:
        return {}
    trees: dict[str, dict[str, tuple[str, int]]] = {}
    with store.db.read() as conn:
        def tree(tree_id: str) -> dict[str, tuple[str, int]]:
            if tree_id not in trees:
                trees[tree_id] = store._load_tree(conn, tree_id)
            return trees[tree_id]

        def state(files: dict[str, tuple[str, int]], path: str) -> object:
            if path in files:
                return files[path]
            prefix = path + "/"
            return frozenset((p, v) for p, v in files.items() if p.startswith(prefix)) or None

        head_files = tree(history[0].tree_id)
        pending = {p for p in wanted if state(head_files, p) is not None}
        found: dict[str, Commit] = {}
        for commit, parent in zip(history, history[1:] + [None]):
            if not pending:
                break
            files, before = tree(commit.tree_id), tree(parent.tree_id) if parent else {}
            if commit.tree_id == (parent.tree_id if parent else None):
                continue
            for path in list(pending):
                if parent is None or state(files, path) != state(before, path):
                    found[path] = commit
                    pending.discard(path)
            if len(trees) > 64:  # bounded memory on long histories: keep only the trees still needed
                keep = {commit.tree_id, parent.tree_id if parent else None}
                for tree_id in [k for k in trees if k not in keep]:
                    del trees[tree_id]
        for path in pending:  # unchanged over the walked window: its oldest commit is the best answer known
            found[path] = history[-1]
    return found
