"""The bounded least-recently-used lookup behind the measures' caches (tokens, window plans)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import TypeVar

V = TypeVar("V")


def lru_get(cache: OrderedDict, key: Hashable, make: Callable[[], V], limit: int) -> V:
    """``cache[key]``, made by ``make()`` on a miss; beyond ``limit`` entries the least recently
    used are dropped."""
    value = cache.get(key)
    if value is None:
        value = cache[key] = make()
        while len(cache) > limit:
            cache.popitem(last=False)
    else:
        cache.move_to_end(key)
    return value
