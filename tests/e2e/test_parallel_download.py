"""One torrent fetched from four rate-limited seeders at once, one killed midway.

Two seeders are libtorrent sessions, two are ``servent get --seed`` processes
(already holding the data, so they only seed, with ``--upload-rate``).  Each
seeder is limited to a fraction of the total rate, so the download can only
be fast by using all of them; the statistics must show bytes from every one.
When a third of the data is verified, one servent seeder is killed with
SIGKILL; the download must still complete, byte-identical.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest
from servent_cli import servent

from interop.reference_clients import (
    LOOPBACK,
    create_torrent_with_libtorrent,
    libtorrent_peer,
    libtorrent_seeder,
    write_payload,
)
from servent.codec.metainfo import parse_torrent
from servent.net.engine import EngineConfig, SwarmEngine

pytestmark = pytest.mark.e2e

SIZE = 10 * 1024 * 1024
RATE = 768 * 1024  # bytes/s per seeder
DEADLINE = 60.0


async def test_four_rate_limited_seeders_one_killed_midway(tmp_path: Path) -> None:
    data = write_payload(tmp_path / "seed0" / "payload.bin", SIZE, seed=42)
    torrent = create_torrent_with_libtorrent(
        tmp_path / "seed0" / "payload.bin", version="hybrid", piece_length=64 * 1024
    )
    torrent_file = tmp_path / "t.torrent"
    torrent_file.write_bytes(torrent)
    for folder in ("seed1", "seed2"):
        (tmp_path / folder).mkdir()
        shutil.copy(tmp_path / "seed0" / "payload.bin", tmp_path / folder / "payload.bin")
    seed_args = ["--seed", "--upload-rate", str(RATE)]
    with libtorrent_peer() as lt_a, libtorrent_peer() as lt_b:
        await libtorrent_seeder(lt_a, torrent, tmp_path / "seed0", upload_limit=RATE)
        await libtorrent_seeder(lt_b, torrent, tmp_path / "seed0", upload_limit=RATE)
        async with (
            servent("get", torrent_file, "-o", tmp_path / "seed1", *seed_args) as victim,
            servent("get", torrent_file, "-o", tmp_path / "seed2", *seed_args) as survivor,
        ):
            pattern = r"seeding on \S+?:(\d+)"
            victim_port = int((await victim.wait_line(pattern, stream="stderr")).group(1))
            survivor_port = int((await survivor.wait_line(pattern, stream="stderr")).group(1))
            seeders = {
                "libtorrent A": lt_a.address,
                "libtorrent B": lt_b.address,
                "servent (killed)": (LOOPBACK, victim_port),
                "servent": (LOOPBACK, survivor_port),
            }
            async with SwarmEngine(EngineConfig(listen_host=LOOPBACK)) as engine:
                session = await engine.add_torrent(
                    parse_torrent(torrent), tmp_path / "out", peers=seeders.values()
                )
                await asyncio.wait_for(session.wait_have(SIZE // 3), DEADLINE)
                victim_label = f"{LOOPBACK}:{victim_port}"
                assert session.statistics().downloaded_from.get(victim_label, 0) > 0
                victim.kill()
                await asyncio.wait_for(session.wait_complete(), DEADLINE)
                stats = session.statistics()
    assert (tmp_path / "out" / "payload.bin").read_bytes() == data
    for name, (host, port) in seeders.items():
        assert stats.downloaded_from.get(f"{host}:{port}", 0) > 0, f"nothing from {name}"
    assert stats.hash_failures == 0
