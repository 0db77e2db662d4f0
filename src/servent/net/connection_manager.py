"""Keeping a torrent's connections useful: give up an idle peer for a fresh candidate.

The dial order itself lives in :class:`~servent.net.known_peers.KnownPeers`
(scored by :mod:`servent.proto.connection_scoring`), and a dropped connection
is replaced at once by the torrent session.  What is left is the case where
the torrent sits at its connection target with peers that send nothing while
untried addresses wait; the decision is the swarm core's
(:class:`~servent.proto.swarm.replacement.IdleReplacement`), this adapter
closes the chosen peer and marks its address down.
"""

from __future__ import annotations

import logging
from typing import Protocol

from servent.net.known_peers import KnownPeers
from servent.net.swarm_peer import SwarmPeer
from servent.proto.swarm.replacement import MIN_AGE, REPLACE_INTERVAL, IdleReplacement

__all__ = ["MIN_AGE", "REPLACE_INTERVAL", "IdlePeerReplacer", "PeerPool"]

log = logging.getLogger(__name__)


class PeerPool(Protocol):
    """What the replacer reads of a torrent (a ``TorrentSession``)."""

    known: KnownPeers

    @property
    def complete(self) -> bool: ...

    @property
    def open_peers(self) -> list[SwarmPeer]: ...


class IdlePeerReplacer(IdleReplacement):
    """Per-torrent policy object, called from the torrent's periodic tick."""

    def tick(self, torrent: PeerPool, now: float, room: int) -> None:
        if not self.is_due(now, room=room, complete=torrent.complete):
            return  # before the scan of due addresses
        victim = self.choose(
            torrent.open_peers, now, room=room, complete=torrent.complete,
            candidates_waiting=torrent.known.has_due(now),
        )  # fmt: skip
        if not isinstance(victim, SwarmPeer):
            return
        log.info("replacing idle peer %s with a fresh candidate", victim.label)
        if victim.dialled is not None:
            torrent.known.penalise(victim.dialled, "idle, replaced")
        victim.closing = reason = "idle: replaced by another candidate"
        victim.session.close(reason)
