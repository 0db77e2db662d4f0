"""Keeping a torrent's connections useful: give up an idle peer for a fresh candidate.

The dial order itself lives in :class:`~servent.net.known_peers.KnownPeers`
(scored by :mod:`servent.proto.connection_scoring`), and a dropped connection
is replaced at once by the torrent session.  What is left is the case where
the torrent sits at its connection target with peers that send nothing while
untried addresses wait: then, at most once per ``REPLACE_INTERVAL``, the
idlest connection is closed so the next candidate gets its slot.
"""

from __future__ import annotations

import logging
from typing import Protocol

from servent.net.known_peers import KnownPeers
from servent.net.swarm_peer import SwarmPeer
from servent.proto.connection_scoring import ConnectedPeerView, peer_to_replace

__all__ = ["IdlePeerReplacer"]

log = logging.getLogger(__name__)

#: Seconds between two replacements (so a torrent never churns all its peers).
REPLACE_INTERVAL = 10.0
#: A peer gets this long to start delivering before it may be replaced.
MIN_AGE = 30.0


class PeerPool(Protocol):
    """What the replacer reads of a torrent (a ``TorrentSession``)."""

    known: KnownPeers

    @property
    def complete(self) -> bool: ...

    @property
    def open_peers(self) -> list[SwarmPeer]: ...


class IdlePeerReplacer:
    """Per-torrent policy object, called from the torrent's periodic tick."""

    def __init__(self, *, interval: float = REPLACE_INTERVAL, min_age: float = MIN_AGE) -> None:
        self.interval = interval
        self.min_age = min_age
        self.replaced = 0
        self._last = float("-inf")

    def tick(self, torrent: PeerPool, now: float, room: int) -> None:
        if room > 0 or torrent.complete or now - self._last < self.interval:
            return
        if not torrent.known.has_due(now):
            return
        views = [
            ConnectedPeerView(
                key=peer,
                connected_at=peer.connected_at,
                download_rate=peer.down_rate,
                interesting=peer.session.conn.am_interested,
                unchoked_by_us=not peer.session.conn.am_choking,
            )
            for peer in torrent.open_peers
        ]
        victim = peer_to_replace(views, now, min_age=self.min_age)
        if victim is None:
            return
        self._last = now
        self.replaced += 1
        peer = next(p for p in torrent.open_peers if p is victim)
        log.info("replacing idle peer %s with a fresh candidate", peer.label)
        if peer.dialled is not None:
            torrent.known.penalise(peer.dialled, "idle, replaced")
        peer.session.close("idle: replaced by another candidate")
