"""Node channels over real loopback sockets, on the same port as the peer wire.

Two swarm engines listen on 127.0.0.1 with a channel host attached to their
listeners: channels are dialled both ways with the expected ID checked, an
echo protocol runs over them, hostile bytes after the magic are dropped, and
BitTorrent peers (plain and MSE) still download from the same port.
"""

from __future__ import annotations

import asyncio
import functools
import os
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import polling
from interop.reference_clients import LOOPBACK, create_torrent_with_libtorrent, write_payload
from servent.codec.metainfo import parse_torrent
from servent.net.channel_host import ChannelHost
from servent.net.encrypted_transport import handshake_outcomes
from servent.net.engine import EngineConfig, SwarmEngine
from servent.net.node_channel import NodeStream
from servent.proto.channel import (
    MAGIC,
    MAX_BODY,
    ChannelAuthError,
    ChannelConfig,
    ChannelError,
    ChannelHandshakeError,
    CloseCode,
    LocalKeys,
)

pytestmark = pytest.mark.e2e

DEADLINE = 20.0
wait_for = functools.partial(polling.wait_for, within=DEADLINE, every=0.01)
ECHO = "servent/echo/1"


async def echo(stream: NodeStream) -> None:
    while (message := await stream.receive()) is not None:
        stream.send(message)


@asynccontextmanager
async def node(
    encryption: str = "enabled", config: ChannelConfig | None = None
) -> AsyncIterator[tuple[SwarmEngine, ChannelHost]]:
    """A swarm engine on loopback whose listening port also accepts node channels."""
    host = ChannelHost(LocalKeys.create(Ed25519PrivateKey.generate()), config=config)
    host.protocols.register(ECHO, echo)
    async with SwarmEngine(EngineConfig(listen_host=LOOPBACK, encryption=encryption)) as engine:
        assert engine.listener is not None
        engine.listener.channel_acceptor = host
        try:
            yield engine, host
        finally:
            await host.close()


async def test_echo_over_a_channel_both_ways_with_ids_checked() -> None:
    async with node() as (_, host_a), node() as (engine_b, host_b):
        channel = await host_a.dial(LOOPBACK, engine_b.port, expected=host_b.keys.public_key)
        assert channel.peer_key == host_b.keys.public_key
        await wait_for(lambda: host_a.keys.public_key in host_b.channels, "B knows A")
        (accepted,) = host_b.channels[host_a.keys.public_key]
        assert accepted.peer_key == host_a.keys.public_key
        stream = channel.open_stream(ECHO)
        messages = [b"hello", b"", os.urandom(MAX_BODY), b"last"]
        for message in messages:
            stream.send(message)
        async with asyncio.timeout(DEADLINE):
            answers = [await stream.receive() for _ in messages]
        assert answers == messages
        stream.close()
        async with asyncio.timeout(DEADLINE):
            assert await stream.receive() is None  # the handler ended and closed its side
        reverse = accepted.open_stream(ECHO)  # streams both ways on the one channel
        reverse.send(b"from B")
        async with asyncio.timeout(DEADLINE):
            assert await reverse.receive() == b"from B"
        channel.close()
        async with asyncio.timeout(DEADLINE):
            await accepted.wait_closed()
        assert accepted.close_event is not None and accepted.close_event.by_peer


async def test_an_unknown_protocol_ends_the_stream_with_code_2() -> None:
    async with node() as (_, host_a), node() as (engine_b, _):
        channel = await host_a.dial(LOOPBACK, engine_b.port)
        stream = channel.open_stream("servent/unknown/1")
        stream.send(b"anyone?")
        async with asyncio.timeout(DEADLINE):
            assert await stream.receive() is None
        assert stream.reset_by_peer is not None
        assert stream.reset_by_peer[0] == CloseCode.UNKNOWN_PROTOCOL
        assert channel.close_event is None  # the channel itself stays up


async def test_a_wrong_expected_id_is_refused() -> None:
    async with node() as (_, host_a), node() as (engine_b, host_b):
        stranger = LocalKeys.create(Ed25519PrivateKey.generate()).public_key
        with pytest.raises(ChannelAuthError, match="expected node"):
            await host_a.dial(LOOPBACK, engine_b.port, expected=stranger)
        await wait_for(lambda: not host_b._all and not host_b._pending, "B dropped it")
        assert host_b.channels == {} and host_a.channels == {}


async def _closed_by_server(port: int, data: bytes) -> bytes:
    """Send ``data`` and read until the server hangs up; what it sent back."""
    reader, writer = await asyncio.open_connection(LOOPBACK, port)
    received = b""
    try:
        writer.write(data)
        async with asyncio.timeout(DEADLINE):
            while chunk := await reader.read(65536):
                received += chunk
    except ConnectionError:
        pass
    finally:
        writer.close()
    return received


