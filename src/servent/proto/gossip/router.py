"""The gossip mesh router: what to forward to whom, pure and driven by ``now``.

The router never touches a socket or a clock. The driver tells it which
neighbours (node channels) are up, hands it the frames they send, calls
:meth:`GossipRouter.handle_timer` when :meth:`GossipRouter.next_timer` is due,
and carries out the actions it queues (:meth:`GossipRouter.actions`): send a
frame, deliver a message to the user, close a neighbour's channel. The rules
(mesh degree, IHAVE/IWANT repair, de-duplication, per-author rate, penalties,
channel subscriptions) are written down in ``docs/gossip.md``.  Which nodes
become neighbours is :mod:`servent.proto.gossip.neighbours`' business.

``now`` is Unix time in seconds: message times are checked against it.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from servent.proto.gossip.frames import (
    MAX_IDS,
    Frame,
    Graft,
    IHave,
    IWant,
    PeerExchange,
    Prune,
    Publish,
    Subscribe,
    decode_frame,
)
from servent.proto.gossip.message import GossipError, GossipMessage, message_id

Peer = Hashable
Verifier = Callable[[GossipMessage], bool]


@dataclass(frozen=True, slots=True)
class GossipConfig:
    degree: int = 6
    degree_low: int = 4
    degree_high: int = 12
    lazy_degree: int = 6
    heartbeat: float = 1.0
    #: Heartbeats of messages kept to answer IWANT.
    history_windows: int = 5
    #: Heartbeats of message IDs announced with IHAVE.
    gossip_windows: int = 3
    seen_ttl: float = 120.0
    #: Messages per second allowed per author, and the burst above that rate.
    author_rate: float = 1.0
    author_burst: float = 10.0
    #: How far ahead of our clock an author's time may be.
    max_future: float = 600.0
    penalty_limit: int = 10
    #: Messages answered per neighbour per heartbeat, and IDs asked for.
    iwant_budget: int = MAX_IDS


@dataclass(frozen=True, slots=True)
class Send:
    peer: Peer
    frame: Frame


@dataclass(frozen=True, slots=True)
class Deliver:
    """A new valid message for the user (``source`` is the neighbour it came from)."""

    message: GossipMessage
    id: bytes
    source: Peer | None


@dataclass(frozen=True, slots=True)
class Disconnect:
    peer: Peer
    reason: str


@dataclass(frozen=True, slots=True)
class Exchanged:
    """A neighbour told us where it listens and which nodes it knows."""

    peer: Peer
    exchange: PeerExchange


Action = Send | Deliver | Disconnect | Exchanged

#: The channel every node keeps: the whole network.
DEFAULT_CHANNEL = b""
_DEFAULT_ONLY = frozenset({DEFAULT_CHANNEL})


@dataclass(slots=True)
class _AuthorBucket:
    tokens: float
    updated: float


@dataclass(slots=True)
class RouterStatistics:
    delivered: int = 0
    duplicates: int = 0
    invalid: int = 0
    rate_limited: int = 0
    untimely: int = 0
    unsubscribed: int = 0
    frames_sent: int = 0


class GossipRouter:
    """One node's view of the gossip mesh."""

    def __init__(
        self,
        *,
        rng: random.Random,
        now: float,
        verify: Verifier,
        config: GossipConfig | None = None,
    ) -> None:
        self.config = config or GossipConfig()
        self._rng = rng
        self._verify = verify
        self.neighbours: set[Peer] = set()
        self.mesh: set[Peer] = set()
        self.blocked: set[bytes] = set()
        #: Channels this node keeps and relays; the rest are dropped unread.
        self.subscriptions: set[bytes] = {DEFAULT_CHANNEL}
        self._peer_channels: dict[Peer, frozenset[bytes]] = {}
        self.statistics = RouterStatistics()
        self._actions: list[Action] = []
        self._seen: dict[bytes, float] = {}
        self._seen_order: deque[tuple[float, bytes]] = deque()
        self._cache: dict[bytes, GossipMessage] = {}
        self._windows: deque[list[bytes]] = deque([[]])
        self._authors: dict[bytes, _AuthorBucket] = {}
        self._penalties: dict[Peer, int] = {}
        self._iwant_served: dict[Peer, int] = {}
        self._iwant_asked: dict[Peer, int] = {}
        self._next_heartbeat = now + self.config.heartbeat

    # ---------------------------------------------------------------- driver API

    def actions(self) -> list[Action]:
        """Take the queued actions (the driver carries them out in order)."""
        taken, self._actions = self._actions, []
        return taken

    def next_timer(self) -> float:
        return self._next_heartbeat

    def add_neighbour(self, peer: Peer, now: float) -> None:
        """A node channel to ``peer`` is up; graft it while the mesh is short."""
        self.neighbours.add(peer)
        if self.subscriptions != _DEFAULT_ONLY:
            self._send(peer, Subscribe(tuple(sorted(self.subscriptions))))
        if len(self.mesh) < self.config.degree:
            self.mesh.add(peer)
            self._send(peer, Graft())
        self._offer_recent(peer)  # a node just joining gets what it missed while it looked

    def remove_neighbour(self, peer: Peer) -> None:
        self.neighbours.discard(peer)
        self.mesh.discard(peer)
        self._peer_channels.pop(peer, None)
        self._penalties.pop(peer, None)
        self._iwant_served.pop(peer, None)
        self._iwant_asked.pop(peer, None)

    def subscribe(self, channel: bytes) -> bool:
        """Keep and relay ``channel`` from now on; tells every neighbour. Whether it is new."""
        if channel in self.subscriptions:
            return False
        self.subscriptions.add(channel)
        frame = Subscribe(tuple(sorted(self.subscriptions)))
        for peer in self.neighbours:
            self._send(peer, frame)
        return True

    def unsubscribe(self, channel: bytes) -> bool:
        """Stop keeping ``channel`` (the whole network's is always kept)."""
        if channel == DEFAULT_CHANNEL or channel not in self.subscriptions:
            return False
        self.subscriptions.discard(channel)
        frame = Subscribe(tuple(sorted(self.subscriptions)))
        for peer in self.neighbours:
            self._send(peer, frame)
        return True

    def subscribers(self, channel: bytes) -> list[Peer]:
        """Neighbours that keep ``channel``."""
        if channel == DEFAULT_CHANNEL:
            return list(self.neighbours)
        return [p for p in self.neighbours if channel in self._peer_channels.get(p, _DEFAULT_ONLY)]

    def publish(self, message: GossipMessage, now: float) -> bytes:
        """Send our own (signed) message to every neighbour keeping its channel (the
        channel becomes one of ours); returns its ID."""
        self.subscribe(message.channel)
        ident = message_id(message)
        self._remember(ident, message, now)
        for peer in self.subscribers(message.channel):
            self._send(peer, Publish(message))
        return ident

    def receive_bytes(self, peer: Peer, data: bytes, now: float) -> None:
        """One encoded frame from ``peer``; a malformed one counts against it."""
        try:
            frame = decode_frame(data)
        except GossipError:
            self._penalise(peer, "malformed gossip frame")
            return
        self.receive(peer, frame, now)

    def receive(self, peer: Peer, frame: Frame, now: float) -> None:
        if peer not in self.neighbours:
            return
        if isinstance(frame, Publish):
            self._on_publish(peer, frame.message, now)
        elif isinstance(frame, IHave):
            self._on_ihave(peer, frame.ids)
        elif isinstance(frame, IWant):
            self._on_iwant(peer, frame.ids)
        elif isinstance(frame, Graft):
            self._on_graft(peer)
        elif isinstance(frame, Prune):
            self.mesh.discard(peer)
        elif isinstance(frame, Subscribe):
            before = self._peer_channels.get(peer, _DEFAULT_ONLY)
            self._peer_channels[peer] = frozenset(frame.channels) | _DEFAULT_ONLY
            if self._peer_channels[peer] - before:  # it may have missed some just sent
                self._offer_recent(peer)
        else:
            self._actions.append(Exchanged(peer, frame))

    def handle_timer(self, now: float) -> None:
        if now < self._next_heartbeat:
            return
        self._next_heartbeat = now + self.config.heartbeat
        self._iwant_served.clear()
        self._iwant_asked.clear()
        self._maintain_mesh()
        self._emit_gossip()
        self._shift_windows()
        self._expire_seen(now)

    # ---------------------------------------------------------------- frames

    def _on_publish(self, peer: Peer, message: GossipMessage, now: float) -> None:
        ident = message_id(message)
        if ident in self._seen:
            self.statistics.duplicates += 1
            return
        if message.channel not in self.subscriptions:  # a neighbour's stale view of ours
            self._mark_seen(ident, now)
            self.statistics.unsubscribed += 1
            return
        if not self._timely(message, now):
            self._mark_seen(ident, now)
            self.statistics.untimely += 1
            return
        problem = self._problem(message)
        if problem is not None:
            self.statistics.invalid += 1
            self._penalise(peer, problem)
            return
        if message.author in self.blocked or not self._within_rate(message.author, now):
            self._mark_seen(ident, now)
            self.statistics.rate_limited += message.author not in self.blocked
            return
        self._remember(ident, message, now)
        self.statistics.delivered += 1
        self._actions.append(Deliver(message, ident, peer))
        for other in self._forward_targets(message.channel):
            if other != peer:
                self._send(other, Publish(message))

    def _forward_targets(self, channel: bytes) -> list[Peer]:
        """The whole network's messages go along the mesh; a named channel's to every
        neighbour keeping it (few nodes keep one, so it is flooded among them)."""
        if channel == DEFAULT_CHANNEL:
            return list(self.mesh)
        return self.subscribers(channel)

    def _timely(self, message: GossipMessage, now: float) -> bool:
        """Too old to be told from a replay, or too far ahead: dropped, not penalised
        (an honest relay may carry an author whose clock is off)."""
        config = self.config
        return now - config.seen_ttl <= message.time <= now + config.max_future

    def _problem(self, message: GossipMessage) -> str | None:
        try:
            message.check_bounds()
        except GossipError as exc:
            return str(exc)
        if not self._verify(message):
            return "bad signature"
        return None

    def _on_ihave(self, peer: Peer, ids: tuple[bytes, ...]) -> None:
        budget = self.config.iwant_budget - self._iwant_asked.get(peer, 0)
        missing = [ident for ident in ids if ident not in self._seen][: max(budget, 0)]
        if missing:
            self._iwant_asked[peer] = self._iwant_asked.get(peer, 0) + len(missing)
            self._send(peer, IWant(tuple(missing)))

    def _on_iwant(self, peer: Peer, ids: tuple[bytes, ...]) -> None:
        served = self._iwant_served.get(peer, 0)
        for ident in ids:
            message = self._cache.get(ident)
            if message is None or served >= self.config.iwant_budget:
                continue
            served += 1
            self._send(peer, Publish(message))
        self._iwant_served[peer] = served

    def _on_graft(self, peer: Peer) -> None:
        if len(self.mesh) >= self.config.degree_high and peer not in self.mesh:
            self._send(peer, Prune())
        else:
            self.mesh.add(peer)

    # ---------------------------------------------------------------- heartbeat

    def _maintain_mesh(self) -> None:
        """Top a short mesh up to ``degree`` (grafts beyond ``degree_high`` are refused)."""
        config = self.config
        if len(self.mesh) < config.degree_low:
            spare = [peer for peer in self.neighbours if peer not in self.mesh]
            for peer in self._rng.sample(spare, min(len(spare), config.degree - len(self.mesh))):
                self.mesh.add(peer)
                self._send(peer, Graft())

    def _emit_gossip(self) -> None:
        if not any(self._windows):
            return
        outside = [peer for peer in self.neighbours if peer not in self.mesh]
        for peer in self._rng.sample(outside, min(len(outside), self.config.lazy_degree)):
            self._offer_recent(peer)

    def _offer_recent(self, peer: Peer) -> None:
        """IHAVE of the last gossip windows' messages on channels ``peer`` keeps."""
        windows = list(self._windows)[-self.config.gossip_windows :]
        recent = [ident for window in windows for ident in window][-MAX_IDS:]
        kept = self._peer_channels.get(peer, _DEFAULT_ONLY)
        offered = tuple(i for i in recent if (m := self._cache.get(i)) and m.channel in kept)
        if offered:
            self._send(peer, IHave(offered))

    def _shift_windows(self) -> None:
        self._windows.append([])
        while len(self._windows) > self.config.history_windows:
            for ident in self._windows.popleft():
                self._cache.pop(ident, None)

    def _expire_seen(self, now: float) -> None:
        order = self._seen_order
        while order and order[0][0] <= now:
            _, ident = order.popleft()
            self._seen.pop(ident, None)
        stale = now - 10 * self.config.seen_ttl
        if len(self._authors) > 1024:
            for author in [a for a, b in self._authors.items() if b.updated < stale]:
                del self._authors[author]

    # ---------------------------------------------------------------- helpers

    def _send(self, peer: Peer, frame: Frame) -> None:
        self.statistics.frames_sent += 1
        self._actions.append(Send(peer, frame))

    def _mark_seen(self, ident: bytes, now: float) -> None:
        expiry = now + self.config.seen_ttl
        self._seen[ident] = expiry
        self._seen_order.append((expiry, ident))

    def _remember(self, ident: bytes, message: GossipMessage, now: float) -> None:
        self._mark_seen(ident, now)
        self._cache[ident] = message
        self._windows[-1].append(ident)

    def _within_rate(self, author: bytes, now: float) -> bool:
        config = self.config
        bucket = self._authors.get(author)
        if bucket is None:
            bucket = self._authors[author] = _AuthorBucket(config.author_burst, now)
        elapsed = max(0.0, now - bucket.updated)
        bucket.tokens = min(config.author_burst, bucket.tokens + elapsed * config.author_rate)
        bucket.updated = now
        if bucket.tokens < 1.0:
            return False
        bucket.tokens -= 1.0
        return True

    def _penalise(self, peer: Peer, reason: str) -> None:
        count = self._penalties.get(peer, 0) + 1
        self._penalties[peer] = count
        if count >= self.config.penalty_limit:
            self.remove_neighbour(peer)
            self._actions.append(Disconnect(peer, reason))
