"""``Node``: the library's face.  Front ends (daemon, CLI, web UI) use only this API.

A node composes the persistent state (:mod:`servent.node.state`), the swarm
engine (:class:`~servent.net.engine.SwarmEngine`: the one layer between the
node and its torrents, see :mod:`servent.node.swarm`) and the DHT driver.
Every change a caller makes is written to the state database before the call
returns, so a node killed at any moment restarts with every
torrent, setting and shared folder, and resumes each torrent by itself.

Usage::

    async with Node(load_config()) as node:
        torrent_id = await node.add("magnet:?xt=urn:btih:...")
        async for event in node.events():
            ...
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from servent.errors import NodeError, ServentError, TorrentNotFoundError
from servent.net.live_service import LiveService
from servent.net.owned_tasks import cancel_and_wait
from servent.node.config import STORED_KEYS, Config
from servent.node.data_removal import delete_created_data, files_to_create
from servent.node.dht import NodeDht, dual_stack_config, save_dht
from servent.node.events import (
    EventHub,
    EventSubscription,
    FilePrioritiesChanged,
    FolderShared,
    MetadataReceived,
    NodeEvent,
    TorrentAdded,
    TorrentPaused,
    TorrentRemoved,
    TorrentResumed,
)
from servent.node.messaging import NodeMessaging
from servent.node.networks import NetworkService
from servent.node.node_settings import NodeSettings
from servent.node.own_address import advertised_address
from servent.node.presence import NodePresence
from servent.node.priorities import merged_priorities
from servent.node.reachability import NodeReachability
from servent.node.reporting import NodeReports
from servent.node.search_service import SearchService
from servent.node.sources import existing_payload, parse_source, stored_metainfo
from servent.node.state import SharedFolder, StateStore, TorrentRecord
from servent.node.status import (
    AddResult,
    FileStatus,
    NodeStatus,
    RemoveResult,
    ShareResult,
    TorrentId,
    TorrentStatus,
)
from servent.node.streaming import NodeStreams
from servent.node.swarm import NodeSwarm
from servent.node.sync_shares import SyncShares
from servent.node.torrent_spec import NODE_SESSION, PeerStatus, SessionOptions, TorrentSpec
from servent.node.totals import TransferTotals

if TYPE_CHECKING:
    from servent.codec.metainfo import Metainfo
    from servent.net.dht_driver import DhtDriver
    from servent.net.port_reservation import PortReservation

log = logging.getLogger(__name__)

#: How often transfer counters are sampled for the all-time totals.
STATUS_INTERVAL = 1.0
EVENT_QUEUE_SIZE = 1000
DHT_SAVE_INTERVAL = 300.0
#: How often the all-time transfer totals are written (a kill -9 loses at most this much).
TOTALS_SAVE_INTERVAL = 10.0

__all__ = [
    "AddResult",
    "FileStatus",
    "Node",
    "NodeEvent",
    "NodeStatus",
    "PeerStatus",
    "RemoveResult",
    "ShareResult",
    "TorrentId",
    "TorrentStatus",
]


class Node(
    NodeSwarm, NodeDht, NodeSettings, NodeReports, NodePresence, NodeReachability, NodeStreams,
    NodeMessaging,
):  # fmt: skip
    """One running servent node.  See the module docstring; use as an async context manager."""

    def __init__(
        self,
        config: Config,
        *,
        client_version: str = "",
        dht: DhtDriver | None = None,
        swarm_settings: Mapping[str, object] | None = None,
        one_shot: bool = False,
        reserved_port: PortReservation | None = None,
    ) -> None:
        """``client_version`` (servent's version, from the front end) is shown to peers.

        A one-shot command (see :mod:`servent.node.one_shot`) gives its own ``dht``
        (used, never started, saved or closed by the node), ``swarm_settings`` from
        its flags (``EngineConfig`` fields), and ``one_shot``: only torrents (no
        identity, node channels, messaging or search), and a DHT asked for that
        cannot start is an error rather than a log line; with ``reserved_port`` (the
        port it chose for its DHT, see :mod:`servent.net.port_reservation`) peers are
        listened for there."""
        self.config = config
        self._client_version = client_version
        self._events = EventHub(EVENT_QUEUE_SIZE)
        self._init_swarm(swarm_settings, reserved_port)
        self._one_shot = one_shot
        self._given_dht = dht
        self._store: StateStore | None = None
        self._totals: TransferTotals | None = None
        self._records: dict[str, TorrentRecord] = {}
        self._metainfo: dict[str, Metainfo] = {}
        self._monitor: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._dht: DhtDriver | None = None
        self._lock = asyncio.Lock()
        self._started = False
        self._init_presence()
        self._init_reachability()
        self.sync = SyncShares(self, lambda: self._dht)
        self._init_messaging()
        self.search = SearchService(self, lambda: self._dht)
        self.networks = NetworkService(self, lambda: self._swarm, lambda: self._dht)
        self.search.hidden = self.networks.is_network_torrent
        #: Live broadcasts (``docs/live.md``): started on the first broadcast or watch.
        self.live = LiveService(lambda: self.channels, self.peer_address, lambda: self._dht)

    # -- lifecycle ------------------------------------------------------------

    async def __aenter__(self) -> Node:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def store(self) -> StateStore:
        if self._store is None:
            raise NodeError("the node is not started")
        return self._store

    async def start(self) -> None:
        """Open the state, start the engine and DHT, resume every stored torrent."""
        if self._started:
            return
        if not self._one_shot:
            await self._load_identity()
        self._store = StateStore(self.config.data_dir)
        self._totals = TransferTotals(self._store)
        stored = {
            k: v
            for k, v in self._store.settings().items()
            if k in STORED_KEYS and k not in self.config.flag_keys
        }
        with contextlib.suppress(ServentError):
            self.config = self.config.with_values(stored)
        self.config = dual_stack_config(self.config)
        self._started = True
        try:
            self.config.effective_download_dir.mkdir(parents=True, exist_ok=True)
            self._swarm_limits = self._limits()
            self._start_limits_schedule(self._tasks)
            with self._reserved_port() as reserved:  # one number for TCP and UDP
                await self._open_dht(reserved)
                await self._start_swarm(reserved)
            self._start_dht_bootstrap()
            if not self._one_shot:
                self._start_presence()
            self._start_port_mapping()
            self._serve_connect_back()
            await self._start_messaging()
            await self.networks.start()  # before any torrent: network torrents stay closed
            for record in self._store.torrents():
                try:
                    await self._start_torrent(record)
                except ServentError as exc:  # one bad record must not stop the node
                    self._records.pop(record.id, None)
                    self._metainfo.pop(record.id, None)
                    log.error("cannot resume torrent %s (%s): %s", record.id, record.name, exc)
            for folder in self.config.shared_folders:
                try:
                    await self.share(folder)
                except ServentError as exc:
                    log.warning("cannot share %s: %s", folder, exc)
            self._monitor = asyncio.get_running_loop().create_task(
                self._keep_figures(), name="node-figures"
            )
            if not self._one_shot:
                await asyncio.gather(self.sync.start(), self.search.start())
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        """Stop torrents (engine announces 'stopped'), save the DHT table, close the state."""
        if not self._started:
            return
        self._started = False
        await asyncio.gather(self.sync.close(), self.search.close(), self.networks.close())
        if self._monitor is not None:
            self._monitor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._monitor
        await cancel_and_wait(self._tasks)
        self._tasks.clear()
        for torrent_id in list(self._records):
            self._count_transfers(torrent_id)
        if self._totals is not None and self._store is not None:
            self._totals.save(self._store)
        await self.live.close()
        await self._stop_messaging()
        await self._stop_presence()
        await self._stop_port_mapping()
        await self._stop_swarm()
        await self._stop_dht()
        self._events.close()
        if self._store is not None:
            self._store.close()
            self._store = None

    # -- adding -----------------------------------------------------------------

    async def add(
        self,
        source: bytes | str | Path | Metainfo,
        save_path: str | Path | None = None,
        *,
        peers: Sequence[tuple[str, int]] = (),
    ) -> TorrentId:
        """Add a torrent from .torrent bytes, a magnet link or a .torrent file path.

        Adding a torrent the node already has returns its id (and fills in the
        metadata if only its magnet was known).  ``peers`` are dialled first.
        """
        return (await self.add_torrent(source, save_path, peers=peers)).id

    async def add_torrent(
        self,
        source: bytes | str | Path | Metainfo,
        save_path: str | Path | None = None,
        *,
        peers: Sequence[tuple[str, int]] = (),
        options: SessionOptions = NODE_SESSION,
    ) -> AddResult:
        """Like :meth:`add`, and says whether the node had the torrent already.

        ``options`` change how this run of the torrent works (one-shot commands)."""
        metainfo, magnet, raw = parse_source(source)
        given = tuple(dict.fromkeys(peers))
        target = Path(save_path) if save_path is not None else self.config.effective_download_dir
        if metainfo is not None:
            torrent_id = TorrentId(metainfo.wire_info_hash.hex())
            name = metainfo.name
        else:
            assert magnet is not None
            torrent_id = TorrentId(magnet.wire_info_hash.hex())
            name = magnet.display_name or torrent_id
        async with self._lock:
            existing = self._records.get(torrent_id)
            if existing is not None:
                if existing.metainfo is None and metainfo is not None:
                    # The .torrent for a magnet we wait on: keep it and restart the
                    # torrent with its metadata (its resume data stays valid).
                    self._metadata_received(torrent_id, metainfo)
                    self._count_transfers(torrent_id)  # the restart resets its counters
                    await self._stop_running(torrent_id)
                    await self._start_torrent(self._records[torrent_id], given)
                elif more := given + (magnet.peers if magnet is not None else ()):
                    await self._running(torrent_id).add_peers(more)
                return AddResult(torrent_id, existing=True)
            save_path = target.expanduser().resolve()
            created = None
            if metainfo is not None:  # before storage opens: what is there now is the user's
                created = await asyncio.to_thread(files_to_create, save_path, metainfo)
            record = TorrentRecord(
                id=torrent_id,
                name=name,
                save_path=str(save_path),
                info_hash_v1=(metainfo or magnet).info_hash_v1,  # type: ignore[union-attr]
                info_hash_v2=(metainfo or magnet).info_hash_v2,  # type: ignore[union-attr]
                metainfo=raw,
                magnet=magnet.to_uri() if magnet is not None else None,
                added_at=time.time(),
                created_files=created,
            )
            self.store.add_torrent(record)
            # Told before it starts: its completion (or error) comes after this.
            self._events.emit(TorrentAdded(torrent_id, name))
            await self._start_torrent(record, given, options)
        return AddResult(torrent_id, existing=False)

    async def _start_torrent(
        self,
        record: TorrentRecord,
        peers: tuple[tuple[str, int], ...] = (),
        options: SessionOptions = NODE_SESSION,
    ) -> None:
        from servent.codec.magnet import parse_magnet

        metainfo = stored_metainfo(record.metainfo) if record.metainfo is not None else None
        magnet = parse_magnet(record.magnet) if record.magnet else None
        self._records[record.id] = record
        if metainfo is not None:
            self._metainfo[record.id] = metainfo
        spec = TorrentSpec(
            id=record.id,
            save_path=Path(record.save_path),
            resume_store=self.store,
            metainfo=metainfo,
            magnet=magnet,
            paused=record.paused,
            file_priorities=record.file_priorities,
            download_limit=record.download_limit,
            upload_limit=record.upload_limit,
            peers=peers,
            options=options,
        )
        await self._run_torrent(spec)

    def _metadata_received(self, torrent_id: str, metainfo: Metainfo) -> None:
        """An engine (or a later ``add``) learned a magnet's metadata: remember it for good."""
        record = self._records.get(torrent_id)
        if record is None or self._store is None:
            return
        # Before storage opens: files already there are the user's, never servent's to delete.
        created = files_to_create(Path(record.save_path), metainfo)
        with self._store.transaction():
            self._store.set_metainfo(torrent_id, metainfo.to_bytes(), metainfo.name)
            self._store.set_created_files(torrent_id, created)
        self._records[torrent_id] = dataclasses.replace(
            record, metainfo=metainfo.to_bytes(), name=metainfo.name, created_files=created
        )
        self._metainfo[torrent_id] = metainfo
        self._events.emit(MetadataReceived(torrent_id, metainfo.name))

    # -- controlling ------------------------------------------------------------

    def _record(self, torrent_id: str) -> TorrentRecord:
        try:
            return self._records[torrent_id]
        except KeyError:
            raise TorrentNotFoundError(f"no torrent {torrent_id}") from None

    async def pause(self, torrent_id: str) -> None:
        record = self._record(torrent_id)
        self.store.set_paused(torrent_id, True)
        self._records[torrent_id] = dataclasses.replace(record, paused=True)
        await self._running(torrent_id).pause()
        self._events.emit(TorrentPaused(torrent_id))

    async def resume(self, torrent_id: str) -> None:
        record = self._record(torrent_id)
        self.store.set_paused(torrent_id, False)
        self._records[torrent_id] = dataclasses.replace(record, paused=False)
        await self._running(torrent_id).resume()
        self._events.emit(TorrentResumed(torrent_id))

    async def remove(self, torrent_id: str, delete_data: bool = False) -> RemoveResult:
        """Forget a torrent; with ``delete_data`` also delete the files servent downloaded.

        Files servent did not create (a shared folder, data that was there when
        the torrent was added) are never deleted; the result says so."""
        record = self._record(torrent_id)
        self._count_transfers(torrent_id)  # its bytes stay in the node's totals
        await self._stop_running(torrent_id)
        metainfo = self._metainfo.pop(torrent_id, None)
        with self.store.transaction():
            self.store.remove_torrent(torrent_id)
            if metainfo is not None:
                # Storage keys resume data by the full info-hash (v2-only: 32 bytes).
                full = metainfo.info_hash_v1 or metainfo.info_hash_v2
                if full is not None:
                    self.store.delete(full.hex())
        del self._records[torrent_id]
        if self._totals is not None:
            self._totals.forget(torrent_id)
        result = RemoveResult(TorrentId(torrent_id), data_deleted=False)
        if delete_data:
            result = await asyncio.to_thread(delete_created_data, record, metainfo)
        self._events.emit(TorrentRemoved(torrent_id, result.data_deleted, result.reason))
        return result

    async def set_file_priorities(
        self, torrent_id: str, priorities: Sequence[int] | dict[int, int]
    ) -> None:
        """Set per-file priorities: a full list (one per file, pad files included) or
        ``{file_index: priority}``.  0 = skip, 1 = normal, up to 7 = highest."""
        record = self._record(torrent_id)
        metainfo = self._metainfo.get(torrent_id)
        if metainfo is None:
            raise NodeError("file priorities need the torrent's metadata, which is not known yet")
        final = merged_priorities(metainfo, record.file_priorities, priorities)
        self.store.set_file_priorities(torrent_id, final)
        self._records[torrent_id] = dataclasses.replace(record, file_priorities=final)
        await self._running(torrent_id).set_file_priorities(final)
        self._events.emit(FilePrioritiesChanged(torrent_id, final))

    # -- sharing ----------------------------------------------------------------

    async def share(
        self, folder: str | Path, *, network: Callable[[bytes, str, int], None] | None = None
    ) -> ShareResult:
        """Seed a folder (or a single file) as a hybrid (v1+v2) torrent and remember it
        across restarts.  Sharing a path again returns its torrent (``existing``).
        ``network`` makes it private (BEP 27) and is told its hash before it starts."""
        path = await asyncio.to_thread(existing_payload, folder)
        for shared in self.store.shared_folders():
            if shared.path == str(path) and shared.torrent_id in self._records:
                magnet = self._magnet_of(shared.torrent_id)
                return ShareResult(TorrentId(shared.torrent_id), str(path), magnet, existing=True)
        from servent.codec.metainfo.build import TorrentOptions
        from servent.storage.seed_resume import create_seeding_torrent, resume_key

        options = TorrentOptions(private=network is not None)
        metainfo, record = await asyncio.to_thread(create_seeding_torrent, path, options=options)
        if network is not None:
            network(metainfo.wire_info_hash, metainfo.name, metainfo.total_length)
        if metainfo.wire_info_hash.hex() not in self._records:
            # Creating the torrent verified every piece: storage opens without a recheck.
            self.store.save(resume_key(metainfo), record.encode())
        added = await self.add_torrent(metainfo.to_bytes(), save_path=path.parent)
        with self.store.transaction():
            self.store.add_shared_folder(str(path), added.id)
            self.store.set_created_files(added.id, ())  # the user's folder, never deleted
        self._records[added.id] = dataclasses.replace(self._records[added.id], created_files=())
        magnet = metainfo.magnet()
        self._events.emit(FolderShared(added.id, str(path), magnet))
        return ShareResult(added.id, str(path), magnet, existing=added.existing)

    def peer_address(self) -> tuple[str, int] | None:
        """Where other nodes reach this one for peer connections: the listening address,
        with a wildcard (0.0.0.0, ::) replaced by this host's own address."""
        listen = self._listen_address()
        return advertised_address(listen) if listen is not None else None

    def shared_folders(self) -> list[SharedFolder]:
        """The folders this node shares (remembered across restarts)."""
        return self.store.shared_folders()

    def events(self) -> EventSubscription:
        """Every event from this call on, pushed as it happens, until the node closes.

        Subscribed at the call, so nothing emitted after it is missed; a reader
        too slow to keep up loses the oldest and reads an ``events_dropped``
        marker.  Stop with ``aclose()`` (or ``async with``)."""
        return self._events.subscribe()

    def _emit_event(self, event: NodeEvent) -> None:
        self._events.emit(event)

    async def _keep_figures(self) -> None:
        """Sample transfer counters for the all-time totals (and save them now and
        then), and save the DHT routing table, so a kill -9 keeps most of both.
        (Events are pushed where they happen; nothing here looks for them.)"""
        loop = asyncio.get_running_loop()
        next_dht_save = loop.time() + DHT_SAVE_INTERVAL
        next_totals_save = loop.time() + TOTALS_SAVE_INTERVAL
        totals = self._totals
        assert totals is not None
        while True:
            if self._dht is not None and loop.time() >= next_dht_save:
                next_dht_save = loop.time() + DHT_SAVE_INTERVAL
                save_dht(self._dht, self.store)
            if loop.time() >= next_totals_save:
                next_totals_save = loop.time() + TOTALS_SAVE_INTERVAL
                totals.save(self.store)
            for torrent_id, torrent in list(self._running_torrents.items()):
                figures = torrent.figures()
                totals.observe(torrent_id, figures.downloaded, figures.uploaded)
            await asyncio.sleep(STATUS_INTERVAL)