async def test_garbage_after_the_magic_is_dropped_and_the_port_keeps_serving() -> None:
    config = ChannelConfig(handshake_timeout=1.0)
    async with node(config=config) as (engine_b, host_b), node() as (_, host_a):
        garbage = MAGIC + b"\xff\xff" + os.urandom(3000)
        assert await _closed_by_server(engine_b.port, garbage) == b""
        length_ok_junk = MAGIC + (32).to_bytes(2, "big") + bytes(32)  # low-order key
        assert await _closed_by_server(engine_b.port, length_ok_junk) == b""
        stalled = await _closed_by_server(engine_b.port, MAGIC[:10])  # timeout
        assert stalled == b""
        await wait_for(lambda: not host_b._pending and not host_b._all, "nothing left over")
        channel = await host_a.dial(LOOPBACK, engine_b.port, expected=host_b.keys.public_key)
        stream = channel.open_stream(ECHO)
        stream.send(b"still here")
        async with asyncio.timeout(DEADLINE):
            assert await stream.receive() == b"still here"


async def test_a_node_channel_dialled_at_a_plain_bittorrent_port_fails_cleanly() -> None:
    async with SwarmEngine(EngineConfig(listen_host=LOOPBACK)) as plain, node() as (_, host_a):
        started = time.monotonic()
        with pytest.raises(ChannelHandshakeError, match="not a node channel"):
            await host_a.dial(LOOPBACK, plain.port)  # the MSE responder answers its key
        assert time.monotonic() - started < 5.0  # told at once, not by the timeout
        assert host_a.channels == {} and not host_a._all


@pytest.mark.parametrize("leecher_encryption", ["off", "required"])
async def test_bittorrent_peers_still_download_from_the_shared_port(
    tmp_path: Path, leecher_encryption: str
) -> None:
    data = write_payload(tmp_path / "seed" / "payload.bin", 300_000, seed=14)
    meta = parse_torrent(
        create_torrent_with_libtorrent(tmp_path / "seed" / "payload.bin", version="v1")
    )
    async with (
        node() as (seeder, seeder_host),
        node() as (_, host_a),
        SwarmEngine(EngineConfig(listen_host=LOOPBACK, encryption=leecher_encryption)) as leecher,
    ):
        await seeder.add_torrent(meta, tmp_path / "seed")
        before = handshake_outcomes.copy()
        channel = await host_a.dial(LOOPBACK, seeder.port, expected=seeder_host.keys.public_key)
        session = await leecher.add_torrent(meta, tmp_path / "out", peers=[(LOOPBACK, seeder.port)])
        await asyncio.wait_for(session.wait_complete(), DEADLINE)
        outcome = "plain" if leecher_encryption == "off" else "rc4"
        assert handshake_outcomes[outcome] > before[outcome]  # went through the sniffer
        stream = channel.open_stream(ECHO)
        stream.send(b"alongside")
        async with asyncio.timeout(DEADLINE):
            assert await stream.receive() == b"alongside"
    assert (tmp_path / "out" / "payload.bin").read_bytes() == data


async def test_two_nodes_talk_over_the_channel_of_their_peer_port(tmp_path: Path) -> None:
    """The Node attaches its channel host to its peer listener, with its stored identity."""
    from servent.node.config import load_config
    from servent.node.node import Node

    def config(name: str) -> dict[str, object]:
        return {
            "data_dir": str(tmp_path / name),
            "dht_enabled": False,
            "lsd_enabled": False,
            "listen_host": LOOPBACK,
            "listen_port": 0,
        }

    async with (
        Node(load_config(None, config("a"))) as node_a,
        Node(load_config(None, config("b"))) as node_b,
    ):
        node_b.channels.protocols.register(ECHO, echo)
        address = node_b.status().listen_address
        assert address is not None
        channel = await node_a.channels.dial(
            LOOPBACK, address[1], expected=node_b.identity.public_key
        )
        assert channel.peer_id == node_b.identity_info()["id"]
        stream = channel.open_stream(ECHO)
        stream.send(b"node to node")
        async with asyncio.timeout(DEADLINE):
            assert await stream.receive() == b"node to node"
        assert node_b._swarm is not None
        limits = node_b._swarm.limits
        assert limits is not None and limits.connections == 1  # counted like a peer
    async with Node(load_config(None, config("b"))) as again:
        assert again.identity.public_key == node_b.identity.public_key  # kept on disk


