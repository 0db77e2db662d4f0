"""Swarm interop with aria2 on loopback, both directions, v1 and hybrid torrents.

aria2 cannot be handed a peer address, so as a leecher it finds the servent
seeder through a minimal loopback tracker; as a seeder it accepts servent's
dial on its listen port.  aria2 reads hybrid torrents as v1 (pad files
included), but names them by a hash of its own (it drops the empty keys of
the v2 file tree before hashing): servent must accept and dial that alias.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from reference_clients import (
    LOOPBACK,
    aria2_leecher_args,
    aria2_seeder_args,
    aria2c,
    create_torrent_with_libtorrent,
    free_port,
    loopback_tracker,
    write_content,
)

from servent.codec.metainfo import parse_torrent
from servent.net.engine import EngineConfig, SwarmEngine
from servent.proto.peerwire import aria2_info_hash

pytestmark = pytest.mark.interop

DEADLINE = 60.0
FILES = {"one.bin": 1_234_567, "two/three.bin": 345_679}


def write_pad_files(torrent: bytes, root: Path) -> None:
    """aria2 treats BEP 47 pad files as real files that must exist to seed."""
    for entry in parse_torrent(torrent).files:
        if entry.pad:
            path = root.joinpath(*entry.path)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(bytes(entry.length))


@pytest.mark.parametrize("version", ["v1", "hybrid"])
async def test_servent_downloads_from_aria2_seeder(tmp_path: Path, version: str) -> None:
    expected = write_content(tmp_path / "seed", FILES, first_seed=7)
    torrent = create_torrent_with_libtorrent(
        tmp_path / "seed" / "content", version=version, piece_length=32 * 1024
    )
    torrent_file = tmp_path / "t.torrent"
    torrent_file.write_bytes(torrent)
    write_pad_files(torrent, tmp_path / "seed")
    port = free_port()
    async with aria2c(aria2_seeder_args(torrent_file, tmp_path / "seed", port), port) as aria2:
        await aria2.wait_listening()
        async with SwarmEngine(EngineConfig(listen_host=LOOPBACK)) as engine:
            session = await engine.add_torrent(
                parse_torrent(torrent), tmp_path / "out", peers=[aria2.address]
            )
            try:
                await asyncio.wait_for(session.wait_complete(), DEADLINE)
            except TimeoutError:
                pytest.fail(f"no download from aria2: {session.statistics()} {aria2.log_tail()}")
            assert session.statistics().downloaded_from.get(f"{LOOPBACK}:{port}", 0) > 0
    for name, data in expected.items():
        assert (tmp_path / "out" / "content" / name).read_bytes() == data


@pytest.mark.parametrize("version", ["v1", "hybrid"])
async def test_aria2_downloads_from_servent_seeder(tmp_path: Path, version: str) -> None:
    expected = write_content(tmp_path / "seed", FILES, first_seed=7)
    torrent = create_torrent_with_libtorrent(
        tmp_path / "seed" / "content", version=version, piece_length=32 * 1024
    )
    torrent_file = tmp_path / "t.torrent"
    torrent_file.write_bytes(torrent)
    meta = parse_torrent(torrent)
    async with (
        loopback_tracker() as tracker,
        SwarmEngine(EngineConfig(listen_host=LOOPBACK)) as engine,
    ):
        session = await engine.add_torrent(meta, tmp_path / "seed")
        assert session.complete
        # aria2 announces a hybrid torrent under its alias hash (see the module docstring).
        tracker.add_peer(
            aria2_info_hash(meta.info_bytes) or meta.wire_info_hash, LOOPBACK, engine.port
        )
        port = free_port()
        args = aria2_leecher_args(torrent_file, tmp_path / "out", port, tracker.url)
        async with aria2c(args, port) as aria2:
            code = await aria2.wait(DEADLINE)
            assert code == 0, aria2.log_tail()
        assert session.statistics().uploaded >= sum(FILES.values())
    for name, data in expected.items():
        assert (tmp_path / "out" / "content" / name).read_bytes() == data
