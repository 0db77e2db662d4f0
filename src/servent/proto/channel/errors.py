"""Why a node channel was refused or dropped, one class per cause (tests name them)."""

from __future__ import annotations

from servent.errors import ProtocolError

__all__ = [
    "ChannelAuthError",
    "ChannelError",
    "ChannelHandshakeError",
    "ChannelProtocolError",
    "ChannelStateError",
    "ChannelTimeoutError",
    "FrameTooLargeError",
]


class ChannelError(ProtocolError):
    """A node channel failed; the connection is closed."""


class ChannelHandshakeError(ChannelError):
    """The handshake is malformed: wrong magic, bad message length, truncated, bad key."""


class ChannelAuthError(ChannelError):
    """Authentication failed: a bad signature, another node than expected, or a frame
    that does not decrypt (tampered, replayed, reordered or dropped)."""


class FrameTooLargeError(ChannelError):
    """A handshake message or transport frame announces a length beyond the bound."""


class ChannelProtocolError(ChannelError):
    """An authenticated peer broke the framing or stream rules."""


class ChannelTimeoutError(ChannelError):
    """The handshake took too long, or the peer went silent."""


class ChannelStateError(ChannelError):
    """We asked for something the connection cannot do now (closed, unknown stream ...)."""
