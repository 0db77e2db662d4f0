"""What reorders the picker besides rarity: streaming deadlines and per-file priorities."""

from __future__ import annotations

from collections.abc import Callable, Iterable


class PieceDeadlines:
    """Pieces a stream needs by a given time (the caller's clock), earliest first.

    ``urgency``: a piece due within this many seconds may be requested from
    several peers at once and may displace a peer's background requests.
    """

    __slots__ = ("due", "urgency")

    def __init__(self, urgency: float) -> None:
        self.due: dict[int, float] = {}
        self.urgency = urgency

    def __len__(self) -> int:
        return len(self.due)

    def earliest_first(self) -> list[int]:
        return sorted(self.due, key=self.due.__getitem__)

    def is_urgent(self, index: int, now: float | None) -> bool:
        return now is not None and self.due[index] - now <= self.urgency

    def any_urgent(self, now: float, waiting: Callable[[int], bool]) -> bool:
        """Whether a piece due within ``urgency`` is ``waiting`` (e.g. not started, peer has it)."""
        urgency = self.urgency
        return any(when - now <= urgency and waiting(i) for i, when in self.due.items())


def priorities_from_files(
    file_ranges: Iterable[tuple[int, int, int]], num_pieces: int, piece_length: int
) -> list[int]:
    """Per-piece priorities from ``(offset, length, priority)`` of each file in piece space.

    A piece shared by several files takes the highest priority among them,
    so a wanted file's boundary pieces are still fetched.
    """
    result = [0] * num_pieces
    for offset, length, priority in file_ranges:
        if length <= 0:
            continue
        first = offset // piece_length
        last = min((offset + length - 1) // piece_length, num_pieces - 1)
        for index in range(first, last + 1):
            result[index] = max(result[index], priority)
    return result
