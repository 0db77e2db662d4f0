"""``servent status`` shows uTP's path MTU (decision 0046) over the node's open connections."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

from network_nodes import loopback_node
from servent.node.status import PathMtuSummary
from servent.proto.utp.mtu import MAX_MTU, MIN_MTU_IPV4

WAIT = 60.0
DHT = {"dht_enabled": True, "dht_bootstrap": [], "dht_restrict_ips": False}


async def test_status_reports_the_path_mtu_of_open_utp_connections(tmp_path: Path) -> None:
    folder = tmp_path / "share"
    folder.mkdir()
    (folder / "data.bin").write_bytes(hashlib.shake_256(b"mtu").digest(6 << 20))
    async with (
        loopback_node(tmp_path / "seeder", **DHT) as seeder,
        loopback_node(tmp_path / "leecher", **DHT, utp_preference="prefer-utp") as leecher,
    ):
        assert leecher.status().utp_path_mtu is None  # no uTP connection yet
        shared = await seeder.share(folder)
        address = seeder.status().listen_address
        assert address is not None
        torrent_id = await leecher.add(f"{shared.magnet}&x.pe=127.0.0.1:{address[1]}")
        seen: list[PathMtuSummary] = []
        async with asyncio.timeout(WAIT):
            while leecher.torrent(torrent_id).progress < 1.0:
                for node in (seeder, leecher):
                    summary = node.status().utp_path_mtu
                    if summary is not None:
                        seen.append(summary)
                await asyncio.sleep(0.02)  # polling the status: there is no event per packet
    assert seen, "no uTP connection was seen open during the download"
    for summary in seen:
        assert summary.paths >= 1 and 0 <= summary.searching <= summary.paths
        assert MIN_MTU_IPV4 <= summary.smallest <= summary.median <= summary.largest <= MAX_MTU
    # Loopback carries anything: the seeder's search climbs from the assumed 1,428 bytes
    # to its ceiling (the leecher, sending only requests, proves little).
    assert max(s.largest for s in seen) == MAX_MTU, seen[-3:]