async def test_unread_messages_pause_reading_until_the_handler_catches_up() -> None:
    release = asyncio.Event()
    received: list[bytes] = []

    async def slow_sink(stream: NodeStream) -> None:
        await release.wait()
        while (message := await stream.receive()) is not None:
            received.append(message)

    async with node() as (_, host_a), node() as (engine_b, host_b):
        host_b.protocols.register("servent/sink/1", slow_sink)
        channel = await host_a.dial(LOOPBACK, engine_b.port)
        stream = channel.open_stream("servent/sink/1")
        sent = [i.to_bytes(4, "big") * 256 for i in range(2000)]  # 2000 messages of 1 KiB
        for message in sent:
            stream.send(message)
        stream.close()
        await wait_for(lambda: host_a.keys.public_key in host_b.channels, "B has the channel")
        (accepted,) = host_b.channels[host_a.keys.public_key]
        await wait_for(lambda: accepted._reading_paused, "B paused reading")
        assert accepted._backlog <= 2 * 256  # bounded: reading stopped near the high mark
        release.set()
        await wait_for(lambda: len(received) == len(sent), "the sink read everything")
        assert received == sent
        await wait_for(lambda: not accepted.streams and not channel.streams, "streams forgotten")
        assert accepted._backlog == 0 and not accepted._reading_paused


async def test_connect_reuses_the_open_channel_and_joins_a_dial_under_way() -> None:
    async with node() as (_, host_a), node() as (engine_b, host_b):
        key_b, where = host_b.keys.public_key, [(LOOPBACK, engine_b.port)]
        first, second = await asyncio.gather(
            host_a.connect(key_b, where), host_a.connect(key_b, where)
        )
        assert first is second
        assert await host_a.connect(key_b) is first  # no address needed: reused
        assert len(host_a.channels[key_b]) == 1


async def test_a_cancelled_dial_fails_those_who_joined_it_instead_of_cancelling_them() -> None:
    """Regression: a joined ``connect`` raised CancelledError when the task that dialled
    was cancelled (its attempt timed out), so the joiner looked cancelled itself."""
    accepted: list[asyncio.StreamWriter] = []
    silent = await asyncio.start_server(lambda _r, w: accepted.append(w), LOOPBACK, 0)
    try:
        async with node() as (_, host_a), node() as (_, host_b):
            key_b, where = host_b.keys.public_key, [silent.sockets[0].getsockname()[:2]]
            owner = asyncio.ensure_future(host_a.connect(key_b, where))
            joiner = asyncio.ensure_future(host_a.connect(key_b, where))  # runs second: joins
            await wait_for(lambda: accepted, "the dial reaching the silent port")
            owner.cancel()
            with pytest.raises(ChannelError, match="given up"):
                await joiner
            assert owner.cancelled() and not host_a._connecting
    finally:
        for writer in accepted:
            writer.close()
        silent.close()
        await silent.wait_closed()


async def test_both_nodes_dialling_at_once_keep_the_same_single_channel() -> None:
    async with node() as (engine_a, host_a), node() as (engine_b, host_b):
        key_a, key_b = host_a.keys.public_key, host_b.keys.public_key
        await asyncio.gather(
            host_a.dial(LOOPBACK, engine_b.port, expected=key_b),
            host_b.dial(LOOPBACK, engine_a.port, expected=key_a),
        )

        def settled() -> bool:
            return len(host_a.channels.get(key_b, [])) == 1 == len(host_b.channels.get(key_a, []))

        await wait_for(settled, "one channel left on each side")
        (kept_a,), (kept_b,) = host_a.channels[key_b], host_b.channels[key_a]
        assert kept_a.conn.initiator != kept_b.conn.initiator  # two ends of one connection
        assert kept_a.conn._handshake.handshake_hash == kept_b.conn._handshake.handshake_hash
        assert kept_a.conn.initiator == (key_a < key_b)  # the smaller key's dial won
        stream = kept_b.open_stream(ECHO)
        stream.send(b"one channel")
        async with asyncio.timeout(DEADLINE):
            assert await stream.receive() == b"one channel"


async def test_a_dropped_channel_is_replaced_on_the_next_connect() -> None:
    async with node() as (_, host_a), node() as (engine_b, host_b):
        key_a, key_b = host_a.keys.public_key, host_b.keys.public_key
        where = [(LOOPBACK, engine_b.port)]
        first = await host_a.connect(key_b, where)
        await wait_for(lambda: key_a in host_b.channels, "B has the channel")
        host_b.channels[key_a][0].close(CloseCode.SHUTDOWN, "restarting")
        async with asyncio.timeout(DEADLINE):
            await first.wait_closed()
        assert host_a.channel_to(key_b) is None
        second = await host_a.connect(key_b, where)
        assert second is not first
        stream = second.open_stream(ECHO)
        stream.send(b"again")
        async with asyncio.timeout(DEADLINE):
            assert await stream.receive() == b"again"


