"""A small thread-safe LRU map for facts that never change once written (commits, tree entries by tree id)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

__all__ = ["ImmutableCache"]

V = TypeVar("V")


class ImmutableCache(Generic[V]):
    """``get(key, load)``: the cached value, or ``load()`` remembered (the least recently used one goes first).

    Only for values a key determines forever (a commit by its oid, a tree's entry by tree id and path), so
    there is nothing to invalidate, across threads or worker processes.
    """

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[Hashable, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, load: Callable[[], V]) -> V:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        value = load()  # outside the lock: loads of different keys do not wait on each other
        with self._lock:
            self._items[key] = value
            if len(self._items) > self._size:
                self._items.popitem(last=False)
        return value
