"""The connect-back check ``servent/reach/1`` between two nodes on loopback."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from servent.net.reach import ask_connect_back
from servent.node.config import Config
from servent.node.node import Node
from servent.proto.channel import CloseCode
from servent.proto.reach import PROTOCOL

pytestmark = pytest.mark.e2e

LOOPBACK = "127.0.0.1"
DEADLINE = 30.0


@asynccontextmanager
async def loopback_node(folder: Path) -> AsyncIterator[Node]:
    config = Config(
        data_dir=folder, listen_host=LOOPBACK, listen_port=0, dht_enabled=False, lsd_enabled=False
    )
    async with Node(config) as node:
        yield node


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


async def test_a_node_dialled_back_is_reachable(tmp_path: Path) -> None:
    async with loopback_node(tmp_path / "a") as a, loopback_node(tmp_path / "b") as b:
        b_address = b.peer_address()
        assert b_address is not None
        async with asyncio.timeout(DEADLINE):
            channel = await a.channels.dial(LOOPBACK, b_address[1])
            before = a.reachability()
            verdict = await a.check_reachable(channel)
        assert before.reachable is None  # loopback: nothing known before the check
        assert verdict.reachable is True
        assert a.status().reachable is True


async def test_a_closed_port_is_reported_and_the_asker_is_told_its_address(
    tmp_path: Path,
) -> None:
    async with loopback_node(tmp_path / "a") as a, loopback_node(tmp_path / "b") as b:
        b_address = b.peer_address()
        assert b_address is not None
        async with asyncio.timeout(DEADLINE):
            channel = await a.channels.dial(LOOPBACK, b_address[1])
            answer = await ask_connect_back(channel, closed_port())
        assert answer.ok is False
        assert channel.transport is not None
        assert answer.seen == channel.transport.get_extra_info("sockname")[:2]


async def test_a_malformed_request_resets_the_stream_not_the_channel(tmp_path: Path) -> None:
    async with loopback_node(tmp_path / "a") as a, loopback_node(tmp_path / "b") as b:
        b_address = b.peer_address()
        assert b_address is not None
        async with asyncio.timeout(DEADLINE):
            channel = await a.channels.dial(LOOPBACK, b_address[1])
            stream = channel.open_stream(PROTOCOL)
            stream.send(b"d4:porti0ee")  # port 0: out of range
            assert await stream.receive() is None
            assert stream.reset_by_peer is not None
            assert stream.reset_by_peer[0] == CloseCode.PROTOCOL_ERROR
            answer = await ask_connect_back(channel, a.peer_address()[1])  # type: ignore[index]
        assert answer.ok is True and channel.close_event is None
