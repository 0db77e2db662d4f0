"""Torrents over node channels on loopback (``servent/peerwire/1``, BEP 10 ``sv_nodes``)."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import pytest
from test_relay_loopback import DEADLINE, address, loopback_node

from polling import wait_for
from servent.codec.bencode import encode
from servent.codec.node_record import RelayRef
from servent.net.node_channel import NodeStream
from servent.net.peerwire_channel import PeerWireTransport
from servent.net.swarm_peer import SwarmPeer
from servent.net.torrent_session import TorrentSession
from servent.node.node import Node
from servent.proto.node_routes import PEERWIRE_PROTOCOL, NodeAdvert
from servent.storage.torrent_creator import create_torrent

pytestmark = pytest.mark.e2e

WAIT = 60.0  # generous: the machine may be loaded


def session_of(node: Node, torrent_id: str) -> TorrentSession:
    session = node._running(torrent_id).session
    assert session is not None
    return session


async def running(node: Node, torrent_id: str) -> TorrentSession:
    """The torrent's session once it takes connections (after its start-up check)."""
    await wait_for(lambda: node._running(torrent_id).session is not None, "a session", WAIT)
    session = session_of(node, torrent_id)
    await wait_for(lambda: session.accepting, "the torrent running", WAIT)
    return session


def over_channel(peer: SwarmPeer) -> bool:
    transport = peer.session.transport
    return transport is not None and transport.get_extra_info("transport") == "channel"


def payload_file(folder: Path, size: int) -> tuple[Path, bytes, bytes]:
    data = hashlib.shake_256(folder.name.encode()).digest(size)
    path = folder / "seed" / "payload.bin"
    path.parent.mkdir(parents=True)
    path.write_bytes(data)
    return path, data, create_torrent(path, piece_length=64 * 1024).to_bytes()


async def seeding(node: Node, torrent: bytes, folder: Path) -> str:
    torrent_id = await node.add(torrent, folder)
    await wait_for(lambda: node.torrent(torrent_id).progress == 1.0, "the seed check", WAIT)
    return torrent_id


async def test_a_torrent_crosses_a_relayed_channel_on_the_peer_wire_stream(
    tmp_path: Path,
) -> None:
    payload, data, torrent = payload_file(tmp_path, 2 * 2**20 + 123)
    async with AsyncExitStack() as stack, asyncio.timeout(DEADLINE + 2 * WAIT):
        relay = await stack.enter_async_context(loopback_node(tmp_path / "r", relay_enabled=True))
        seeder = await stack.enter_async_context(loopback_node(tmp_path / "a"))
        getter = await stack.enter_async_context(loopback_node(tmp_path / "b"))
        to_relay = await seeder.channels.dial(*address(relay))
        assert await seeder.relaying.relay.reserve(to_relay)
        keeper = asyncio.get_running_loop().create_task(seeder.relaying.relay.keep_reservation())
        await seeding(seeder, torrent, payload.parent)
        got = await getter.add(torrent, tmp_path / "got")  # no peers: only the node dial
        ref = RelayRef(relay.identity.public_key, address(relay))
        advert = NodeAdvert(seeder.identity.public_key, (ref,), symmetric=True)
        session = await running(getter, got)
        session.connections.dial_node(address(seeder), advert)
        relayed: list[SwarmPeer] = []

        def relayed_peer() -> bool:
            relayed.extend(p for p in session.open_peers if over_channel(p))
            return bool(relayed)

        await wait_for(relayed_peer, "a peer over the relayed channel", WAIT)
        transport = relayed[0].session.transport
        assert isinstance(transport, PeerWireTransport)
        assert transport.get_extra_info("relay")  # the channel under it is a circuit
        assert transport.get_extra_info("node") == seeder.identity.public_key
        assert relayed[0].dialled == address(seeder)
        await wait_for(lambda: getter.torrent(got).progress == 1.0, "the download", WAIT)
        assert relay.relaying.relay.forwarded > len(data)  # every byte crossed the relay
        seeder.relaying.relay.release()
        await keeper
    assert (tmp_path / "got" / "payload.bin").read_bytes() == data


