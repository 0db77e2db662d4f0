"""TorrentStorage.cached_block: uploads served from the read cache without a copy."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from servent.errors import StorageError
from servent.storage.resume import MemoryResumeStore
from servent.storage.torrent_storage import TorrentStorage
from storage_torrents import make_metainfo, piece_bytes, random_files

PIECE = 32768


async def test_cached_block_is_a_view_of_a_piece_read_before(tmp_path: Path) -> None:
    files = random_files(random.Random(11), [3 * PIECE + 100])
    meta = make_metainfo(files, PIECE)
    whole = files[0][1]
    async with TorrentStorage(meta, tmp_path, resume_store=MemoryResumeStore()) as storage:
        assert storage.cached_block(1, 0, 16384) is None  # not verified, not cached
        for index in range(meta.num_pieces):
            assert await storage.write_piece(index, piece_bytes(meta, files, index))
        assert storage.cached_block(1, 0, 16384) is None  # verified but never read
        assert await storage.read_block(1, 0, 16384) == whole[PIECE : PIECE + 16384]
        view = storage.cached_block(1, 16384, 16384)
        assert isinstance(view, memoryview)
        assert bytes(view) == whole[PIECE + 16384 : 2 * PIECE]


async def test_cached_block_checks_the_bounds_of_the_piece(tmp_path: Path) -> None:
    files = random_files(random.Random(12), [2 * PIECE])
    meta = make_metainfo(files, PIECE)
    async with TorrentStorage(meta, tmp_path, resume_store=MemoryResumeStore()) as storage:
        for index in range(meta.num_pieces):
            assert await storage.write_piece(index, piece_bytes(meta, files, index))
        await storage.read_block(0, 0, 16)
        for offset, length in ((PIECE - 8, 16), (-1, 16), (0, 0)):
            with pytest.raises(StorageError):
                storage.cached_block(0, offset, length)


async def test_view_stays_valid_after_the_piece_leaves_the_cache(tmp_path: Path) -> None:
    files = random_files(random.Random(13), [8 * PIECE])
    meta = make_metainfo(files, PIECE)
    whole = files[0][1]
    storage = TorrentStorage(
        meta, tmp_path, resume_store=MemoryResumeStore(), read_cache_bytes=4 * PIECE
    )
    async with storage:
        for index in range(meta.num_pieces):
            assert await storage.write_piece(index, piece_bytes(meta, files, index))
        await storage.read_block(0, 0, 16)
        view = storage.cached_block(0, 0, PIECE)
        assert view is not None
        for index in range(1, meta.num_pieces):
            await storage.read_block(index, 0, 16)  # evicts piece 0
        assert storage.cached_block(0, 0, PIECE) is None
        assert bytes(view) == whole[:PIECE]
