"""Node.open_stream: reads of bytes not downloaded yet jump the queue and wait for them.

Two in-process nodes on loopback; the seeder uploads slowly, so a read at 80 %
of the file answering long before the download finishes shows that the
read's pieces were fetched first (deadlines), and the whole file read through
the stream reader matches the original byte for byte.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from network_nodes import loopback_node
from servent.node.node import Node
from servent.node.status import FileStatus
from servent.node.streaming import StreamError
from servent.storage.torrent_creator import create_torrent

SIZE = 8 * 1024 * 1024
RATE = 1_500_000  # bytes/s from the seeder: the whole file takes about 5.6 s
WAIT = 60.0


async def test_a_stream_reads_ahead_of_the_download_and_every_byte_matches(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "show"
    folder.mkdir()
    original = os.urandom(SIZE)
    (folder / "movie.mp4").write_bytes(original)
    (folder / "notes.txt").write_bytes(b"not media " * 1000)
    async with (
        loopback_node(tmp_path / "seeder") as seeder,
        loopback_node(tmp_path / "viewer") as viewer,
    ):
        shared = await seeder.share(folder)
        await seeder.set_limits(shared.id, upload_rate_limit=RATE)
        address = seeder.status().listen_address
        assert address is not None
        torrent_id = await viewer.add(f"{shared.magnet}&x.pe=127.0.0.1:{address[1]}")
        await viewer.add(create_torrent(folder).to_bytes())
        async with asyncio.timeout(WAIT):
            reader = await viewer.open_stream(torrent_id)  # default: the media file
            assert reader.name == "movie.mp4" and reader.size == SIZE
            assert reader.content_type == "video/mp4"
            seek = SIZE * 8 // 10
            started = time.monotonic()
            chunk = await reader.read(seek, 65536)
            seek_seconds = time.monotonic() - started
            assert chunk == original[seek : seek + 65536]
            # The seek was served from pieces fetched out of turn, not at the end.
            assert viewer.torrent(torrent_id).progress < 0.8, seek_seconds
            tail = SIZE - 1000
            some = await reader.read_some(tail, 65536)  # as far as verified, at least a byte
            assert 0 < len(some) <= 1000 and some == original[tail : tail + len(some)]
            received = bytearray()
            while len(received) < SIZE:
                received += await reader.read(len(received), 256 * 1024)
            reader.close()
        assert bytes(received) == original


async def test_a_read_outside_the_file_or_a_bad_file_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "one"
    folder.mkdir()
    (folder / "clip.webm").write_bytes(b"\x1aE\xdf\xa3" * 1000)
    async with loopback_node(tmp_path / "seeder") as seeder:
        shared = await seeder.share(folder)
        reader = await seeder.open_stream(shared.id)
        assert await reader.read(3996, 100) == b"\x1aE\xdf\xa3"  # clipped at the end
        with pytest.raises(StreamError):
            await reader.read(4000, 1)
        with pytest.raises(StreamError):
            await seeder.open_stream(shared.id, 7)


async def test_streaming_a_skipped_file_raises_its_priority_and_plays(tmp_path: Path) -> None:
    """Regression: a file at priority 0 (skipped) was never fetched: its stream waited forever."""
    folder = tmp_path / "pair"
    folder.mkdir()
    movie = os.urandom(2 * 1024 * 1024)
    (folder / "movie.mp4").write_bytes(movie)
    (folder / "extra.mkv").write_bytes(os.urandom(1024 * 1024))
    async with (
        loopback_node(tmp_path / "seeder") as seeder,
        loopback_node(tmp_path / "viewer") as viewer,
    ):
        shared = await seeder.share(folder)
        address = seeder.status().listen_address
        assert address is not None
        torrent_id = await viewer.add(f"{shared.magnet}&x.pe=127.0.0.1:{address[1]}")
        async with asyncio.timeout(WAIT):
            files = await _files_when_known(viewer, torrent_id)
            movie_index = next(f.index for f in files if f.path.endswith("movie.mp4"))
            await viewer.set_file_priorities(torrent_id, {movie_index: 0})
            assert _priority(viewer, torrent_id, movie_index) == 0
            reader = await viewer.open_stream(torrent_id, movie_index)
            assert _priority(viewer, torrent_id, movie_index) == 1  # raised by the stream
            received = bytearray()
            while len(received) < len(movie):
                received += await reader.read(len(received), 256 * 1024)
            reader.close()
        assert bytes(received) == movie


def _priority(node: Node, torrent_id: str, index: int) -> int:
    return next(f.priority for f in node.files(torrent_id) if f.index == index)


async def _files_when_known(node: Node, torrent_id: str) -> list[FileStatus]:
    for _ in range(int(WAIT / 0.05)):  # until the metadata came, bounded
        if files := node.files(torrent_id):
            return files
        await asyncio.sleep(0.05)
    raise AssertionError("no metadata")