async def test_a_direct_channel_carries_the_peer_wire_labelled_by_its_address(
    tmp_path: Path,
) -> None:
    payload, data, torrent = payload_file(tmp_path, 1 * 2**20 + 5)
    async with AsyncExitStack() as stack, asyncio.timeout(DEADLINE + 2 * WAIT):
        seeder = await stack.enter_async_context(loopback_node(tmp_path / "a"))
        getter = await stack.enter_async_context(loopback_node(tmp_path / "b"))
        seeded = await seeding(seeder, torrent, payload.parent)
        got = await getter.add(torrent, tmp_path / "got")
        await getter.channels.dial(*address(seeder))  # reach_node reuses the open channel
        session = await running(getter, got)
        session.connections.dial_node(address(seeder), NodeAdvert(seeder.identity.public_key))
        incoming: list[SwarmPeer] = []

        def accepted() -> bool:
            peers = session_of(seeder, seeded).open_peers
            incoming.extend(p for p in peers if over_channel(p))
            return bool(incoming)

        await wait_for(accepted, "the seeder's peer over the channel", WAIT)
        assert incoming[0].dialled is None and incoming[0].session.address[0] == "127.0.0.1"
        assert incoming[0].session.transport is not None
        assert incoming[0].session.transport.get_extra_info("relay") is None  # a direct channel
        await wait_for(lambda: getter.torrent(got).progress == 1.0, "the download", WAIT)
    assert (tmp_path / "got" / "payload.bin").read_bytes() == data


async def test_a_peer_wire_stream_for_an_unknown_torrent_is_ended(tmp_path: Path) -> None:
    async with AsyncExitStack() as stack, asyncio.timeout(DEADLINE):
        one = await stack.enter_async_context(loopback_node(tmp_path / "a"))
        two = await stack.enter_async_context(loopback_node(tmp_path / "b"))
        channel = await two.channels.dial(*address(one))
        stream = channel.open_stream(PEERWIRE_PROTOCOL)
        handshake = b"\x13BitTorrent protocol" + bytes(28) + b"-XX0000-" + bytes(12)
        stream.send(handshake)
        assert await stream.receive() is None  # closed: no such torrent here
        garbage = channel.open_stream(PEERWIRE_PROTOCOL)
        garbage.send(b"\x00" * 5000)  # neither a handshake nor MSE that completes
        assert await garbage.receive() is None
        assert channel.close_event is None  # the channel itself lives on


async def test_a_common_peer_tells_each_node_the_others_and_reachable_peers_are_not_relayed(
    tmp_path: Path,
) -> None:
    payload, data, torrent = payload_file(tmp_path, 256 * 1024 + 9)
    async with AsyncExitStack() as stack, asyncio.timeout(DEADLINE + 2 * WAIT):
        hub = await stack.enter_async_context(  # a trickle: it stays in the swarm as a leecher
            loopback_node(tmp_path / "h", download_rate_limit=2048)
        )
        seeder = await stack.enter_async_context(loopback_node(tmp_path / "a"))
        getter = await stack.enter_async_context(loopback_node(tmp_path / "b"))
        at_hub = await hub.add(torrent, tmp_path / "hub-got")
        await running(hub, at_hub)
        seeded = await seeding(seeder, torrent, payload.parent)
        await stack.enter_async_context(connected_to(seeder, seeded, address(hub)))
        got = await getter.add(torrent, tmp_path / "got", peers=[address(hub)])
        session = await running(getter, got)
        nodes = session.extensions.node_peers
        assert nodes is not None
        heard = lambda: nodes.heard.get(address(seeder))  # noqa: E731
        await wait_for(heard, "the hub's sv_nodes naming the seeder", WAIT)
        assert heard() == NodeAdvert(seeder.identity.public_key)  # no relay, NAT not symmetric
        await wait_for(lambda: getter.torrent(got).progress == 1.0, "the download", WAIT)
        assert nodes.node_dials == 0  # the seeder answered a direct dial: never relayed
        assert not any(over_channel(p) for p in session.open_peers)
    assert (tmp_path / "got" / "payload.bin").read_bytes() == data


