"""Typed node events and the hub that pushes them to every subscriber.

Each event is a frozen dataclass with a class-level ``type`` name (the SSE
event name, the ``type`` key of its JSON) and :meth:`NodeEvent.to_json`.  A
new kind of event is a new class decorated with :func:`event_type`; front
ends learn the names from :data:`EVENT_TYPES`.

:class:`EventHub` fans events out at once, no polling: each subscriber has a
bounded queue, and a subscriber too slow to keep up loses its oldest events
and reads one :class:`EventsDropped` in their place, so the node never waits
for a reader.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, ClassVar, TypeVar

__all__ = [
    "EVENT_TYPES",
    "DhtReady",
    "EventHub",
    "EventSubscription",
    "EventsDropped",
    "FilePrioritiesChanged",
    "FolderShared",
    "MessageDelivered",
    "MessageReceived",
    "MetadataReceived",
    "NetworkMemberJoined",
    "NetworkMemberRevoked",
    "NodeEvent",
    "PeerBanned",
    "SettingsChanged",
    "TorrentAdded",
    "TorrentCompleted",
    "TorrentErrored",
    "TorrentLimitsChanged",
    "TorrentPaused",
    "TorrentRemoved",
    "TorrentResumed",
    "event_type",
]

DEFAULT_QUEUE_SIZE = 1000


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeEvent:
    """Base of every event: ``type`` names it, ``time`` is when it happened (Unix time)."""

    type: ClassVar[str] = "event"
    time: float = field(default_factory=time.time)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict: ``type`` first, then every field."""
        body: dict[str, Any] = {"type": self.type}
        for item in dataclasses.fields(self):
            body[item.name] = _plain(getattr(self, item.name))
        return body


