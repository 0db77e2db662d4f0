"""Which idle connection to give up for a fresh candidate, and when (sans-IO).

When a torrent sits at its connection target with peers that send nothing
while untried addresses wait, at most once per ``interval`` the idlest
connection (:func:`~servent.proto.connection_scoring.peer_to_replace`) is
closed so the next candidate gets its slot.  The shell asks :meth:`choose`
from its tick and closes what it returns.
"""

from __future__ import annotations

from collections.abc import Iterable

from servent.proto.connection_scoring import ConnectedPeerView, peer_to_replace
from servent.proto.swarm.peer import PeerState

__all__ = ["MIN_AGE", "REPLACE_INTERVAL", "IdleReplacement"]

#: Seconds between two replacements (so a torrent never churns all its peers).
REPLACE_INTERVAL = 10.0
#: A peer gets this long to start delivering before it may be replaced.
MIN_AGE = 30.0


class IdleReplacement:
    """The replacement policy of one torrent; its state: when it last replaced, how often."""

    def __init__(self, *, interval: float = REPLACE_INTERVAL, min_age: float = MIN_AGE) -> None:
        self.interval = interval
        self.min_age = min_age
        self.replaced = 0
        self._last = float("-inf")

    def is_due(self, now: float, *, room: int, complete: bool) -> bool:
        """Whether a replacement may happen now (before asking for waiting candidates)."""
        return room <= 0 and not complete and now - self._last >= self.interval

    def choose(
        self,
        peers: Iterable[PeerState],
        now: float,
        *,
        room: int,
        candidates_waiting: bool,
        complete: bool,
    ) -> PeerState | None:
        """The open peer to close now for a waiting candidate, or None."""
        if not candidates_waiting or not self.is_due(now, room=room, complete=complete):
            return None
        open_peers = [peer for peer in peers if peer.open and peer.closing is None]
        views = [
            ConnectedPeerView(
                key=peer,
                connected_at=peer.connected_at,
                download_rate=peer.down_rate,
                interesting=peer.conn.am_interested,
                unchoked_by_us=not peer.conn.am_choking,
            )
            for peer in open_peers
        ]
        victim = peer_to_replace(views, now, min_age=self.min_age)
        if victim is None:
            return None
        self._last = now
        self.replaced += 1
        return next(peer for peer in open_peers if peer is victim)
