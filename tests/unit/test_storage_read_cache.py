"""ReadCache: uploads served from 1 MiB chunks, also of pieces far larger than the cache."""

from __future__ import annotations

import random
from pathlib import Path

from servent.storage.read_cache import READ_CHUNK, ReadCache
from servent.storage.resume import MemoryResumeStore
from servent.storage.torrent_storage import TorrentStorage
from storage_torrents import make_metainfo, piece_bytes, random_files

BLOCK = 16384


def test_chunks_are_aligned_within_the_piece_and_clipped_at_its_end() -> None:
    cache = ReadCache(8 * READ_CHUNK)
    assert cache.chunk_span(4 * READ_CHUNK, 0) == (0, READ_CHUNK)
    assert cache.chunk_span(4 * READ_CHUNK, READ_CHUNK + 5) == (READ_CHUNK, READ_CHUNK)
    assert cache.chunk_span(READ_CHUNK + 100, READ_CHUNK + 50) == (READ_CHUNK, 100)
    assert cache.chunk_span(3000, 2000) == (0, 3000)  # a small piece is one chunk


def test_view_needs_the_whole_block_inside_one_cached_chunk() -> None:
    cache = ReadCache(1 << 20, chunk=1000)
    cache.put(7, 1000, bytes(range(200)) * 5)
    view = cache.view(7, 1010, 20)
    assert view is not None and bytes(view) == bytes(range(10, 30))
    assert cache.view(7, 1990, 20) is None  # runs into the next chunk
    assert cache.view(7, 10, 20) is None  # another chunk
    assert cache.view(8, 1010, 20) is None  # another piece
    assert cache.view(7, 1010, 0) is None


def test_least_recently_used_chunks_leave_first_and_sizes_add_up() -> None:
    cache = ReadCache(3000, chunk=1000)
    for start in (0, 1000, 2000):
        cache.put(1, start, bytes(1000))
    assert cache.view(1, 0, 10) is not None  # chunk 0 is now the most recent
    cache.put(1, 3000, bytes(1000))
    assert len(cache) == 3 and cache.size == 3000
    assert cache.view(1, 1000, 10) is None  # the least recent went
    assert cache.view(1, 0, 10) is not None
    cache.put(1, 0, bytes(1000))  # read again by a second uploader: replaced, not doubled
    assert cache.size == 3000
    assert not cache.cacheable(1000) and ReadCache(4000, chunk=1000).cacheable(1000)


async def test_blocks_of_pieces_larger_than_the_cache_are_served_from_chunks(
    tmp_path: Path,
) -> None:
    piece = 4 * READ_CHUNK
    files = random_files(random.Random(21), [piece + READ_CHUNK // 2])
    meta = make_metainfo(files, piece)
    whole = files[0][1]
    storage = TorrentStorage(
        meta, tmp_path, resume_store=MemoryResumeStore(), read_cache_bytes=4 * READ_CHUNK
    )
    async with storage:
        for index in range(meta.num_pieces):
            assert await storage.write_piece(index, piece_bytes(meta, files, index))
        offset = READ_CHUNK + 3 * BLOCK
        assert storage.cached_block(0, offset, BLOCK) is None
        assert await storage.read_block(0, offset, BLOCK) == whole[offset : offset + BLOCK]
        neighbour = storage.cached_block(0, offset + BLOCK, BLOCK)  # same chunk: no read
        assert neighbour is not None
        assert bytes(neighbour) == whole[offset + BLOCK : offset + 2 * BLOCK]
        assert storage.cached_block(0, 2 * READ_CHUNK, BLOCK) is None  # next chunk
        straddling = READ_CHUNK - 100
        assert (
            await storage.read_block(0, straddling, BLOCK) == whole[straddling : straddling + BLOCK]
        )
        last = piece + READ_CHUNK // 2 - BLOCK
        assert await storage.read_block(1, last - piece, BLOCK) == whole[last:]
        assert await storage.read_piece(0) == whole[:piece]
