"""Events a :class:`~servent.proto.peerwire.connection.PeerConnection` returns.

Besides these, every decoded peer message that matters to a session is
itself an event (``Choke``, ``Have``, ``Piece`` ... from
:mod:`~servent.proto.peerwire.messages`).  Keep-alives, unknown message ids
and raw ``Extended`` frames are consumed by the connection.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeAlias

from servent.proto.peerwire.extensions import ExtensionHandshake
from servent.proto.peerwire.handshake import Handshake
from servent.proto.peerwire.messages import (
    AllowedFast,
    Cancel,
    Choke,
    Hashes,
    HashReject,
    HashRequest,
    Have,
    HaveAll,
    HaveBitfield,
    HaveNone,
    Interested,
    NotInterested,
    Piece,
    Port,
    RejectRequest,
    Request,
    SuggestPiece,
    Unchoke,
)


@dataclass(frozen=True, slots=True)
class HandshakeReceived:
    """The peer's handshake arrived.

    ``is_v2`` is true when the connection runs on the truncated v2 info-hash
    (a v2-only torrent or an upgraded hybrid connection).  For a connection
    created without a torrent (``PeerConnection(info_hash=None, ...)``) this
    event comes twice: first with ``conn.state`` AWAIT_ACCEPT, when the driver
    looks up ``handshake.info_hash`` and calls ``accept(...)`` (or closes the
    socket), then again once the connection is OPEN (with the final ``is_v2``).
    """

    handshake: Handshake
    is_v2: bool


@dataclass(frozen=True, slots=True)
class ExtensionHandshakeReceived:
    """The peer's BEP 10 handshake (it may send more than one; the latest wins)."""

    handshake: ExtensionHandshake


@dataclass(frozen=True, slots=True)
class ExtensionMessage:
    """A BEP 10 message for the registered extension ``name``."""

    name: str
    payload: bytes


#: ``(index, begin, block, requested_at)``: one block answering our request, sent at
#: ``requested_at`` (``None``: a late answer to a request we had cancelled).
ReceivedBlock: TypeAlias = tuple[int, int, "bytes | bytearray | memoryview", "float | None"]

#: ``sink(index, begin, block, requested_at)``: a block answering our request (sent at
#: ``requested_at``; ``None`` if cancelled), valid only during the call.
BlockSink: TypeAlias = Callable[[int, int, "bytes | memoryview", "float | None"], None]


@dataclass(frozen=True, slots=True)
class BlocksReceived:
    """Blocks that came one after the other, each answering a request of ours.

    Why one event for a run and not a :class:`Piece` each: a leecher gets
    65,536 blocks per GiB, and the per-block cost of an event object and its
    dispatch is a large share of its CPU.  The connection has checked each
    block (index range, request ledger).  With ``borrow_input`` a block is a
    view of the driver's read buffer: copy it before the driver reads again.
    """

    blocks: list[ReceivedBlock]


@dataclass(frozen=True, slots=True)
class RequestsDropped:
    """The peer choked us without the fast extension: these requests will not be served."""

    requests: tuple[Request, ...]


@dataclass(frozen=True, slots=True)
class Snubbed:
    """Requests are outstanding but no block arrived for ``request_timeout`` seconds."""

    outstanding: tuple[Request, ...]


@dataclass(frozen=True, slots=True)
class ConnectionTimedOut:
    """The handshake did not complete, or the peer went silent; close the connection."""

    reason: str


Event: TypeAlias = (
    HandshakeReceived
    | BlocksReceived
    | ExtensionHandshakeReceived
    | ExtensionMessage
    | RequestsDropped
    | Snubbed
    | ConnectionTimedOut
    | Choke
    | Unchoke
    | Interested
    | NotInterested
    | Have
    | HaveBitfield
    | HaveAll
    | HaveNone
    | Request
    | Piece
    | Cancel
    | Port
    | SuggestPiece
    | RejectRequest
    | AllowedFast
    | HashRequest
    | Hashes
    | HashReject
)
