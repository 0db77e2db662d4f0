"""The peer wire over a node-channel stream (``servent/peerwire/1``, ``docs/relay.md``).

A torrent peer we cannot dial (both NATs symmetric, say) is reached as a
node: a ``servent/peerwire/1`` stream of a channel to it (direct, punched or
relayed) carries the bytes of one ordinary BitTorrent connection.
:class:`PeerWireTransport` is the asyncio transport of such a stream, so the
unchanged :class:`~servent.net.peer_session.PeerSession` (and the listener's
plain/MSE sniffing) runs on it; :class:`ChannelPeerWire` hands incoming
streams to the listener's inbound path, :func:`channel_connector` gives the
torrent's dial path a connector that opens one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from servent.codec.compact import Address
from servent.net.encrypted_transport import Connector, feed_buffered
from servent.net.relay_transport import StreamTransport
from servent.proto.node_routes import PEERWIRE_PROTOCOL

if TYPE_CHECKING:
    from servent.net.channel_host import ChannelHost
    from servent.net.node_channel import NodeChannel, NodeStream

__all__ = ["ChannelPeerWire", "PeerWireTransport", "channel_connector"]

#: After ``close``, how long the peer may take to end its side before we reset.
CLOSE_LINGER = 5.0
WRITE_HIGH = 1 << 20


class PeerWireTransport(StreamTransport):
    """A BitTorrent connection's transport over one stream (see the module docstring).

    Writes go into the channel at once; when a channel on the way (this one,
    or the channel to the relay under it) has a full socket buffer, the
    protocol is told to pause writing until it drains."""

    def __init__(self, stream: NodeStream, peername: Address) -> None:
        super().__init__(stream, relay_label="")
        self.peername = peername
        self._high = WRITE_HIGH
        self._low = WRITE_HIGH // 4
        self._writing_paused = False
        self._drainer: asyncio.Task[None] | None = None
        self._linger: asyncio.TimerHandle | None = None

    def start(self, protocol: asyncio.BaseProtocol) -> None:
        super().start(cast(asyncio.Protocol, protocol))

    def _deliver(self, protocol: asyncio.Protocol, data: bytes) -> None:
        if self.is_closing():
            return  # like a closed socket: nothing more is read
        if isinstance(protocol, asyncio.BufferedProtocol) or hasattr(protocol, "get_buffer"):
            feed_buffered(cast(asyncio.BufferedProtocol, protocol), data)
        else:
            protocol.data_received(data)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._protocol = cast(asyncio.Protocol, protocol)  # a PeerSession is buffered

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "peername":
            return self.peername
        if name == "transport":
            return "channel"
        if name == "node":
            return self.stream.channel.peer_key
        if name == "relay":  # the relay under the channel, if it is relayed
            under = self.stream.channel.transport
            return None if under is None else under.get_extra_info("relay", default)
        return default

    # -- writing and back-pressure ---------------------------------------------------

    def write(self, data: bytes | bytearray | memoryview) -> None:
        super().write(data)
        if not self._writing_paused and self._congested() is not None:
            self._writing_paused = True
            if self._protocol is not None:
                self._protocol.pause_writing()
            self._drainer = asyncio.get_running_loop().create_task(
                self._wait_drained(), name="peer-wire-stream-drain"
            )

    def _congested(self) -> NodeChannel | None:
        """The first channel on the way whose socket buffer is full, if any."""
        channel: NodeChannel | None = self.stream.channel
        for _ in range(4):  # a relayed channel runs on a stream of another channel
            if channel is None:
                return None
            if not channel.writable:
                return channel
            under = channel.transport
            channel = under.stream.channel if isinstance(under, StreamTransport) else None
        return None

    async def _wait_drained(self) -> None:
        while (channel := self._congested()) is not None and not self.is_closing():
            await channel.wait_writable()
        self._writing_paused = False
        if self._protocol is not None and not self.is_closing():
            self._protocol.resume_writing()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._high = WRITE_HIGH if high is None else high
        self._low = self._high // 4 if low is None else low

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._low, self._high

    def get_write_buffer_size(self) -> int:
        under = self.stream.channel.transport
        return 0 if under is None else under.get_write_buffer_size()

    # -- ending ------------------------------------------------------------------------

    def close(self) -> None:
        """End our side; the peer's end (or the linger running out) ends the connection."""
        if self.is_closing():
            return
        super().close()
        self._linger = asyncio.get_running_loop().call_later(CLOSE_LINGER, self._give_up)

    def _give_up(self) -> None:
        if not self.finished.is_set():
            self.abort()

    def abort(self) -> None:
        if self._linger is not None:
            self._linger.cancel()
        if self._drainer is not None:
            self._drainer.cancel()
        super().abort()


class ChannelPeerWire:
    """Serves ``servent/peerwire/1``: each stream is an incoming BitTorrent peer."""

    def __init__(
        self,
        host: ChannelHost,
        accept: Callable[[], asyncio.BaseProtocol],
        address_of: Callable[[bytes], Address | None],
    ) -> None:
        self._accept = accept
        self._address_of = address_of
        #: Streams taken (statistics and tests).
        self.accepted = 0
        host.protocols.register(PEERWIRE_PROTOCOL, self._serve)

    async def _serve(self, stream: NodeStream) -> None:
        self.accepted += 1
        transport = PeerWireTransport(stream, self._label(stream.channel))
        transport.start(self._accept())
        await transport.wait_finished()

    def _label(self, channel: NodeChannel) -> Address:
        """The address a torrent peer said the node listens on, else the channel's end."""
        key = channel.peer_key
        known = None if key is None else self._address_of(key)
        if known is not None:
            return known
        under = channel.transport
        name = None if under is None else under.get_extra_info("peername")
        if isinstance(name, tuple) and len(name) >= 2:
            return str(name[0]), int(name[1])
        return ("0.0.0.0", 0)


def channel_connector(channel: NodeChannel, peername: Address) -> Connector:
    """A connector (as ``dial_peer`` takes) that opens a peer-wire stream on ``channel``."""

    async def connect(factory: Callable[[], asyncio.BaseProtocol], _host: str, _port: int) -> Any:
        stream = channel.open_stream(PEERWIRE_PROTOCOL)
        transport = PeerWireTransport(stream, peername)
        protocol = factory()
        transport.start(protocol)
        return transport, protocol

    return connect
