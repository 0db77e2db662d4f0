"""The node channel, sans-IO: Noise XX handshake, encrypted frames, named streams.

Wire format: ``docs/node-channel.md``.  The asyncio driver is
:mod:`servent.net.node_channel`.
"""

from servent.proto.channel.connection import ChannelConfig, ChannelConnection, Phase
from servent.proto.channel.errors import (
    ChannelAuthError,
    ChannelError,
    ChannelHandshakeError,
    ChannelProtocolError,
    ChannelStateError,
    ChannelTimeoutError,
    FrameTooLargeError,
)
from servent.proto.channel.events import (
    ChannelEvent,
    ConnectionClosed,
    HandshakeComplete,
    MessageReceived,
    StreamEnded,
    StreamOpened,
    StreamReset,
)
from servent.proto.channel.frames import MAGIC, MAX_BODY, CloseCode
from servent.proto.channel.noise import LocalKeys

__all__ = [
    "MAGIC",
    "MAX_BODY",
    "ChannelAuthError",
    "ChannelConfig",
    "ChannelConnection",
    "ChannelError",
    "ChannelEvent",
    "ChannelHandshakeError",
    "ChannelProtocolError",
    "ChannelStateError",
    "ChannelTimeoutError",
    "CloseCode",
    "ConnectionClosed",
    "FrameTooLargeError",
    "HandshakeComplete",
    "LocalKeys",
    "MessageReceived",
    "Phase",
    "StreamEnded",
    "StreamOpened",
    "StreamReset",
]
