"""The node (its public API, real swarm engine) with libtorrent on loopback, both ways.

* a node downloads a libtorrent-seeded hybrid magnet from its ``x.pe`` peer,
  and lists libtorrent among its peers while doing so;
* libtorrent downloads a folder the node shares, dialling the node's
  listening address as the node reports it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from reference_clients import (
    LOOPBACK,
    create_torrent_with_libtorrent,
    libtorrent_peer,
    libtorrent_seeder,
    wait_until,
    write_payload,
)

from servent.codec.metainfo import parse_torrent
from servent.node.config import load_config
from servent.node.node import Node
from servent.storage.torrent_creator import create_torrent

pytestmark = pytest.mark.interop

DEADLINE = 60.0
FILES = {"a.bin": 1_500_001, "sub/b.bin": 16_384 * 3 + 5}


def _node(root: Path) -> Node:
    return Node(
        load_config(
            None,
            {
                "data_dir": str(root),
                "dht_enabled": False,
                "lsd_enabled": False,
                "listen_host": LOOPBACK,
                "listen_port": 0,
            },
        )
    )


def _content(root: Path) -> dict[str, bytes]:
    return {
        name: write_payload(root / "content" / name, size, seed=number)
        for number, (name, size) in enumerate(FILES.items(), start=1)
    }


async def test_node_downloads_a_libtorrent_seeded_magnet(tmp_path: Path) -> None:
    expected = _content(tmp_path / "seed")
    torrent = create_torrent_with_libtorrent(
        tmp_path / "seed" / "content", version="hybrid", piece_length=32 * 1024
    )
    meta = parse_torrent(torrent)
    with libtorrent_peer() as seeder:
        # Slow enough to watch the peer in the node's peers table.
        await libtorrent_seeder(seeder, torrent, tmp_path / "seed", upload_limit=1_000_000)
        host, port = seeder.address
        async with _node(tmp_path / "node") as node:
            torrent_id = await node.add(f"{meta.magnet()}&x.pe={host}:{port}")
            clients: set[str] = set()

            def done() -> bool:
                clients.update(p.client for p in node.peers(torrent_id))
                return node.torrent(torrent_id).progress == 1.0

            await wait_until(done, "node download complete", within=DEADLINE)
            status = node.torrent(torrent_id)
            assert (status.state, status.name) == ("seeding", "content")
            assert any(c.startswith("libtorrent") for c in clients), clients
            save = Path(status.save_path) / "content"
            for name, data in expected.items():
                assert (save / name).read_bytes() == data, name


async def test_libtorrent_downloads_a_folder_the_node_shares(tmp_path: Path) -> None:
    expected = _content(tmp_path / "share")
    async with _node(tmp_path / "node") as node:
        shared = await node.share(tmp_path / "share" / "content")
        # The same folder makes the same info dictionary: libtorrent gets it as a file.
        metainfo = create_torrent(tmp_path / "share" / "content")
        assert metainfo.wire_info_hash.hex() == shared.id
        address = node.status().listen_address
        assert address is not None
        with libtorrent_peer() as leecher:
            handle = leecher.add_torrent(metainfo.to_bytes(), tmp_path / "down", seed=False)
            leecher.connect(handle, *address)
            await leecher.wait_complete(handle, within=DEADLINE)
            await leecher.flush(handle)
        assert node.torrent(shared.id).uploaded >= sum(len(d) for d in expected.values())
    for name, data in expected.items():
        assert (tmp_path / "down" / "content" / name).read_bytes() == data, name
