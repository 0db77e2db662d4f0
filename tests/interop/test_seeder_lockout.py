"""A flood of idle connections cannot lock a libtorrent leecher out of a servent seeder.

Regression: 50 connections that complete the BitTorrent handshake and then
send nothing but keep-alives filled a seeding torrent's 50 peer slots, and a
real leecher could no longer connect.  Two floods, from raw sockets bound to
loopback source addresses other than the leecher's 127.0.0.1:

* all 50 from one address (127.0.0.2): the per-address cap keeps all but
  three out, so the torrent never fills;
* one each from 50 addresses (127.0.1.1 .. 127.0.1.50): the torrent fills,
  and the leecher gets the slot of the least useful idle connection once
  the idle ones have had their grace period;
* one each from 20 addresses (127.0.2.x) against a node whose node-wide limit
  is 20 connections: the torrent has room but the node has none, and the
  leecher again takes an idle connection's place.

Either way the libtorrent leecher must download the whole payload.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from reference_clients import (
    LOOPBACK,
    create_torrent_with_libtorrent,
    libtorrent_peer,
    write_payload,
)

from servent.codec.metainfo import parse_torrent
from servent.net.engine import EngineConfig, SwarmEngine
from servent.net.torrent_session import TorrentSession

pytestmark = pytest.mark.interop

SIZE = 2 * 1024 * 1024
FLOOD = 50
DEADLINE = 90.0
KEEPALIVE_EVERY = 2.0


class IdleClient:
    """One raw connection: a BitTorrent handshake, then only keep-alives."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.handshaken = asyncio.Event()
        self.closed = asyncio.Event()

    async def run(self, port: int, info_hash: bytes) -> None:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(LOOPBACK, port, local_addr=(self.source, 0)), 10.0
            )
        except (OSError, TimeoutError):
            self.closed.set()
            return
        try:
            peer_id = b"-ID0000-" + os.urandom(12)
            writer.write(b"\x13BitTorrent protocol" + bytes(8) + info_hash + peer_id)
            await writer.drain()
            await asyncio.wait_for(reader.readexactly(68), 10.0)
            self.handshaken.set()
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self._discard(reader))
                tasks.create_task(self._keep_alive(writer))
        except (OSError, TimeoutError, asyncio.IncompleteReadError, EOFError):
            pass
        finally:
            self.closed.set()
            writer.close()

    async def _discard(self, reader: asyncio.StreamReader) -> None:
        """Read (and ignore) whatever the seeder sends, until it closes the connection."""
        while await reader.read(65536):
            pass
        raise EOFError

    async def _keep_alive(self, writer: asyncio.StreamWriter) -> None:
        while True:
            writer.write(bytes(4))
            await writer.drain()
            await asyncio.sleep(KEEPALIVE_EVERY)  # the flood's own pace, not synchronisation


@contextlib.asynccontextmanager
async def idle_flood(
    sources: list[str], port: int, info_hash: bytes
) -> AsyncIterator[list[IdleClient]]:
    """Run one :class:`IdleClient` per source address until the block ends."""
    clients = [IdleClient(source) for source in sources]
    tasks = [asyncio.create_task(client.run(port, info_hash)) for client in clients]
    try:
        yield clients
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def settled(clients: list[IdleClient], within: float = 30.0) -> None:
    """Until every client either finished its handshake or was closed."""
    waits = [
        asyncio.wait(
            [asyncio.ensure_future(c.handshaken.wait()), asyncio.ensure_future(c.closed.wait())],
            return_when=asyncio.FIRST_COMPLETED,
        )
        for c in clients
    ]
    await asyncio.wait_for(asyncio.gather(*waits), within)


async def wait_open_peers(torrent: TorrentSession, count: int, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while len(torrent.open_peers) < count:
        assert time.monotonic() < deadline, f"seeder holds {len(torrent.open_peers)} peers"
        await asyncio.sleep(0.05)  # polling the seeder's state with a deadline


NODE_LIMIT = 20
SPREADS = {
    "one address": (["127.0.0.2"] * FLOOD, 200),
    "fifty addresses": ([f"127.0.1.{n}" for n in range(1, FLOOD + 1)], 200),
    "node-wide limit": ([f"127.0.2.{n}" for n in range(1, NODE_LIMIT + 1)], NODE_LIMIT),
}


@pytest.mark.parametrize("spread", list(SPREADS))
async def test_libtorrent_leecher_completes_despite_idle_flood(tmp_path: Path, spread: str) -> None:
    data = write_payload(tmp_path / "seed" / "payload.bin", SIZE, seed=7)
    torrent = create_torrent_with_libtorrent(tmp_path / "seed" / "payload.bin", version="v1")
    meta = parse_torrent(torrent)
    sources, node_limit = SPREADS[spread]
    config = EngineConfig(listen_host=LOOPBACK, trackers=False, max_connections=node_limit)
    async with SwarmEngine(config) as engine:
        seeder = await engine.add_torrent(meta, tmp_path / "seed")
        assert seeder.complete
        assert seeder.config.max_connections == FLOOD
        async with idle_flood(sources, engine.port, meta.wire_info_hash) as clients:
            await settled(clients)
            admitted = sum(c.handshaken.is_set() for c in clients)
            if spread == "one address":
                # (on a slow machine the last may arrive after the first ones' grace)
                assert admitted - seeder.evicted == seeder.config.max_peers_per_ip == 3
                assert seeder.refused_incoming == FLOOD - admitted
            else:
                assert admitted == len(sources)
                await wait_open_peers(seeder, len(sources))
            with libtorrent_peer() as leecher:
                handle = leecher.add_torrent(torrent, tmp_path / "out", seed=False)
                last_dial = 0.0

                def downloaded() -> bool:
                    nonlocal last_dial
                    if not handle.get_peer_info() and time.monotonic() - last_dial > 2.0:
                        last_dial = time.monotonic()  # refused while the flood is fresh: retry
                        leecher.connect(handle, LOOPBACK, engine.port)
                    return bool(handle.status().is_seeding)

                await leecher.wait_for(downloaded, "the leecher to download", DEADLINE)
                await leecher.flush(handle)
            if spread != "one address":
                assert seeder.evicted >= 1
                assert sum(c.closed.is_set() for c in clients) >= seeder.evicted
            assert len(seeder.open_peers) <= FLOOD
    assert (tmp_path / "out" / "payload.bin").read_bytes() == data