async def test_a_hostile_sv_nodes_message_costs_the_connection(tmp_path: Path) -> None:
    async with asyncio.timeout(DEADLINE + 2 * WAIT), sv_nodes_link(tmp_path) as (peer, first):
        peer.session.conn.send_extension("sv_nodes", encode({b"n": [{b"a": bytes(6)}] * 33}))
        peer.session.schedule_flush()
        await wait_for(lambda: peer.session.is_closed, "one dropping the connection", WAIT)
        assert not first.open_peers


@asynccontextmanager
async def sv_nodes_link(tmp_path: Path) -> AsyncIterator[tuple[SwarmPeer, TorrentSession]]:
    """Two loopback nodes leeching one torrent of nothing (so they stay), the second
    connected to the first and seen by it as a node: the second's end of the connection
    (to send ``sv_nodes`` from) and the first's session."""
    _payload, _data, torrent = payload_file(tmp_path, 64 * 1024 + 1)
    async with AsyncExitStack() as stack:
        one = await stack.enter_async_context(loopback_node(tmp_path / "a"))
        two = await stack.enter_async_context(loopback_node(tmp_path / "b"))
        first = await one.add(torrent, tmp_path / "one")
        await running(one, first)
        second = await two.add(torrent, tmp_path / "two")
        await stack.enter_async_context(connected_to(two, second, address(one)))
        nodes = session_of(one, first).extensions.node_peers
        assert nodes is not None
        await wait_for(lambda: nodes._speaks, "one seeing two as a node", WAIT)
        yield next(iter(session_of(two, second).open_peers)), session_of(one, first)


@asynccontextmanager
async def connected_to(node: Node, torrent_id: str, peer: tuple[str, int]) -> AsyncIterator[None]:
    """``torrent_id`` of ``node`` dials ``peer`` (and is connected) inside the block."""
    session = await running(node, torrent_id)
    session.add_peers([peer])
    await wait_for(lambda: any(p.dialled == peer for p in session.open_peers), "a peer", WAIT)
    yield


class Recorder(asyncio.Protocol):
    """Counts what the transport tells a protocol about writing."""

    def __init__(self) -> None:
        self.paused = asyncio.Event()
        self.resumed = asyncio.Event()
        self.lost = asyncio.Event()

    def pause_writing(self) -> None:
        self.paused.set()

    def resume_writing(self) -> None:
        self.resumed.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost.set()


async def test_a_full_channel_pauses_the_peer_wire_writer_until_it_drains(tmp_path: Path) -> None:
    async with AsyncExitStack() as stack, asyncio.timeout(DEADLINE + WAIT):
        one = await stack.enter_async_context(loopback_node(tmp_path / "a"))
        two = await stack.enter_async_context(loopback_node(tmp_path / "b"))
        drain = asyncio.Event()
        received = 0

        async def sink(stream: NodeStream) -> None:  # reads only once told to
            nonlocal received
            await drain.wait()
            while (data := await stream.receive()) is not None:
                received += len(data)

        two.channels.protocols.register("test/sink/1", sink)
        channel = await one.channels.dial(*address(two))
        transport = PeerWireTransport(channel.open_stream("test/sink/1"), address(two))
        protocol = Recorder()
        transport.start(protocol)
        chunk, sent = bytes(64 * 1024), 0
        while not protocol.paused.is_set():
            assert sent < 512 * 2**20, "never paused"
            transport.write(chunk)
            sent += len(chunk)
            if sent % (4 * 2**20) == 0:
                await asyncio.sleep(0)  # let the socket move bytes, as a real writer would
        assert transport.get_write_buffer_size() > 0
        drain.set()
        await asyncio.wait_for(protocol.resumed.wait(), WAIT)
        await wait_for(lambda: received == sent, "every byte at the sink", WAIT)
        transport.close()
        await asyncio.wait_for(protocol.lost.wait(), WAIT)
