"""The limits and timers of a uTP connection (see docs/utp.md), and its states."""

from __future__ import annotations

from enum import Enum

__all__ = [
    "DUPLICATE_ACK_LIMIT",
    "IDLE_TIMEOUT",
    "KEEPALIVE_INTERVAL",
    "MASK",
    "MAX_PACKETS_IN_FLIGHT",
    "MAX_SYN_TIMEOUTS",
    "MAX_TIMEOUTS",
    "RECEIVE_BUFFER",
    "ConnectionState",
]

MASK = 0xFFFF
#: Packets that may be unacknowledged at once, and held out of order (both sides).
MAX_PACKETS_IN_FLIGHT = 1024
RECEIVE_BUFFER = 1 << 20
DUPLICATE_ACK_LIMIT = 3
MAX_TIMEOUTS = 6
MAX_SYN_TIMEOUTS = 3
KEEPALIVE_INTERVAL = 29.0
IDLE_TIMEOUT = 120.0


class ConnectionState(Enum):
    SYN_SENT = "syn-sent"
    CONNECTED = "connected"
    CLOSED = "closed"
