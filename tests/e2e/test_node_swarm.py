"""Two in-process nodes with the real swarm engine on loopback (no DHT, no LSD).

The downloader learns the seeder's address from the magnet's ``x.pe`` and the
metadata from the .torrent (so this runs without metadata exchange); the
node API must show real progress, peers, pause/resume and file priorities.
"""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

from network_nodes import loopback_node
from polling import wait_for as _until
from servent.storage.torrent_creator import create_torrent

WAIT = 30.0


def _folder(root: Path) -> Path:
    folder = root / "album"
    (folder / "disc").mkdir(parents=True)
    (folder / "big.bin").write_bytes(hashlib.sha256(b"x").digest() * 40_000)  # 1.28 MB
    (folder / "disc" / "small.txt").write_bytes(b"servent " * 30_000)  # 240 kB
    return folder


async def test_a_node_downloads_a_shared_folder_and_shows_progress_and_peers(
    tmp_path: Path,
) -> None:
    folder = _folder(tmp_path)
    async with (
        loopback_node(tmp_path / "seeder") as seeder,
        loopback_node(tmp_path / "leecher") as leecher,
    ):
        shared = await seeder.share(folder)
        assert seeder.torrent(shared.id).state == "seeding"
        await seeder.set_limits(shared.id, upload_rate_limit=1_000_000)  # about 1.5 s
        address = seeder.status().listen_address
        assert address is not None and address[1] > 0
        metainfo = create_torrent(folder)
        magnet = f"{shared.magnet}&x.pe=127.0.0.1:{address[1]}"
        torrent_id = await leecher.add(magnet)
        assert torrent_id == shared.id
        await leecher.add(metainfo.to_bytes())
        seen_peers: list[str] = []
        seen_progress: list[float] = []

        def done() -> bool:
            peers = leecher.peers(torrent_id)
            seen_peers.extend(p.client for p in peers)
            seen_progress.append(leecher.torrent(torrent_id).progress)
            return seen_progress[-1] == 1.0

        await _until(done, "download finished")
        status = leecher.torrent(torrent_id)
        assert status.state == "seeding" and status.have_bytes == metainfo.total_length
        assert seen_peers and all(c.startswith("servent") for c in seen_peers)
        assert any(0.0 < p < 1.0 for p in seen_progress)
        assert seen_progress == sorted(seen_progress)
        assert all(f.progress == 1.0 for f in leecher.files(torrent_id))
        save = Path(status.save_path)
        for path in ("big.bin", "disc/small.txt"):
            assert (save / "album" / path).read_bytes() == (folder / path).read_bytes()
        # The seeder saw the leecher and counted what it sent.
        assert seeder.status().uploaded >= metainfo.total_length
        assert leecher.status().downloaded >= metainfo.total_length

        await leecher.pause(torrent_id)
        paused = leecher.torrent(torrent_id)
        assert (paused.state, paused.progress, leecher.peers(torrent_id)) == ("paused", 1.0, [])
        await leecher.resume(torrent_id)
        await _until(lambda: leecher.torrent(torrent_id).state == "seeding", "seeding again")


