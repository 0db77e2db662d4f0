"""A simulated live broadcast: one broadcaster, viewers on a random graph, virtual time.

Drives :class:`servent.proto.live_swarm.LiveScheduler` (the same core a real
viewer uses) over links with a fixed latency and nodes whose upload is a
serial queue at a capped rate, so a test or a benchmark can check how fast
every piece reaches every viewer, and how much the broadcaster uploads.
Pieces are one per second of stream; sizes are in "pieces", rates in
pieces per second (multiples of the bitrate).
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Hashable
from dataclasses import dataclass, field

from servent.proto.live import LiveWindow
from servent.proto.live_swarm import LiveScheduler

BROADCASTER = 0


@dataclass
class LiveSimConfig:
    viewers: int = 20
    pieces: int = 40
    broadcaster_rate: float = 3.0  # pieces/s = multiples of the bitrate
    viewer_rate: float = 2.0
    degree: int = 4  # random viewer-to-viewer links per viewer
    broadcaster_links: int = 3
    latency: float = 0.02
    window: int = 10
    late_viewer_joins: float = 15.0  # the last viewer joins then
    timeout: float = 10.0  # a request unanswered this long is asked elsewhere
    max_queue: int = 1  # requests a node queues beyond the one it sends; more are refused
    seed: int = 1


@dataclass
class LiveSimResult:
    #: ``(viewer, index) -> seconds`` from being written to being received.
    latency: dict[tuple[int, int], float] = field(default_factory=dict)
    joined: dict[int, float] = field(default_factory=dict)
    broadcaster_uploads: int = 0
    duration: float = 0.0
    #: The lowest index each viewer received.
    first_piece_of: dict[int, int] = field(default_factory=dict)


class _Node:
    def __init__(self, window: int, timeout: float) -> None:
        self.have: set[int] = set()
        self.links: set[int] = set()
        self.scheduler = LiveScheduler(LiveWindow(window), timeout=timeout)
        self.free_at = 0.0
        self.queued = 0


def simulate(config: LiveSimConfig) -> LiveSimResult:
    """Run the broadcast to the end; every loop is bounded by the event count."""
    rng = random.Random(config.seed)
    nodes = [_Node(config.window, config.timeout) for _ in range(config.viewers + 1)]
    viewers = list(range(1, config.viewers + 1))
    for viewer in viewers:
        for other in rng.sample([v for v in viewers if v != viewer], config.degree):
            nodes[viewer].links.add(other)
            nodes[other].links.add(viewer)
    for viewer in rng.sample(viewers, config.broadcaster_links):
        nodes[BROADCASTER].links.add(viewer)
        nodes[viewer].links.add(BROADCASTER)
    result = LiveSimResult()
    late = viewers[-1]
    for viewer in viewers:
        result.joined[viewer] = config.late_viewer_joins if viewer == late else 0.0
    events: list[tuple[float, int, str, tuple[int, ...]]] = []
    order = itertools.count()

    def at(time: float, kind: str, *args: int) -> None:
        heapq.heappush(events, (time, next(order), kind, args))

    def online(node: int, now: float) -> bool:
        return node == BROADCASTER or result.joined[node] <= now

    def announce(node: int, index: int, now: float) -> None:
        for peer in nodes[node].links:
            at(now + config.latency, "have", peer, node, index)

    def busy(peer: Hashable) -> int:
        assert isinstance(peer, int)
        return nodes[peer].queued

    def ask(node: int, now: float) -> None:
        scheduler = nodes[node].scheduler
        for peer, index in scheduler.next_requests(now, busy):
            assert isinstance(peer, int)
            nodes[peer].queued += 1
            at(now + config.latency, "request", peer, node, index)

    for index in range(config.pieces):
        at(float(index), "produce", index)
    for viewer in viewers:
        at(result.joined[viewer], "join", viewer)
    limit = 200 * config.pieces * (config.viewers + 1) * (config.degree + 2)
    for _ in range(limit):
        if not events:
            break
        now, _, kind, args = heapq.heappop(events)
        result.duration = now
        if kind == "produce":
            nodes[BROADCASTER].have.add(args[0])
            announce(BROADCASTER, args[0], now)
        elif kind == "join":
            node = nodes[args[0]]
            for peer in node.links:
                node.scheduler.add_peer(peer)
                for index in sorted(nodes[peer].have)[-1:]:  # the handshake names the edge
                    node.scheduler.peer_has(peer, index)
            ask(args[0], now)
            at(now + 0.5, "tick", args[0])
        elif kind == "have":
            viewer, peer, index = args
            if online(viewer, now) and online(peer, now):
                nodes[viewer].scheduler.peer_has(peer, index)
                ask(viewer, now)
        elif kind == "request":
            server, client, index = args
            node = nodes[server]
            if node.queued > config.max_queue:
                node.queued -= 1
                at(now + config.latency, "refused", client, server, index)
                continue
            start = max(now, node.free_at)
            node.free_at = start + 1.0 / (
                config.broadcaster_rate if server == BROADCASTER else config.viewer_rate
            )
            at(node.free_at + config.latency, "piece", client, server, index)
        elif kind == "piece":
            client, server, index = args
            nodes[server].queued -= 1
            if server == BROADCASTER:
                result.broadcaster_uploads += 1
            node = nodes[client]
            if index not in node.have and node.scheduler.window.accepts(index):
                node.have.add(index)
                for dropped in node.scheduler.piece_received(index):
                    node.have.discard(dropped)
                result.latency[(client, index)] = now - index
                first = result.first_piece_of.get(client, index)
                result.first_piece_of[client] = min(first, index)
                announce(client, index, now)
            ask(client, now)
        elif kind == "refused":
            client, server, index = args
            nodes[client].scheduler.request_refused(server, index)
        elif kind == "tick" and now < config.pieces + 30:
            ask(args[0], now)
            at(now + 0.5, "tick", args[0])
    return result
