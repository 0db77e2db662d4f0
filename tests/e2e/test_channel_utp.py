"""A node channel over uTP: the channel host dials through the engine's PeerDialer
(``prefer-utp``), the accepting listener takes it from its uTP socket, and an echo
protocol runs over it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from servent.net.channel_host import ChannelHost
from servent.net.engine import EngineConfig, SwarmEngine
from servent.net.node_channel import NodeStream
from servent.proto.channel import LocalKeys

pytestmark = pytest.mark.e2e

LOOPBACK = "127.0.0.1"
ECHO = "servent/echo/1"


async def _echo(stream: NodeStream) -> None:
    while (message := await stream.receive()) is not None:
        stream.send(message)


@asynccontextmanager
async def _node() -> AsyncIterator[tuple[SwarmEngine, ChannelHost]]:
    host = ChannelHost(LocalKeys.create(Ed25519PrivateKey.generate()))
    host.protocols.register(ECHO, _echo)
    config = EngineConfig(listen_host=LOOPBACK, utp=True, utp_preference="prefer-utp")
    async with SwarmEngine(config) as engine:
        assert engine.listener is not None
        engine.listener.channel_acceptor = host
        host.dialer = engine.dialer
        try:
            yield engine, host
        finally:
            await host.close()


async def test_a_node_channel_runs_over_utp() -> None:
    async with _node() as (engine_a, host_a), _node() as (engine_b, host_b):
        channel = await asyncio.wait_for(
            host_a.dial(LOOPBACK, engine_b.port, expected=host_b.keys.public_key), 20
        )
        assert channel.transport is not None
        assert channel.transport.get_extra_info("transport") == "utp"
        assert engine_a.dialer.outcomes["utp"] == 1
        assert engine_b.utp is not None and engine_b.utp.accepted == 1
        stream = channel.open_stream(ECHO)
        payload = bytes(range(256)) * 200
        stream.send(payload)
        assert await asyncio.wait_for(stream.receive(), 20) == payload
