"""Who may download from us, and which of their requests we take.

The choker (:mod:`servent.proto.choker`) decides the unchoked set; this part
applies its decision to each peer's connection (``Choke``/``Unchoke``, and a
choked peer's queued requests are dropped) and checks requests before they
are queued for the shell's uploader.  Its own state: the choker.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable

from servent.codec.bitfield import Bitfield
from servent.proto.choker import Choker, ChokerConfig, PeerStats
from servent.proto.peerwire import Choke, RejectRequest, Request, Unchoke
from servent.proto.swarm.peer import PeerState

__all__ = ["UploadSlots"]


class UploadSlots:
    """Choking rounds and request admission for one torrent."""

    def __init__(self, *, rng: random.Random, config: ChokerConfig) -> None:
        self.choker = Choker(rng=rng, config=config)

    def has_free_slot(self) -> bool:
        """A newly interested peer need not wait for the next round."""
        slots = self.choker.config.upload_slots
        return slots is None or len(self.choker.unchoked) < slots

    def is_due(self, now: float) -> bool:
        due = self.choker.next_timer()
        return due is None or now >= due

    def run(self, peers: Iterable[PeerState], now: float, *, seeding: bool) -> None:
        """One choking round over ``peers``; the decision goes straight to their connections."""
        peers = list(peers)
        stats = [
            PeerStats(
                peer,
                peer.conn.peer_interested,
                download_rate=peer.down_rate,
                upload_rate=peer.up_rate,
                uploaded=peer.uploaded,
                connected_at=peer.connected_at,
                snubbed=peer.snubbed,
            )
            for peer in peers
        ]
        decision = self.choker.run(stats, now, seeding=seeding)
        for peer in peers:
            conn = peer.conn
            unchoke = peer in decision.unchoke
            if unchoke and conn.am_choking:
                conn.send(Unchoke())
            elif not unchoke and not conn.am_choking:
                peer.uploads.clear()
                conn.send(Choke())

    @staticmethod
    def admit(
        peer: PeerState, request: Request, have: Bitfield, piece_size: Callable[[int], int]
    ) -> str | None:
        """Queue ``request`` for the uploader, or say why the peer must be closed."""
        index = request.index
        if request.begin + request.length > piece_size(index):
            return "request beyond the end of the piece"
        if index not in have:
            if not peer.conn.fast:
                return "request for a piece we do not have"
            peer.conn.send(RejectRequest(index, request.begin, request.length))
            return None
        peer.uploads.append(request)
        return None
