"""Fixtures of the mirror tests: a filled source hub and an empty target (SQLite + files each)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from _mirror_helpers import Source, fill_source, sqlite_store

from fmhub.store import Store


@pytest.fixture
def source(tmp_path: Path) -> Iterator[Source]:
    store = sqlite_store(tmp_path / "source")
    yield fill_source(store, tmp_path)
    store.close()


@pytest.fixture
def target(tmp_path: Path) -> Iterator[Store]:
    store = sqlite_store(tmp_path / "target")
    yield store
    store.close()
