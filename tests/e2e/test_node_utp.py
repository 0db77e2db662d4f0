"""Two in-process nodes with uTP on: the DHT and uTP share one UDP port, and a
leecher that prefers uTP downloads over it."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from network_nodes import loopback_node
from servent.node.node import Node
from servent.storage.torrent_creator import create_torrent

WAIT = 30.0
DHT = {"dht_enabled": True, "dht_bootstrap": [], "dht_restrict_ips": False}


async def _until(check: Callable[[], bool]) -> None:
    async with asyncio.timeout(WAIT):
        while True:
            if check():
                return
            await asyncio.sleep(0.05)  # polling the API: there is no event per byte


def _swarm(node: Node) -> Any:
    """The node's SwarmEngine (private: the Node API does not expose transports)."""
    return node._swarm


async def test_nodes_share_the_dht_port_with_utp_and_download_over_it(tmp_path: Path) -> None:
    folder = tmp_path / "share"
    folder.mkdir()
    (folder / "data.bin").write_bytes(hashlib.sha256(b"u").digest() * 60_000)
    async with (
        loopback_node(tmp_path / "seeder", **DHT) as seeder,
        loopback_node(tmp_path / "leecher", **DHT, utp_preference="prefer-utp") as leecher,
    ):
        engine = _swarm(seeder)
        assert engine.utp is not None and engine.dht is not None
        assert engine.utp.ports[0] is engine.dht.udp_port  # one socket for both
        assert engine.dht.address[1] == engine.port
        shared = await seeder.share(folder)
        address = seeder.status().listen_address
        assert address is not None
        torrent_id = await leecher.add(f"{shared.magnet}&x.pe=127.0.0.1:{address[1]}")
        await leecher.add(create_torrent(folder).to_bytes())
        seen_flags: list[str] = []

        def done() -> bool:
            seen_flags.extend(peer.flags for peer in leecher.peers(torrent_id))
            return leecher.torrent(torrent_id).progress == 1.0

        await _until(done)
        assert any("P" in flags for flags in seen_flags), seen_flags  # shown as a uTP peer
        assert _swarm(leecher).dialer.outcomes["utp"] >= 1
        assert engine.utp.accepted >= 1


async def test_utp_disabled_leaves_the_dht_its_own_socket(tmp_path: Path) -> None:
    async with loopback_node(tmp_path / "plain", **DHT, utp_enabled=False) as node:
        engine = _swarm(node)
        assert engine.utp is None
        assert engine.dialer.order() == ["tcp"]
        dht = engine.dht  # its UDP socket (reserved with the TCP port) is the DHT's alone
        assert dht is not None and all(port.utp_handler is None for port in dht.shared_ports)
        assert dht.address[1] == engine.port  # one number for TCP and the DHT
