"""File priorities changed while a torrent downloads reach the running session.

Regression: a priority change used to restart the torrent's session, so every
connection dropped and incoming peers had to dial again.  Two in-process
nodes on loopback (no DHT, no LSD); the seeder's upload is rate-limited so the
changes land mid-download.
"""

from __future__ import annotations

import os
from pathlib import Path

from network_nodes import loopback_node
from polling import wait_for as _until
from servent.net.torrent_session import TorrentSession
from servent.node.node import Node
from servent.storage.torrent_creator import create_torrent


def _session(node: Node, torrent_id: str) -> TorrentSession:
    session = node._running(torrent_id).session
    assert session is not None
    return session


def _file_pieces(session: TorrentSession, name: str) -> range:
    metainfo = session.metainfo
    for entry in metainfo.files:
        if entry.path[-1] == name:
            first = entry.offset // metainfo.piece_length
            last = (entry.offset + entry.length - 1) // metainfo.piece_length
            return range(first, last + 1)
    raise AssertionError(f"no file {name}")


async def test_priorities_change_mid_download_without_dropping_the_connection(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "album"
    folder.mkdir()
    (folder / "big.bin").write_bytes(os.urandom(2 * 1024 * 1024))
    (folder / "small.bin").write_bytes(os.urandom(1024 * 1024))
    metainfo = create_torrent(folder)
    async with (
        loopback_node(tmp_path / "seeder") as seeder,
        loopback_node(tmp_path / "leecher") as leecher,
    ):
        shared = await seeder.share(folder)
        await seeder.set_limits(shared.id, upload_rate_limit=600_000)  # about 5 s in all
        address = seeder.status().listen_address
        assert address is not None
        torrent_id = await leecher.add(f"{shared.magnet}&x.pe=127.0.0.1:{address[1]}")
        await leecher.add(metainfo.to_bytes())
        session = _session(leecher, torrent_id)
        seeder_session = _session(seeder, shared.id)
        big = _file_pieces(session, "big.bin")
        small = _file_pieces(session, "small.bin")
        files = {f.path: f.index for f in leecher.files(torrent_id)}

        await _until(lambda: session.have_bytes > 0 and bool(session.open_peers), "progress")
        (peer,) = session.open_peers
        (seeder_peer,) = seeder_session.open_peers
        await leecher.set_file_priorities(torrent_id, {files["album/big.bin"]: 0})
        assert _session(leecher, torrent_id) is session  # not restarted
        # Nothing of big.bin is asked for any more; what was already in flight may land.
        assert all(r.index not in big for r in session.picker.requests_of(peer))
        bound = sum(1 for i in big if i in session.storage.have) + sum(
            1 for i in session.picker.partial_pieces() if i in big
        )
        assert session.wanted_bytes < metainfo.total_length

        small_now = sum(1 for i in small if i in session.storage.have)
        await _until(
            lambda: sum(1 for i in small if i in session.storage.have) >= small_now + 4,
            "small.bin progresses while big.bin is skipped",
        )
        assert sum(1 for i in big if i in session.storage.have) <= bound
        assert peer in session.open_peers and seeder_peer in seeder_session.open_peers

        await leecher.set_file_priorities(torrent_id, {files["album/big.bin"]: 1})
        assert session.wanted_bytes == metainfo.total_length
        have_now = session.have_bytes
        await _until(lambda: session.have_bytes > have_now, "big.bin fetched again")
        assert peer in session.open_peers and seeder_peer in seeder_session.open_peers
        await _until(lambda: session.complete, "every file downloaded")
        assert _session(leecher, torrent_id) is session
        # One connection carried the whole download: the seeder saw one source port.
        assert list(seeder_session.statistics().uploaded_to) == [seeder_peer.label]
        save = Path(leecher.torrent(torrent_id).save_path) / "album"
        await _until((save / "big.bin").exists, "big.bin renamed from .part")
        for name in ("big.bin", "small.bin"):
            assert (save / name).read_bytes() == (folder / name).read_bytes()
