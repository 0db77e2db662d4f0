"""The swarm engine: many torrents, one listener, node-wide limits.

:class:`SwarmEngine` owns the listening socket(s), the global connection
budget and rate buckets, and one :class:`TorrentSession` owner task per
torrent (kept in a registry and cancelled on :meth:`SwarmEngine.close`).
Torrents are found by their wire info-hash and, for hybrid torrents, by the
truncated v2 hash too, since peers may use either in their handshake.

Usage::

    async with SwarmEngine(EngineConfig(listen_host="127.0.0.1")) as engine:
        torrent = await engine.add_torrent(metainfo, "downloads", peers=[("::1", 6881)])
        await torrent.wait_complete()

Peer discovery: every torrent gets a
:class:`~servent.net.torrent_discovery.TorrentDiscovery` owner task (its
trackers, the shared DHT given to the engine, LSD when enabled), and
:meth:`SwarmEngine.fetch_metadata` turns a magnet link into a
:class:`~servent.codec.metainfo.Metainfo` using the same sources.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from pathlib import Path

from servent.codec.magnet import Magnet
from servent.codec.metainfo import Metainfo
from servent.codec.metainfo.parse import parse_info
from servent.codec.tracker import ScrapeEntry
from servent.errors import MetadataFetchError, MetainfoError, ServentError
from servent.net.dht_driver import DhtDriver
from servent.net.encrypted_transport import parse_policy
from servent.net.engine_config import EngineConfig, make_peer_id
from servent.net.known_peers import Address
from servent.net.limits import GlobalLimits
from servent.net.listener import IncomingTarget, PeerListener
from servent.net.lsd import LsdDriver, LsdRateLimit
from servent.net.metadata_fetch import MetadataFetch
from servent.net.peer_dialer import PeerDialer
from servent.net.port_reservation import PortReservation
from servent.net.session_watcher import IGNORE_SESSION, SessionWatcher
from servent.net.tcp_punch import TcpPuncher, reuse_port_supported
from servent.net.torrent_discovery import Progress, TorrentDiscovery
from servent.net.torrent_session import TorrentConfig, TorrentSession
from servent.net.tracker_client import TrackerClient, UdpRetryPolicy
from servent.net.utp_socket import UtpSocket, open_utp
from servent.storage import TorrentStorage

__all__ = ["EngineConfig", "SwarmEngine", "make_peer_id"]

log = logging.getLogger(__name__)


def _tiers(*groups: Iterable[Iterable[str]]) -> list[list[str]]:
    """Tracker tiers in order, each URL once (the first tier it appears in wins)."""
    seen: set[str] = set()
    tiers: list[list[str]] = []
    for group in groups:
        for tier in group:
            urls = [u for u in tier if u and u not in seen]
            seen.update(urls)
            if urls:
                tiers.append(urls)
    return tiers


def _report_discovery_end(task: asyncio.Task[None]) -> None:
    """Discovery only ends by cancellation; anything else is a bug worth a log line."""
    if not task.cancelled() and task.exception() is not None:
        log.error("%s ended: %r", task.get_name(), task.exception())


class SwarmEngine:
    """Runs torrents; see the module docstring."""

    def __init__(
        self,
        config: EngineConfig | None = None,
        *,
        peer_id: bytes | None = None,
        rng: random.Random | None = None,
        dht: DhtDriver | None = None,
        reserved: PortReservation | None = None,
    ) -> None:
        """``reserved``: the port the node reserved for TCP and UDP (its sockets are
        taken by the listener and uTP at :meth:`start`; the DHT takes its own first)."""
        self.config = config or EngineConfig()
        #: The node's DHT, shared by every torrent; used, never closed, by the engine.
        self.dht = dht
        self._reserved = reserved
        self.rng = rng or random.Random(int.from_bytes(os.urandom(8), "big"))
        self.peer_id = peer_id or make_peer_id(self.config.client_version, self.rng)
        self.torrents: dict[bytes, TorrentSession] = {}
        self._runs: dict[TorrentSession, asyncio.Task[None]] = {}
        self._storages: dict[TorrentSession, TorrentStorage] = {}
        self.limits: GlobalLimits | None = None
        self.listener: PeerListener | None = None
        self.utp: UtpSocket | None = None
        self.dialer = PeerDialer(preference=self.config.utp_preference)
        self.tracker_client: TrackerClient | None = None
        self.lsd: LsdDriver | None = None
        self.discoveries: dict[TorrentSession, TorrentDiscovery] = {}
        self._discovery_runs: dict[TorrentDiscovery, asyncio.Task[None]] = {}
        #: Discoveries by every 20-byte hash they cover (LSD answers are routed here).
        self._discovery_by_hash: dict[bytes, TorrentDiscovery] = {}
        #: Metadata fetches running, by 20-byte hash (incoming peers are handed to them).
        self._fetching: dict[bytes, MetadataFetch] = {}
        #: Peers that answered a metadata fetch, handed to the torrent added next.
        self._fetched_peers: dict[bytes, list[Address]] = {}

    # ------------------------------------------------------------------ life

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        config = self.config
        self.limits = GlobalLimits(
            max_connections=config.max_connections,
            download_rate=config.download_rate,
            upload_rate=config.upload_rate,
            now=loop.time(),
        )
        if config.listen:
            self.listener = PeerListener(
                peer_id=self.peer_id,
                lookup=self._incoming_target,
                limits=self.limits,
                host=config.listen_host,
                port=config.listen_port,
                config=config.connection,
                encryption=config.encryption,
                info_hashes=lambda: [*self.torrents, *self._fetching],
                share_port=config.holepunch_tcp and reuse_port_supported(),
                sockets=self._reserved.take_tcp() if self._reserved is not None else (),
            )
            await self.listener.start()
            if self.listener.share_port:
                self.dialer.tcp_punch = TcpPuncher(
                    config.listen_host, self.listener.port, self.listener.incoming_protocol
                )
            if config.utp:
                self._start_utp(self.listener)
        if config.trackers:
            self.tracker_client = TrackerClient(
                http_timeout=config.discovery.tracker_timeout,
                udp_retry=UdpRetryPolicy(base_timeout=5.0, max_retries=2),
            )
        if config.lsd:
            self.lsd = LsdDriver(
                config.lsd_interface or "0.0.0.0",
                self._on_lsd_peer,
                group=config.lsd_group,
                port=config.lsd_port,
                rate_limit=LsdRateLimit(
                    min_interval=min(
                        config.discovery.lsd_interval, config.discovery.lsd_reply_interval
                    )
                ),
                ipv4=config.lsd_ipv4,
                ipv6=config.lsd_ipv6,
                interface6=config.lsd_interface6,
                group6=config.lsd_group6,
            )
            try:
                await self.lsd.start()
            except OSError as exc:  # no multicast route at all (offline): run without LSD
                log.warning("local service discovery is off: %s", exc)
                self.lsd = None

    def _start_utp(self, listener: PeerListener) -> None:
        shared = self.dht.shared_ports if self.dht is not None else []
        owned = self._reserved.take_udp() if self._reserved is not None else []
        self.utp = open_utp(listener.incoming_protocol, self.config.listen_host, listener.port,
                            shared, owned=owned)  # fmt: skip
        self.dialer.utp = self.utp

    async def close(self) -> None:
        """Stop every torrent (``stopped`` to trackers), close storage, listener, LSD."""
        for torrent in list(self._runs):
            await self.remove_torrent(torrent)
        for discovery in list(self._discovery_runs):
            await self._stop_discovery(discovery)
        if self.utp is not None:
            self.utp.close()
        if self.listener is not None:
            await self.listener.close()
        if self.lsd is not None:
            self.lsd.close()
        if self.tracker_client is not None:
            await self.tracker_client.close()

    async def __aenter__(self) -> SwarmEngine:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def port(self) -> int:
        """The TCP port peers reach us on (0 when not listening)."""
        return self.listener.port if self.listener is not None else 0

    @property
    def listen_addresses(self) -> list[tuple[str, int]]:
        return list(self.listener.addresses) if self.listener is not None else []

    # ------------------------------------------------------------------ torrents

    async def add_torrent(
        self,
        metainfo: Metainfo,
        download_dir: Path | str | None = None,
        *,
        storage: TorrentStorage | None = None,
        config: TorrentConfig | None = None,
        peers: Iterable[Address] = (),
        trackers: Iterable[str] = (),
        watcher: SessionWatcher = IGNORE_SESSION,
    ) -> TorrentSession:
        """Open the torrent's storage (resuming what was verified) and start its owner task.

        ``watcher`` hears of completion, a fatal error and bans as they happen.

        Discovery starts with it: the metainfo's trackers, then ``trackers``
        (e.g. a magnet's ``tr``), then the engine's ``extra_trackers``; the
        DHT and LSD unless the torrent is private.
        """
        if self.limits is None:
            raise RuntimeError("start the engine first")
        if metainfo.wire_info_hash in self.torrents:
            raise ServentError(f"torrent {metainfo.name!r} is already running")
        if storage is None:
            if download_dir is None:
                raise ValueError("give download_dir or storage")
            storage = TorrentStorage(metainfo, download_dir)
        await storage.open()
        config = self._with_slot_share(config or TorrentConfig())
        if config.encryption is None:
            config = replace(config, encryption=self.config.encryption)
        torrent = TorrentSession(
            metainfo,
            storage,
            peer_id=self.peer_id,
            config=config,
            limits=self.limits,
            rng=random.Random(self.rng.getrandbits(64)),
            listen_port=self.port or None,
            watcher=watcher,
        )
        torrent.dialer = self.dialer
        torrent.add_peers(peers)
        fetched = self._fetched_peers.pop(metainfo.wire_info_hash, [])
        # They answered the metadata fetch moments ago: rank them like given peers.
        torrent.add_peers(fetched, source="manual")
        self.torrents[metainfo.wire_info_hash] = torrent
        if metainfo.is_hybrid and metainfo.info_hash_v2 is not None:
            self.torrents[metainfo.info_hash_v2[:20]] = torrent
        if torrent.aria2_alias is not None:
            self.torrents[torrent.aria2_alias] = torrent
        self._storages[torrent] = storage
        self._runs[torrent] = asyncio.get_running_loop().create_task(
            torrent.run(), name=f"torrent {metainfo.name}"
        )
        self._start_discovery(torrent, list(trackers))
        return torrent

    # ------------------------------------------------------------------ discovery

    def _own_addresses(self) -> set[Address]:
        port = self.port
        own = {("127.0.0.1", port), ("::1", port), *self.listen_addresses}
        return {a for a in own if a[1]}

    def _info_hashes(self, v1: bytes | None, v2: bytes | None) -> list[bytes]:
        return [h[:20] for h in (v1, v2) if h is not None]

    def _new_discovery(
        self,
        hashes: list[bytes],
        *,
        sink: Callable[..., None],
        trackers: list[list[str]],
        private: bool,
        dht_announce: bool,
        progress: Callable[[], Progress] = Progress,
        wants_peers: Callable[[], bool] = lambda: True,
        name: str,
    ) -> TorrentDiscovery:
        own = self._own_addresses()

        def deliver(addresses: Sequence[Address], source: str) -> None:
            mine = [a for a in addresses if a not in own]
            if mine:
                sink(mine, source=source)

        discovery = TorrentDiscovery(
            info_hashes=hashes,
            peer_id=self.peer_id,
            port=self.port,
            sink=deliver,
            trackers=trackers,
            tracker_client=self.tracker_client,
            dht=None if private else self.dht,
            dht_announce=dht_announce,
            lsd=None if private else self.lsd,
            progress=progress,
            wants_peers=wants_peers,
            config=self.config.discovery,
            rng=random.Random(self.rng.getrandbits(64)),
            name=name,
        )
        for info_hash in discovery.info_hashes:
            self._discovery_by_hash[info_hash] = discovery
        return discovery

    def _start_discovery(self, torrent: TorrentSession, trackers: list[str]) -> None:
        meta = torrent.metainfo
        extra = self.config.extra_trackers
        tiers = _tiers(meta.trackers, ([t] for t in trackers), ([t] for t in extra))
        started_complete = torrent.complete

        def progress() -> Progress:
            stats = torrent.statistics()
            return Progress(
                uploaded=stats.uploaded,
                downloaded=stats.downloaded,
                left=max(0, stats.wanted_bytes - stats.have_bytes),
            )

        def wants_peers() -> bool:
            target = max(1, torrent.config.max_connections // 2)
            return not torrent.complete and len(torrent.open_peers) < target

        discovery = self._new_discovery(
            self._info_hashes(meta.info_hash_v1, meta.info_hash_v2),
            sink=torrent.add_peers,
            trackers=tiers,
            private=meta.private,
            dht_announce=True,
            progress=progress,
            wants_peers=wants_peers,
            name=meta.name,
        )
        self.discoveries[torrent] = discovery

        async def run() -> None:
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(discovery.run(), name=f"discovery {meta.name}")
                if not started_complete:
                    await torrent.wait_complete()
                    discovery.completed()

        task = asyncio.get_running_loop().create_task(run(), name=f"discovery {meta.name}")
        task.add_done_callback(_report_discovery_end)
        self._discovery_runs[discovery] = task

    async def _stop_discovery(self, discovery: TorrentDiscovery) -> None:
        task = self._discovery_runs.pop(discovery, None)
        for key in [k for k, v in self._discovery_by_hash.items() if v is discovery]:
            del self._discovery_by_hash[key]
        if task is not None:
            task.cancel()
            # An exception was already logged by _report_discovery_end.
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def _incoming_target(self, info_hash: bytes) -> IncomingTarget | None:
        """Who takes a peer that dialled us for ``info_hash``: its torrent or its fetch."""
        torrent = self.torrents.get(info_hash)
        return torrent if torrent is not None else self._fetching.get(info_hash)

    def _on_lsd_peer(self, info_hash: bytes, address: tuple[str, int]) -> None:
        discovery = self._discovery_by_hash.get(info_hash)
        if discovery is not None:
            discovery.heard_on_lsd(address)

    async def scrape(self, torrent: TorrentSession) -> dict[str, ScrapeEntry]:
        """Swarm counts for ``torrent`` from each of its trackers that answers."""
        discovery = self.discoveries.get(torrent)
        return {} if discovery is None else await discovery.scrape()

    # ------------------------------------------------------------------ magnets

    async def fetch_metadata(
        self,
        magnet: Magnet,
        *,
        peers: Iterable[Address] = (),
        timeout: float | None = None,  # noqa: ASYNC109 (the engine's published contract)
    ) -> Metainfo:
        """The torrent of ``magnet``, its info dictionary fetched from peers and verified.

        Peers come from the magnet's ``x.pe``, ``peers``, the DHT, the magnet's
        ``tr`` trackers (and ``extra_trackers``) and LSD.  Peers that send
        metadata failing the info-hash are dropped.  Raises
        :class:`~servent.errors.MetadataFetchError` on timeout.  The peers that
        answered are remembered for the next :meth:`add_torrent` of it.
        """
        if self.limits is None:
            raise RuntimeError("start the engine first")
        fetch = MetadataFetch(
            magnet,
            peer_id=self.peer_id,
            config=self.config.connection,
            max_parallel=self.config.metadata_parallel,
            own_addresses=self._own_addresses(),
            limits=self.limits,
            encryption=parse_policy(self.config.encryption),
        )
        fetch.dialer = self.dialer
        hashes = self._info_hashes(magnet.info_hash_v1, magnet.info_hash_v2)
        for info_hash in hashes:
            self._fetching.setdefault(info_hash, fetch)
        fetch.add_peers(magnet.peers, source="magnet")
        fetch.add_peers(peers, source="manual")
        tiers = _tiers(([t] for t in magnet.trackers), ([t] for t in self.config.extra_trackers))
        name = magnet.display_name or magnet.wire_info_hash.hex()
        discovery = self._new_discovery(
            hashes,
            sink=fetch.add_peers,
            trackers=tiers,
            private=False,
            dht_announce=False,
            progress=lambda: Progress(left=1),  # the size is not known yet
            name=f"metadata of {name}",
        )
        if not discovery.has_sources:
            fetch.no_more_sources()  # only x.pe and the given peers: fail fast, not on timeout
        task = asyncio.get_running_loop().create_task(
            discovery.run(), name=f"discovery (metadata) {name}"
        )
        task.add_done_callback(_report_discovery_end)
        self._discovery_runs[discovery] = task
        try:
            info_bytes = await fetch.run(within=timeout)
        finally:
            for info_hash in hashes:
                if self._fetching.get(info_hash) is fetch:
                    del self._fetching[info_hash]
            await self._stop_discovery(discovery)
        try:
            meta = parse_info(info_bytes, fetch.piece_layers or None)
        except MetainfoError as exc:
            raise MetadataFetchError(f"metadata of {name} is not a valid torrent: {exc}") from exc
        meta = replace(meta, trackers=tuple((t,) for t in magnet.trackers))
        found = [*fetch.responsive, *magnet.peers]
        self._fetched_peers[meta.wire_info_hash] = list(dict.fromkeys(found))[:200]
        while len(self._fetched_peers) > 64:  # fetched but never added: forget the oldest
            self._fetched_peers.pop(next(iter(self._fetched_peers)))
        return meta

    def _with_slot_share(self, config: TorrentConfig) -> TorrentConfig:
        """Cap the torrent's upload slots by its share of the global slots."""
        total = self.config.upload_slots
        if total is None:
            return config
        share = max(1, total // (len(self._runs) + 1))
        slots = share if config.upload_slots is None else min(config.upload_slots, share)
        if slots == config.upload_slots:
            return config
        return replace(config, upload_slots=slots)

    async def remove_torrent(self, torrent: TorrentSession) -> None:
        """Stop discovery (``stopped`` to the tracker), the torrent's task, its storage."""
        discovery = self.discoveries.pop(torrent, None)
        if discovery is not None:
            await self._stop_discovery(discovery)
            await discovery.announce_stopped()
        task = self._runs.pop(torrent, None)
        for key in [k for k, v in self.torrents.items() if v is torrent]:
            del self.torrents[key]
        torrent.stop()
        if task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(task), 10.0)
            except TimeoutError:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        storage = self._storages.pop(torrent, None)
        if storage is not None:
            await storage.close()
