"""What the node hands to a running torrent, and what it reads back.

``Node`` owns persistence, ids, events and the public API; each of its torrents
runs as a :class:`~servent.node.running_torrent.RunningTorrent` over the one
swarm engine (:class:`~servent.net.engine.SwarmEngine`).  These value types are
the words between them: the spec a torrent starts from, the node-wide limits,
and the figures a torrent shows.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from servent.node.events import NodeEvent, PeerBanned, TorrentCompleted, TorrentErrored

if TYPE_CHECKING:
    from servent.codec.magnet import Magnet
    from servent.codec.metainfo import Metainfo
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
class SessionOptions:
    """How one torrent's swarm session runs, beyond the node's settings.

    The defaults are the node's; a one-shot command (``servent get``) asks for
    pieces in order, gives up on unreachable peers sooner, keeps its resume
    records beside the download folder's key, and wants a failed start raised."""

    sequential: bool = False
    #: Dial attempts per peer before it counts as unreachable (None: the session's default).
    max_dial_failures: int | None = None
    #: Where storage keeps resume records (None: the node's state database).
    resume_store: ResumeStore | None = None
    #: Raise a start failure (bad folder, disk error) instead of showing it as the state.
    raise_start_errors: bool = False


NODE_SESSION = SessionOptions()
"""How a node runs its torrents (no one-shot changes)."""


@dataclass(frozen=True, slots=True)
class TorrentSpec:
    """Everything the node knows when it starts one torrent."""

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
    options: SessionOptions = NODE_SESSION


@dataclass(frozen=True, slots=True)
class TorrentFigures:
    """What one torrent shows right now (live, or kept from its last session)."""

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
class SwarmLimits:
    """The node-wide limits, as the swarm and every torrent apply them."""

    download_rate_limit: int = 0
    upload_rate_limit: int = 0
    max_connections: int = 200
    max_peers_per_torrent: int = 50
    max_peers_per_ip: int = 3


def swarm_rate(limit: int) -> float | None:
    """A node limit (0 = none) as the swarm's rate (None = none)."""
    return float(limit) if limit > 0 else None


MetadataCallback = Callable[[str, "Metainfo"], None]
"""Called when a magnet torrent fetched its metadata."""

EventCallback = Callable[[NodeEvent], None]
"""Called when something happens to a torrent (completed, errored, a ban)."""


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
