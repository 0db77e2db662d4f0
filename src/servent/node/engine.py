"""The seam between :class:`~servent.node.node.Node` and whatever moves torrent data.

``Node`` owns persistence, ids, events and the public API; a
:class:`TorrentEngine` owns the torrents while they run (storage, peers,
trackers, DHT announces).  Keeping the seam this small lets the node work
without sockets in principle and connects the swarm engine through one
adapter class (:class:`~servent.node.swarm_engine.SwarmTorrentEngine`, the
default).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from servent.node.events import NodeEvent, PeerBanned, TorrentCompleted, TorrentErrored

if TYPE_CHECKING:
    from servent.codec.magnet import Magnet
    from servent.codec.metainfo import Metainfo
    from servent.net.dht_driver import DhtDriver
    from servent.node.config import Config
    from servent.storage.resume import ResumeStore

log = logging.getLogger(__name__)

# Torrent states as shown to users (strings so they travel through JSON unchanged).
CHECKING = "checking"
METADATA = "metadata"
DOWNLOADING = "downloading"
SEEDING = "seeding"
PAUSED = "paused"
ERROR = "error"
STALLED = "stalled"


@dataclass(frozen=True, slots=True)
class TorrentSpec:
    """Everything an engine needs to run one torrent."""

    id: str
    save_path: Path
    resume_store: ResumeStore
    metainfo: Metainfo | None = None
    magnet: Magnet | None = None
    paused: bool = False
    file_priorities: tuple[int, ...] = ()
    download_limit: int = 0
    upload_limit: int = 0
    #: Peer addresses the user gave (``servent add --peer``), dialled first.
    peers: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True, slots=True)
class EngineTorrentStatus:
    state: str
    have_bytes: int = 0
    wanted_bytes: int = 0
    download_rate: float = 0.0
    upload_rate: float = 0.0
    peers: int = 0
    downloaded: int = 0
    uploaded: int = 0
    error: str | None = None
    file_progress: tuple[float, ...] = ()
    file_priorities: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class PeerStatus:
    host: str
    port: int
    client: str = ""
    progress: float = 0.0
    download_rate: float = 0.0
    upload_rate: float = 0.0
    flags: str = ""


@dataclass(frozen=True, slots=True)
class EngineLimits:
    download_rate_limit: int = 0
    upload_rate_limit: int = 0
    max_connections: int = 200
    max_peers_per_torrent: int = 50
    max_peers_per_ip: int = 3


MetadataCallback = Callable[[str, "Metainfo"], None]
"""Called by an engine when it fetched the metadata of a magnet torrent."""

EventCallback = Callable[[NodeEvent], None]
"""Called by an engine when something happens to a torrent (completed, errored, a ban)."""


class TorrentWatcher:
    """Turns what one running torrent says (a ``SessionWatcher``) into node events."""

    def __init__(self, torrent_id: str, name: str, emit: EventCallback) -> None:
        self.torrent_id = torrent_id
        self.name = name
        self._emit = emit

    def torrent_completed(self) -> None:
        self._emit(TorrentCompleted(self.torrent_id, self.name))

    def torrent_stopped(self, error: BaseException | None) -> None:
        if error is not None:
            self._emit(TorrentErrored(self.torrent_id, str(error)))

    def peer_banned(self, host: str, port: int, reason: str) -> None:
        self._emit(PeerBanned(self.torrent_id, host, port, reason))


class TorrentEngine(Protocol):
    """What the node asks of a torrent engine (SWARM-NET's engine gets an adapter)."""

    on_metadata: MetadataCallback | None
    on_event: EventCallback | None

    async def start(self, dht: DhtDriver | None = None) -> None:
        """Begin serving peers; with ``dht`` the engine finds peers through it."""
        ...

    async def close(self) -> None:
        """Stop every torrent (announcing 'stopped'), flush resume data."""
        ...

    @property
    def listen_address(self) -> tuple[str, int] | None: ...
    async def add(self, spec: TorrentSpec) -> None: ...
    async def remove(self, torrent_id: str) -> None:
        """Stop and forget the torrent; its files stay (the node decides what to delete)."""
        ...

    async def pause(self, torrent_id: str) -> None: ...
    async def resume(self, torrent_id: str) -> None: ...
    async def set_file_priorities(self, torrent_id: str, priorities: tuple[int, ...]) -> None: ...
    async def add_peers(self, torrent_id: str, peers: tuple[tuple[str, int], ...]) -> None: ...
    def set_limits(self, limits: EngineLimits) -> None: ...
    def set_torrent_limits(self, torrent_id: str, download: int, upload: int) -> None: ...
    def status(self, torrent_id: str) -> EngineTorrentStatus: ...
    def peers(self, torrent_id: str) -> list[PeerStatus]: ...
    def set_piece_deadlines(self, torrent_id: str, deadlines: dict[int, float]) -> None:
        """Fetch these pieces first, by ``when`` on the event loop's clock (streaming)."""
        ...

    def have_piece(self, torrent_id: str, index: int) -> bool: ...
    async def wait_piece_progress(self, torrent_id: str) -> None:
        """Until the next piece of the torrent is verified (returns early if it is not running)."""
        ...

    async def read_verified(self, torrent_id: str, index: int, offset: int, length: int) -> bytes:
        """Bytes of a verified piece (raises :class:`ServentError` if it is not verified)."""
        ...


def swarm_engine_for(config: Config, client_version: str) -> TorrentEngine:
    """The engine a node runs: the swarm engine, set up from the node's settings."""
    from servent.node.swarm_engine import SwarmTorrentEngine

    return SwarmTorrentEngine(
        listen_host=config.listen_host,
        listen_port=config.listen_port,
        lsd=config.lsd_enabled,
        encryption=config.encryption,
        client_version=client_version,
        utp=config.utp_enabled,
        utp_preference=config.utp_preference,
    )
