"""What the Node API returns: frozen snapshots and the event stream.

Plain frozen dataclasses so front ends can turn them into JSON with
``dataclasses.asdict`` and tests can compare them.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import Any, NewType

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


@dataclass(frozen=True, slots=True)
class NodeEvent:
    """Something happened: ``kind`` is added, removed, paused, resumed, state, finished,
    metadata, shared, priorities, limits, settings, dht_ready; ``data`` is JSON-ready."""

    kind: str
    torrent_id: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    time: float = field(default_factory=time.time)


class EventStream:
    """An async iterator over one subscriber's events (see :meth:`Node.events`)."""

    def __init__(
        self,
        queue: asyncio.Queue[NodeEvent | None],
        subscribers: set[asyncio.Queue[NodeEvent | None]],
    ) -> None:
        self._queue = queue
        self._subscribers = subscribers
        self._done = False

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> NodeEvent:
        if self._done:
            raise StopAsyncIteration
        event = await self._queue.get()
        if event is None:
            await self.aclose()
            raise StopAsyncIteration
        return event

    async def aclose(self) -> None:
        self._done = True
        self._subscribers.discard(self._queue)


class EventHub:
    """Fans node events out to subscribers' bounded queues.

    A slow reader loses its oldest events rather than holding the node back;
    :meth:`close` ends every stream, and a stream opened after that ends at once.
    """

    def __init__(self, queue_size: int = 1000) -> None:
        self._queue_size = queue_size
        self._subscribers: set[asyncio.Queue[NodeEvent | None]] = set()
        self._closed = False

    def subscribe(self) -> EventStream:
        queue: asyncio.Queue[NodeEvent | None] = asyncio.Queue(self._queue_size)
        self._subscribers.add(queue)
        if self._closed:
            queue.put_nowait(None)
        return EventStream(queue, self._subscribers)

    def emit(self, event: NodeEvent) -> None:
        for queue in self._subscribers:
            if queue.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
            queue.put_nowait(event)

    def close(self) -> None:
        self._closed = True
        for queue in self._subscribers:
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(None)
