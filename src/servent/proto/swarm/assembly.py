"""Piece buffers being filled by blocks, and the unverified bytes they hold.

Why a pool: a fresh buffer per piece costs zeroing and page faults; buffers of
verified pieces are kept for the next ones while the torrent downloads.  The
bytes waiting for verification are bounded: above ``max_unverified`` the core
asks the shell to stop reading (hold-off), below half of it to resume.
"""

from __future__ import annotations

__all__ = ["PieceAssembly"]


class PieceAssembly:
    """Buffers of partly received pieces and the hold-off accounting."""

    __slots__ = ("_spares", "buffers", "held_off", "max_unverified", "unverified")

    def __init__(self, max_unverified: int) -> None:
        self.max_unverified = max_unverified
        self.buffers: dict[int, bytearray] = {}
        self._spares: list[bytearray] = []
        self.unverified = 0
        self.held_off = False

    def buffer(self, index: int, size: int) -> bytearray:
        """The buffer piece ``index`` is assembled in (a spare one if it fits)."""
        buffer = self.buffers.get(index)
        if buffer is None:
            spare = self._spares
            buffer = spare.pop() if spare and len(spare[-1]) == size else bytearray(size)
            self.buffers[index] = buffer
        return buffer

    def take_complete(self, index: int) -> bytearray:
        """Piece ``index`` is complete: its buffer leaves the pool for verification.

        Returns the buffer; :attr:`held_off` turns True if the shell should pause."""
        buffer = self.buffers.pop(index)
        self.unverified += len(buffer)
        return buffer

    def should_hold_off(self) -> bool:
        return not self.held_off and self.unverified > self.max_unverified

    def checked(self, data: bytearray, *, keep: bool) -> bool:
        """A piece left verification; returns True if reading should resume now.

        ``keep``: the buffer may be reused (memory stays near ``max_unverified``)."""
        self.unverified -= len(data)
        if keep and (len(self._spares) + 1) * len(data) <= self.max_unverified:
            self._spares.append(data)
        return self.held_off and self.unverified <= self.max_unverified // 2

    def drop_spares(self) -> None:
        self._spares.clear()
