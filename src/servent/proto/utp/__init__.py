"""uTP (BEP 29): packet codec, one connection as a sans-IO state machine, LEDBAT."""

from servent.proto.utp.connection import ConnectionState, UtpConnection, payload_size_for
from servent.proto.utp.events import (
    Connected,
    ConnectionClosed,
    DataReceived,
    PeerFinished,
    UtpEvent,
)
from servent.proto.utp.ledbat import DelayHistory, Ledbat
from servent.proto.utp.packet import (
    Packet,
    PacketType,
    decode_packet,
    encode_packet,
    looks_like_utp,
)

__all__ = [
    "Connected",
    "ConnectionClosed",
    "ConnectionState",
    "DataReceived",
    "DelayHistory",
    "Ledbat",
    "Packet",
    "PacketType",
    "PeerFinished",
    "UtpConnection",
    "UtpEvent",
    "decode_packet",
    "encode_packet",
    "looks_like_utp",
    "payload_size_for",
]
