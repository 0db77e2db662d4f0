"""Verified payload kept in memory for uploads, in chunks of at most 1 MiB.

Why chunks and not whole pieces: a peer asks for 16 KiB blocks, and a read
per block (a thread-pool round trip each) costs far more than the block is
worth, so blocks are served from bigger reads.  Whole pieces worked for
small pieces, but large torrents use 4-16 MiB pieces, which a cache of a few
MiB cannot hold: every block was then read on its own and a seeder needed
about 9 CPU seconds per GiB instead of about 1.2 (``bench.transfer
--piece-kib 4096``).  A chunk is aligned to ``chunk`` bytes within its piece,
so the 16 KiB-aligned blocks of a request never straddle two chunks.

Chunks are immutable ``bytes``, so a view handed out stays valid after the
chunk is evicted.  Least recently used chunks go first.
"""

from __future__ import annotations

from collections import OrderedDict

__all__ = ["READ_CHUNK", "ReadCache"]

#: Largest unit read from disk and kept for uploads.
READ_CHUNK = 1024 * 1024


class ReadCache:
    """An LRU of ``(piece, chunk start) -> bytes`` bounded to ``limit`` bytes."""

    __slots__ = ("_chunks", "chunk", "limit", "size")

    def __init__(self, limit: int, chunk: int = READ_CHUNK) -> None:
        if chunk <= 0:
            raise ValueError("chunk must be positive")
        self.limit = limit
        self.chunk = chunk
        self.size = 0
        self._chunks: OrderedDict[tuple[int, int], bytes] = OrderedDict()

    def chunk_span(self, piece_size: int, offset: int) -> tuple[int, int]:
        """``(start, length)`` of the chunk of a piece of ``piece_size`` holding ``offset``."""
        start = offset - offset % self.chunk
        return start, min(self.chunk, piece_size - start)

    def cacheable(self, length: int) -> bool:
        """Whether a chunk of ``length`` bytes is worth keeping (leaves room for others)."""
        return length > 0 and length * 4 <= self.limit

    def view(self, index: int, offset: int, length: int) -> memoryview | None:
        """The block as a view of its cached chunk, or ``None`` if not (wholly) cached."""
        if length <= 0 or offset < 0:
            return None
        start = offset - offset % self.chunk
        data = self._chunks.get((index, start))
        if data is None or offset + length > start + len(data):
            return None
        self._chunks.move_to_end((index, start))
        return memoryview(data)[offset - start : offset - start + length]

    def put(self, index: int, start: int, data: bytes) -> None:
        """Keep a chunk just read, evicting the least recently used ones."""
        key = (index, start)
        old = self._chunks.pop(key, None)
        if old is not None:
            self.size -= len(old)
        self._chunks[key] = data
        self.size += len(data)
        while self.size > self.limit and self._chunks:
            _, dropped = self._chunks.popitem(last=False)
            self.size -= len(dropped)

    def clear(self) -> None:
        self._chunks.clear()
        self.size = 0

    def __len__(self) -> int:
        return len(self._chunks)
