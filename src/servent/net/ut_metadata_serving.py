"""``ut_metadata`` (BEP 9) inside a running torrent: serving the info dictionary.

Answers metadata requests from the sans-IO
:class:`~servent.proto.metadata_exchange.MetadataServer`.  An endless stream
of requests costs the peer its connection, with one warning in the log.
(Fetching metadata for a magnet is :mod:`servent.net.metadata_fetch`.)
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING

from servent.codec.bencode import BValue
from servent.errors import ExtensionNotSupportedError, MetadataExchangeError
from servent.net.extension_points import PeerExtension, TorrentContext, peer_extension
from servent.proto.metadata_exchange import (
    MSG_REQUEST,
    PIECE_SIZE,
    MetadataServer,
    decode_message,
    encode_reject,
)
from servent.proto.session_extensions import UT_METADATA

if TYPE_CHECKING:
    from servent.net.swarm_peer import SwarmPeer

__all__ = ["MetadataServing"]

log = logging.getLogger("servent.net.peer_extensions")

#: Metadata pieces served per connection before further requests are refused:
#: a peer needs each piece once; a few retries are fair, an endless loop is not.
METADATA_REQUEST_ALLOWANCE = 4
#: Refused metadata requests tolerated before the peer is dropped.
METADATA_REJECT_ALLOWANCE = 64


@peer_extension(UT_METADATA, local_id=2)  # libtorrent's choice of id; any would do
class MetadataServing(PeerExtension):
    """Serves the torrent's info dictionary in 16 KiB pieces."""

    def __init__(self, torrent: TorrentContext) -> None:
        self.metadata = MetadataServer(torrent.info_bytes)
        self._pieces = max(1, -(-len(torrent.info_bytes) // PIECE_SIZE))
        self._served: dict[SwarmPeer, int] = {}
        self._refused: dict[SwarmPeer, int] = {}
        #: Metadata pieces sent to peers, in total (for statistics and tests).
        self.pieces_served = 0

    def handshake_fields(self) -> Mapping[str, BValue]:
        return {"metadata_size": self.metadata.metadata_size}

    def on_message(self, peer: SwarmPeer, payload: bytes, now: float) -> None:
        session = peer.session
        try:
            reply = self._answer(peer, payload)
        except MetadataExchangeError as exc:
            log.warning("peer %s: bad ut_metadata message (%s); dropping it", peer.label, exc)
            session.close(f"bad ut_metadata message: {exc}")
            return
        if reply is None:
            return
        try:
            session.conn.send_extension(UT_METADATA, reply)
        except ExtensionNotSupportedError:
            log.info("peer %s asks for metadata but announced no ut_metadata id", peer.label)
            session.close("ut_metadata request without ut_metadata in its handshake")

    def _answer(self, peer: SwarmPeer, payload: bytes) -> bytes | None:
        message = decode_message(payload)
        if message.msg_type != MSG_REQUEST:
            return None  # data/reject for a fetch we never started: ignore
        served = self._served.get(peer, 0)
        if served >= METADATA_REQUEST_ALLOWANCE * self._pieces:
            refused = self._refused.get(peer, 0) + 1
            self._refused[peer] = refused
            if refused > METADATA_REJECT_ALLOWANCE:
                raise MetadataExchangeError(f"ut_metadata request flood ({served} served)")
            return encode_reject(message.piece)
        reply = self.metadata.handle(payload)
        self._served[peer] = served + 1
        self.pieces_served += 1
        return reply

    def peer_closed(self, peer: SwarmPeer) -> None:
        self._served.pop(peer, None)
        self._refused.pop(peer, None)
