"""Web seeds (BEP 19): HTTP servers from the torrent's ``url-list`` as extra sources.

Each web seed is one more source for the torrent session: a pseudo-peer in
the piece picker that "has everything".  It takes one whole piece at a time
that nobody is fetching, downloads the piece's byte ranges from the files on
the server (HTTP ``Range`` requests, bounded reads, timeouts) and hands the
blocks to the session exactly as a peer's blocks arrive, so verification,
endgame and statistics work unchanged.  A piece that fails its hash drops the
web seed at once; an unreachable or misbehaving server is retried with
back-off and dropped after a few failures in a row.

URL rules (BEP 19): for a single-file torrent the URL names the file (or a
folder, when it ends with ``/``, to which the file name is appended); for a
multi-file torrent the URL is the folder that holds the torrent's folder, so
each file is ``url + name + "/" + path``, every component percent-encoded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import urllib.parse
from typing import Protocol

import aiohttp

from servent.codec.metainfo import FileEntry, Metainfo
from servent.errors import WebSeedError
from servent.proto.peerwire import Message, Piece
from servent.proto.picker import PiecePicker
from servent.proto.pipeline import RequestPipeline
from servent.storage import TorrentStorage

__all__ = ["MAX_WEB_SEEDS", "WebSeed", "WebSeedTorrent", "file_url", "run_web_seeds"]

log = logging.getLogger(__name__)

#: Web seeds used per torrent (the list in a torrent is unbounded).
MAX_WEB_SEEDS = 4
#: Failed fetches in a row before a web seed is dropped.
MAX_FAILURES = 4
#: Back-off after a failed fetch: BASE * 2**(failures-1), capped.
BACKOFF_BASE = 0.5
BACKOFF_MAX = 30.0
#: Connecting, and then silence between two reads, after which a request fails.
#: (No limit on the whole body: a slow server that keeps sending is still useful.)
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 30.0
_TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT, sock_read=READ_TIMEOUT)
#: How long to wait for others to complete a piece this seed fed partly.
OUTCOME_TIMEOUT = 60.0
#: Idle wait when no piece is free for the web seed (re-checked on every verified piece).
IDLE_WAIT = 1.0
READ_CHUNK = 64 * 1024


def file_url(base: str, entry: FileEntry) -> str:
    """The URL of ``entry`` on the web seed ``base`` (see the module docstring)."""
    multi_file = len(entry.path) > 1
    quoted = "/".join(_quote_component(part) for part in entry.path)
    if not multi_file:
        return base + quoted if base.endswith("/") else base
    return (base if base.endswith("/") else base + "/") + quoted


def _quote_component(part: str) -> str:
    """Percent-encode one path component; dot segments too, so no URL normaliser
    can turn them into a step up."""
    if part in (".", ".."):
        return part.replace(".", "%2E")
    return urllib.parse.quote(part, safe="")


class WebSeedTorrent(Protocol):
    """What a web seed uses of the torrent it feeds (a ``TorrentSession``)."""

    loop: asyncio.AbstractEventLoop
    metainfo: Metainfo
    storage: TorrentStorage
    num_pieces: int
    web_seeds: list[WebSeed]

    @property
    def picker(self) -> PiecePicker: ...

    @property
    def complete(self) -> bool: ...

    async def wait_progress(self) -> None: ...

    def piece_outcome(self, index: int) -> asyncio.Future[bool]: ...

    def deliver_block(self, source: object, piece: Piece, now: float) -> None: ...


class _NoWire:
    """Stands in for a peer session: a web seed has no wire to cancel requests on."""

    def send(self, message: Message) -> None:
        """Cancels for a web seed are dropped: its range request is already running."""

    def schedule_flush(self) -> None:
        """Nothing is ever queued."""


class WebSeed:
    """One ``url-list`` entry feeding one torrent session."""

    def __init__(self, torrent: WebSeedTorrent, url: str, http: aiohttp.ClientSession) -> None:
        self.torrent = torrent
        self.url = url
        self.http = http
        self.label = f"web seed {url}"
        # What the session's block path reads from a source (see SwarmPeer):
        self.session = _NoWire()
        self.pipeline = RequestPipeline(torrent.loop.time())
        self.sent_at: dict[tuple[int, int], float] = {}
        self.downloaded = 0
        self.identity = (url, 0, b"")
        self.failures = 0
        self.dropped: str | None = None
        self.pieces_fetched = 0
        self._cursor = 0  # where the next piece search starts (keeps it linear overall)
        #: Set when this web seed stops (torrent complete, or the seed dropped).
        self.finished = asyncio.Event()

    def __repr__(self) -> str:
        return f"<WebSeed {self.url}>"

    # ------------------------------------------------------------------ loop

    async def run(self) -> None:
        torrent = self.torrent
        torrent.picker.add_peer(self, None)
        try:
            while not torrent.complete and self.dropped is None:
                index = self._choose_piece()
                if index is None:
                    # asyncio.timeout, not wait_for: on Python 3.11 wait_for loses a
                    # cancellation that comes with progress, and this loop never ends.
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(IDLE_WAIT):
                            await torrent.wait_progress()
                    continue
                await self._fetch_and_deliver(index)
        finally:
            torrent.picker.remove_peer(self)
            self.finished.set()

    def _choose_piece(self) -> int | None:
        """A wanted piece nobody has started (so this source fetches it whole)."""
        torrent = self.torrent
        picker = torrent.picker
        have = torrent.storage.have
        partial = set(picker.partial_pieces())
        count = torrent.num_pieces
        for step in range(count):
            index = (self._cursor + step) % count
            if index not in have and index not in partial and picker.priority(index) > 0:
                self._cursor = index + 1
                return index
        return None

    async def _fetch_and_deliver(self, index: int) -> None:
        torrent = self.torrent
        picker = torrent.picker
        requests = picker.pick(self, picker.blocks_in_piece(index), allowed=[index])
        if not requests:
            return
        try:
            data = await self._fetch_piece(index)
        except (WebSeedError, aiohttp.ClientError, TimeoutError, OSError) as exc:
            for request in requests:
                picker.on_request_failed(self, request)
            await self._failed(str(exc) or type(exc).__name__)
            return
        outcome = torrent.piece_outcome(index)
        now = torrent.loop.time()
        view = memoryview(data)
        for request in requests:
            block = view[request.begin : request.begin + request.length]
            self.downloaded += len(block)
            torrent.deliver_block(self, Piece(request.index, request.begin, block), now)
        try:
            async with asyncio.timeout(OUTCOME_TIMEOUT):  # keeps a cancel (see run)
                ok = await outcome
        except TimeoutError:
            return
        if ok:
            self.failures = 0
            self.pieces_fetched += 1
        else:
            self.dropped = f"piece {index} from it failed its hash"
            log.warning("dropping %s: %s", self.label, self.dropped)

    async def _failed(self, reason: str) -> None:
        self.failures += 1
        if self.failures >= MAX_FAILURES:
            self.dropped = f"{self.failures} failed requests, last: {reason}"
            log.warning("dropping %s: %s", self.label, self.dropped)
            return
        delay = min(BACKOFF_MAX, BACKOFF_BASE * 2 ** (self.failures - 1))
        log.info("%s failed (%s); retrying in %.1f s", self.label, reason, delay)
        await asyncio.sleep(delay)  # back-off, not synchronisation

    # ------------------------------------------------------------------ HTTP

    async def _fetch_piece(self, index: int) -> bytearray:
        torrent = self.torrent
        size = torrent.metainfo.piece_size(index)
        data = bytearray(size)
        position = 0
        files = torrent.metainfo.files
        for span in torrent.storage.layout.spans(index):
            if not span.pad:
                entry = files[span.file_index]
                chunk = await self._fetch_range(
                    file_url(self.url, entry), span.file_offset, span.length
                )
                data[position : position + span.length] = chunk
            position += span.length
        if position != size:
            raise WebSeedError(f"piece {index} maps to {position} bytes, not {size}")
        return data

    async def _fetch_range(self, url: str, offset: int, length: int) -> bytes:
        """Exactly ``length`` bytes at ``offset`` of ``url``; never reads more."""
        headers = {"Range": f"bytes={offset}-{offset + length - 1}"}
        async with self.http.get(url, headers=headers, timeout=_TIMEOUT) as response:
            if response.status == 200 and offset == 0:
                pass  # server ignored the range: the first ``length`` bytes are still right
            elif response.status != 206:
                raise WebSeedError(f"HTTP {response.status} for {url}")
            declared = response.content_length
            if response.status == 206 and declared is not None and declared != length:
                raise WebSeedError(f"{url} sent {declared} bytes for a {length}-byte range")
            out = bytearray()
            while len(out) < length:
                chunk = await response.content.read(min(READ_CHUNK, length - len(out)))
                if not chunk:
                    raise WebSeedError(f"{url} ended after {len(out)} of {length} bytes")
                out += chunk
            return bytes(out)


async def run_web_seeds(torrent: WebSeedTorrent) -> None:
    """Run the torrent's web seeds until it completes (or this task is cancelled)."""
    urls = [url for url in torrent.metainfo.web_seeds if url.startswith(("http://", "https://"))]
    if not urls or torrent.complete:
        return
    connector = aiohttp.TCPConnector(limit_per_host=2)
    async with aiohttp.ClientSession(timeout=_TIMEOUT, connector=connector) as http:
        seeds = [WebSeed(torrent, url, http) for url in urls[:MAX_WEB_SEEDS]]
        torrent.web_seeds = seeds
        async with asyncio.TaskGroup() as tasks:
            for seed in seeds:
                tasks.create_task(seed.run(), name=seed.label)
