"""The node's one swarm engine and its torrents (a mixin of :class:`~servent.node.node.Node`).

``Node`` talks to :class:`~servent.net.engine.SwarmEngine` directly: it is the
one layer between the node and its torrents, and each torrent the swarm runs is
kept across pauses as a :class:`~servent.node.running_torrent.RunningTorrent`.
Here are the few rules about the swarm that are the node's: which port to
listen on when the config leaves it free, how the node-wide limits reach the
engine and every running torrent, and which address the node reports.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING

from servent.errors import NodeError, ServentError, TorrentNotFoundError
from servent.node.running_torrent import RunningTorrent
from servent.node.status import PathMtuSummary, summarise_path_mtus
from servent.node.torrent_spec import SwarmLimits, TorrentSpec, swarm_rate

if TYPE_CHECKING:
    from servent.codec.magnet import Magnet
    from servent.codec.metainfo import Metainfo
    from servent.net.dht_driver import DhtDriver
    from servent.net.engine import EngineConfig, SwarmEngine
    from servent.net.port_reservation import PortReservation
    from servent.net.torrent_session import TorrentSession
    from servent.node.config import Config
    from servent.node.events import EventHub

log = logging.getLogger(__name__)


def swarm_config(
    config: Config,
    limits: SwarmLimits,
    *,
    client_version: str,
    port: int,
    overrides: Mapping[str, object],
) -> EngineConfig:
    """The swarm's settings from the node's (``overrides``: a one-shot command's flags)."""
    from servent.net.engine import EngineConfig

    built = EngineConfig(
        listen_host=config.listen_host or None,  # empty: every IPv4 and IPv6 address
        listen_port=port,
        max_connections=limits.max_connections,
        download_rate=swarm_rate(limits.download_rate_limit),
        upload_rate=swarm_rate(limits.upload_rate_limit),
        lsd=config.lsd_enabled,
        encryption=config.encryption,
        client_version=client_version,
        utp=config.utp_enabled,
        utp_preference=config.utp_preference,
        holepunch_tcp=config.holepunch_tcp,
    )
    return dataclasses.replace(built, **overrides)  # type: ignore[arg-type]


async def start_swarm(
    config: EngineConfig, dht: DhtDriver | None, reserved: PortReservation | None = None
) -> SwarmEngine:
    """Listen for peers: on the ``reserved`` port, else on the DHT's port number when the
    config leaves the port free (any free one if TCP has it taken: the user named the
    DHT's port only)."""
    from servent.net.engine import SwarmEngine

    if reserved is not None:
        config = dataclasses.replace(config, listen_port=reserved.number)
        return await _started(SwarmEngine(config, dht=dht, reserved=reserved), reserved.number)
    wanted = config.listen_port
    if wanted == 0 and dht is not None:
        config = dataclasses.replace(config, listen_port=dht.address[1])
    try:
        return await _started(SwarmEngine(config, dht=dht), wanted)
    except ServentError:
        if config.listen_port == wanted:
            raise
    log.info("peer port %d (the DHT's) is taken, using any free port", config.listen_port)
    return await _started(SwarmEngine(dataclasses.replace(config, listen_port=0), dht=dht), 0)


async def _started(engine: SwarmEngine, port: int) -> SwarmEngine:
    """``engine`` started, or closed and a clear error."""
    try:
        await engine.start()
    except OSError as exc:
        with contextlib.suppress(Exception):
            await engine.close()
        raise ServentError(f"cannot listen for peers on port {port}: {exc}") from exc
    return engine


def needs_reserved_port(config: EngineConfig, dht_enabled: bool) -> bool:
    """Whether the node picks one port for TCP and UDP itself: it listens on a free
    port and runs uTP or the DHT over UDP beside it."""
    return config.listen and config.listen_port == 0 and (config.utp or dht_enabled)


def listen_address(engine: SwarmEngine | None, host: str) -> tuple[str, int] | None:
    """Where the swarm listens (the first of its addresses); None when it does not."""
    if engine is None or not engine.port:
        return None
    addresses = engine.listen_addresses
    if addresses:
        first_host, first_port = addresses[0][:2]
        return str(first_host), int(first_port)
    return (host or "0.0.0.0", engine.port)


def apply_limits(
    engine: SwarmEngine | None, limits: SwarmLimits, sessions: Iterable[TorrentSession]
) -> None:
    """Node-wide rates and connection budgets, at once, to the swarm and its torrents."""
    if engine is None or engine.limits is None:
        return
    now = asyncio.get_running_loop().time()
    engine.limits.download.set_rate(swarm_rate(limits.download_rate_limit), now)
    engine.limits.upload.set_rate(swarm_rate(limits.upload_rate_limit), now)
    engine.limits.max_connections = limits.max_connections
    for session in sessions:  # read by the session at each dial round
        session.config = dataclasses.replace(
            session.config, max_connections=limits.max_peers_per_torrent
        )


class NodeSwarm:
    """The swarm and the running torrents; the state belongs to ``Node`` (declared for mypy)."""

    config: Config
    _client_version: str
    _dht: DhtDriver | None
    _given_dht: DhtDriver | None
    _events: EventHub

    _limits: Callable[[], SwarmLimits]
    """From the settings part (:class:`~servent.node.node_settings.NodeSettings`)."""

    def _metadata_received(self, torrent_id: str, metainfo: Metainfo) -> None:
        raise NotImplementedError

    def _init_swarm(
        self, settings: Mapping[str, object] | None, reserved: PortReservation | None
    ) -> None:
        self._swarm: SwarmEngine | None = None
        #: The port a one-shot command reserved for its DHT and the swarm.
        self._given_port = reserved
        self._swarm_settings = dict(settings or {})
        self._running_torrents: dict[str, RunningTorrent] = {}
        self._swarm_limits = SwarmLimits()

    def _swarm_config(self) -> EngineConfig:
        return swarm_config(
            self.config, self._swarm_limits, client_version=self._client_version,
            port=self.config.listen_port, overrides=self._swarm_settings,
        )  # fmt: skip

    @contextlib.contextmanager
    def _reserved_port(self) -> Iterator[PortReservation | None]:
        """The port for TCP and UDP (given, or reserved here when the node picks it);
        what the DHT and the swarm did not take is released on exit."""
        from servent.net.port_reservation import reservation_hosts, reserve_port

        reserved = self._given_port
        config = self._swarm_config()
        reserve = needs_reserved_port(config, self.config.dht_enabled)
        if reserved is None and self._given_dht is None and reserve:
            try:
                reserved = reserve_port(reservation_hosts(config.listen_host))
            except OSError as exc:
                raise ServentError(f"cannot reserve a port for peers: {exc}") from exc
        try:
            yield reserved
        finally:
            if reserved is not None:
                reserved.close()

    async def _start_swarm(self, reserved: PortReservation | None = None) -> None:
        self._swarm = await start_swarm(self._swarm_config(), self._dht, reserved)

    async def _stop_swarm(self) -> None:
        """Stop every torrent (the swarm announces 'stopped'), flush resume data."""
        for torrent_id in list(self._running_torrents):
            await self._stop_running(torrent_id)
        if self._swarm is not None:
            swarm, self._swarm = self._swarm, None
            await swarm.close()

    async def _run_torrent(self, spec: TorrentSpec) -> None:
        """Run (or hold, paused or waiting for metadata) one torrent in the swarm."""
        assert self._swarm is not None
        torrent = RunningTorrent(
            spec, self._swarm, limits=lambda: self._swarm_limits,
            emit=self._events.emit, metadata_received=self._metadata_received,
        )  # fmt: skip
        self._running_torrents[spec.id] = torrent
        try:
            await torrent.start()
        except BaseException:
            self._running_torrents.pop(spec.id, None)
            raise

    def _running(self, torrent_id: str) -> RunningTorrent:
        try:
            return self._running_torrents[torrent_id]
        except KeyError:
            raise TorrentNotFoundError(f"no torrent {torrent_id}") from None

    async def reconnect_torrent(self, torrent_id: str) -> None:
        """Drop the torrent's peers and dial again (a network's key changed)."""
        running = self._running(torrent_id)
        await running.pause()
        await running.resume()

    async def _stop_running(self, torrent_id: str) -> None:
        """Stop and forget the torrent's run; its files stay (``Node.remove`` decides)."""
        torrent = self._running_torrents.pop(torrent_id, None)
        if torrent is not None:
            await torrent.close()

    def _apply_limits(self) -> None:
        self._swarm_limits = self._limits()
        sessions = [t.session for t in self._running_torrents.values() if t.session is not None]
        apply_limits(self._swarm, self._swarm_limits, sessions)

    def _listen_address(self) -> tuple[str, int] | None:
        return listen_address(self._swarm, self.config.listen_host)

    def utp_path_mtu(self) -> PathMtuSummary | None:
        """uTP's path MTU over its open connections (``servent status``); None without any."""
        utp = None if self._swarm is None else self._swarm.utp
        return None if utp is None else summarise_path_mtus(utp.path_mtus())

    def listen_addresses(self) -> list[tuple[str, int]]:
        """Every address the node listens on for peers (IPv4 and IPv6 apart)."""
        return [] if self._swarm is None else self._swarm.listen_addresses

    def swarm_session(self, torrent_id: str) -> TorrentSession | None:
        """The torrent's live swarm session (None while paused or waiting for metadata),
        for a front end that shows the swarm's own figures (``servent get``)."""
        return self._running(torrent_id).session

    async def fetch_metadata(
        self,
        magnet: Magnet,
        *,
        peers: Iterable[tuple[str, int]] = (),
        timeout: float | None = None,  # noqa: ASYNC109 (one attempt, bounded by the caller)
    ) -> Metainfo:
        """A magnet's torrent from peers in one attempt (a one-shot command; the node's
        own magnets keep trying, see :mod:`servent.node.metadata_wait`).  Add the result
        with :meth:`~servent.node.node.Node.add_torrent`: the peers that answered are
        dialled first."""
        if self._swarm is None:
            raise NodeError("the node is not started")
        return await self._swarm.fetch_metadata(magnet, peers=peers, timeout=timeout)
