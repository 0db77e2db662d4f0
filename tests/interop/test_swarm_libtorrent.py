"""Swarm interop with libtorrent on loopback, both directions, v1 / v2 / hybrid.

servent downloads from a libtorrent seeder, and libtorrent downloads from a
servent seeder; the files that arrive must be byte-identical to the source.
The payload is a folder of files with sizes that are not multiples of the
piece or block size, so hybrid torrents carry pad files and v2 torrents have
a short last piece per file.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from reference_clients import (
    LOOPBACK,
    LOOPBACK6,
    create_torrent_with_libtorrent,
    libtorrent_peer,
    libtorrent_seeder,
    write_content,
)

from servent.codec.metainfo import parse_torrent
from servent.net.engine import EngineConfig, SwarmEngine

pytestmark = pytest.mark.interop

DEADLINE = 60.0
FILES = {"a.bin": 1_500_000, "sub/b.bin": 700_001, "sub/c.bin": 16_384 * 3 + 5}


def assert_identical(folder: Path, expected: dict[str, bytes]) -> None:
    for name, data in expected.items():
        path = folder / name
        assert path.exists(), f"{name} missing (or still .part)"
        assert path.read_bytes() == data, f"{name} differs"
    assert not list(folder.rglob("*.part"))


@pytest.mark.parametrize("version", ["v1", "v2", "hybrid"])
async def test_servent_downloads_from_libtorrent_seeder(tmp_path: Path, version: str) -> None:
    expected = write_content(tmp_path / "seed", FILES)
    torrent = create_torrent_with_libtorrent(
        tmp_path / "seed" / "content", version=version, piece_length=32 * 1024
    )
    meta = parse_torrent(torrent)
    with libtorrent_peer() as seeder:
        await libtorrent_seeder(seeder, torrent, tmp_path / "seed")
        async with SwarmEngine(EngineConfig(listen_host=LOOPBACK)) as engine:
            session = await engine.add_torrent(meta, tmp_path / "out", peers=[seeder.address])
            await asyncio.wait_for(session.wait_complete(), DEADLINE)
            stats = session.statistics()
    assert stats.complete and stats.hash_failures == 0
    assert stats.have_bytes == stats.wanted_bytes >= sum(FILES.values())
    assert_identical(tmp_path / "out" / "content", expected)


@pytest.mark.parametrize("version", ["v1", "v2", "hybrid"])
async def test_libtorrent_downloads_from_servent_seeder(tmp_path: Path, version: str) -> None:
    expected = write_content(tmp_path / "seed", FILES)
    torrent = create_torrent_with_libtorrent(
        tmp_path / "seed" / "content", version=version, piece_length=32 * 1024
    )
    meta = parse_torrent(torrent)
    async with SwarmEngine(EngineConfig(listen_host=LOOPBACK)) as engine:
        session = await engine.add_torrent(meta, tmp_path / "seed")
        assert session.complete, "servent did not recognise the seed data"
        with libtorrent_peer() as leecher:
            handle = leecher.add_torrent(torrent, tmp_path / "out", seed=False)
            leecher.connect(handle, LOOPBACK, engine.port)
            await leecher.wait_complete(handle, DEADLINE)
        assert session.statistics().uploaded >= sum(FILES.values())
    assert_identical(tmp_path / "out" / "content", expected)


async def test_libtorrent_dialled_by_servent_over_ipv6(tmp_path: Path) -> None:
    """servent dials a libtorrent seeder on ::1 and serves a libtorrent leecher on ::1."""
    expected = write_content(tmp_path / "seed", FILES)
    torrent = create_torrent_with_libtorrent(tmp_path / "seed" / "content", version="hybrid")
    meta = parse_torrent(torrent)
    with libtorrent_peer(host=LOOPBACK6) as seeder, libtorrent_peer(host=LOOPBACK6) as leecher:
        await libtorrent_seeder(seeder, torrent, tmp_path / "seed")
        async with SwarmEngine(EngineConfig(listen_host=LOOPBACK6)) as engine:
            assert engine.listen_addresses[0][0] == LOOPBACK6
            session = await engine.add_torrent(meta, tmp_path / "out", peers=[seeder.address])
            await asyncio.wait_for(session.wait_complete(), DEADLINE)
            handle = leecher.add_torrent(torrent, tmp_path / "lt-out", seed=False)
            leecher.connect(handle, LOOPBACK6, engine.port)
            await leecher.wait_complete(handle, DEADLINE)
            assert session.statistics().uploaded > 0
    assert_identical(tmp_path / "out" / "content", expected)
    assert_identical(tmp_path / "lt-out" / "content", expected)
