"""Which blocks to request from a peer, and how many: the request filler.

A peer's pipeline is topped up to the depth its measured rate and latency
call for (:mod:`servent.proto.pipeline`), from the picker (rarest first,
endgame).  A peer on parole (it helped deliver a piece that failed its hash)
fetches one whole piece alone, so a bad piece names it.  Choked peers are
asked only for their allowed-fast pieces (BEP 6).
"""

from __future__ import annotations

from servent.codec.bitfield import Bitfield
from servent.proto.peerwire import ConnectionState
from servent.proto.picker import PiecePicker
from servent.proto.pipeline import top_up
from servent.proto.swarm.peer import PeerState
from servent.proto.swarm.provenance import Provenance

__all__ = ["RequestFiller"]


class RequestFiller:
    """Tops up request pipelines (state: none of its own beyond what it composes)."""

    __slots__ = ("_have", "_picker", "_provenance")

    def __init__(self, picker: PiecePicker, provenance: Provenance, have: Bitfield) -> None:
        self._picker = picker
        self._provenance = provenance
        self._have = have

    def fill(self, peer: PeerState, now: float) -> None:
        conn = peer.conn
        if not conn.am_interested or conn.state is not ConnectionState.OPEN:
            return
        allowed: set[int] | None = None
        if conn.peer_choking:
            if not (conn.fast and conn.allowed_fast_received):
                return
            allowed = conn.allowed_fast_received
        depth = 1 if peer.snubbed else peer.pipeline.depth(now)
        depth = min(depth, conn.max_outstanding_requests)
        want = top_up(depth, conn.outstanding_count)
        if want <= 0:
            return
        provenance = self._provenance
        if provenance.parole and provenance.on_parole(peer.identity):
            requests = self._pick_on_parole(peer, want)
        else:
            requests = self._picker.pick_blocks(peer, want, allowed=allowed, now=now)
        if requests:
            # When each was sent is kept by the connection, which hands it back with the block.
            conn.send_request_keys(requests)

    def _pick_on_parole(self, peer: PeerState, want: int) -> list[tuple[int, int, int]]:
        """A suspect peer fetches one whole piece alone, so a bad piece names it."""
        picker = self._picker
        current = peer.parole_piece
        partial = set(picker.partial_pieces())
        if current is not None and current in partial:
            return []  # still busy with its piece
        have = self._have
        candidates = range(len(peer.pieces)) if peer.has_all else peer.pieces
        for index in candidates:
            if index in have or index in partial or picker.priority(index) <= 0:
                continue
            blocks = picker.blocks_in_piece(index)
            requests = picker.pick_blocks(peer, max(blocks, want), allowed=[index])
            if requests:
                peer.parole_piece = index
                return requests
        return []
