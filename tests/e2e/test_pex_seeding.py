"""A complete seeder uses PEX flags: it dials a leecher it hears of, never a seed.

Four servent engines on loopback.  A hub (a slow leecher) is connected to a
seed and to another slow leecher; then it dials our complete seeder and tells
it, by ``ut_pex``, of both (the seed flagged as a seed).  The seeder dials the
leecher at once (its dial loop runs with both addresses known) and leaves the
seed alone: two seeds have nothing to trade.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from interop.reference_clients import LOOPBACK, write_payload
from servent.net.engine import EngineConfig, SwarmEngine
from servent.net.torrent_session import TorrentConfig, TorrentSession
from servent.storage.torrent_creator import create_torrent

pytestmark = pytest.mark.e2e

SIZE = 4 * 1024 * 1024
SLOW = 32 * 1024  # bytes/s: the leechers stay leechers for the whole test
DEADLINE = 20.0


async def _until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)  # polling a condition under a bounded deadline


def _dialled(session: TorrentSession) -> set[tuple[str, int]]:
    return {peer.dialled for peer in session.open_peers if peer.dialled is not None}


async def test_complete_seeder_dials_a_pex_leecher_but_not_a_pex_seed(tmp_path: Path) -> None:
    write_payload(tmp_path / "seed" / "payload.bin", SIZE, seed=11)
    meta = create_torrent(tmp_path / "seed" / "payload.bin", piece_length=64 * 1024)
    (tmp_path / "ours").mkdir()
    shutil.copy(tmp_path / "seed" / "payload.bin", tmp_path / "ours")
    slow = TorrentConfig(download_rate=SLOW, upload_rate=SLOW)
    config = EngineConfig(listen_host=LOOPBACK, lsd=False, trackers=False)
    async with (
        SwarmEngine(config) as other_seed,
        SwarmEngine(config) as leecher,
        SwarmEngine(config) as hub,
        SwarmEngine(config) as ours,
    ):
        assert (await other_seed.add_torrent(meta, tmp_path / "seed")).complete
        seeding = await ours.add_torrent(meta, tmp_path / "ours")
        assert seeding.complete
        seed_address, leecher_address = (LOOPBACK, other_seed.port), (LOOPBACK, leecher.port)
        await leecher.add_torrent(meta, tmp_path / "leecher", config=slow)
        hub_session = await hub.add_torrent(
            meta, tmp_path / "hub", peers=[seed_address, leecher_address], config=slow
        )
        await _until(
            lambda: (
                _dialled(hub_session) == {seed_address, leecher_address}
                and any(peer.has_all for peer in hub_session.open_peers)
            ),
            "the hub to connect to the seed and the leecher",
        )
        hub_session.add_peers([(LOOPBACK, ours.port)])
        await _until(
            lambda: leecher_address in _dialled(seeding), "our seeder to dial the PEX leecher"
        )
        told_seed = seeding.known.get(seed_address)
        told_leecher = seeding.known.get(leecher_address)
        assert told_seed is not None and told_leecher is not None, "not learnt by PEX"
        assert (told_seed.source, told_seed.seed) == ("pex", True)
        assert (told_leecher.source, told_leecher.seed) == ("pex", False)
        # The seed was never dialled: no attempt, no failure, no handshake.
        assert seed_address not in _dialled(seeding)
        assert not told_seed.busy and not told_seed.ever_connected
        assert told_seed.failures == 0 and told_seed.last_error is None
        assert not hub_session.complete, "the hub finished: it should still be leeching"
