"""Pieces not started yet, bucketed by ``(priority, availability)`` for the picker.

A bucket per key makes an availability change O(1) and lets picking scan
only the best buckets; a cursor keeps sequential (streaming) scans linear.
Pure data structure: :class:`~servent.proto.picker.PiecePicker` decides
which pieces are candidates and owns the availability counts.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Sequence


class IndexedSet:
    """A set of ints with O(1) add, remove and positional access (for random scans)."""

    __slots__ = ("items", "positions")

    def __init__(self) -> None:
        self.items: list[int] = []
        self.positions: dict[int, int] = {}

    def add(self, value: int) -> None:
        if value not in self.positions:
            self.positions[value] = len(self.items)
            self.items.append(value)

    def remove(self, value: int) -> None:
        position = self.positions.pop(value)
        last = self.items.pop()
        if position < len(self.items):
            self.items[position] = last
            self.positions[last] = position

    def __len__(self) -> int:
        return len(self.items)


class CandidateBuckets:
    """Candidate pieces keyed by ``(priority, availability)``.

    ``key_of`` (index -> key) doubles as the candidate set; the picker reads
    it directly for membership tests.
    """

    __slots__ = ("buckets", "cursor", "key_of")

    def __init__(self) -> None:
        self.buckets: dict[tuple[int, int], IndexedSet] = {}
        self.key_of: dict[int, tuple[int, int]] = {}
        self.cursor = 0  # sequential mode: no candidate below this index

    def add(self, index: int, priority: int, availability: int) -> None:
        if index in self.key_of:
            return
        key = (priority, availability)
        bucket = self.buckets.get(key)
        if bucket is None:
            bucket = self.buckets[key] = IndexedSet()
        bucket.add(index)
        self.key_of[index] = key
        self.cursor = min(self.cursor, index)

    def remove(self, index: int) -> None:
        key = self.key_of.pop(index, None)
        if key is None:
            return
        bucket = self.buckets[key]
        bucket.remove(index)
        if not bucket:
            del self.buckets[key]

    def clear(self) -> None:
        self.buckets.clear()
        self.key_of.clear()

    def shift(self, indices: Iterable[int], delta: int, availability: list[int]) -> None:
        """Add ``delta`` to ``availability`` of ``indices``, moving candidates between buckets.

        Inlined bucket moves: a peer joining or leaving touches every piece it has.
        """
        key_of = self.key_of
        buckets = self.buckets
        for index in indices:
            count = availability[index] + delta
            availability[index] = count
            old = key_of.get(index)
            if old is None:
                continue
            bucket = buckets[old]
            # IndexedSet.remove, inlined
            items, positions = bucket.items, bucket.positions
            position = positions.pop(index)
            last = items.pop()
            if position < len(items):
                items[position] = last
                positions[last] = position
            elif not items:
                del buckets[old]
            new = (old[0], count)
            target = buckets.get(new)
            if target is None:
                target = buckets[new] = IndexedSet()
            # IndexedSet.add, inlined (index is not in the target bucket)
            target.positions[index] = len(target.items)
            target.items.append(index)
            key_of[index] = new

    def rarest(self, rng: random.Random, usable: Callable[[int], bool]) -> int | None:
        """A usable candidate from the best bucket (highest priority, then rarest),
        starting the scan of each bucket at a random position."""
        for key in sorted(self.buckets, key=lambda k: (-k[0], k[1])):
            items = self.buckets[key].items
            size = len(items)
            start = rng.randrange(size)
            for step in range(size):
                index = items[(start + step) % size]
                if usable(index):
                    return index
        return None

    def in_sequence(
        self, num_pieces: int, priority: Sequence[int], usable: Callable[[int], bool]
    ) -> int | None:
        """Lowest-index usable candidate of the highest priority present.

        Scans from a cursor below which no candidate exists, so streaming
        from peers that have the pieces costs O(1) per piece, not O(pieces).
        """
        key_of = self.key_of
        while self.cursor < num_pieces and self.cursor not in key_of:
            self.cursor += 1
        for level in sorted({key[0] for key in self.buckets}, reverse=True):
            for index in range(self.cursor, num_pieces):
                if index in key_of and priority[index] == level and usable(index):
                    return index
        return None
