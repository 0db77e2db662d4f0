"""Relayed channels and introduced hole punches between three nodes on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import pytest

from servent.codec.node_record import RelayRef
from servent.net.node_channel import NodeStream
from servent.node.config import Config
from servent.node.node import Node
from servent.proto.channel import ChannelError
from servent.proto.relay import PUNCH_PROTOCOL, RELAY_PROTOCOL, encode_control

pytestmark = pytest.mark.e2e

LOOPBACK = "127.0.0.1"
DEADLINE = 30.0
ECHO = "test/echo/1"


@asynccontextmanager
async def loopback_node(folder: Path, **settings: object) -> AsyncIterator[Node]:
    config = Config(
        data_dir=folder, listen_host=LOOPBACK, listen_port=0, dht_enabled=False,
        lsd_enabled=False, **settings,  # type: ignore[arg-type]
    )  # fmt: skip
    async with Node(config) as node:
        yield node


async def echo(stream: NodeStream) -> None:
    while (data := await stream.receive()) is not None:
        stream.send(data)


def address(node: Node) -> tuple[str, int]:
    found = node.peer_address()
    assert found is not None
    return found


async def three(stack: AsyncExitStack, folder: Path) -> tuple[Node, Node, Node]:
    relay = await stack.enter_async_context(loopback_node(folder / "r", relay_enabled=True))
    a = await stack.enter_async_context(loopback_node(folder / "a"))
    b = await stack.enter_async_context(loopback_node(folder / "b"))
    b.channels.protocols.register(ECHO, echo)
    return relay, a, b


async def test_a_relayed_channel_carries_an_end_to_end_channel(tmp_path: Path) -> None:
    async with AsyncExitStack() as stack, asyncio.timeout(DEADLINE):
        relay, a, b = await three(stack, tmp_path)
        to_relay = await b.channels.dial(*address(relay))
        assert await b.relaying.relay.reserve(to_relay)
        keeper = asyncio.get_running_loop().create_task(b.relaying.relay.keep_reservation())
        assert b.status().relay == address(relay)
        ref = RelayRef(relay.identity.public_key, address(relay))
        channel = await a.relaying.relay.dial_via(ref, b.identity.public_key)
        assert channel.peer_key == b.identity.public_key
        assert channel.transport is not None and channel.transport.get_extra_info("relay")
        stream = channel.open_stream(ECHO)
        payload = bytes(range(256)) * 468  # above one data message: split and joined
        stream.send(payload[:60000])
        stream.send(payload[60000:])
        assert await stream.receive() == payload[:60000]
        assert await stream.receive() == payload[60000:]
        assert relay.relaying.relay.forwarded > len(payload)  # only ciphertext crossed it
        b.relaying.relay.release()
        await keeper
        assert b.status().relay is None


async def test_a_relay_refuses_without_a_reservation_and_when_off(tmp_path: Path) -> None:
    async with AsyncExitStack() as stack, asyncio.timeout(DEADLINE):
        relay, a, b = await three(stack, tmp_path)
        ref = RelayRef(relay.identity.public_key, address(relay))
        with pytest.raises(ChannelError, match="NO_SUCH_NODE"):
            await a.relaying.relay.dial_via(ref, b.identity.public_key)
        to_a = await b.channels.dial(*address(a))  # a has relay_enabled off
        assert not await b.relaying.relay.reserve(to_a)


async def test_garbage_relay_and_punch_requests_reset_the_stream_only(tmp_path: Path) -> None:
    async with AsyncExitStack() as stack, asyncio.timeout(DEADLINE):
        relay, a, _ = await three(stack, tmp_path)
        channel = await a.channels.dial(*address(relay))
        punch_garbage = [encode_control({b"to": b"short", b"port": 1}), b"x" * 300]
        for protocol, garbage in [
            *((RELAY_PROTOCOL, g) for g in (b"not bencode", encode_control({b"op": b"fly"}))),
            (RELAY_PROTOCOL, b"d2:op7:connecte"),  # no target
            *((PUNCH_PROTOCOL, g) for g in punch_garbage),
        ]:
            stream = channel.open_stream(protocol)
            stream.send(garbage)
            assert await stream.receive() is None
            assert stream.reset_by_peer is not None
        assert channel.close_event is None


async def test_an_introduction_punches_a_utp_channel(tmp_path: Path) -> None:
    async with AsyncExitStack() as stack, asyncio.timeout(DEADLINE):
        relay, a, b = await three(stack, tmp_path)
        await b.channels.dial(*address(relay))
        introducer = await a.channels.dial(*address(relay))
        channel = await a.relaying.punch.punch(introducer, b.identity.public_key)
        assert channel.peer_key == b.identity.public_key
        assert type(channel.transport).__name__ == "UtpTransport"
        stream = channel.open_stream(ECHO)
        stream.send(b"through the hole")
        assert await stream.receive() == b"through the hole"
        with pytest.raises(ChannelError, match="error 4"):
            await a.relaying.punch.punch(introducer, a.identity.public_key)


async def test_the_relay_caps_its_byte_rate(tmp_path: Path) -> None:
    rate = 256 * 1024
    async with AsyncExitStack() as stack, asyncio.timeout(DEADLINE):
        relay = await stack.enter_async_context(
            loopback_node(tmp_path / "r", relay_enabled=True, relay_max_rate=rate)
        )
        a = await stack.enter_async_context(loopback_node(tmp_path / "a"))
        b = await stack.enter_async_context(loopback_node(tmp_path / "b"))
        b.channels.protocols.register(ECHO, echo)
        assert await b.relaying.relay.reserve(await b.channels.dial(*address(relay)))
        ref = RelayRef(relay.identity.public_key, address(relay))
        channel = await a.relaying.relay.dial_via(ref, b.identity.public_key)
        stream = channel.open_stream(ECHO)
        loop = asyncio.get_running_loop()
        started = loop.time()
        chunk = bytes(60000)
        for _ in range(10):  # 600 kB each way: 1.2 MB through the relay
            stream.send(chunk)
        for _ in range(10):
            assert await stream.receive() == chunk
        elapsed = loop.time() - started
    # The first second's burst passes at once; the rest at the cap (never faster).
    assert elapsed >= (1_200_000 - rate) / rate * 0.9, elapsed
