"""``fmhub.data.load``: a dataset repo at a pinned commit as a ``datasets.Dataset``/``DatasetDict``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fmhub.client import Hub
from fmhub.constants import settings
from fmhub.errors import InvalidInputError

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
    _check_parquet_rows(folder, repo_id)
    try:
        return datasets.load_dataset(str(folder), split=split, cache_dir=str(settings().home / "cache" / "datasets"))
    except datasets.exceptions.DatasetGenerationError as exc:  # a file datasets cannot read: say which and why
        cause = exc.__cause__ or exc
        raise InvalidInputError(f"dataset {repo_id}@{info.commit.oid[:12]} cannot be loaded: {cause}",
                                hint="re-import it with fmhub data import, which writes files datasets reads") from None


def _check_parquet_rows(folder: Path, repo_id: str) -> None:
    """A Parquet split file without rows stops ``datasets`` with an Arrow error; name the split instead."""
    import pyarrow.parquet as pq

    for path in sorted((folder / "data").glob("*.parquet")):
        if pq.ParquetFile(path).metadata.num_rows == 0:
            split = path.name.split("-", 1)[0]
            raise InvalidInputError(f"split {split!r} of dataset {repo_id} is empty ({path.name} has no rows)",
                                    hint="re-import the dataset with rows in every split, or evaluate another split")
