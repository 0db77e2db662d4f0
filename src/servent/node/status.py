"""What the Node API returns: frozen snapshots (events are in :mod:`servent.node.events`).

Plain frozen dataclasses so front ends can turn them into JSON with
``dataclasses.asdict`` and tests can compare them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NewType

TorrentId = NewType("TorrentId", str)
"""Hex of the torrent's wire info-hash (40 characters)."""


@dataclass(frozen=True, slots=True)
class TorrentStatus:
    """A snapshot of one torrent, as lists and UIs show it."""

    id: TorrentId
    name: str
    info_hash_v1: str | None
    info_hash_v2: str | None
    state: str
    progress: float
    """0.0 .. 1.0 of the wanted bytes."""
    size: int
    """Payload bytes (0 while a magnet's metadata is unknown)."""
    have_bytes: int
    download_rate: float
    upload_rate: float
    peers: int
    eta: float | None
    """Seconds until complete at the current rate; None when unknown or done."""
    paused: bool
    save_path: str
    added_at: float
    magnet: str | None
    error: str | None = None
    downloaded: int = 0
    """Payload bytes received since the node started (what a restart must not repeat)."""
    uploaded: int = 0
    trackers: int = 0
    """Tracker URLs the torrent (or its magnet) names: where peers may come from."""


@dataclass(frozen=True, slots=True)
class FileStatus:
    index: int
    path: str
    size: int
    priority: int
    progress: float


@dataclass(frozen=True, slots=True)
class PinholeStatus:
    """The IPv6 firewall pinholes for our ports (``docs/port-mapping.md``, "IPv6 pinholes")."""

    state: str
    """open (the router let them in), pending (asking), failed (see ``error``)."""
    address: tuple[str, int] | None
    """Our IPv6 address and TCP port, as peers outside dial them."""
    protocol: str | None
    """How they were opened (pcp)."""
    ports: tuple[str, ...]
    """The pinholes open: ``"tcp 6881"``, ``"udp 6881"``."""
    lifetime: int | None = None
    """Seconds the router grants before the next renewal must reach it."""
    error: str | None = None


@dataclass(frozen=True, slots=True)
class PathMtuSummary:
    """uTP's path MTU over the connections open now (decision 0046): IP packet bytes."""

    paths: int
    smallest: int
    median: int
    largest: int
    searching: int = 0
    """Paths whose search is not finished (their size is proven, maybe not the largest)."""


def summarise_path_mtus(paths: list[tuple[int, bool]]) -> PathMtuSummary | None:
    """(size, searching) per uTP connection, as ``servent status`` shows them."""
    if not paths:
        return None
    sizes = sorted(size for size, _ in paths)
    searching = sum(1 for _, busy in paths if busy)
    return PathMtuSummary(len(sizes), sizes[0], sizes[(len(sizes) - 1) // 2], sizes[-1], searching)


@dataclass(frozen=True, slots=True)
class NodeStatus:
    listen_address: tuple[str, int] | None
    dht_enabled: bool
    dht_nodes: int
    dht_address: tuple[str, int] | None
    torrents: int
    download_rate: float
    upload_rate: float
    downloaded: int
    """Payload bytes received since the node started (removed torrents included)."""
    uploaded: int
    shared_folders: tuple[str, ...]
    data_dir: str
    download_dir: str
    all_time_downloaded: int = 0
    """Payload bytes received since the data directory was first used (kept in its state)."""
    all_time_uploaded: int = 0
    reachable: bool | None = None
    """Can peers outside dial us: true, false, or None while unknown (``docs/reachability.md``)."""
    external_address: tuple[str, int] | None = None
    nat: str = "unknown"
    """none, mapped, cone, symmetric or unknown."""
    relay: tuple[str, int] | None = None
    ipv6_pinhole: PinholeStatus | None = None
    """None when not asked for: port mapping off, or no global IPv6 address to listen on."""
    utp_path_mtu: PathMtuSummary | None = None
    """None while no uTP connection is open."""


@dataclass(frozen=True, slots=True)
class ShareResult:
    id: TorrentId
    path: str
    magnet: str
    existing: bool = False
    """The path was shared already (nothing new was hashed or added)."""


@dataclass(frozen=True, slots=True)
class AddResult:
    id: TorrentId
    existing: bool
    """The node had this torrent already (its id is returned, nothing else changes)."""


@dataclass(frozen=True, slots=True)
class RemoveResult:
    """What ``Node.remove`` did; ``reason`` says why data was kept when it was asked to go."""

    removed: TorrentId
    data_deleted: bool
    reason: str | None = None
    deleted_files: int = 0
    kept_files: int = 0
