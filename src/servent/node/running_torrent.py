"""One torrent of the node while the node runs, across pauses and restarts of its session.

The swarm engine runs a torrent as a :class:`~servent.net.torrent_session.TorrentSession`
and forgets it when it stops.  :class:`RunningTorrent` keeps what must outlive a
session: a paused torrent has no session, so its progress is the last snapshot
(or read from resume data); a torrent resumed after a pause keeps its byte
counters and the addresses it knew.  File priorities reach a running session
in place (:meth:`TorrentSession.set_file_priorities`), so its peers stay
connected.  A magnet torrent first waits for its metadata
(:mod:`servent.node.metadata_wait`, state ``metadata``); when the info
dictionary arrives the node is told and the torrent starts like one added
from a file.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from servent.errors import ServentError
from servent.node.events import TorrentErrored
from servent.node.metadata_wait import wait_for_metadata
from servent.node.torrent_figures import (
    TorrentProgress,
    known_addresses,
    peer_status,
    running_figures,
    stopped_figures,
)
from servent.node.torrent_spec import (
    EventCallback,
    MetadataCallback,
    PeerStatus,
    SwarmLimits,
    TorrentFigures,
    TorrentSpec,
    TorrentWatcher,
    swarm_rate,
)

if TYPE_CHECKING:
    from servent.codec.metainfo import Metainfo
    from servent.net.engine import SwarmEngine
    from servent.net.torrent_session import TorrentConfig, TorrentSession
    from servent.storage.torrent_storage import TorrentStorage

log = logging.getLogger(__name__)

Address = tuple[str, int]


class RunningTorrent:
    """One of the node's torrents (see the module doc); the node owns one per torrent."""

    def __init__(
        self,
        spec: TorrentSpec,
        swarm: SwarmEngine,
        *,
        limits: Callable[[], SwarmLimits],
        emit: EventCallback,
        metadata_received: MetadataCallback,
    ) -> None:
        self.spec = spec
        self.swarm = swarm
        self._limits = limits
        self._emit = emit
        self._metadata_received = metadata_received
        self.metainfo: Metainfo | None = spec.metainfo
        self.paused = spec.paused
        self.download_limit = spec.download_limit
        self.upload_limit = spec.upload_limit
        self.session: TorrentSession | None = None
        self.storage: TorrentStorage | None = None
        self.error: str | None = None
        self.progress = TorrentProgress(priorities=spec.file_priorities)
        #: Peer addresses known to earlier sessions, handed to the next one.
        self.known: set[Address] = set(spec.peers)
        if spec.magnet is not None:
            self.known.update(spec.magnet.peers)
        self._lock = asyncio.Lock()
        #: The metadata task, owned until it ends (cancelled on close).
        self._metadata_task: asyncio.Task[None] | None = None
        #: While the metadata is not there yet, pausing cancels the task.
        self._waiting_metadata = False
        self._closed = False

    @property
    def priorities(self) -> tuple[int, ...]:
        return self.progress.priorities

    # -- life ---------------------------------------------------------------------

    async def start(self) -> None:
        """Run now (a file), wait for the metadata (a magnet), or show progress (paused)."""
        if self.paused:
            if self.metainfo is not None:
                self._probe()
            return
        if self.metainfo is None:
            self._start_metadata()
        else:
            await self._start_session()

    async def close(self) -> None:
        """Stop for good (removed, or the node closes): flush storage, keep no task."""
        self._closed = True
        await self._cancel_metadata()
        # A task that has the metadata may be opening storage: the lock waits for it,
        # and once closed it starts nothing more.
        await self._stop_session()
        await self._cancel_metadata(everything=True)

    def _start_metadata(self) -> None:
        if self._closed or self._metadata_task is not None:
            return
        self._waiting_metadata = True
        self._metadata_task = asyncio.get_running_loop().create_task(
            self._fetch_metadata(), name=f"metadata {self.spec.id}"
        )
        self._metadata_task.add_done_callback(self._metadata_done)

    def _metadata_done(self, task: asyncio.Task[None]) -> None:
        if self._metadata_task is task:
            self._metadata_task = None
            self._waiting_metadata = False
        if not task.cancelled() and task.exception() is not None:
            log.error("%s failed", task.get_name(), exc_info=task.exception())

    async def _fetch_metadata(self) -> None:
        magnet = self.spec.magnet
        assert magnet is not None
        metainfo = await wait_for_metadata(self.swarm, magnet, lambda: tuple(self.known))
        self.metainfo = metainfo
        # From here on a pause must not cancel this task half-way through opening
        # storage: it waits for the torrent's lock instead (see _stop_session).
        self._waiting_metadata = False
        self._metadata_received(self.spec.id, metainfo)
        if not self.paused and not self._closed:
            await self._start_session()

    async def _cancel_metadata(self, *, everything: bool = False) -> None:
        task = self._metadata_task
        if task is None or not (everything or self._waiting_metadata):
            return
        self._metadata_task = None
        self._waiting_metadata = False
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task

    def _open_storage(self, metainfo: Metainfo) -> TorrentStorage:
        from servent.storage.torrent_storage import TorrentStorage

        priorities: tuple[int, ...] | None = self.priorities or None
        if priorities is not None and len(priorities) != len(metainfo.files):
            priorities = None
        return TorrentStorage(
            metainfo,
            self.spec.save_path,
            resume_store=self.spec.options.resume_store or self.spec.resume_store,
            file_priorities=priorities,
        )

    def _session_config(self) -> TorrentConfig:
        from servent.net.torrent_session import TorrentConfig

        limits, options = self._limits(), self.spec.options
        config = TorrentConfig(
            max_connections=limits.max_peers_per_torrent,
            max_peers_per_ip=limits.max_peers_per_ip,
            download_rate=swarm_rate(self.download_limit),
            upload_rate=swarm_rate(self.upload_limit),
            sequential=options.sequential,
        )
        if options.max_dial_failures is not None:
            config = dataclasses.replace(config, max_dial_failures=options.max_dial_failures)
        return config

    async def _start_session(self) -> None:
        """Open storage (resuming what was verified) and run the torrent in the swarm."""
        metainfo = self.metainfo
        assert metainfo is not None
        async with self._lock:
            if self.session is not None or self._closed:
                return
            storage = self._open_storage(metainfo)
            magnet = self.spec.magnet
            try:
                session = await self.swarm.add_torrent(
                    metainfo,
                    storage=storage,
                    config=self._session_config(),
                    peers=tuple(self.known),
                    trackers=magnet.trackers if magnet is not None else (),
                    watcher=TorrentWatcher(self.spec.id, metainfo.name, self._emit),
                )
            except ServentError as exc:
                with contextlib.suppress(ServentError, OSError):
                    await storage.close()
                if self.spec.options.raise_start_errors:
                    raise
                self.error = str(exc)
                log.error("torrent %s cannot start: %s", metainfo.name, exc)
                self._emit(TorrentErrored(self.spec.id, self.error))
                return
            self.error = None
            self.session, self.storage = session, storage
            self.progress.forget_cached()

    async def _stop_session(self) -> None:
        """Stop the session (storage flushed and closed), keeping its figures."""
        async with self._lock:
            session, self.session = self.session, None
            storage, self.storage = self.storage, None
            if session is None:
                return
            self.progress.keep(session, storage, self.metainfo)
            self.known.update(known_addresses(session))
            await self.swarm.remove_torrent(session)

    def _probe(self) -> None:
        """Progress of a torrent that does not run, from its resume data (no file opened)."""
        assert self.metainfo is not None
        try:
            self.progress.probe(self.spec.resume_store, self.metainfo)
        except ServentError as exc:
            self.error = str(exc)

    # -- controlling ----------------------------------------------------------------

    async def pause(self) -> None:
        self.paused = True
        await self._cancel_metadata()
        await self._stop_session()

    async def resume(self) -> None:
        self.paused = False
        self.error = None
        if self.metainfo is None:
            self._start_metadata()
            return
        session = self.session
        if session is not None and session.error is not None:
            await self._stop_session()  # stopped by a disk error: try again
        await self._start_session()

    async def set_file_priorities(self, priorities: tuple[int, ...]) -> None:
        """New priorities reach the running session in place: peers stay connected,
        requests for pieces no longer wanted are cancelled (see decision 0011)."""
        self.progress.priorities = priorities
        async with self._lock:
            session = self.session
            if session is not None and session.error is None:
                if len(priorities) == len(session.metainfo.files):
                    session.set_file_priorities(priorities)
                    self.progress.forget_cached()
                return
        if session is None:
            if self.metainfo is not None and self.paused:
                self._probe()
            return
        await self._stop_session()  # stopped by a disk error: start it again
        await self._start_session()

    async def add_peers(self, peers: tuple[Address, ...]) -> None:
        """Addresses the user gave for a torrent that already runs (or waits for metadata)."""
        new = set(peers) - self.known
        self.known.update(peers)
        if self.session is not None:
            self.session.add_peers(peers, source="manual")
        elif new and self._waiting_metadata:
            # The running attempt dials only the addresses it started with: start again.
            await self._cancel_metadata()
            if not self.paused:
                self._start_metadata()

    def set_rate_limits(self, download: int, upload: int) -> None:
        self.download_limit, self.upload_limit = download, upload
        session = self.session
        if session is not None:
            now = asyncio.get_running_loop().time()
            session.download_bucket.set_rate(swarm_rate(download), now)
            session.upload_bucket.set_rate(swarm_rate(upload), now)

    # -- observing ------------------------------------------------------------------

    def figures(self) -> TorrentFigures:
        session = self.session
        if session is None:
            return stopped_figures(self.progress, self.error, self.metainfo, self.paused)
        return running_figures(self.progress, session, self.storage, self.metainfo)

    def peers(self) -> list[PeerStatus]:
        session = self.session
        if session is None:
            return []
        return [peer_status(peer, session.num_pieces) for peer in session.open_peers]

    # -- streaming ------------------------------------------------------------------

    def set_piece_deadlines(self, deadlines: dict[int, float]) -> None:
        """Fetch these pieces first, by ``when`` on the event loop's clock."""
        session = self.session
        if session is not None:  # the core only queues requests and cancels: no actions
            session.core.set_deadlines(deadlines, session.loop.time())

    def have_piece(self, index: int) -> bool:
        return self.storage is not None and self.storage.have_piece(index)

    async def wait_piece_progress(self) -> None:
        """Until the next piece is verified (returns at once if the torrent does not run)."""
        if self.session is not None:
            await self.session.wait_progress()

    async def read_verified(self, index: int, offset: int, length: int) -> bytes:
        """Bytes of a verified piece (raises :class:`ServentError` if it is not verified)."""
        if self.storage is None:
            raise ServentError(f"torrent {self.spec.id} is not open")
        return await self.storage.read_block(index, offset, length)
