"""Settings and life-cycle states of a peer wire connection."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class ConnectionState(Enum):
    """Where the connection is in its life."""

    HANDSHAKE = "handshake"  # waiting for the peer's handshake
    AWAIT_ACCEPT = "await_accept"  # incoming, peer's handshake seen, torrent not chosen yet
    OPEN = "open"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class ConnectionConfig:
    """Bounds and timers of one connection; the defaults suit the public swarm."""

    #: Largest frame accepted (id + payload).  A bitfield of a known torrent may exceed it.
    max_message_length: int = 256 * 1024
    #: Largest unparsed input held; a driver should feed at most this much between drains.
    max_receive_buffer: int = 4 * 1024 * 1024
    #: Largest block a peer may request from us (BEP 52: clients close above 16 KiB).
    max_request_length: int = 16 * 1024
    #: Requests from the peer we hold at once before calling it a flood.
    max_peer_requests: int = 2048
    #: Requests the peer may send while choked (auto-rejected) before it is a flood.
    max_requests_while_choked: int = 4096
    #: Send a keep-alive when nothing was sent for this long (BEP 3: about two minutes).
    keepalive_interval: float = 90.0
    #: Nothing received for this long: time out.
    idle_timeout: float = 180.0
    handshake_timeout: float = 20.0
    #: Outstanding requests and no block for this long: :class:`Snubbed`.
    request_timeout: float = 30.0
    enable_fast: bool = True
    enable_extensions: bool = True
    enable_dht: bool = False
    #: Answer a hybrid peer that offers the v2 upgrade with the v2 info-hash.
    upgrade_to_v2: bool = True
