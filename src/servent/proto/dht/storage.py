"""What other nodes asked us to keep: announced peers and BEP 44 items.

Everything is bounded: a number of info-hashes, peers per info-hash and
items, with the oldest entry evicted first (dicts keep insertion order and a
refresh moves an entry to the end), and expiry after a time-to-live. The
dictionaries are created lazily because most simulated nodes store nothing.
"""

from __future__ import annotations

import random
from itertools import islice


class PeerStore:
    """info-hash -> {compact peer: time announced}."""

    __slots__ = ("_max_hashes", "_max_peers", "_torrents", "_ttl")

    def __init__(self, max_hashes: int, max_peers: int, ttl: float) -> None:
        self._max_hashes = max_hashes
        self._max_peers = max_peers
        self._ttl = ttl
        self._torrents: dict[bytes, dict[bytes, float]] | None = None

    def __len__(self) -> int:
        return len(self._torrents) if self._torrents else 0

    def add(self, info_hash: bytes, compact_peer: bytes, now: float) -> None:
        torrents = self._torrents
        if torrents is None:
            torrents = self._torrents = {}
        peers = torrents.get(info_hash)
        if peers is None:
            if len(torrents) >= self._max_hashes:
                del torrents[next(iter(torrents))]
            peers = torrents[info_hash] = {}
        else:
            peers.pop(compact_peer, None)
        peers[compact_peer] = now
        if len(peers) > self._max_peers:
            del peers[next(iter(peers))]

    def peers(self, info_hash: bytes, limit: int, rng: random.Random) -> list[bytes]:
        """Up to ``limit`` compact peers, the most recently announced first (likeliest alive).

        O(limit), not O(stored): this runs for every ``get_peers`` we answer.
        """
        if not self._torrents:
            return []
        peers = self._torrents.get(info_hash)
        if not peers:
            return []
        if len(peers) <= limit:
            return list(peers)
        return list(islice(reversed(peers), limit))

    def sample_hashes(self, limit: int, rng: random.Random) -> list[bytes]:
        if not self._torrents:
            return []
        hashes = list(self._torrents)
        return hashes if len(hashes) <= limit else rng.sample(hashes, limit)

    def expire(self, now: float) -> None:
        if not self._torrents:
            return
        limit = now - self._ttl
        for info_hash in list(self._torrents):
            peers = self._torrents[info_hash]
            for peer in [peer for peer, seen in peers.items() if seen < limit]:
                del peers[peer]
            if not peers:
                del self._torrents[info_hash]


class StoredItem:
    """One BEP 44 item; ``value`` is the bencoded ``v`` exactly as received."""

    __slots__ = ("public_key", "salt", "seq", "signature", "stored_at", "value")

    def __init__(  # noqa: PLR0917
        self,
        value: bytes,
        now: float,
        public_key: bytes = b"",
        signature: bytes = b"",
        seq: int = 0,
        salt: bytes = b"",
    ) -> None:
        self.value = value
        self.public_key = public_key
        self.signature = signature
        self.seq = seq
        self.salt = salt
        self.stored_at = now

    @property
    def mutable(self) -> bool:
        return bool(self.public_key)


class ItemStore:
    """target -> item, bounded, oldest-stored evicted first."""

    __slots__ = ("_items", "_max_items", "_ttl")

    def __init__(self, max_items: int, ttl: float) -> None:
        self._max_items = max_items
        self._ttl = ttl
        self._items: dict[bytes, StoredItem] | None = None

    def __len__(self) -> int:
        return len(self._items) if self._items else 0

    def get(self, target: bytes) -> StoredItem | None:
        return self._items.get(target) if self._items else None

    def put(self, target: bytes, item: StoredItem) -> None:
        items = self._items
        if items is None:
            items = self._items = {}
        items.pop(target, None)
        if len(items) >= self._max_items:
            del items[next(iter(items))]
        items[target] = item

    def expire(self, now: float) -> None:
        if not self._items:
            return
        limit = now - self._ttl
        for target in [t for t, item in self._items.items() if item.stored_at < limit]:
            del self._items[target]
