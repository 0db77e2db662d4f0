"""Light live participants on real loopback sockets: a channel host, a port, a live service.

A whole :class:`~servent.node.node.Node` per viewer (DHT, torrents, state)
is heavy for a test with 20 viewers on a shared machine; a
:class:`LiveNode` is only what the live protocol needs: a node key, a
listening TCP port that accepts node channels, and a
:class:`~servent.net.live_service.LiveService`.  It speaks the same protocol
as a daemon, so daemons and light nodes share one swarm.
"""

from __future__ import annotations

import asyncio

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from servent.codec.compact import Address
from servent.net.channel_host import ChannelHost
from servent.net.dht_driver import DhtDriver
from servent.net.live_service import LiveService
from servent.proto.channel import LocalKeys

__all__ = ["LiveNode"]


class _NotAPeer(asyncio.Protocol):
    """Anything that is not a node channel is closed (no BitTorrent here)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.close()


class LiveNode:
    """``async with LiveNode() as node``: listening on 127.0.0.1, port 0."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        *,
        broadcaster_accepts: int = 4,
        dht: DhtDriver | None = None,
    ) -> None:
        self.host = host
        self.channels = ChannelHost(LocalKeys.create(Ed25519PrivateKey.generate()))
        self.address: Address | None = None
        self.live = LiveService(
            lambda: self.channels,
            lambda: self.address,
            lambda: dht,
            broadcaster_accepts=broadcaster_accepts,
        )
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> LiveNode:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: self.channels.sniffer(_NotAPeer), self.host, 0
        )
        port = self._server.sockets[0].getsockname()[1]
        self.address = (self.host, port)
        self.live.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.live.close()
        await self.channels.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
