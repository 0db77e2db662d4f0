"""What a :class:`~servent.proto.channel.connection.ChannelConnection` reports, in order."""

from __future__ import annotations

from dataclasses import dataclass

from servent.proto.channel.errors import ChannelError

__all__ = [
    "ChannelEvent",
    "ConnectionClosed",
    "HandshakeComplete",
    "MessageReceived",
    "StreamEnded",
    "StreamOpened",
    "StreamReset",
]


@dataclass(frozen=True, slots=True)
class HandshakeComplete:
    """Both sides proved their keys; ``peer_key`` is the other node's Ed25519 key."""

    peer_key: bytes
    handshake_hash: bytes


@dataclass(frozen=True, slots=True)
class StreamOpened:
    """The peer opened a stream of a protocol we registered."""

    stream_id: int
    protocol: str


@dataclass(frozen=True, slots=True)
class MessageReceived:
    """One message (a DATA frame) on an open stream."""

    stream_id: int
    data: bytes


@dataclass(frozen=True, slots=True)
class StreamEnded:
    """The peer sends nothing more on this stream (CLOSE); we may still send."""

    stream_id: int


@dataclass(frozen=True, slots=True)
class StreamReset:
    """The peer aborted the stream (RESET), e.g. code 2 for a protocol it does not know."""

    stream_id: int
    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    """The channel is over: GOODBYE either way, a timeout, or ``error`` (the peer's fault)."""

    code: int
    reason: str
    by_peer: bool
    error: ChannelError | None = None


ChannelEvent = (
    HandshakeComplete
    | StreamOpened
    | MessageReceived
    | StreamEnded
    | StreamReset
    | ConnectionClosed
)
