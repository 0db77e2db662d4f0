"""The connection manager on loopback: an idle connection is given up for a
waiting candidate when the torrent is at its connection target, and a node
never keeps dialling itself."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from interop.reference_clients import (
    LOOPBACK,
    create_torrent_with_libtorrent,
    wait_until,
    write_payload,
)
from servent.codec.metainfo import parse_torrent
from servent.net.connection_manager import IdlePeerReplacer
from servent.net.engine import EngineConfig, SwarmEngine
from servent.net.torrent_session import TorrentConfig

pytestmark = pytest.mark.e2e

SIZE = 1024 * 1024 + 99
DEADLINE = 20.0


async def test_idle_peer_is_replaced_by_a_waiting_seeder(tmp_path: Path) -> None:
    data = write_payload(tmp_path / "seed" / "payload.bin", SIZE, seed=21)
    meta = parse_torrent(
        create_torrent_with_libtorrent(tmp_path / "seed" / "payload.bin", version="v1")
    )
    config = EngineConfig(listen_host=LOOPBACK)
    async with (
        SwarmEngine(config) as seeder,
        SwarmEngine(config) as empty,
        SwarmEngine(config) as engine,
    ):
        await seeder.add_torrent(meta, tmp_path / "seed")
        await empty.add_torrent(meta, tmp_path / "empty")  # a peer with nothing to give
        session = await engine.add_torrent(
            meta,
            tmp_path / "out",
            peers=[(LOOPBACK, empty.port)],
            config=TorrentConfig(max_connections=1),
        )
        session.replacer = IdlePeerReplacer(interval=0.2, min_age=0.5)
        await wait_until(lambda: len(session.open_peers) == 1, "the idle peer to connect")
        session.add_peers([(LOOPBACK, seeder.port)], source="tracker")
        await asyncio.wait_for(session.wait_complete(), DEADLINE)
        stats = session.statistics()
        assert session.replacer.replaced >= 1
        assert len(session.peers) <= 1, "the connection target was exceeded"
    assert stats.downloaded_from.get(f"{LOOPBACK}:{seeder.port}", 0) >= SIZE
    assert (tmp_path / "out" / "payload.bin").read_bytes() == data


async def test_node_never_dials_itself(tmp_path: Path) -> None:
    write_payload(tmp_path / "seed" / "payload.bin", SIZE, seed=22)
    meta = parse_torrent(
        create_torrent_with_libtorrent(tmp_path / "seed" / "payload.bin", version="v1")
    )
    async with SwarmEngine(EngineConfig(listen_host=LOOPBACK)) as engine:
        session = await engine.add_torrent(meta, tmp_path / "out")
        own = (LOOPBACK, engine.port)
        session.add_peers([own, ("localhost", engine.port)], source="pex")
        assert own not in session.known, "our own listening address was accepted"
        # Reached by a route the address check cannot know: the peer id gives us away.
        session.known.add(own, source="dht")
        await wait_until(lambda: own in session.own_addresses, "the self-connection to be seen")
        assert own not in session.known
        session.add_peers([own], source="tracker")
        assert own not in session.known


async def test_stopping_cancels_dials_stuck_in_their_handshake(tmp_path: Path) -> None:
    write_payload(tmp_path / "seed" / "payload.bin", SIZE, seed=23)
    meta = parse_torrent(
        create_torrent_with_libtorrent(tmp_path / "seed" / "payload.bin", version="v1")
    )
    accepted: list[asyncio.StreamWriter] = []

    async def silent(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)  # accepts, never answers the MSE handshake

    server = await asyncio.start_server(silent, LOOPBACK, 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with SwarmEngine(EngineConfig(listen_host=LOOPBACK)) as engine:
            session = await engine.add_torrent(meta, tmp_path / "out", peers=[(LOOPBACK, port)])
            await wait_until(lambda: accepted, "the dial to reach the silent peer")
            started = asyncio.get_running_loop().time()
            await engine.remove_torrent(session)
            took = asyncio.get_running_loop().time() - started
        assert took < 2.0, f"stopping waited {took:.1f} s for a stuck handshake"
    finally:
        for writer in accepted:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_incoming_peer_is_remembered_and_dialled_back_after_a_drop(tmp_path: Path) -> None:
    write_payload(tmp_path / "seed" / "payload.bin", SIZE, seed=24)
    meta = parse_torrent(
        create_torrent_with_libtorrent(tmp_path / "seed" / "payload.bin", version="v1")
    )
    config = EngineConfig(listen_host=LOOPBACK)
    async with SwarmEngine(config) as node_a, SwarmEngine(config) as node_b:
        a = await node_a.add_torrent(
            meta, tmp_path / "a", config=TorrentConfig(reconnect_delay=0.2)
        )
        await node_b.add_torrent(
            meta,
            tmp_path / "b",
            peers=[(LOOPBACK, node_a.port)],
            config=TorrentConfig(reconnect_delay=60.0),  # only A may dial back
        )
        b_address = (LOOPBACK, node_b.port)
        await wait_until(lambda: b_address in a.known, "A to learn where B listens")
        entry = a.known.get(b_address)
        assert entry is not None and entry.source == "incoming" and entry.busy
        (incoming,) = a.open_peers
        assert incoming.dialled is None
        incoming.session.close("dropped by the test")
        await wait_until(
            lambda: any(p.dialled == b_address for p in a.open_peers), "A to dial B back"
        )
