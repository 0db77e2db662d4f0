"""The node's real torrent engine: a :class:`TorrentEngine` over the swarm engine.

:class:`SwarmTorrentEngine` adapts :class:`~servent.net.engine.SwarmEngine`
(which runs torrents as sessions) to the node's seam (which speaks in torrent
ids and specs).  What the swarm engine does not keep across a stop, the
adapter does: a paused torrent has no session, so its progress is the last
snapshot; a torrent resumed after a pause keeps its byte counters and the
addresses it knew.  File priorities reach a running session in place
(:meth:`TorrentSession.set_file_priorities`), so its peers stay connected.

A magnet torrent first runs a metadata task owned by the adapter (state
``metadata``); when the info dictionary arrives the node is told through
``on_metadata`` and the torrent starts like one added from a file.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from servent.errors import ServentError, TorrentNotFoundError
from servent.node.engine import (
    EngineLimits,
    EngineTorrentStatus,
    EventCallback,
    MetadataCallback,
    PeerStatus,
    TorrentSpec,
    TorrentWatcher,
)
from servent.node.events import NodeEvent, TorrentErrored
from servent.node.resume_progress import stored_progress
from servent.node.torrent_figures import (
    Snapshot,
    file_progress,
    known_addresses,
    peer_status,
    running_state,
    stopped_state,
)

if TYPE_CHECKING:
    from servent.codec.metainfo import Metainfo
    from servent.net.dht_driver import DhtDriver
    from servent.net.engine import SwarmEngine
    from servent.net.torrent_session import TorrentSession
    from servent.storage.torrent_storage import TorrentStorage

log = logging.getLogger(__name__)

Address = tuple[str, int]
#: How long one metadata attempt may take before it is retried.
METADATA_ATTEMPT_TIMEOUT = 60.0
METADATA_RETRY_DELAY = 5.0


@dataclass(slots=True)
class _Torrent:
    spec: TorrentSpec
    metainfo: Metainfo | None
    priorities: tuple[int, ...]
    paused: bool
    download_limit: int
    upload_limit: int
    session: TorrentSession | None = None
    storage: TorrentStorage | None = None
    metadata_task: asyncio.Task[None] | None = None
    error: str | None = None
    snapshot: Snapshot = field(default_factory=Snapshot)
    #: Byte counters of earlier sessions of this torrent (since the node started).
    carried_down: int = 0
    carried_up: int = 0
    #: Peer addresses known to earlier sessions, handed to the next one.
    known: set[Address] = field(default_factory=set)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    #: Verified bytes of the running session the cached per-file progress is for.
    progress_key: int = -1


def _rate(limit: int) -> float | None:
    return float(limit) if limit > 0 else None


class SwarmTorrentEngine:
    """The default engine of :class:`~servent.node.node.Node` (see the module doc)."""

    def __init__(
        self,
        *,
        listen_host: str | None = "0.0.0.0",
        listen_port: int = 0,
        lsd: bool = True,
        trackers: bool = True,
        encryption: str = "enabled",
        client_version: str = "",
        utp: bool = False,
        utp_preference: str = "prefer-tcp",
    ) -> None:
        self._client_version = client_version
        self.on_metadata: MetadataCallback | None = None
        self.on_event: EventCallback | None = None
        self.limits = EngineLimits()
        self._listen_host = listen_host
        self._listen_port = listen_port
        self._lsd = lsd
        self._trackers = trackers
        self._encryption = encryption
        self._utp = utp
        self._utp_preference = utp_preference
        self._engine: SwarmEngine | None = None
        self._torrents: dict[str, _Torrent] = {}
        #: Metadata tasks (each also linked from its torrent while cancellable).
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = False

    # -- life -------------------------------------------------------------------

    async def start(self, dht: DhtDriver | None = None) -> None:
        """Listen for peers (on the DHT's port number when the config leaves it free)."""
        from servent.net.engine import EngineConfig, SwarmEngine

        port = self._listen_port
        if port == 0 and dht is not None:
            port = dht.address[1]
        config = EngineConfig(
            listen_host=self._listen_host,
            listen_port=port,
            max_connections=self.limits.max_connections,
            download_rate=_rate(self.limits.download_rate_limit),
            upload_rate=_rate(self.limits.upload_rate_limit),
            lsd=self._lsd,
            trackers=self._trackers,
            encryption=self._encryption,
            client_version=self._client_version,
            utp=self._utp,
            utp_preference=self._utp_preference,
        )
        engine = SwarmEngine(config, dht=dht)
        try:
            await engine.start()
        except OSError as exc:
            with contextlib.suppress(Exception):
                await engine.close()
            if port == self._listen_port:
                raise ServentError(f"cannot listen for peers on port {port}: {exc}") from exc
            log.info("peer port %d (the DHT's) is taken, using any free port", port)
            config = dataclasses.replace(config, listen_port=0)
            engine = SwarmEngine(config, dht=dht)
            await engine.start()
        self._engine = engine

    async def close(self) -> None:
        """Stop every torrent (the swarm engine announces 'stopped'), flush resume data."""
        self._closing = True
        for torrent in list(self._torrents.values()):
            await self._cancel_metadata(torrent)
            await self._stop_session(torrent)
        self._torrents.clear()
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._engine is not None:
            engine, self._engine = self._engine, None
            await engine.close()

    @property
    def swarm(self) -> SwarmEngine:
        if self._engine is None:
            raise ServentError("the engine is not started")
        return self._engine

    @property
    def listen_address(self) -> tuple[str, int] | None:
        if self._engine is None or not self._engine.port:
            return None
        addresses = self._engine.listen_addresses
        if addresses:
            host, port = addresses[0][:2]
            return str(host), int(port)
        return (self._listen_host or "0.0.0.0", self._engine.port)

    def _emit(self, event: NodeEvent) -> None:
        if self.on_event is not None:
            self.on_event(event)

    def _get(self, torrent_id: str) -> _Torrent:
        try:
            return self._torrents[torrent_id]
        except KeyError:
            raise TorrentNotFoundError(f"no torrent {torrent_id}") from None

    # -- adding and running -------------------------------------------------------

    async def add(self, spec: TorrentSpec) -> None:
        """Start the torrent now (a file) or its metadata task (a magnet)."""
        torrent = _Torrent(
            spec=spec,
            metainfo=spec.metainfo,
            priorities=spec.file_priorities,
            paused=spec.paused,
            download_limit=spec.download_limit,
            upload_limit=spec.upload_limit,
        )
        if spec.magnet is not None:
            torrent.known.update(spec.magnet.peers)
        torrent.known.update(spec.peers)
        self._torrents[spec.id] = torrent
        if torrent.paused:
            if torrent.metainfo is not None:
                await self._probe(torrent)
            return
        if torrent.metainfo is None:
            self._start_metadata(torrent)
        else:
            await self._start_session(torrent)

    def _start_metadata(self, torrent: _Torrent) -> None:
        task = asyncio.get_running_loop().create_task(
            self._fetch_metadata(torrent), name=f"metadata {torrent.spec.id}"
        )
        torrent.metadata_task = task
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("%s failed", task.get_name(), exc_info=task.exception())

    async def _fetch_metadata(self, torrent: _Torrent) -> None:
        """Ask peers (x.pe, trackers, DHT) for the info dictionary until it comes."""
        magnet = torrent.spec.magnet
        assert magnet is not None
        while True:
            try:
                metainfo = await self.swarm.fetch_metadata(
                    magnet, peers=tuple(torrent.known), timeout=METADATA_ATTEMPT_TIMEOUT
                )
                break
            except (ServentError, OSError) as exc:
                log.info("metadata for %s not found yet: %s", torrent.spec.id, exc)
            await asyncio.sleep(METADATA_RETRY_DELAY)
        torrent.metainfo = metainfo
        # From here on a pause or removal must not cancel this task half-way through
        # opening storage: it waits for the torrent's lock instead (see _stop_session).
        torrent.metadata_task = None
        if self.on_metadata is not None:
            self.on_metadata(torrent.spec.id, metainfo)
        if not torrent.paused and not self._closing:
            await self._start_session(torrent)

    async def _cancel_metadata(self, torrent: _Torrent) -> None:
        task, torrent.metadata_task = torrent.metadata_task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task

    def _storage(self, torrent: _Torrent, metainfo: Metainfo) -> TorrentStorage:
        from servent.storage.torrent_storage import TorrentStorage

        priorities: tuple[int, ...] | None = torrent.priorities or None
        if priorities is not None and len(priorities) != len(metainfo.files):
            priorities = None
        return TorrentStorage(
            metainfo,
            torrent.spec.save_path,
            resume_store=torrent.spec.resume_store,
            file_priorities=priorities,
        )

    async def _start_session(self, torrent: _Torrent) -> None:
        """Open storage (resuming what was verified) and run the torrent in the swarm."""
        from servent.net.torrent_session import TorrentConfig

        metainfo = torrent.metainfo
        assert metainfo is not None
        async with torrent.lock:
            if torrent.session is not None or self._closing:
                return
            storage = self._storage(torrent, metainfo)
            config = TorrentConfig(
                max_connections=self.limits.max_peers_per_torrent,
                max_peers_per_ip=self.limits.max_peers_per_ip,
                download_rate=_rate(torrent.download_limit),
                upload_rate=_rate(torrent.upload_limit),
            )
            magnet = torrent.spec.magnet
            try:
                session = await self.swarm.add_torrent(
                    metainfo,
                    storage=storage,
                    config=config,
                    peers=tuple(torrent.known),
                    trackers=magnet.trackers if magnet is not None else (),
                    watcher=TorrentWatcher(torrent.spec.id, metainfo.name, self._emit),
                )
            except ServentError as exc:
                torrent.error = str(exc)
                log.error("torrent %s cannot start: %s", metainfo.name, exc)
                self._emit(TorrentErrored(torrent.spec.id, torrent.error))
                with contextlib.suppress(ServentError, OSError):
                    await storage.close()
                return
            torrent.error = None
            torrent.session, torrent.storage = session, storage
            torrent.progress_key = -1

    async def _stop_session(self, torrent: _Torrent) -> None:
        """Stop the torrent's session (storage flushed and closed), keeping its figures."""
        async with torrent.lock:
            session, torrent.session = torrent.session, None
            storage, torrent.storage = torrent.storage, None
            if session is None:
                return
            torrent.snapshot = self._snapshot(torrent, session, storage)
            torrent.carried_down = torrent.snapshot.downloaded
            torrent.carried_up = torrent.snapshot.uploaded
            torrent.known.update(known_addresses(session))
            await self.swarm.remove_torrent(session)

    async def _probe(self, torrent: _Torrent) -> None:
        """Progress of a torrent that does not run, from its resume data: no file is
        opened or created (see :mod:`servent.node.resume_progress`)."""
        metainfo = torrent.metainfo
        assert metainfo is not None
        try:
            stored = stored_progress(torrent.spec.resume_store, metainfo, torrent.priorities)
        except ServentError as exc:
            torrent.error = str(exc)
            return
        torrent.snapshot = Snapshot(
            have_bytes=stored.have_bytes,
            wanted_bytes=stored.wanted_bytes,
            downloaded=torrent.carried_down,
            uploaded=torrent.carried_up,
            file_progress=stored.file_progress,
        )

    def _snapshot(
        self, torrent: _Torrent, session: TorrentSession, storage: TorrentStorage | None
    ) -> Snapshot:
        stats = session.statistics()
        progress = torrent.snapshot.file_progress
        if storage is not None and torrent.metainfo is not None:
            progress = file_progress(storage, torrent.metainfo)
        size = torrent.metainfo.total_length if torrent.metainfo is not None else 0
        return Snapshot(
            have_bytes=min(stats.have_bytes, size),
            wanted_bytes=min(stats.wanted_bytes, size),
            downloaded=torrent.carried_down + stats.downloaded,
            uploaded=torrent.carried_up + stats.uploaded,
            file_progress=progress,
        )

    # -- controlling --------------------------------------------------------------

    async def remove(self, torrent_id: str) -> None:
        torrent = self._torrents.pop(torrent_id, None)
        if torrent is None:
            return
        await self._cancel_metadata(torrent)
        await self._stop_session(torrent)

    async def pause(self, torrent_id: str) -> None:
        torrent = self._get(torrent_id)
        torrent.paused = True
        await self._cancel_metadata(torrent)
        await self._stop_session(torrent)

    async def resume(self, torrent_id: str) -> None:
        torrent = self._get(torrent_id)
        torrent.paused = False
        torrent.error = None
        if torrent.metainfo is None:
            if torrent.metadata_task is None:
                self._start_metadata(torrent)
            return
        session = torrent.session
        if session is not None and session.error is not None:
            await self._stop_session(torrent)  # stopped by a disk error: try again
        await self._start_session(torrent)

    async def set_file_priorities(self, torrent_id: str, priorities: tuple[int, ...]) -> None:
        """New priorities reach the running session in place: peers stay connected,
        requests for pieces no longer wanted are cancelled (see decision 0011)."""
        torrent = self._get(torrent_id)
        torrent.priorities = priorities
        async with torrent.lock:
            session = torrent.session
            if session is not None and session.error is None:
                if len(priorities) == len(session.metainfo.files):
                    session.set_file_priorities(priorities)
                    torrent.progress_key = -1
                return
        if session is None:
            if torrent.metainfo is not None and torrent.paused:
                await self._probe(torrent)
            return
        await self._stop_session(torrent)  # stopped by a disk error: start it again
        await self._start_session(torrent)

    async def add_peers(self, torrent_id: str, peers: tuple[Address, ...]) -> None:
        """Addresses the user gave for a torrent that already runs (or waits for metadata)."""
        torrent = self._get(torrent_id)
        new = set(peers) - torrent.known
        torrent.known.update(peers)
        if torrent.session is not None:
            torrent.session.add_peers(peers, source="manual")
        elif new and torrent.metadata_task is not None:
            # The running attempt dials only the addresses it started with: start again.
            await self._cancel_metadata(torrent)
            self._restart_metadata(torrent)

    def _restart_metadata(self, torrent: _Torrent) -> None:
        waiting = torrent.metainfo is None and torrent.metadata_task is None
        if waiting and not torrent.paused and not self._closing:
            self._start_metadata(torrent)

    def set_limits(self, limits: EngineLimits) -> None:
        self.limits = limits
        engine = self._engine
        if engine is None or engine.limits is None:
            return
        now = asyncio.get_running_loop().time()
        engine.limits.download.set_rate(_rate(limits.download_rate_limit), now)
        engine.limits.upload.set_rate(_rate(limits.upload_rate_limit), now)
        engine.limits.max_connections = limits.max_connections
        for torrent in self._torrents.values():
            if torrent.session is not None:  # read by the session at each dial round
                torrent.session.config = dataclasses.replace(
                    torrent.session.config, max_connections=limits.max_peers_per_torrent
                )

    def set_torrent_limits(self, torrent_id: str, download: int, upload: int) -> None:
        torrent = self._get(torrent_id)
        torrent.download_limit, torrent.upload_limit = download, upload
        session = torrent.session
        if session is not None:
            now = asyncio.get_running_loop().time()
            session.download_bucket.set_rate(_rate(download), now)
            session.upload_bucket.set_rate(_rate(upload), now)

    # -- observing ------------------------------------------------------------------

    def status(self, torrent_id: str) -> EngineTorrentStatus:
        torrent = self._get(torrent_id)
        session = torrent.session
        if session is None:
            snap = torrent.snapshot
            return EngineTorrentStatus(
                state=stopped_state(torrent.error, torrent.metainfo is not None, torrent.paused),
                have_bytes=snap.have_bytes,
                wanted_bytes=snap.wanted_bytes,
                downloaded=snap.downloaded,
                uploaded=snap.uploaded,
                error=torrent.error,
                file_progress=snap.file_progress,
                file_priorities=torrent.priorities,
            )
        stats = session.statistics()
        storage = torrent.storage
        priorities = storage.file_priorities if storage is not None else torrent.priorities
        progress = torrent.snapshot.file_progress
        if storage is not None and torrent.metainfo is not None:
            key = stats.have_bytes
            if torrent.progress_key != key:  # recomputed only when a piece was verified
                torrent.progress_key = key
                torrent.snapshot.file_progress = file_progress(storage, torrent.metainfo)
            progress = torrent.snapshot.file_progress
        error = str(session.error) if session.error is not None else None
        size = torrent.metainfo.total_length if torrent.metainfo is not None else 0
        return EngineTorrentStatus(
            state=running_state(error, stats),
            have_bytes=min(stats.have_bytes, size),
            wanted_bytes=min(stats.wanted_bytes, size),
            download_rate=stats.download_rate,
            upload_rate=stats.upload_rate,
            peers=stats.peers,
            downloaded=torrent.carried_down + stats.downloaded,
            uploaded=torrent.carried_up + stats.uploaded,
            error=error,
            file_progress=progress,
            file_priorities=priorities,
        )

    def peers(self, torrent_id: str) -> list[PeerStatus]:
        torrent = self._get(torrent_id)
        session = torrent.session
        if session is None:
            return []
        return [peer_status(peer, session.num_pieces) for peer in session.open_peers]

    # -- streaming ------------------------------------------------------------------

    def set_piece_deadlines(self, torrent_id: str, deadlines: dict[int, float]) -> None:
        session = self._get(torrent_id).session
        if session is not None:  # the core only queues requests and cancels: no actions
            session.core.set_deadlines(deadlines, session.loop.time())

    def have_piece(self, torrent_id: str, index: int) -> bool:
        storage = self._get(torrent_id).storage
        return storage is not None and storage.have_piece(index)

    async def wait_piece_progress(self, torrent_id: str) -> None:
        session = self._get(torrent_id).session
        if session is not None:
            await session.wait_progress()

    async def read_verified(self, torrent_id: str, index: int, offset: int, length: int) -> bytes:
        storage = self._get(torrent_id).storage
        if storage is None:
            raise ServentError(f"torrent {torrent_id} is not open")
        return await storage.read_block(index, offset, length)
