"""Read a file of a torrent while it downloads: the node side of streaming.

A :class:`StreamReader` serves ``read(offset, length)`` for one file.  Bytes
not verified yet become piece deadlines (the read itself now, a read-ahead
window after it) and the read waits until storage has verified them.  The
deadlines of every open reader of a torrent are merged (earliest wins) so a
player that reads the head and the tail of a file at once is served for both.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import mimetypes
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from servent.errors import ServentError
from servent.proto.stream_plan import DEFAULT_WINDOW, FileSpan, merge_deadlines, read_deadlines

if TYPE_CHECKING:
    from servent.codec.metainfo import Metainfo
    from servent.node.events import EventSubscription
    from servent.node.running_torrent import RunningTorrent
    from servent.node.state import TorrentRecord

TorrentLookup = Callable[[str], "RunningTorrent"]
"""The running torrent of an id (raises TorrentNotFoundError once it is removed)."""

#: Bytes at each end of a media file given deadlines when a stream opens.
CONTAINER_ENDS = 1
#: How often a waiting read looks again (a piece may come through a restarted session).
RECHECK_SECONDS = 0.5


class StreamError(ServentError):
    """The stream cannot be served (bad file index, read outside the file, gave up)."""


def is_media(name: str) -> bool:
    """Whether a file name looks like audio or video."""
    kind, _ = mimetypes.guess_type(name)
    return kind is not None and kind.split("/")[0] in ("video", "audio")


def default_stream_file(metainfo: Metainfo) -> int:
    """The largest media file, else the largest file (pad files never)."""
    files = [(i, f) for i, f in enumerate(metainfo.files) if not f.pad]
    if not files:
        raise StreamError("the torrent has no files")
    media = [(i, f) for i, f in files if is_media(f.path[-1])] or files
    return max(media, key=lambda item: item[1].length)[0]


class StreamDeadlines:
    """The deadlines wanted by every open reader of one node, merged per torrent."""

    def __init__(self, lookup: TorrentLookup) -> None:
        self._lookup = lookup
        self._wanted: dict[str, dict[int, dict[int, float]]] = {}
        self._ids = itertools.count()

    def new_reader_id(self) -> int:
        return next(self._ids)

    def set(self, torrent_id: str, reader: int, deadlines: dict[int, float]) -> None:
        readers = self._wanted.setdefault(torrent_id, {})
        if deadlines:
            readers[reader] = deadlines
        else:
            readers.pop(reader, None)
        merged = merge_deadlines(readers.values())
        if not readers:
            del self._wanted[torrent_id]
        with contextlib.suppress(ServentError):
            self._lookup(torrent_id).set_piece_deadlines(merged)


class StreamReader:
    """One player's view of one file: random-access reads that wait for the pieces."""

    def __init__(
        self,
        lookup: TorrentLookup,
        deadlines: StreamDeadlines,
        torrent_id: str,
        metainfo: Metainfo,
        file_index: int,
        *,
        window: int = DEFAULT_WINDOW,
    ) -> None:
        if not 0 <= file_index < len(metainfo.files) or metainfo.files[file_index].pad:
            raise StreamError(f"no file {file_index} in torrent {torrent_id}")
        entry = metainfo.files[file_index]
        self.torrent_id = torrent_id
        self.file_index = file_index
        self.name = entry.path[-1]
        self.size = entry.length
        self.span = FileSpan(entry.offset, entry.length, metainfo.piece_length, metainfo.num_pieces)
        self.window = window
        self._lookup = lookup
        self._deadlines = deadlines
        self._id = deadlines.new_reader_id()
        self._loop = asyncio.get_running_loop()

    @property
    def content_type(self) -> str:
        kind, _ = mimetypes.guess_type(self.name)
        return kind or "application/octet-stream"

    def open(self) -> None:
        """Ask for the container's header and index (first and last pieces) first."""
        if is_media(self.name):
            now = self._loop.time()
            ends = self.span.ends(CONTAINER_ENDS)
            self._want({index: now for index in ends if not self._have(index)})

    def close(self) -> None:
        self._want({})

    def _have(self, index: int) -> bool:
        return self._lookup(self.torrent_id).have_piece(index)

    def _want(self, deadlines: dict[int, float]) -> None:
        self._deadlines.set(self.torrent_id, self._id, deadlines)

    async def read(
        self, offset: int, length: int, *, still_wanted: Callable[[], bool] | None = None
    ) -> bytes:
        """File bytes ``[offset, offset + length)`` (clipped at the end), once verified.

        Waits while ``still_wanted()`` says the reader is there (an HTTP client
        still connected); raises :class:`StreamError` when it stops wanting.
        """
        length = self._clip(offset, length)
        await self._wait_verified(offset, length, None, still_wanted)
        return await self._read_pieces(offset, length)

    async def read_some(
        self, offset: int, length: int, *, still_wanted: Callable[[], bool] | None = None
    ) -> bytes:
        """At least one byte from ``offset``, at most ``length``: as far as verified.

        Why: a player after a seek wants its first bytes as soon as the first
        piece is in, not once a whole read buffer of pieces is.
        """
        length = self._clip(offset, length)
        needed = self.span.pieces(offset, length)
        await self._wait_verified(offset, length, needed[0], still_wanted)
        last = needed[0]
        while last + 1 in needed and self._have(last + 1):
            last += 1
        end = (last + 1) * self.span.piece_length - self.span.offset
        return await self._read_pieces(offset, min(length, end - offset))

    def _clip(self, offset: int, length: int) -> int:
        if offset < 0 or offset >= self.size or length <= 0:
            raise StreamError(f"read {offset}+{length} outside a file of {self.size} bytes")
        return min(length, self.size - offset)

    async def _wait_verified(
        self,
        offset: int,
        length: int,
        first_only: int | None,
        still_wanted: Callable[[], bool] | None,
    ) -> None:
        """Give the read (and its window) deadlines; wait for its pieces, or only
        for piece ``first_only``."""
        needed = self.span.pieces(offset, length)
        waited = needed if first_only is None else range(first_only, first_only + 1)
        plan = read_deadlines(self.span, offset, length, self._loop.time(), self.window)
        self._want({i: when for i, when in plan.items() if not self._have(i)})
        while not all(self._have(index) for index in waited):
            if still_wanted is not None and not still_wanted():
                raise StreamError("the reader went away")
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for loses a cancellation
            # that comes with a piece, and a reader gone away keeps this loop alive.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(RECHECK_SECONDS):
                    await self._lookup(self.torrent_id).wait_piece_progress()
            now = self._loop.time()
            self._want(
                {i: min(w, now) if i in needed else w for i, w in plan.items() if not self._have(i)}
            )

    async def _read_pieces(self, offset: int, length: int) -> bytes:
        piece_length = self.span.piece_length
        position = self.span.offset + offset
        end = position + length
        parts: list[bytes] = []
        while position < end:
            index, within = divmod(position, piece_length)
            count = min(end - position, piece_length - within)
            parts.append(await self._lookup(self.torrent_id).read_verified(index, within, count))
            position += count
        return b"".join(parts)