def _plain(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


#: Every event class by its ``type`` name (filled by :func:`event_type`).
EVENT_TYPES: dict[str, type[NodeEvent]] = {}

E = TypeVar("E", bound=type[NodeEvent])


def event_type(name: str) -> Callable[[E], E]:
    """Class decorator: give an event class its ``type`` name and register it."""

    def register(cls: E) -> E:
        if name in EVENT_TYPES:
            raise ValueError(f"event type {name!r} is registered twice")
        cls.type = name
        EVENT_TYPES[name] = cls
        return cls

    return register


# -- torrents ---------------------------------------------------------------------


@event_type("torrent_added")
@dataclass(frozen=True, slots=True)
class TorrentAdded(NodeEvent):
    torrent_id: str
    name: str


@event_type("metadata_received")
@dataclass(frozen=True, slots=True)
class MetadataReceived(NodeEvent):
    """A magnet's info dictionary arrived (from peers, or a later ``add`` of its .torrent)."""

    torrent_id: str
    name: str


@event_type("torrent_completed")
@dataclass(frozen=True, slots=True)
class TorrentCompleted(NodeEvent):
    """Every wanted piece is verified (again after a priority change, if it wants more)."""

    torrent_id: str
    name: str


@event_type("torrent_errored")
@dataclass(frozen=True, slots=True)
class TorrentErrored(NodeEvent):
    """The torrent stopped or could not start (a disk error, a bad resume record ...)."""

    torrent_id: str
    error: str


@event_type("torrent_removed")
@dataclass(frozen=True, slots=True)
class TorrentRemoved(NodeEvent):
    """``reason``: why data asked to go was kept (files servent did not create)."""

    torrent_id: str
    data_deleted: bool
    reason: str | None = None


@event_type("torrent_paused")
@dataclass(frozen=True, slots=True)
class TorrentPaused(NodeEvent):
    torrent_id: str


@event_type("torrent_resumed")
@dataclass(frozen=True, slots=True)
class TorrentResumed(NodeEvent):
    torrent_id: str


@event_type("file_priorities_changed")
@dataclass(frozen=True, slots=True)
class FilePrioritiesChanged(NodeEvent):
    torrent_id: str
    priorities: tuple[int, ...]


@event_type("torrent_limits_changed")
@dataclass(frozen=True, slots=True)
class TorrentLimitsChanged(NodeEvent):
    """Per-torrent rate limits in bytes per second (0: unlimited)."""

    torrent_id: str
    download_rate_limit: int
    upload_rate_limit: int


@event_type("peer_banned")
@dataclass(frozen=True, slots=True)
class PeerBanned(NodeEvent):
    """A peer sent data that failed verification; it is dropped and not let back."""

    torrent_id: str
    host: str
    port: int
    reason: str


# -- the node ---------------------------------------------------------------------


@event_type("folder_shared")
@dataclass(frozen=True, slots=True)
class FolderShared(NodeEvent):
    torrent_id: str
    path: str
    magnet: str


@event_type("network_member_joined")
@dataclass(frozen=True, slots=True)
class NetworkMemberJoined(NodeEvent):
    """A node entered an invite-only network this node belongs to (``docs/networks.md``)."""

    network: str
    member: str


@event_type("network_member_revoked")
@dataclass(frozen=True, slots=True)
class NetworkMemberRevoked(NodeEvent):
    """An admin revoked a member of a network this node belongs to."""

    network: str
    member: str


@event_type("settings_changed")
@dataclass(frozen=True, slots=True)
class SettingsChanged(NodeEvent):
    """Settings stored by a front end (limits apply at once; the rest at the next start)."""

    values: dict[str, Any]


@event_type("dht_ready")
@dataclass(frozen=True, slots=True)
class DhtReady(NodeEvent):
    """The DHT bootstrap found nodes: lookups can start."""

    nodes: int


# -- messages ---------------------------------------------------------------------


@event_type("message_received")
@dataclass(frozen=True, slots=True)
class MessageReceived(NodeEvent):
    """A direct message or a broadcast arrived and was stored; ``message`` is as
    ``servent messages --json`` shows it (plus ``direction``, ``kind``, ...)."""

    message: dict[str, Any]


@event_type("message_delivered")
@dataclass(frozen=True, slots=True)
class MessageDelivered(NodeEvent):
    """The recipient of direct message ``id`` acknowledged it (it left the outbox)."""

    id: str
    to: str
    delivered: float


@event_type("events_dropped")
@dataclass(frozen=True, slots=True)
class EventsDropped(NodeEvent):
    """This subscriber read too slowly: ``count`` events before the next one were lost."""

    count: int


# -- delivery ---------------------------------------------------------------------


class EventSubscription:
    """One subscriber's events, as an async iterator (see :meth:`EventHub.subscribe`).

    Stop with :meth:`aclose` (or ``async with``); the iteration also ends when
    the hub closes, after the events already queued."""

    def __init__(self, hub: EventHub, limit: int) -> None:
        self._hub = hub
        self._limit = limit
        self._queue: deque[NodeEvent] = deque()
        self._dropped = 0
        self._closed = False
        self._wakeup: asyncio.Future[None] | None = None

    @property
    def pending(self) -> int:
        """Events queued and not read yet."""
        return len(self._queue)

    def push(self, event: NodeEvent) -> None:
        """Queue ``event`` (called by the hub); a full queue loses its oldest event."""
        if self._closed:
            return
        if len(self._queue) >= self._limit:
            self._queue.popleft()
            self._dropped += 1
        self._queue.append(event)
        self._wake()

    def end(self) -> None:
        """No more events: the iteration stops once the queue is read."""
        self._closed = True
        self._wake()

    def _wake(self) -> None:
        if self._wakeup is not None and not self._wakeup.done():
            self._wakeup.set_result(None)

    def get_nowait(self) -> NodeEvent | None:
        """The next event if one is queued (a drop marker first), else None."""
        if self._dropped:
            count, self._dropped = self._dropped, 0
            return EventsDropped(count=count)
        if self._queue:
            return self._queue.popleft()
        return None

    def __aiter__(self) -> EventSubscription:
        return self

    async def __anext__(self) -> NodeEvent:
        while True:
            event = self.get_nowait()
            if event is not None:
                return event
            if self._closed:
                raise StopAsyncIteration
            self._wakeup = asyncio.get_running_loop().create_future()
            try:
                await self._wakeup
            finally:
                self._wakeup = None

    async def aclose(self) -> None:
        """Unsubscribe: events emitted from now on are not queued."""
        self._hub.unsubscribe(self)
        self._queue.clear()
        self._dropped = 0
        self.end()

    async def __aenter__(self) -> EventSubscription:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()


class EventHub:
    """Fans events out to bounded per-subscriber queues; :meth:`emit` never waits."""

    def __init__(self, queue_size: int = DEFAULT_QUEUE_SIZE) -> None:
        if queue_size < 1:
            raise ValueError("queue_size must be at least 1")
        self._queue_size = queue_size
        self._subscribers: list[EventSubscription] = []
        self._closed = False

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def subscribe(self) -> EventSubscription:
        """Every event emitted from this call on (a hub already closed gives an ended stream)."""
        subscription = EventSubscription(self, self._queue_size)
        if self._closed:
            subscription.end()
        else:
            self._subscribers.append(subscription)
        return subscription

    def unsubscribe(self, subscription: EventSubscription) -> None:
        if subscription in self._subscribers:
            self._subscribers.remove(subscription)

    def emit(self, event: NodeEvent) -> None:
        for subscription in self._subscribers:
            subscription.push(event)

    def close(self) -> None:
        """End every subscription (after what each has queued)."""
        self._closed = True
        subscribers, self._subscribers = self._subscribers, []
        for subscription in subscribers:
            subscription.end()
