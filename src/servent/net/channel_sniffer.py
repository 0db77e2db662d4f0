"""Tell a node channel from a BitTorrent peer by the first bytes on a shared port.

The listener's protocol for a new connection is a :class:`FirstBytesSniffer`
when a node channel host is attached.  As soon as a byte differs from the
16-byte node-channel magic at its position, the connection goes to the
BitTorrent path unchanged (plain or MSE; ``0x13`` decides on the first byte,
a random MSE key almost always does); when all 16 bytes match it goes to the
node channel.  Why the whole 16 bytes: an MSE start is random, so only a long
prefix makes a mix-up negligible (2^-128); see ``docs/node-channel.md``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import cast

from servent.net.encrypted_transport import feed_buffered
from servent.proto.channel import MAGIC

__all__ = ["ChannelAccept", "FirstBytesSniffer"]

log = logging.getLogger(__name__)

#: Hands a connection whose first bytes are the magic (given back as ``first``) to a
#: channel, with the loop time it was accepted at (the handshake timeout counts from there).
ChannelAccept = Callable[[asyncio.Transport, bytes, float], None]


class FirstBytesSniffer(asyncio.Protocol):
    """Reads at most 16 bytes, then steps aside for the protocol they call for."""

    def __init__(
        self,
        accept_channel: ChannelAccept,
        peer_protocol: Callable[[], asyncio.BaseProtocol],
        *,
        timeout: float,
        on_done: Callable[[FirstBytesSniffer], None] | None = None,
        magic: bytes = MAGIC,
    ) -> None:
        self._magic = magic
        self._accept_channel = accept_channel
        self._peer_protocol = peer_protocol
        self._timeout = timeout
        self._on_done = on_done
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._seen = bytearray()
        self._decided = False
        self._accepted_at = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        loop = asyncio.get_running_loop()
        self._accepted_at = loop.time()
        self._timer = loop.call_at(self._accepted_at + self._timeout, self._give_up)

    def data_received(self, data: bytes) -> None:
        if self._decided:
            return
        self._seen += data
        prefix = bytes(self._seen[: len(self._magic)])
        if not self._magic.startswith(prefix):
            self._hand_to_peer_wire()
        elif len(prefix) == len(self._magic):
            self._finish()
            assert self._transport is not None
            self._accept_channel(self._transport, bytes(self._seen), self._accepted_at)

    def _hand_to_peer_wire(self) -> None:
        self._finish()
        transport = self._transport
        assert transport is not None
        protocol = self._peer_protocol()
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        if transport.is_closing():  # refused (too many pending handshakes)
            return
        if isinstance(protocol, asyncio.BufferedProtocol):
            feed_buffered(protocol, bytes(self._seen))
        elif isinstance(protocol, asyncio.Protocol):
            protocol.data_received(bytes(self._seen))

    def _finish(self) -> None:
        self._decided = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._on_done is not None:
            self._on_done(self)
            self._on_done = None

    def abort(self) -> None:
        """Drop the connection if it is still being told apart (the node shuts down)."""
        if not self._decided:
            self._finish()
            if self._transport is not None:
                self._transport.abort()

    def _give_up(self) -> None:
        self._timer = None
        if not self._decided:
            self._finish()
            log.debug("closing a connection that sent too little to be told apart")
            if self._transport is not None:
                self._transport.abort()

    def eof_received(self) -> bool | None:
        return None  # nothing decided: let the transport close

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._decided:
            self._finish()
