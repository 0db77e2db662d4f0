"""The Node API over real files and a real state database (no network: DHT off)."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import pytest

from network_nodes import loopback_node
from servent.errors import MagnetError, NodeError, ServentError, TorrentNotFoundError
from servent.node.config import load_config
from servent.node.node import Node

MAGNET = "magnet:?xt=urn:btih:" + "ab" * 20 + "&dn=hello"


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "share"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.bin").write_bytes(bytes(range(256)) * 1200)
    (folder / "sub" / "b.txt").write_bytes(b"hello" * 1000)
    return folder


async def test_share_seeds_the_folder_and_is_remembered(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    async with loopback_node(tmp_path / "data") as node:
        shared = await node.share(folder)
        assert shared.magnet.startswith("magnet:?xt=urn:btih:")
        assert "btmh" in shared.magnet  # hybrid
        (status,) = node.torrents()
        assert (status.state, status.progress, status.size) == ("seeding", 1.0, 307_200 + 5000)
        assert [f.path for f in node.files(shared.id)] == ["share/a.bin", "share/sub/b.txt"]
        assert not shared.existing
        assert await node.share(folder) == dataclasses.replace(shared, existing=True)
    async with loopback_node(tmp_path / "data") as node:
        assert node.status().shared_folders == (str(folder),)
        assert node.torrent(shared.id).progress == 1.0


async def test_magnet_pause_resume_remove_survive_restart(tmp_path: Path) -> None:
    async with loopback_node(tmp_path / "data") as node:
        events = node.events()
        torrent_id = await node.add(MAGNET)
        assert (await asyncio.wait_for(anext(events), 5)).type == "torrent_added"
        await events.aclose()
        assert await node.add(MAGNET) == torrent_id
        assert node.torrent(torrent_id).state == "metadata"
        await node.pause(torrent_id)
    async with loopback_node(tmp_path / "data") as node:
        status = node.torrent(torrent_id)
        assert (status.name, status.paused, status.state) == ("hello", True, "paused")
        await node.resume(torrent_id)
        assert node.torrent(torrent_id).paused is False
        await node.remove(torrent_id)
        assert node.torrents() == []
        with pytest.raises(TorrentNotFoundError):
            await node.pause(torrent_id)


async def test_priorities_limits_and_delete_data(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    async with loopback_node(tmp_path / "data") as node:
        shared = await node.share(folder)
        await node.set_file_priorities(shared.id, {2: 0})
        assert [f.priority for f in node.files(shared.id)] == [1, 0]
        with pytest.raises(NodeError):
            await node.set_file_priorities(shared.id, {9: 1})
        with pytest.raises(NodeError):
            await node.set_file_priorities(shared.id, {0: 8})
        with pytest.raises(NodeError, match="pad file"):
            await node.set_file_priorities(shared.id, {1: 4})
        await node.set_limits(upload_rate_limit=1000, max_connections=10)
        await node.set_limits(shared.id, download_rate_limit=500)
        assert node.settings()["upload_rate_limit"] == 1000
    async with loopback_node(tmp_path / "data") as node:
        assert node.config.max_connections == 10
        assert [f.priority for f in node.files(shared.id)] == [1, 0]
        result = await node.remove(shared.id, delete_data=True)
        assert result.data_deleted is False and "before servent" in (result.reason or "")
        assert (folder / "a.bin").read_bytes() == bytes(range(256)) * 1200  # a share is the user's
        assert node.status().shared_folders == ()


async def test_bad_sources_raise_servent_errors(tmp_path: Path) -> None:
    async with loopback_node(tmp_path / "data") as node:
        with pytest.raises(MagnetError):
            await node.add("magnet:?xt=urn:btih:zz")
        with pytest.raises(NodeError):
            await node.add(tmp_path / "missing.torrent")
        with pytest.raises(NodeError):
            await node.share(tmp_path / "nope")


async def test_dht_joins_a_local_node_and_its_table_is_saved(tmp_path: Path) -> None:
    from servent.net.dht_driver import DhtDriver
    from servent.proto.dht import DhtConfig

    loopback = DhtConfig(restrict_ips=False, rate_limit_per_ip=0.0, query_timeout=1.0)
    async with DhtDriver(host="127.0.0.1", port=0, config=loopback) as bootstrap:
        host, port = bootstrap.address
        config = load_config(
            None,
            {
                "data_dir": str(tmp_path / "data"),
                "listen_host": "127.0.0.1",
                "listen_port": 0,
                "dht_bootstrap": [f"{host}:{port}"],
                "dht_restrict_ips": False,
                "lsd_enabled": False,
            },
        )
        node = Node(config)
        events = node.events()  # subscribed before start: sees the bootstrap finish
        async with node:
            async with asyncio.timeout(10):
                async for event in events:
                    if event.type == "dht_ready":
                        break
            assert node.status().dht_nodes >= 1
            status = node.status()
            assert status.dht_enabled and status.dht_address is not None
            node_id = node.store.settings()["dht_node_id"]
        async with Node(config) as node:
            assert node.store.settings()["dht_node_id"] == node_id  # same identity
            assert (bootstrap.node_id, (host, port)) in node.store.dht_nodes()
            # A BEP 42 change of ID while running is what the next start uses.
            new_id = bytes(range(20))
            dht = node._dht
            assert dht is not None
            dht.node.change_id(new_id, asyncio.get_running_loop().time())
        async with Node(config) as node:
            assert node.store.settings()["dht_node_id"] == new_id.hex()


async def test_torrent_file_for_a_waiting_magnet_fills_in_its_metadata(tmp_path: Path) -> None:
    from servent.storage.torrent_creator import create_torrent

    metainfo = create_torrent(_folder(tmp_path))
    async with loopback_node(tmp_path / "data") as node:
        torrent_id = await node.add(metainfo.magnet())
        assert node.torrent(torrent_id).state == "metadata"
        assert await node.add(metainfo.to_bytes(), save_path=tmp_path) == torrent_id
        status = node.torrent(torrent_id)
        assert (status.size, status.name) == (metainfo.total_length, "share")
        assert len(node.files(torrent_id)) == 2
    async with loopback_node(tmp_path / "data") as node:
        assert node.torrent(torrent_id).size == metainfo.total_length


async def test_a_corrupt_torrent_record_does_not_stop_the_node(tmp_path: Path) -> None:
    from servent.node.state import StateStore, TorrentRecord

    store = StateStore(tmp_path / "data")
    store.add_torrent(TorrentRecord(id="11" * 20, name="bad", save_path="/x", metainfo=b"junk"))
    store.close()
    async with loopback_node(tmp_path / "data") as node:
        assert node.torrents() == []
        assert await node.add(MAGNET)


async def test_encryption_set_from_a_front_end_applies_at_the_next_start(tmp_path: Path) -> None:
    async with loopback_node(tmp_path / "data") as node:
        assert await node.update_settings({"encryption": "enabled"}) is False  # unchanged
        assert await node.update_settings({"encryption": "required"}) is True
        with pytest.raises(ServentError):
            await node.update_settings({"encryption": "sometimes"})
        assert node.config.encryption == "enabled"  # the running engine keeps its policy
        assert node.settings()["pending_restart"] == {"encryption": "required"}
    async with loopback_node(tmp_path / "data") as node:
        assert node.config.encryption == "required"
        assert node.settings()["pending_restart"] == {}
        swarm = node._swarm
        assert swarm is not None
        assert swarm.config.encryption == "required"


async def test_the_list_leaves_out_a_torrent_being_removed(tmp_path: Path) -> None:
    """Regression: listing torrents while one was being removed answered 404 for the
    whole list (the engine had let it go, the node's record was not gone yet)."""
    async with loopback_node(tmp_path / "data") as node:
        shared = await node.share(_folder(tmp_path))
        other = await node.add(MAGNET)
        await node._stop_running(shared.id)  # the first half of Node.remove
        assert [status.id for status in node.torrents()] == [other]
