"""Snapshots the API returns, computed from a record and the engine's figures."""

from __future__ import annotations

from pathlib import Path

from servent.codec.metainfo import Metainfo
from servent.node.state import TorrentRecord
from servent.node.torrent_spec import DOWNLOADING, TorrentFigures
from servent.node.views import file_statuses, torrent_status
from servent.storage.torrent_creator import create_torrent


def _hybrid(tmp_path: Path) -> Metainfo:
    folder = tmp_path / "album"
    folder.mkdir()
    (folder / "a.bin").write_bytes(b"a" * 40_000)  # not a piece multiple: a pad file follows
    (folder / "b.bin").write_bytes(b"b" * 10_000)
    return create_torrent(folder, piece_length=16_384)


def test_progress_and_eta_count_only_what_is_wanted(tmp_path: Path) -> None:
    metainfo = _hybrid(tmp_path)
    record = TorrentRecord(id="00" * 20, name="album", save_path=str(tmp_path))
    status = TorrentFigures(
        state=DOWNLOADING, have_bytes=10_000, wanted_bytes=40_000, download_rate=5_000.0
    )
    view = torrent_status("00" * 20, record, status, metainfo, magnet="")
    assert view.progress == 0.25
    assert view.eta == 6.0
    assert view.size == 50_000
    assert view.magnet is None
    paused = torrent_status(
        "00" * 20,
        TorrentRecord(id="00" * 20, name="album", save_path=str(tmp_path), paused=True),
        status,
        metainfo,
        magnet="magnet:?xt=urn:btih:" + "00" * 20,
    )
    assert paused.state == "paused" and paused.magnet is not None


def test_file_list_leaves_out_pad_files(tmp_path: Path) -> None:
    metainfo = _hybrid(tmp_path)
    assert any(entry.pad for entry in metainfo.files)
    record = TorrentRecord(id="00" * 20, name="album", save_path=str(tmp_path))
    priorities = tuple(0 if entry.path[-1] == "b.bin" else 1 for entry in metainfo.files)
    progress = tuple(1.0 if entry.path[-1] == "a.bin" else 0.0 for entry in metainfo.files)
    status = TorrentFigures(
        state=DOWNLOADING, file_priorities=priorities, file_progress=progress
    )
    files = file_statuses(record, status, metainfo)
    assert [(f.path, f.priority, f.progress) for f in files] == [
        ("album/a.bin", 1, 1.0),
        ("album/b.bin", 0, 0.0),
    ]


def test_piece_progress_leaves_out_pad_bytes(tmp_path: Path) -> None:
    """Regression: verified bytes counted the pad files of hybrid torrents (a 200.0 MiB
    download read 200.5 MiB)."""
    metainfo = _hybrid(tmp_path)
    pads = sum(entry.length for entry in metainfo.files if entry.pad)
    assert pads > 0
    hashed = sum(metainfo.piece_size(i) for i in range(metainfo.num_pieces))
    payload = sum(metainfo.piece_payload_size(i) for i in range(metainfo.num_pieces))
    assert hashed == 50_000 + pads
    assert payload == metainfo.total_length == 50_000
    # a.bin (40,000 bytes) ends in piece 2, which its pad file fills up.
    assert metainfo.piece_payload_size(2) == 40_000 - 2 * 16_384
    # Blocks count their file bytes only: piece 2 holds 7,232 bytes of a.bin, then pad.
    assert metainfo.block_payload_size(2, 0, 16_384) == 40_000 - 2 * 16_384
    assert metainfo.block_payload_size(2, 0, 4_000) == 4_000
    assert metainfo.block_payload_size(2, 8_000, 8_384) == 0
    assert metainfo.block_payload_size(0, 0, 16_384) == 16_384
