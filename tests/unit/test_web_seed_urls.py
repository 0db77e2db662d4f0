"""BEP 19 URL rules for web seeds: which URL holds which file; and a web seed
idling for progress stops when cancelled."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

import aiohttp

from servent.codec.metainfo import FileEntry
from servent.net.web_seed import WebSeed, file_url


def test_single_file_url_names_the_file_or_its_folder() -> None:
    entry = FileEntry(path=("movie.mkv",), length=10, offset=0)
    assert file_url("http://h/files/movie.mkv", entry) == "http://h/files/movie.mkv"
    assert file_url("http://h/files/", entry) == "http://h/files/movie.mkv"


def test_multi_file_url_is_the_folder_above_the_torrent_folder() -> None:
    entry = FileEntry(path=("album", "cd 1", "track#1?.flac"), length=10, offset=0)
    expected = "http://h/music/album/cd%201/track%231%3F.flac"
    assert file_url("http://h/music/", entry) == expected
    assert file_url("http://h/music", entry) == expected


def test_path_components_cannot_climb_out_of_the_url() -> None:
    entry = FileEntry(path=("t", "a/b", ".."), length=1, offset=0)
    url = file_url("http://h/base/", entry)
    assert url == "http://h/base/t/a%2Fb/%2E%2E"


@dataclass
class _Picker:
    """Nothing is wanted: the web seed idles until the torrent makes progress."""

    peers: set[object] = field(default_factory=set)

    def add_peer(self, peer: object, bitfield: object) -> None:
        self.peers.add(peer)

    def remove_peer(self, peer: object) -> None:
        self.peers.discard(peer)

    def partial_pieces(self) -> list[int]:
        return []

    def priority(self, index: int) -> int:
        return 0


@dataclass
class _Storage:
    have: set[int] = field(default_factory=set)


@dataclass
class _IdleTorrent:
    """The part of a torrent session a web seed reads, with progress under the test's hand."""

    loop: asyncio.AbstractEventLoop
    picker: _Picker = field(default_factory=_Picker)
    storage: _Storage = field(default_factory=_Storage)
    num_pieces: int = 1
    complete: bool = False
    progressed: asyncio.Event = field(default_factory=asyncio.Event)
    waits: int = 0

    async def wait_progress(self) -> None:
        self.waits += 1
        await self.progressed.wait()

    def verify_a_piece(self) -> None:
        """Like the session's piece checks: wake the waiters, then a fresh event."""
        self.progressed.set()
        self.progressed = asyncio.Event()


async def _stop_turns_after_progress(turns: int) -> str:
    """Cancel an idle web seed ``turns`` loop turns after its torrent makes progress."""
    torrent = _IdleTorrent(asyncio.get_running_loop())
    async with aiohttp.ClientSession() as http:
        seed = WebSeed(torrent, "http://127.0.0.1:1/", http)  # type: ignore[arg-type]
        task = torrent.loop.create_task(seed.run())
        for _ in range(100):  # its first pass: nothing to fetch, waiting for progress
            if torrent.waits:
                break
            await asyncio.sleep(0)
        assert torrent.waits == 1 and torrent.picker.peers == {seed}
        torrent.verify_a_piece()
        for _ in range(turns):
            await asyncio.sleep(0)
        task.cancel()
        await asyncio.wait([task], timeout=2.0)  # waits without cancelling it again
        if task.done():
            return "stopped" if task.cancelled() else "ended by itself"
        torrent.complete = True  # the loop that ignored its cancellation ends at its check
        torrent.verify_a_piece()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return "cancellation lost"


async def test_idle_web_seed_stopped_as_the_torrent_progresses_stops() -> None:
    """Regression: on Python 3.11 ``wait_for`` lost a cancellation that came in the turns
    where the torrent made progress, and the web seed (and its torrent's stop) never ended."""
    outcomes = [await _stop_turns_after_progress(turns) for turns in range(6)]
    assert outcomes == ["stopped"] * 6