async def test_connect_errors_name_the_cause() -> None:
    async with node() as (_, host_a), node() as (_, host_b):
        with pytest.raises(ChannelError, match="no address known"):
            await host_a.connect(host_b.keys.public_key)
        with pytest.raises(ChannelError, match="this node itself"):
            await host_a.connect(host_a.keys.public_key)
        with socket.socket() as unused:  # a port nobody listens on
            unused.bind((LOOPBACK, 0))
            port = unused.getsockname()[1]
        with pytest.raises(ChannelError, match=f"cannot reach node .*{port}"):
            await host_a.connect(host_b.keys.public_key, [(LOOPBACK, port)])
        assert host_a.channels == {} and not host_a._connecting


async def test_open_and_closed_channels_are_reported_to_observers() -> None:
    async with node() as (_, host_a), node() as (engine_b, host_b):
        seen: list[tuple[str, bytes | None]] = []
        host_b.on_channel_open.append(lambda c: seen.append(("open", c.peer_key)))
        host_b.on_channel_closed.append(lambda c: seen.append(("closed", c.peer_key)))
        channel = await host_a.dial(LOOPBACK, engine_b.port)
        key_a = host_a.keys.public_key
        await wait_for(lambda: seen == [("open", key_a)], "B reported the new channel")
        channel.close()
        await wait_for(lambda: len(seen) == 2, "B reported the closed channel")
        assert seen == [("open", key_a), ("closed", key_a)]


async def test_a_bulk_sender_waits_for_the_socket_and_everything_arrives_in_order() -> None:
    """drain() holds the sender back while the receiver pauses reading (no buffer grows)."""
    release = asyncio.Event()
    received: list[bytes] = []

    async def late_reader(stream: NodeStream) -> None:
        await release.wait()
        while (message := await stream.receive()) is not None:
            received.append(message)

    async with node() as (_, host_a), node() as (engine_b, host_b):
        host_b.protocols.register("servent/late/1", late_reader)
        channel = await host_a.dial(LOOPBACK, engine_b.port)
        stream = channel.open_stream("servent/late/1")
        sent = [i.to_bytes(4, "big") * (MAX_BODY // 4) for i in range(400)]  # 26 MB

        async def send_all() -> None:
            for message in sent:
                stream.send(message)
                await stream.drain()
            stream.close()

        sender = asyncio.get_running_loop().create_task(send_all())
        await wait_for(lambda: not channel._writable.is_set(), "the sender was held back")
        assert not sender.done()
        release.set()
        async with asyncio.timeout(DEADLINE):
            await sender
        await wait_for(lambda: len(received) == len(sent), "everything arrived")
        assert received == sent


async def test_channels_count_against_the_connection_limit() -> None:
    from servent.net.channel_host import ChannelHost
    from servent.net.limits import GlobalLimits

    limits = GlobalLimits(max_connections=1, download_rate=None, upload_rate=None, now=0.0)
    async with node() as (engine_b, host_b), node() as (_, host_a), node() as (_, host_c):
        host_b.limits = limits
        first = await host_a.dial(LOOPBACK, engine_b.port)
        await wait_for(lambda: limits.connections == 1, "the first channel took the slot")
        refused = await host_c.dial(LOOPBACK, engine_b.port)  # C's side finishes first (XX)
        async with asyncio.timeout(DEADLINE):
            await refused.wait_closed()  # then B says GOODBYE: no slot for it
        assert refused.close_event is not None and refused.close_event.by_peer
        assert refused.close_event.code == CloseCode.REFUSED
        assert "connection limit" in refused.close_event.reason
        assert isinstance(host_b, ChannelHost) and host_b.refused == 1
        first.close()
        await wait_for(lambda: limits.connections == 0, "the slot was given back")
        await host_c.dial(LOOPBACK, engine_b.port)


async def test_a_dial_to_a_node_that_already_opened_the_kept_channel_returns_that_channel() -> None:
    """Regression: a dial by address to a node whose own channel to us is the one both ends
    keep returned the new duplicate, closed at once; a stream opened on it was lost."""
    async with node() as (engine_a, host_a), node() as (engine_b, host_b):
        key_a, key_b = host_a.keys.public_key, host_b.keys.public_key
        small, big = (host_a, host_b) if key_a < key_b else (host_b, host_a)
        small_engine = engine_a if small is host_a else engine_b
        big_engine = engine_b if small is host_a else engine_a
        kept = await small.dial(LOOPBACK, big_engine.port)  # the smaller key's: both keep it
        await wait_for(lambda: big.channel_to(small.keys.public_key) is not None, "B sees it")
        again = await big.dial(LOOPBACK, small_engine.port)  # a duplicate by address
        assert again is big.channel_to(small.keys.public_key)
        assert again.conn.initiator is False  # the end of the kept channel, not the new dial
        stream = again.open_stream(ECHO)
        stream.send(b"over the kept channel")
        async with asyncio.timeout(DEADLINE):
            assert await stream.receive() == b"over the kept channel"
        assert small.channel_to(big.keys.public_key) is kept
