"""A seeder and a leecher that dial each other at the same moment keep one connection.

Seeds dial the peers trackers hand them (decision 0021), so a seeder and a
leecher that learn of each other together both dial.  Each end then sees two
connections with the same peer id and closes one; if the two ends closed
different ones, both would be lost (and the retry would race again).  Here
both dials start in the same event-loop step (on loopback each end then sees
its incoming handshake first, the losing order); the ends must keep one of
the two crossing connections, the same one, and the download completes.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from interop.reference_clients import LOOPBACK, write_payload
from servent.net.engine import EngineConfig, SwarmEngine
from servent.net.torrent_session import TorrentConfig, TorrentSession
from servent.storage.torrent_creator import create_torrent

pytestmark = pytest.mark.e2e

SIZE = 1024 * 1024
SLOW = 256 * 1024  # bytes/s: about four seconds, time to look at the connections
DEADLINE = 30.0


def sockets(torrent: TorrentSession) -> list[tuple[object, object]]:
    """(local, remote) address of each open connection."""
    pairs = []
    for peer in torrent.open_peers:
        transport = peer.session.transport
        assert transport is not None
        pairs.append((transport.get_extra_info("sockname"), transport.get_extra_info("peername")))
    return pairs


async def test_crossing_dials_settle_on_one_shared_connection(tmp_path: Path) -> None:
    data = write_payload(tmp_path / "seed" / "payload.bin", SIZE, seed=5)
    meta = create_torrent(tmp_path / "seed" / "payload.bin", piece_length=64 * 1024)
    config = EngineConfig(listen_host=LOOPBACK, trackers=False)
    async with SwarmEngine(config) as seeding, SwarmEngine(config) as leeching:
        seeder = await seeding.add_torrent(
            meta, tmp_path / "seed", config=TorrentConfig(upload_rate=SLOW)
        )
        leecher = await leeching.add_torrent(meta, tmp_path / "out")
        deadline = time.monotonic() + DEADLINE
        while seeder._tasks is None or leecher._tasks is None:  # both owner tasks running
            assert time.monotonic() < deadline, "a torrent never started"
            await asyncio.sleep(0.01)  # polling with a deadline
        seeder.add_peers([(LOOPBACK, leeching.port)], source="tracker")
        leecher.add_peers([(LOOPBACK, seeding.port)], source="tracker")
        now = asyncio.get_running_loop().time()
        seeder._dial_due(now)  # both dials in one loop step: they cross
        leecher._dial_due(now)
        crossing = set(seeder.peers) | set(leecher.peers)
        assert len(crossing) == 2
        while True:
            mine, theirs = sockets(seeder), sockets(leecher)
            settled = len(seeder.peers) == len(leecher.peers) == 1
            if settled and len(mine) == len(theirs) == 1:
                break
            assert not leecher.complete, "finished before the connections settled"
            assert time.monotonic() < deadline, f"seeder {mine}, leecher {theirs}"
            await asyncio.sleep(0.02)  # polling both engines' state with a deadline
        assert mine[0] == theirs[0][::-1], "the two ends kept different connections"
        kept = {peer.session for peer in (*seeder.open_peers, *leecher.open_peers)}
        assert kept & crossing, "both crossing connections were closed (a redial made a third)"
        await asyncio.wait_for(leecher.wait_complete(), DEADLINE)
    assert (tmp_path / "out" / "payload.bin").read_bytes() == data
