"""The peer wire protocol (BEP 3, 6, 10, 52) as a sans-IO connection.

Usage by a driver (the asyncio session owns the socket and the clock)::

    from servent.proto.peerwire import (
        ExtensionRegistry, PeerConnection, Interested, Piece, Request, Unchoke,
    )

    registry = ExtensionRegistry()
    registry.register("ut_metadata")
    conn = PeerConnection(peer_id=my_id, info_hash=metainfo.wire_info_hash,
                          info_hash_v2=metainfo.info_hash_v2, num_pieces=n,
                          initiator=True, extensions=registry, now=loop.time())
    sock.write(conn.data_to_send())             # our handshake
    ...
    conn.receive_data(chunk, now=loop.time())   # b"" when the peer closed
    while (event := conn.next_event()) is not None:
        match event:
            case HandshakeReceived():
                conn.send_extension_handshake({"v": "servent 0.1"})
                conn.send(HaveBitfield(bits))   # or HaveAll() / HaveNone() with conn.fast
                conn.send(Interested())
            case Unchoke():
                conn.send(Request(0, 0, 16384))
            case Piece(index=i, begin=b, block=data):
                ...                              # data is bytes, copied once
            case Request() as req:               # only requests we must serve arrive
                ...; conn.send(Piece(req.index, req.begin, data))
    sock.write(conn.data_to_send())
    # timers: sleep until conn.next_timer(), then conn.handle_timer(now)

Protocol violations raise :class:`~servent.errors.PeerWireError` subclasses
from ``receive_data``/``next_event``: drop the socket (ban on bad data).
For an incoming connection on a multi-torrent listener create
``PeerConnection(info_hash=None, initiator=False, ...)``; after
:class:`HandshakeReceived` call ``conn.accept(info_hash, now=...)``.
"""

from __future__ import annotations

from servent.proto.peerwire.config import ConnectionConfig, ConnectionState
from servent.proto.peerwire.connection import BlockSink, PeerConnection
from servent.proto.peerwire.events import (
    BlocksReceived,
    ConnectionTimedOut,
    Event,
    ExtensionHandshakeReceived,
    ExtensionMessage,
    HandshakeReceived,
    ReceivedBlock,
    RequestsDropped,
    Snubbed,
)
from servent.proto.peerwire.extensions import (
    ExtensionHandshake,
    ExtensionRegistry,
    parse_extension_handshake,
)
from servent.proto.peerwire.fast import allowed_fast_set
from servent.proto.peerwire.handshake import Handshake, aria2_info_hash, parse_handshake
from servent.proto.peerwire.messages import (
    AllowedFast,
    Cancel,
    Choke,
    Extended,
    Hashes,
    HashReject,
    HashRequest,
    Have,
    HaveAll,
    HaveBitfield,
    HaveNone,
    Interested,
    KeepAlive,
    Message,
    NotInterested,
    Piece,
    Port,
    RejectRequest,
    Request,
    SuggestPiece,
    Unchoke,
    UnknownMessage,
    bitfield_from_indices,
    bitfield_indices,
    check_bitfield,
    decode_message,
    encode_message,
)
from servent.proto.peerwire.piece_run import BlockTaker

__all__ = [
    "AllowedFast",
    "BlockSink",
    "BlockTaker",
    "BlocksReceived",
    "Cancel",
    "Choke",
    "ConnectionConfig",
    "ConnectionState",
    "ConnectionTimedOut",
    "Event",
    "Extended",
    "ExtensionHandshake",
    "ExtensionHandshakeReceived",
    "ExtensionMessage",
    "ExtensionRegistry",
    "Handshake",
    "HandshakeReceived",
    "HashReject",
    "HashRequest",
    "Hashes",
    "Have",
    "HaveAll",
    "HaveBitfield",
    "HaveNone",
    "Interested",
    "KeepAlive",
    "Message",
    "NotInterested",
    "PeerConnection",
    "Piece",
    "Port",
    "ReceivedBlock",
    "RejectRequest",
    "Request",
    "RequestsDropped",
    "Snubbed",
    "SuggestPiece",
    "Unchoke",
    "UnknownMessage",
    "allowed_fast_set",
    "aria2_info_hash",
    "bitfield_from_indices",
    "bitfield_indices",
    "check_bitfield",
    "decode_message",
    "encode_message",
    "parse_extension_handshake",
    "parse_handshake",
]
