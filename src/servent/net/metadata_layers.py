"""The v2 part of a magnet fetch: piece layers by BEP 52 hash requests.

A mixin of :class:`~servent.net.metadata_fetch.MetadataFetch`, kept apart so
each module has one job: once the info dictionary of a v2-only magnet is
verified, the files longer than one piece still need their piece layers
(not part of the info dictionary) before any piece can be checked.  The
sans-IO :class:`~servent.proto.piece_layer_fetch.PieceLayerCollector` decides
what to ask and verifies the answers against each file's pieces root; this
mixin sends its requests on the fetch's connections and drops liars.
"""

from __future__ import annotations

import asyncio
import logging

from servent.codec.magnet import Magnet
from servent.codec.metainfo.parse import parse_info
from servent.errors import MetainfoError
from servent.net.known_peers import Address
from servent.net.peer_session import PeerSession
from servent.proto.peerwire import Hashes, HashReject
from servent.proto.piece_layer_fetch import PieceLayerCollector

__all__ = ["PieceLayerPhase"]

log = logging.getLogger("servent.net.metadata_fetch")


class PieceLayerPhase:
    """Mixin: the piece-layer phase of :class:`~servent.net.metadata_fetch.MetadataFetch`."""

    magnet: Magnet
    metadata: bytes | None
    piece_layers: dict[bytes, bytes]
    bad: set[Address]
    _done: asyncio.Future[bytes]
    _layers: PieceLayerCollector | None
    _sessions: dict[PeerSession, Address]
    _last_progress: dict[PeerSession, float]

    def _count(self, what: str) -> None:
        raise NotImplementedError

    def _metadata_verified(self, metadata: bytes, now: float) -> None:
        self.metadata = metadata
        if self.magnet.info_hash_v1 is not None:
            self._done.set_result(metadata)  # v1 piece hashes are in the info dictionary
            return
        try:
            collector = PieceLayerCollector(parse_info(metadata))
        except MetainfoError:
            self._done.set_result(metadata)  # the engine reports the invalid torrent
            return
        if collector.done:
            self._done.set_result(metadata)
            return
        self._layers = collector
        for session in list(self._sessions):
            if session.close_reason is None and session.transport is not None:
                self._last_progress[session] = now
                self._request_hashes(session, now)

    def _request_hashes(self, session: PeerSession, now: float) -> None:
        collector = self._layers
        assert collector is not None
        conn = session.conn
        if conn.remote_handshake is None:
            return
        for request in collector.next_requests(session, now):
            try:
                conn.send(request)  # the session writes it (the connection's output hook)
            except ValueError:  # too many hash requests outstanding on this connection
                collector.remove_peer(session)
                break

    def _on_hashes(self, session: PeerSession, event: Hashes | HashReject, now: float) -> None:
        collector = self._layers
        if collector is None:
            return
        collector.receive(session, event)
        self._last_progress[session] = now
        for liar in [s for s in self._sessions if s in collector.bad_peers]:
            if liar.close_reason is None:
                address = self._sessions[liar]
                log.warning(
                    "metadata fetch: %s:%d sent a piece layer that fails its root; dropped",
                    *address,
                )
                self.bad.add(address)
                self._count("bad piece layer")
                liar.abort("sent a piece layer that fails its pieces root")
        if collector.done:
            self.piece_layers = dict(collector.layers)
            assert self.metadata is not None
            log.info("piece layers of %d file(s) verified", len(self.piece_layers))
            self._done.set_result(self.metadata)
            return
        if session.close_reason is None:
            self._request_hashes(session, now)
