"""Peer exchange (BEP 11) with libtorrent, both directions.

libtorrent -> servent: a libtorrent leecher (slow, so it stays a leecher) is
connected to two servent seeders; a servent newcomer told only of the
libtorrent peer learns the seeders from libtorrent's ``ut_pex`` messages and
downloads from them.

servent -> libtorrent: a servent hub (slow leecher) is connected to two
servent seeders; a libtorrent newcomer told only of the hub learns the
seeders from servent's ``ut_pex`` and takes data from them.
"""

from __future__ import annotations

import asyncio
import shutil
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
from servent.net.torrent_session import TorrentConfig

pytestmark = pytest.mark.interop

SIZE = 3 * 1024 * 1024
DEADLINE = 60.0
SLOW = 32 * 1024


def make_seed_folders(tmp_path: Path) -> tuple[bytes, bytes]:
    data = write_payload(tmp_path / "seed0" / "payload.bin", SIZE, seed=13)
    torrent = create_torrent_with_libtorrent(
        tmp_path / "seed0" / "payload.bin", version="v1", piece_length=64 * 1024
    )
    (tmp_path / "seed1").mkdir()
    shutil.copy(tmp_path / "seed0" / "payload.bin", tmp_path / "seed1")
    return torrent, data


async def test_servent_learns_peers_from_libtorrent_pex(tmp_path: Path) -> None:
    torrent, data = make_seed_folders(tmp_path)
    meta = parse_torrent(torrent)
    config = EngineConfig(listen_host=LOOPBACK)
    async with (
        SwarmEngine(config) as seed0,
        SwarmEngine(config) as seed1,
        SwarmEngine(config) as newcomer,
    ):
        await seed0.add_torrent(meta, tmp_path / "seed0")
        await seed1.add_torrent(meta, tmp_path / "seed1")
        seeders = {f"{LOOPBACK}:{seed.port}" for seed in (seed0, seed1)}
        with libtorrent_peer() as hub:
            handle = hub.add_torrent(torrent, tmp_path / "hub", seed=False, download_limit=SLOW)
            for seed in (seed0, seed1):
                hub.connect(handle, LOOPBACK, seed.port)
            await hub.wait_for(
                lambda: len(handle.get_peer_info()) >= 2, "libtorrent to connect to the seeders"
            )
            session = await newcomer.add_torrent(
                meta, tmp_path / "out", peers=[(LOOPBACK, hub.port)]
            )
            await asyncio.wait_for(session.wait_complete(), DEADLINE)
            learnt = {f"{host}:{port}" for host, port in session.extensions.pex_learnt}
            seed_flags = session.extensions.pex_seed_flags
            stats = session.statistics()
    assert seeders <= learnt, f"learnt {learnt} from libtorrent's PEX"
    assert seed_flags >= 2, "libtorrent's PEX flagged the seeders as seeds (0x02)"
    assert sum(stats.downloaded_from.get(label, 0) for label in seeders) > SIZE // 2
    assert (tmp_path / "out" / "payload.bin").read_bytes() == data


async def test_libtorrent_learns_peers_from_servent_pex(tmp_path: Path) -> None:
    torrent, data = make_seed_folders(tmp_path)
    meta = parse_torrent(torrent)
    config = EngineConfig(listen_host=LOOPBACK)
    async with (
        SwarmEngine(config) as seed0,
        SwarmEngine(config) as seed1,
        SwarmEngine(config) as hub,
    ):
        seeding = [
            await seed0.add_torrent(meta, tmp_path / "seed0"),
            await seed1.add_torrent(meta, tmp_path / "seed1"),
        ]
        hub_session = await hub.add_torrent(
            meta,
            tmp_path / "hub",
            peers=[(LOOPBACK, seed0.port), (LOOPBACK, seed1.port)],
            config=TorrentConfig(download_rate=SLOW, upload_rate=SLOW),
        )
        await asyncio.wait_for(hub_session.wait_have(1), DEADLINE)
        with libtorrent_peer() as newcomer:
            handle = newcomer.add_torrent(torrent, tmp_path / "out", seed=False)
            newcomer.connect(handle, LOOPBACK, hub.port)
            await newcomer.wait_complete(handle, DEADLINE)
        uploaded = [session.statistics().uploaded for session in seeding]
        to_hub = hub_session.statistics().downloaded
    assert all(count > 0 for count in uploaded), f"seeders uploaded {uploaded}"
    # the hub is slow: most of what the seeders sent went to the libtorrent newcomer
    assert sum(uploaded) - to_hub > SIZE // 2, f"seeders sent {uploaded}, {to_hub} to the hub"
    assert (tmp_path / "out" / "payload.bin").read_bytes() == data