class NodeStreams:
    """``Node.open_stream``; the state belongs to ``Node`` (declared for mypy)."""

    _metainfo: dict[str, Metainfo]
    _running: TorrentLookup
    _stream_deadlines: StreamDeadlines | None = None

    def _record(self, torrent_id: str) -> TorrentRecord:
        raise NotImplementedError

    async def set_file_priorities(
        self, torrent_id: str, priorities: Sequence[int] | dict[int, int]
    ) -> None:
        raise NotImplementedError

    async def open_stream(
        self, torrent_id: str, file_index: int | None = None, *, metadata_timeout: float = 60.0
    ) -> StreamReader:
        """A reader of one file (default: the largest media file) that waits for its pieces.

        A magnet's metadata is waited for up to ``metadata_timeout`` seconds.
        """
        self._record(torrent_id)  # raises TorrentNotFoundError
        try:
            async with asyncio.timeout(metadata_timeout):
                metainfo = await self._wait_metainfo(torrent_id)
        except TimeoutError:
            raise StreamError(
                f"no metadata for {torrent_id} after {metadata_timeout:g} s"
            ) from None
        if self._stream_deadlines is None:
            self._stream_deadlines = StreamDeadlines(self._running)
        index = default_stream_file(metainfo) if file_index is None else file_index
        reader = StreamReader(self._running, self._stream_deadlines, torrent_id, metainfo, index)
        skipped = self._record(torrent_id).file_priorities
        if index < len(skipped) and skipped[index] == 0:  # a skipped file would never come
            await self.set_file_priorities(torrent_id, {index: 1})
        reader.open()
        return reader

    def events(self) -> EventSubscription:
        raise NotImplementedError

    async def _wait_metainfo(self, torrent_id: str) -> Metainfo:
        events = self.events()  # subscribed before the check: no event slips between
        try:
            if torrent_id not in self._metainfo:
                async for _event in events:
                    if torrent_id in self._metainfo:
                        break
        finally:
            await events.aclose()
        metainfo = self._metainfo.get(torrent_id)
        if metainfo is None:
            raise StreamError(f"torrent {torrent_id} closed before its metadata came")
        return metainfo
