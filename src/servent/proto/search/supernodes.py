"""Who is a supernode, and which supernodes are responsible for a keyword.

:func:`decide_role` is the ``supernode = auto|on|off`` rule; a
:class:`SupernodeView` is what a node knows of the supernodes (bounded),
ordered by XOR distance of their positions to a key (Kad's metric).
"""

from __future__ import annotations

import heapq
from collections.abc import Hashable, Iterator
from typing import Generic, TypeVar

__all__ = [
    "LEAF",
    "RESPONSIBLE",
    "SUPERNODE",
    "SUPERNODE_SETTINGS",
    "SupernodeView",
    "decide_role",
]

SUPERNODE = "supernode"
LEAF = "leaf"
SUPERNODE_SETTINGS = ("auto", "on", "off")
#: Up this long (and reachable) before ``auto`` makes a node a supernode.
UPTIME_THRESHOLD = 1800.0
#: Supernodes responsible for one keyword key.
RESPONSIBLE = 4
#: Supernodes asked for one query: the responsible ones and two more, so a query still
#: reaches the holders while departed supernodes linger in views.
QUERY_FANOUT = RESPONSIBLE + 2
MAX_KNOWN = 1000
MAX_FAILURES = 2

Handle = TypeVar("Handle", bound=Hashable)


def decide_role(setting: str, *, reachable: bool, uptime: float) -> str:
    """``on``/``off`` force the role; ``auto`` wants reachability and 30 min of uptime."""
    if setting == "on":
        return SUPERNODE
    if setting == "off":
        return LEAF
    if setting != "auto":
        raise ValueError(f"supernode must be one of {SUPERNODE_SETTINGS}, not {setting!r}")
    return SUPERNODE if reachable and uptime >= UPTIME_THRESHOLD else LEAF


class SupernodeView(Generic[Handle]):
    """Known supernodes by handle (a key, or an index in a simulator) with their position."""

    def __init__(self, *, capacity: int = MAX_KNOWN) -> None:
        self.capacity = capacity
        self._positions: dict[Handle, int] = {}
        self._failures: dict[Handle, int] = {}
        self._cache: dict[int, list[Handle]] = {}

    def __len__(self) -> int:
        return len(self._positions)

    def __contains__(self, handle: object) -> bool:
        return handle in self._positions

    def __iter__(self) -> Iterator[Handle]:
        return iter(self._positions)

    def add(self, handle: Handle, position: bytes | int) -> bool:
        """Know one more supernode (False when full or known already)."""
        if handle in self._positions or len(self._positions) >= self.capacity:
            return False
        value = position if isinstance(position, int) else int.from_bytes(position, "big")
        self._positions[handle] = value
        self._cache.clear()
        return True

    def remove(self, handle: Handle) -> bool:
        if self._positions.pop(handle, None) is None:
            return False
        self._failures.pop(handle, None)
        self._cache.clear()
        return True

    def failed(self, handle: Handle) -> bool:
        """One more failure in a row; True when it made the supernode go."""
        count = self._failures.get(handle, 0) + 1
        if count >= MAX_FAILURES:
            return self.remove(handle)
        self._failures[handle] = count
        return False

    def succeeded(self, handle: Handle) -> None:
        self._failures.pop(handle, None)

    def responsible(self, key: bytes | int, count: int = RESPONSIBLE) -> list[Handle]:
        """The ``count`` supernodes closest to ``key`` by XOR distance, closest first."""
        target = key if isinstance(key, int) else int.from_bytes(key, "big")
        cached = self._cache.get(target)
        if cached is not None and len(cached) >= count:
            return cached[:count]
        closest = heapq.nsmallest(count, self._positions.items(), key=lambda item: item[1] ^ target)
        found = [handle for handle, _ in closest]
        if len(self._cache) > 50_000:
            self._cache.clear()
        self._cache[target] = found
        return found
