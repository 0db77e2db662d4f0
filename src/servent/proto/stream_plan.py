"""Which pieces a stream reader needs, and by when: byte ranges to piece deadlines.

A player reading a file of a torrent asks for bytes at an offset; the pieces
under those bytes are due now, and a read-ahead window after them is due a
little later (a playing stream reads on), so the picker fetches them in order
while the rest of the torrent stays rarest-first.  Pure arithmetic, no clock:
the caller passes ``now``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

DEFAULT_WINDOW = 8 * 1024 * 1024
#: Seconds between the deadlines of consecutive window pieces.
WINDOW_STEP = 0.25


@dataclass(frozen=True, slots=True)
class FileSpan:
    """One file in piece space: its first byte there and its length."""

    offset: int
    length: int
    piece_length: int
    num_pieces: int

    def pieces(self, start: int, length: int) -> range:
        """Indices of the pieces holding file bytes ``[start, start + length)``."""
        if length <= 0 or start < 0 or start >= self.length:
            return range(0)
        end = min(start + length, self.length)
        first = (self.offset + start) // self.piece_length
        last = (self.offset + end - 1) // self.piece_length
        return range(first, min(last, self.num_pieces - 1) + 1)

    def ends(self, length: int) -> list[int]:
        """Pieces of the first and last ``length`` bytes: a container's header and index."""
        head = list(self.pieces(0, length))
        tail = list(self.pieces(max(self.length - length, 0), length))
        return sorted(set(head + tail))


def merge_deadlines(wanted: Iterable[dict[int, float]]) -> dict[int, float]:
    """Several readers' deadlines as one: each piece by the earliest time any wants it."""
    merged: dict[int, float] = {}
    for deadlines in wanted:
        for index, when in deadlines.items():
            if index not in merged or when < merged[index]:
                merged[index] = when
    return merged


def read_deadlines(
    span: FileSpan, start: int, length: int, now: float, window: int = DEFAULT_WINDOW
) -> dict[int, float]:
    """``piece -> deadline`` for a read at ``start``: the read now, then the window after it."""
    needed = span.pieces(start, length)
    deadlines = {index: now for index in needed}
    ahead = span.pieces(start + max(length, 1), window)
    for step, index in enumerate(ahead, start=1):
        deadlines.setdefault(index, now + step * WINDOW_STEP)
    return deadlines