async def test_skipped_file_is_not_downloaded_until_its_priority_is_raised(
    tmp_path: Path,
) -> None:
    folder = _folder(tmp_path)
    metainfo = create_torrent(folder)
    async with (
        loopback_node(tmp_path / "seeder") as seeder,
        loopback_node(tmp_path / "leecher") as leecher,
    ):
        shared = await seeder.share(folder)
        address = seeder.status().listen_address
        assert address is not None
        torrent_id = await leecher.add(f"{shared.magnet}&x.pe=127.0.0.1:{address[1]}")
        await leecher.pause(torrent_id)  # set priorities before anything is fetched
        await leecher.add(metainfo.to_bytes())
        files = {f.path: f.index for f in leecher.files(torrent_id)}
        big = files["album/big.bin"]
        await leecher.set_file_priorities(torrent_id, {big: 0})
        await leecher.resume(torrent_id)

        await _until(lambda: leecher.torrent(torrent_id).state == "seeding", "wanted done")
        by_path = {f.path: f for f in leecher.files(torrent_id)}
        assert by_path["album/disc/small.txt"].progress == 1.0
        assert by_path["album/big.bin"].progress < 1.0
        assert by_path["album/big.bin"].priority == 0
        save = Path(leecher.torrent(torrent_id).save_path) / "album"
        assert not (save / "big.bin").exists()

        await leecher.set_file_priorities(torrent_id, {big: 1})
        await _until(lambda: leecher.torrent(torrent_id).progress == 1.0, "all done")
        await _until((save / "big.bin").exists, "big.bin renamed from .part")
        assert (save / "big.bin").read_bytes() == (folder / "big.bin").read_bytes()


async def test_runtime_limits_reach_the_running_torrent(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    async with loopback_node(tmp_path / "seeder") as seeder:
        shared = await seeder.share(folder)
        await seeder.set_limits(shared.id, upload_rate_limit=50_000)
        await seeder.set_limits(
            download_rate_limit=70_000, max_connections=9, max_peers_per_torrent=3
        )
        session = seeder._running(shared.id).session
        assert session is not None and session.upload_bucket.rate == 50_000
        assert seeder._swarm is not None
        limits = seeder._swarm.limits
        assert limits is not None
        assert (limits.download.rate, limits.max_connections) == (70_000, 9)
        assert session.config.max_connections == 3


async def test_magnet_alone_fetches_metadata_then_downloads(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    async with (
        loopback_node(tmp_path / "seeder") as seeder,
        loopback_node(tmp_path / "leecher") as leecher,
    ):
        shared = await seeder.share(folder)
        address = seeder.status().listen_address
        assert address is not None
        events = leecher.events()
        torrent_id = await leecher.add(f"{shared.magnet}&x.pe=127.0.0.1:{address[1]}")
        kinds: list[str] = []
        async with asyncio.timeout(WAIT):
            async for event in events:
                kinds.append(event.type)
                if event.type == "torrent_completed":
                    break
        await events.aclose()
        assert kinds.index("metadata_received") < kinds.index("torrent_completed")
        status = leecher.torrent(torrent_id)
        assert (status.name, status.progress, status.state) == ("album", 1.0, "seeding")
        save = Path(status.save_path) / "album"
        assert (save / "big.bin").read_bytes() == (folder / "big.bin").read_bytes()
    async with loopback_node(tmp_path / "leecher") as again:  # the metadata was stored
        assert again.torrent(torrent_id).size == shared_size(folder)


def shared_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


async def test_node_requiring_encryption_downloads_from_a_default_node(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    async with (
        loopback_node(tmp_path / "seeder") as seeder,
        loopback_node(tmp_path / "leecher", encryption="required") as leecher,
    ):
        shared = await seeder.share(folder)
        address = seeder.status().listen_address
        assert address is not None
        torrent_id = await leecher.add(f"{shared.magnet}&x.pe=127.0.0.1:{address[1]}")
        await _until(lambda: leecher.torrent(torrent_id).progress == 1.0, "encrypted download")
        save = Path(leecher.torrent(torrent_id).save_path) / "album"
        assert (save / "big.bin").read_bytes() == (folder / "big.bin").read_bytes()


async def test_max_peers_per_ip_setting_reaches_the_torrent(tmp_path: Path) -> None:
    """The per-address cap (against one host filling a seeder) comes from the node config."""
    folder = _folder(tmp_path)
    async with loopback_node(tmp_path / "seeder", max_peers_per_ip=5) as seeder:
        shared = await seeder.share(folder)
        await seeder.set_limits(max_peers_per_torrent=7)  # other limits keep it
        session = seeder._running(shared.id).session
        assert session is not None
        assert (session.config.max_peers_per_ip, session.config.max_connections) == (5, 7)
