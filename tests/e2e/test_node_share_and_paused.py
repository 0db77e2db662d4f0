"""A node (real swarm engine, loopback only) that avoids needless disk work.

Regressions: ``Node.share`` hashed a folder twice (once to create the torrent,
once when storage opened without resume data).
"""

from __future__ import annotations

import os
from pathlib import Path

from servent.node.config import load_config
from servent.node.node import Node
from servent.node.swarm_engine import SwarmTorrentEngine


def _node(root: Path, name: str) -> Node:
    values: dict[str, object] = {
        "data_dir": str(root / name),
        "dht_enabled": False,
        "lsd_enabled": False,
        "listen_host": "127.0.0.1",
        "listen_port": 0,
    }
    return Node(load_config(None, values))


def _storage_counters(node: Node, torrent_id: str) -> dict[str, int]:
    engine = node._engine
    assert isinstance(engine, SwarmTorrentEngine)
    storage = engine._get(torrent_id).storage
    assert storage is not None
    return storage.statistics()


async def test_shared_folder_seeds_without_hashing_it_again(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    (folder / "2026").mkdir(parents=True)
    (folder / "2026" / "a.jpg").write_bytes(os.urandom(3 * 1024 * 1024))
    (folder / "b.raw").write_bytes(os.urandom(2 * 1024 * 1024 + 123))
    async with _node(tmp_path, "node") as node:
        shared = await node.share(folder)
        status = node.torrent(shared.id)
        assert (status.state, status.progress) == ("seeding", 1.0)
        assert _storage_counters(node, shared.id)["pieces_checked_from_disk"] == 0
    # Restarted, the node trusts its own resume data too (nothing re-hashed).
    async with _node(tmp_path, "node") as node:
        assert node.torrent(shared.id).state == "seeding"
        assert _storage_counters(node, shared.id)["pieces_checked_from_disk"] == 0
