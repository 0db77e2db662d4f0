"""A download never writes over a file it did not make without keeping a copy first."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from servent.errors import StorageError
from servent.storage.kept_versions import VERSIONS_FOLDER, version_path
from servent.storage.torrent_storage import TorrentStorage
from storage_torrents import make_metainfo, piece_bytes, random_files

PIECE = 32768


def _place_users_file(root: Path, rel: tuple[str, ...], data: bytes) -> Path:
    path = root.joinpath(*rel)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


async def test_a_users_file_at_a_download_path_is_kept_byte_for_byte(tmp_path: Path) -> None:
    files = random_files(random.Random(3), [3 * PIECE + 100, 5000])
    meta = make_metainfo(files, PIECE)
    users = random.Random(4).randbytes(2 * PIECE + 17)  # same name, other content
    original = _place_users_file(tmp_path, meta.files[0].path, users)
    async with TorrentStorage(meta, tmp_path) as storage:
        for index in range(meta.num_pieces):
            assert await storage.write_piece(index, piece_bytes(meta, files, index))
        assert storage.is_complete()
    assert original.read_bytes() == files[0][1]
    kept = [p for p in (tmp_path / VERSIONS_FOLDER).rglob("*") if p.is_file()]
    assert [p.read_bytes() for p in kept] == [users]
    assert kept[0].parent == tmp_path / VERSIONS_FOLDER / meta.files[0].path[0] / "dir0"


async def test_pieces_of_the_kept_file_that_match_are_still_used(tmp_path: Path) -> None:
    files = random_files(random.Random(5), [4 * PIECE])
    meta = make_metainfo(files, PIECE)
    edited = bytearray(files[0][1])
    edited[PIECE + 3] ^= 0xFF  # the user edited one byte of a finished download
    _place_users_file(tmp_path, meta.files[0].path, bytes(edited))
    async with TorrentStorage(meta, tmp_path) as storage:
        assert list(storage.have) == [0, 2, 3]
    kept = [p for p in (tmp_path / VERSIONS_FOLDER).rglob("*") if p.is_file()]
    assert [p.read_bytes() for p in kept] == [bytes(edited)]


async def test_no_copy_is_made_when_the_file_already_matches(tmp_path: Path) -> None:
    files = random_files(random.Random(6), [2 * PIECE])
    meta = make_metainfo(files, PIECE)
    _place_users_file(tmp_path, meta.files[0].path, files[0][1])
    async with TorrentStorage(meta, tmp_path) as storage:
        assert storage.is_complete()
    assert not (tmp_path / VERSIONS_FOLDER).exists()


async def test_when_no_copy_can_be_made_the_download_stops_and_the_file_is_untouched(
    tmp_path: Path,
) -> None:
    files = random_files(random.Random(7), [2 * PIECE])
    meta = make_metainfo(files, PIECE)
    users = b"the only copy of the user's notes" * 100
    original = _place_users_file(tmp_path, meta.files[0].path, users)
    (tmp_path / VERSIONS_FOLDER).write_bytes(b"not a folder")  # the copy cannot be made
    with pytest.raises(StorageError, match="keeping a copy"):
        async with TorrentStorage(meta, tmp_path):
            pass
    assert original.read_bytes() == users


def test_version_names_keep_the_extension_and_the_relative_folder(tmp_path: Path) -> None:
    path = tmp_path / "docs" / "report.pdf"
    assert version_path(tmp_path, path, 0.0) == (
        tmp_path / VERSIONS_FOLDER / "docs" / "report~19700101-000000.pdf"
    )
