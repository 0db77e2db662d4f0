"""A node (real swarm engine, loopback only) that avoids needless disk work.

Regressions: ``Node.share`` hashed a folder twice (once to create the torrent,
once when storage opened without resume data).
"""

from __future__ import annotations

import os
from pathlib import Path

from network_nodes import loopback_node
from servent.node.node import Node


def _storage_counters(node: Node, torrent_id: str) -> dict[str, int]:
    storage = node._running(torrent_id).storage
    assert storage is not None
    return storage.statistics()


async def test_shared_folder_seeds_without_hashing_it_again(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    (folder / "2026").mkdir(parents=True)
    (folder / "2026" / "a.jpg").write_bytes(os.urandom(3 * 1024 * 1024))
    (folder / "b.raw").write_bytes(os.urandom(2 * 1024 * 1024 + 123))
    async with loopback_node(tmp_path / "node") as node:
        shared = await node.share(folder)
        status = node.torrent(shared.id)
        assert (status.state, status.progress) == ("seeding", 1.0)
        assert _storage_counters(node, shared.id)["pieces_checked_from_disk"] == 0
    # Restarted, the node trusts its own resume data too (nothing re-hashed).
    async with loopback_node(tmp_path / "node") as node:
        assert node.torrent(shared.id).state == "seeding"
        assert _storage_counters(node, shared.id)["pieces_checked_from_disk"] == 0


async def test_torrent_added_paused_creates_no_files(tmp_path: Path) -> None:
    """Regression: its progress was read by opening storage, which made sparse .part files."""
    from servent.storage.torrent_creator import create_torrent

    folder = tmp_path / "source" / "album"
    folder.mkdir(parents=True)
    (folder / "one.bin").write_bytes(os.urandom(600_000))
    (folder / "two.bin").write_bytes(os.urandom(300_000))
    metainfo = create_torrent(folder)
    save = tmp_path / "save"
    async with loopback_node(tmp_path / "node") as node:
        torrent_id = await node.add(metainfo.magnet(), save_path=save)
        await node.pause(torrent_id)
        await node.add(metainfo.to_bytes())  # the metadata arrives while it is paused
        files = {f.path: f.index for f in node.files(torrent_id)}
        await node.set_file_priorities(torrent_id, {files["album/two.bin"]: 0})
        status = node.torrent(torrent_id)
        assert (status.state, status.progress, status.have_bytes) == ("paused", 0.0, 0)
        assert [f.progress for f in node.files(torrent_id)] == [0.0, 0.0]
        assert 0 < node._running(torrent_id).figures().wanted_bytes < metainfo.total_length
    async with loopback_node(tmp_path / "node") as node:  # restarted paused: still nothing on disk
        assert node.torrent(torrent_id).state == "paused"
    assert not save.exists() or not any(save.iterdir())


async def test_paused_seed_shows_its_progress_from_resume_data(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.txt").write_bytes(os.urandom(400_000))
    (folder / "b.txt").write_bytes(os.urandom(200_000))
    async with loopback_node(tmp_path / "node") as node:
        shared = await node.share(folder)
        await node.pause(shared.id)
    async with loopback_node(tmp_path / "node") as node:
        status = node.torrent(shared.id)
        assert (status.state, status.progress) == ("paused", 1.0)
        assert status.have_bytes == status.size
        assert all(f.progress == 1.0 for f in node.files(shared.id))
        assert node._running(shared.id).storage is None  # read without opening storage
