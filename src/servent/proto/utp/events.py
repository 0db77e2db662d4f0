"""Events a :class:`~servent.proto.utp.connection.UtpConnection` reports to its driver."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Connected", "ConnectionClosed", "DataReceived", "PeerFinished", "UtpEvent"]


@dataclass(frozen=True, slots=True)
class Connected:
    """The handshake is done: data may flow."""


@dataclass(frozen=True, slots=True)
class DataReceived:
    """Bytes received in order."""

    data: bytes


@dataclass(frozen=True, slots=True)
class PeerFinished:
    """The peer sent FIN and every byte before it arrived (end of its stream)."""


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    """The connection is over; ``error`` is False only after a clean FIN exchange."""

    reason: str
    error: bool


UtpEvent = Connected | DataReceived | PeerFinished | ConnectionClosed
