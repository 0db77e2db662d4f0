"""Storage agrees with libtorrent on real data, both directions, for v1, v2 and hybrid.

1. libtorrent creates a torrent (with its own pad-file layout for hybrid)
   from a folder; servent's storage, opened on that folder, finds every piece.
2. servent writes every piece into an empty folder; libtorrent, pointed at
   that folder, checks it and finds every piece (so our file layout, pad
   handling and ``.part`` renaming leave exactly the files libtorrent expects).
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import libtorrent as lt
import pytest

from servent.codec.metainfo import parse_torrent
from servent.storage import MemoryResumeStore, TorrentStorage

pytestmark = pytest.mark.interop

PIECE = 32768
CHECK_DEADLINE = 60.0

FLAGS = {"v1": lt.create_torrent.v1_only, "v2": lt.create_torrent.v2_only, "hybrid": 0}


def make_payload(root: Path) -> Path:
    folder = root / "payload"
    for rel, size in [
        ("a/one.bin", 40000),
        ("a/two.bin", 5),
        ("b/three.bin", 3 * PIECE),
        ("z", 70001),
    ]:
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(bytes((i * 7 + size) % 251 for i in range(size)))
    return folder


def libtorrent_torrent(folder: Path, version: str) -> bytes:
    with warnings.catch_warnings():  # the file_storage API is deprecated in 2.1, still exact
        warnings.simplefilter("ignore", DeprecationWarning)
        files = lt.file_storage()
        lt.add_files(files, str(folder))
        creator = lt.create_torrent(files, PIECE, FLAGS[version])
    lt.set_piece_hashes(creator, str(folder.parent))
    return bytes(lt.bencode(creator.generate()))


def libtorrent_finds_everything(torrent: bytes, save_path: Path) -> bool:
    session = lt.session(
        {
            "listen_interfaces": "127.0.0.1:0",
            "enable_dht": False,
            "enable_lsd": False,
            "enable_upnp": False,
            "enable_natpmp": False,
            "dht_bootstrap_nodes": "",
            "listen_system_port_fallback": False,
        }
    )
    params = lt.add_torrent_params()
    params.ti = lt.torrent_info(lt.bdecode(torrent))
    params.save_path = str(save_path)
    handle = session.add_torrent(params)
    deadline = time.monotonic() + CHECK_DEADLINE
    checked = (lt.torrent_status.seeding, lt.torrent_status.finished, lt.torrent_status.downloading)
    while time.monotonic() < deadline:
        status = handle.status()
        if status.state in checked:  # checking is over: count what it found
            return bool(status.num_pieces == params.ti.num_pieces())
        session.wait_for_alert(100)
        session.pop_alerts()
    raise TimeoutError(f"libtorrent still {handle.status().state} after {CHECK_DEADLINE}s")


@pytest.mark.parametrize("version", ["v1", "v2", "hybrid"])
async def test_libtorrent_data_is_complete_for_servent_and_back(
    tmp_path: Path, version: str
) -> None:
    source = make_payload(tmp_path / "source")
    torrent = libtorrent_torrent(source, version)
    meta = parse_torrent(torrent)
    async with TorrentStorage(
        meta, source.parent, resume_store=MemoryResumeStore(), verify_both=True
    ) as seeded:
        assert seeded.is_seed(), "servent must find libtorrent's payload complete"
        pieces = [await seeded.read_piece(i) for i in range(meta.num_pieces)]

    target = tmp_path / "target"
    async with TorrentStorage(meta, target, verify_both=True) as storage:
        for index, data in enumerate(pieces):
            assert await storage.write_piece(index, data)
        assert storage.is_seed()
    assert libtorrent_finds_everything(torrent, target)
    for path in source.rglob("*"):
        if path.is_file():
            assert (target / path.relative_to(source.parent)).read_bytes() == path.read_bytes()
