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


@dataclass(frozen=True, slots=True)
class FileStatus:
    index: int
    path: str
    size: int
    priority: int
    progress: float


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
    uploaded: int
    shared_folders: tuple[str, ...]
    data_dir: str
    download_dir: str


@dataclass(frozen=True, slots=True)
class ShareResult:
    id: TorrentId
    path: str
    magnet: str
