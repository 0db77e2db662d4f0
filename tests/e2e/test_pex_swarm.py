"""Peer exchange (BEP 11) between servent nodes on loopback.

A hub node downloads (slowly, rate-limited) from three seeders; a newcomer
is told only the hub's address.  Through the hub's ``ut_pex`` messages the
newcomer learns the seeders, dials them and takes most of the payload from
peers nobody told it about.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from interop.reference_clients import LOOPBACK, create_torrent_with_libtorrent, write_payload
from servent.codec.metainfo import parse_torrent
from servent.net.engine import EngineConfig, SwarmEngine
from servent.net.torrent_session import TorrentConfig
from servent.storage.torrent_creator import TorrentOptions, create_torrent

pytestmark = pytest.mark.e2e

SIZE = 4 * 1024 * 1024
DEADLINE = 30.0
SLOW = 64 * 1024  # bytes/s: the hub stays a leecher for the whole test


async def test_newcomer_learns_seeders_through_pex_and_downloads_from_them(
    tmp_path: Path,
) -> None:
    data = write_payload(tmp_path / "seed0" / "payload.bin", SIZE, seed=7)
    torrent = create_torrent_with_libtorrent(
        tmp_path / "seed0" / "payload.bin", version="hybrid", piece_length=64 * 1024
    )
    meta = parse_torrent(torrent)
    for number in (1, 2):
        (tmp_path / f"seed{number}").mkdir()
        shutil.copy(tmp_path / "seed0" / "payload.bin", tmp_path / f"seed{number}")
    config = EngineConfig(listen_host=LOOPBACK)
    async with (
        SwarmEngine(config) as seed0,
        SwarmEngine(config) as seed1,
        SwarmEngine(config) as seed2,
        SwarmEngine(config) as hub,
        SwarmEngine(config) as newcomer,
    ):
        seeders = [seed0, seed1, seed2]
        for number, seeder in enumerate(seeders):
            seeding = await seeder.add_torrent(meta, tmp_path / f"seed{number}")
            assert seeding.complete
        seeder_labels = {f"{LOOPBACK}:{seeder.port}" for seeder in seeders}
        hub_session = await hub.add_torrent(
            meta,
            tmp_path / "hub",
            peers=[(LOOPBACK, seeder.port) for seeder in seeders],
            config=TorrentConfig(download_rate=SLOW, upload_rate=SLOW),
        )
        await asyncio.wait_for(hub_session.wait_have(1), DEADLINE)
        session = await newcomer.add_torrent(meta, tmp_path / "out", peers=[(LOOPBACK, hub.port)])
        await asyncio.wait_for(session.wait_complete(), DEADLINE)
        stats = session.statistics()
        learnt = {f"{host}:{port}" for host, port in session.extensions.pex_learnt}
        assert not hub_session.complete, "the hub finished: it should still be leeching"
    assert (tmp_path / "out" / "payload.bin").read_bytes() == data
    assert seeder_labels <= learnt, f"learnt {learnt} by PEX, seeders are {seeder_labels}"
    from_seeders = sum(stats.downloaded_from.get(label, 0) for label in seeder_labels)
    from_hub = stats.downloaded_from.get(f"{LOOPBACK}:{hub.port}", 0)
    assert from_seeders > SIZE // 2, f"{from_seeders} bytes from PEX-learnt seeders"
    assert sum(1 for label in seeder_labels if stats.downloaded_from.get(label, 0)) >= 2
    assert from_hub < from_seeders


async def test_private_torrent_announces_no_pex(tmp_path: Path) -> None:
    write_payload(tmp_path / "seed" / "payload.bin", 256 * 1024, seed=8)
    meta = create_torrent(tmp_path / "seed" / "payload.bin", options=TorrentOptions(private=True))
    assert meta.private
    config = EngineConfig(listen_host=LOOPBACK)
    async with SwarmEngine(config) as seeder, SwarmEngine(config) as leecher:
        seeding = await seeder.add_torrent(meta, tmp_path / "seed")
        session = await leecher.add_torrent(meta, tmp_path / "out", peers=[(LOOPBACK, seeder.port)])
        await asyncio.wait_for(session.wait_complete(), DEADLINE)
        for torrent in (seeding, session):
            assert torrent.extension_registry.local_id("ut_pex") is None
            assert torrent.extension_registry.local_id("ut_metadata") is not None
        assert not session.extensions.pex_learnt
