"""Merging answers to one query, and keeping score of who answers well.

Results are de-duplicated by info-hash (node key for people), count their
distinct publishers as sources, and rank by match quality then sources.
An answer whose signature fails, that has expired or that does not match the
query counts against the node that sent it (``docs/search.md`` §7).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field

from servent.proto.search.entry import PERSON, SearchEntry
from servent.proto.search.words import match_quality

__all__ = ["AnswererScores", "QueryResults", "SearchResult"]

BAD_RESULT = -1.0
GOOD_RESULT = 0.1
MAX_SCORE = 10.0
DROP_SCORE = -5.0
BLOCK_TIME = 3600.0


@dataclass(slots=True)
class SearchResult:
    """One torrent (or person) found, with everyone who said they have it."""

    key: bytes
    entry: SearchEntry
    quality: float
    publishers: dict[bytes, bytes] = field(default_factory=dict)  # key -> compact address

    @property
    def sources(self) -> int:
        return len(self.publishers)

    @property
    def rank(self) -> float:
        return self.quality + 0.1 * math.log1p(self.sources)


class QueryResults:
    """The merged answers to one query, in rank order; new ones reported as they come."""

    def __init__(
        self,
        query: str,
        *,
        people: bool = False,
        limit: int = 50,
        verify: Callable[[SearchEntry], bool],
    ) -> None:
        self.query = query
        self.people = people
        self.limit = limit
        self._verify = verify
        self._results: dict[bytes, SearchResult] = {}

    def add(self, entries: Iterable[SearchEntry], now: float) -> tuple[list[SearchResult], int]:
        """Merge one batch: (results new or with a new source, how many entries were bad)."""
        changed: dict[bytes, SearchResult] = {}
        bad = 0
        for entry in entries:
            result = self._merge(entry, now)
            if result is None:
                bad += 1
            elif isinstance(result, SearchResult):
                changed[result.key] = result
        return list(changed.values()), bad

    def _merge(self, entry: SearchEntry, now: float) -> SearchResult | bool | None:
        if (entry.kind == PERSON) != self.people or entry.expires <= now:
            return None
        quality = match_quality(self.query, entry.texts)
        if quality <= 0 or not self._verify(entry):
            return None
        key = entry.publisher if self.people else entry.info_hash
        result = self._results.get(key)
        if result is None:
            if len(self._results) >= self.limit:
                return False
            result = SearchResult(key, entry, quality)
            self._results[key] = result
        elif entry.publisher in result.publishers:
            return False
        result.publishers[entry.publisher] = entry.address
        return result

    def ranked(self) -> list[SearchResult]:
        return sorted(self._results.values(), key=lambda r: (-r.rank, r.entry.name))

    def __len__(self) -> int:
        return len(self._results)

    def __contains__(self, key: object) -> bool:
        return key in self._results


class AnswererScores:
    """A score per answering node: bad answers push it down until it is not asked."""

    def __init__(self) -> None:
        self._scores: dict[Hashable, float] = {}
        self._blocked_until: dict[Hashable, float] = {}

    def record(self, node: Hashable, good: int, bad: int, now: float) -> None:
        score = self._scores.get(node, 0.0) + good * GOOD_RESULT + bad * BAD_RESULT
        score = min(score, MAX_SCORE)
        if score <= DROP_SCORE:
            self._blocked_until[node] = now + BLOCK_TIME
            score = 0.0
        self._scores[node] = score

    def score(self, node: Hashable) -> float:
        return self._scores.get(node, 0.0)

    def blocked(self, node: Hashable, now: float) -> bool:
        until = self._blocked_until.get(node)
        if until is None:
            return False
        if until <= now:
            del self._blocked_until[node]
            return False
        return True
