"""``fmhub.data.load``: a dataset repo at a pinned commit as a ``datasets.Dataset``/``DatasetDict``."""

from __future__ import annotations

from typing import Any

from fmhub.client import Hub
from fmhub.constants import settings

__all__ = ["load"]


def load(repo_id: str, revision: str | None = None, split: str | None = None, *, hub: Hub | None = None) -> Any:
    """Load a dataset repo (embedded store, or the hub ``FMHUB_ENDPOINT`` names) with ``datasets``.

    The revision is resolved to its commit first, so the rows are exactly that commit's; files are
    downloaded into the snapshot cache keyed by commit (verified by sha256) and Arrow caches are keyed
    by the files' content, so a second load reads nothing from the hub.

    Example:
        >>> from fmhub.data import load
        >>> train = load("acme/bbc-news", revision="v1", split="train")
        >>> train.features["label"].names
        ['business', 'entertainment', 'politics', 'sport', 'tech']
    """
    import datasets

    owned = hub is None
    hub = hub or Hub.open()
    try:
        info = hub.repo_info(repo_id, repo_type="dataset", revision=revision)
        folder = hub.download(repo_id, repo_type="dataset", revision=info.commit.oid,
                              include=["data/*", "README.md"])
    finally:
        if owned:
            hub.close()
    return datasets.load_dataset(str(folder), split=split, cache_dir=str(settings().home / "cache" / "datasets"))
