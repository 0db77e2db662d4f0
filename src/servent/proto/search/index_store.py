"""The keyword index a supernode keeps: signed entries by keyword, bounded, expiring.

Bounds (``docs/search.md`` §4): one entry per ``(publisher, kind, thing)``,
at most ``per_publisher`` live entries per publisher and ``capacity`` in all
(the soonest to expire make room). Signatures are checked by the caller
before :meth:`KeywordIndexStore.store`; freshness is checked here.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass

from servent.proto.search.entry import (
    PERSON,
    SearchEntry,
    SearchProtocolError,
    check_fresh,
)
from servent.proto.search.words import keywords, match_quality, rarest_keyword

__all__ = ["IndexStatistics", "KeywordIndexStore"]

PER_PUBLISHER = 2_000
#: Publishers of one torrent in one answer (the querier counts sources from them).
PUBLISHERS_PER_ANSWER = 4
CAPACITY = 200_000

Identity = tuple[bytes, bytes, bytes]


@dataclass(slots=True)
class IndexStatistics:
    stored: int = 0
    refused: int = 0
    expired: int = 0
    evicted: int = 0


class KeywordIndexStore:
    """Entries by keyword; :meth:`lookup` filters a whole query against them."""

    def __init__(self, *, per_publisher: int = PER_PUBLISHER, capacity: int = CAPACITY) -> None:
        self.per_publisher = per_publisher
        self.capacity = capacity
        self._entries: dict[Identity, SearchEntry] = {}
        self._by_keyword: dict[str, dict[Identity, SearchEntry]] = {}
        self._per_publisher: dict[bytes, int] = {}
        self._expiry: list[tuple[int, Identity]] = []
        self.statistics = IndexStatistics()

    def __len__(self) -> int:
        return len(self._entries)

    def store(self, entry: SearchEntry, now: float) -> bool:
        """Keep ``entry`` (replacing the publisher's older one); False when refused."""
        try:
            check_fresh(entry, now)
        except SearchProtocolError:
            self.statistics.refused += 1
            return False
        identity = entry.identity
        old = self._entries.get(identity)
        if old is None and self._per_publisher.get(entry.publisher, 0) >= self.per_publisher:
            self.statistics.refused += 1
            return False
        if old is not None:
            if old.expires >= entry.expires:
                return True  # what we hold is as new (a copy from another registrar)
            self._unlink(identity, old)
        elif len(self._entries) >= self.capacity:
            self.expire(now)
            if len(self._entries) >= self.capacity:
                self._evict_soonest()
        self._entries[identity] = entry
        self._per_publisher[entry.publisher] = self._per_publisher.get(entry.publisher, 0) + 1
        for keyword in keywords(entry.texts):
            self._by_keyword.setdefault(keyword, {})[identity] = entry
        heapq.heappush(self._expiry, (entry.expires, identity))
        self.statistics.stored += 1
        return True

    def store_many(self, entries: Iterable[SearchEntry], now: float) -> tuple[int, int]:
        stored = refused = 0
        for entry in entries:
            if self.store(entry, now):
                stored += 1
            else:
                refused += 1
        return stored, refused

    def _unlink(self, identity: Identity, entry: SearchEntry) -> None:
        del self._entries[identity]
        left = self._per_publisher[entry.publisher] - 1
        if left:
            self._per_publisher[entry.publisher] = left
        else:
            del self._per_publisher[entry.publisher]
        for keyword in keywords(entry.texts):
            bucket = self._by_keyword.get(keyword)
            if bucket is not None:
                bucket.pop(identity, None)
                if not bucket:
                    del self._by_keyword[keyword]

    def expire(self, now: float) -> int:
        """Drop entries whose time is up; how many went."""
        gone = 0
        while self._expiry and self._expiry[0][0] <= now:
            expires, identity = heapq.heappop(self._expiry)
            entry = self._entries.get(identity)
            if entry is not None and entry.expires == expires:
                self._unlink(identity, entry)
                gone += 1
        self.statistics.expired += gone
        return gone

    def _evict_soonest(self) -> None:
        while self._expiry:
            expires, identity = heapq.heappop(self._expiry)
            entry = self._entries.get(identity)
            if entry is not None and entry.expires == expires:
                self._unlink(identity, entry)
                self.statistics.evicted += 1
                return

    def entries(self) -> Iterable[SearchEntry]:
        return self._entries.values()

    def buckets(self) -> list[tuple[str, list[SearchEntry]]]:
        """Every keyword with its entries (a copy: the store may change meanwhile)."""
        return [(word, list(bucket.values())) for word, bucket in self._by_keyword.items()]

    def publisher_count(self, publisher: bytes) -> int:
        return self._per_publisher.get(publisher, 0)

    def lookup(
        self, query: str, now: float, *, people: bool = False, limit: int = 50
    ) -> list[SearchEntry]:
        """Live entries under the query's rarest keyword that match all of its words."""
        rarest = rarest_keyword(query)
        if rarest is None:
            return []
        bucket = self._by_keyword.get(rarest, {})
        ranked: list[tuple[float, SearchEntry]] = []
        for entry in bucket.values():
            if entry.expires <= now or (entry.kind == PERSON) != people:
                continue
            quality = match_quality(query, entry.texts, whole=rarest)
            if quality > 0:
                ranked.append((quality, entry))
        ranked.sort(key=lambda pair: -pair[0])
        return _distinct(ranked, limit)


def _distinct(ranked: list[tuple[float, SearchEntry]], limit: int) -> list[SearchEntry]:
    """Up to ``limit`` distinct torrents (people), each with at most a few publishers:
    a popular torrent's many copies must not crowd out rarer matches."""
    answer: list[SearchEntry] = []
    copies: dict[bytes, int] = {}
    for _, entry in ranked:
        thing = entry.info_hash or entry.publisher
        seen = copies.get(thing, 0)
        if seen >= PUBLISHERS_PER_ANSWER or (not seen and len(copies) >= limit):
            continue
        copies[thing] = seen + 1
        answer.append(entry)
    return answer
