"""Which live piece to ask which neighbour for (sans-IO): a viewer's scheduler.

Each viewer hears ``have`` announcements from its neighbours and asks for the
pieces of its window (``proto.live.LiveWindow``) it lacks, oldest first (the
player needs them in order), each from the neighbour that has it and is the
least busy, so pieces spread through viewers instead of all coming from the
broadcaster.  A viewer that has nothing yet starts at the newest piece it
hears of (the live edge), never at the start of the broadcast.  Peers are any
hashable keys; time is an argument.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable

from servent.proto.live import LiveWindow


class LiveScheduler:
    """One viewer's view of its neighbours' pieces and its own requests."""

    def __init__(self, window: LiveWindow, *, max_outstanding: int = 4, timeout: float = 3.0):
        self.window = window
        self.max_outstanding = max_outstanding
        self.timeout = timeout
        self._peers: dict[Hashable, set[int]] = {}
        self._outstanding: dict[int, tuple[Hashable, float]] = {}
        self._start: int | None = None  # the edge we joined at: nothing older is asked for

    def add_peer(self, peer: Hashable) -> None:
        self._peers.setdefault(peer, set())

    def remove_peer(self, peer: Hashable) -> None:
        self._peers.pop(peer, None)
        for index, (asked, _) in list(self._outstanding.items()):
            if asked == peer:
                del self._outstanding[index]

    def peer_has(self, peer: Hashable, index: int) -> None:
        pieces = self._peers.get(peer)
        if pieces is not None and self.window.accepts(index):
            pieces.add(index)
            if len(pieces) > 4 * self.window.size:  # bounded: forget what left the window
                low = max(pieces) - self.window.size
                pieces.difference_update([i for i in pieces if i <= low])

    def request_refused(self, peer: Hashable, index: int, *, gone: bool = False) -> None:
        """The peer is too busy (its upload queue is full): ask someone else later;
        ``gone``: it will not send that piece at all (not asked for it again)."""
        asked = self._outstanding.get(index)
        if asked is not None and asked[0] == peer:
            del self._outstanding[index]
        if gone:
            self._peers.get(peer, set()).discard(index)

    def outstanding_to(self, peer: Hashable) -> int:
        """Requests waiting for an answer from ``peer`` (how busy it is for us)."""
        return sum(1 for asked, _ in self._outstanding.values() if asked == peer)

    @property
    def start(self) -> int | None:
        """The index this viewer joined at (None before it heard of any piece)."""
        return self._start

    def lacks(self) -> bool:
        """Whether a piece from the start up to the newest heard of is still missing (an
        end piece that came before the pieces just before it does not end the search)."""
        return bool(self._wanted())

    def piece_received(self, index: int) -> list[int]:
        """A verified piece; returns the indices that left the window (to drop)."""
        self._outstanding.pop(index, None)
        return self.window.add(index)

    def next_requests(
        self, now: float, busy: Callable[[Hashable], int]
    ) -> list[tuple[Hashable, int]]:
        """``(peer, index)`` requests to send now; ``busy(peer)`` ranks the holders."""
        for index, (_, sent) in list(self._outstanding.items()):
            if now - sent > self.timeout or not self.window.accepts(index):
                del self._outstanding[index]
        out: list[tuple[Hashable, int]] = []
        for index in self._wanted():
            if len(self._outstanding) >= self.max_outstanding:
                break
            if index in self._outstanding:
                continue
            holders = [peer for peer, pieces in self._peers.items() if index in pieces]
            if not holders:
                continue
            peer = min(holders, key=busy)
            self._outstanding[index] = (peer, now)
            out.append((peer, index))
        return out

    def _wanted(self) -> list[int]:
        heard = {i for pieces in self._peers.values() for i in pieces}
        if self._start is None:  # joining: start at the live edge, never before
            if not heard:
                return []
            self._start = max(heard)
        edge = self.window.edge
        missing = [] if edge is None else self.window.missing()
        newer = {i for i in heard if edge is None or i > edge}
        return sorted(i for i in set(missing) | newer if i >= self._start)
