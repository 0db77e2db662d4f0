"""Two uTP connections over one simulated path, in virtual time.

Each direction has a propagation delay, jitter (which reorders packets), a
loss probability and, optionally, a bottleneck: a link rate and a drop-tail
queue of bounded size, so a sender that pushes too hard sees its one-way
delay grow and then loses packets, as behind a home router. A direction may
have a path MTU (``mtu``, a datagram size): larger datagrams sent with DF are
dropped and, with ``icmp``, the sender's "kernel" learns the size and refuses
larger ones at once (``datagram_too_big``, then sent fragmentable, as the
driver does). Everything is deterministic for a given seed.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from servent.proto.utp import (
    DataReceived,
    PacketType,
    UtpConnection,
    UtpEvent,
    decode_packet,
)
from servent.proto.utp.mtu import Limits, PathMtu

__all__ = ["LinkDirection", "UtpLink", "client_and_server"]


@dataclass(slots=True)
class LinkDirection:
    """One direction of the path; ``rate`` in bytes/s (``None``: unlimited)."""

    delay: float = 0.010
    jitter: float = 0.0
    loss: float = 0.0
    rate: float | None = None
    queue_bytes: int = 64 * 1024
    busy_until: float = 0.0
    delivered: int = 0
    dropped: int = 0
    max_queue_delay: float = 0.0
    mtu: int | None = None
    icmp: bool = True
    known_mtu: int | None = None  # what the sender's kernel learned from ICMP
    too_big: int = 0

    def departure(self, size: int, now: float) -> float | None:
        """When a datagram of ``size`` leaves the bottleneck, or ``None`` if the queue is full."""
        if self.rate is None:
            return now
        start = max(now, self.busy_until)
        if (start - now) * self.rate + size > self.queue_bytes:
            return None
        self.busy_until = start + size / self.rate
        self.max_queue_delay = max(self.max_queue_delay, start - now)
        return self.busy_until


@dataclass
class UtpLink:
    """A client connection, a server created on its SYN, and the path between."""

    client: UtpConnection
    forward: LinkDirection = field(default_factory=LinkDirection)
    backward: LinkDirection = field(default_factory=LinkDirection)
    seed: int = 0
    server_seq: int = 20000
    now: float = 0.0
    server: UtpConnection | None = None
    received: dict[str, bytearray] = field(
        default_factory=lambda: {"client": bytearray(), "server": bytearray()}
    )
    events: dict[str, list[UtpEvent]] = field(default_factory=lambda: {"client": [], "server": []})
    observers: list[Callable[[UtpLink], None]] = field(default_factory=list)
    mtu_limits: Limits | None = None  # the server searches the path MTU within these

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._heap: list[tuple[float, int, str, bytes]] = []
        self._order = 0
        self._handled: dict[int, float] = {}  # id(conn) -> the time its timer last fired

    def _emit(self, side: str, conn: UtpConnection) -> None:
        direction = self.forward if side == "client" else self.backward
        target = "server" if side == "client" else "client"
        for data in conn.datagrams_to_send(self.now):
            if direction.known_mtu is not None and len(data) > direction.known_mtu:
                conn.datagram_too_big(data, direction.known_mtu, self.now)  # EMSGSIZE
                self._send(direction, target, data, fragmented=True)
            else:
                self._send(direction, target, data, fragmented=False)
        for data in conn.take_fragmentable():
            self._send(direction, target, data, fragmented=True)
        self._collect(side, conn)

    def _send(self, direction: LinkDirection, target: str, data: bytes, fragmented: bool) -> None:
        if not fragmented and direction.mtu is not None and len(data) > direction.mtu:
            direction.too_big += 1
            if direction.icmp:
                direction.known_mtu = direction.mtu
            return
        if self._rng.random() < direction.loss:
            direction.dropped += 1
            return
        leaves = direction.departure(len(data), self.now)
        if leaves is None:
            direction.dropped += 1
            return
        arrival = leaves + direction.delay + self._rng.uniform(0, direction.jitter)
        self._order += 1
        heapq.heappush(self._heap, (arrival, self._order, target, data))

    def _collect(self, side: str, conn: UtpConnection) -> None:
        while (event := conn.next_event()) is not None:
            if isinstance(event, DataReceived):
                self.received[side] += event.data
            else:
                self.events[side].append(event)

    def _deliver(self, target: str, data: bytes) -> None:
        direction = self.forward if target == "server" else self.backward
        direction.delivered += 1
        if target == "client":
            self.client.receive_datagram(data, self.now)
            return
        if self.server is None:
            packet = decode_packet(data)
            if packet.type is not PacketType.SYN:
                return
            mtu = None if self.mtu_limits is None else PathMtu(self.mtu_limits, self.now)
            self.server = UtpConnection.accept(packet, self.server_seq, self.now, mtu)
            return
        self.server.receive_datagram(data, self.now)

    def pump(self) -> None:
        self._emit("client", self.client)
        if self.server is not None:
            self._emit("server", self.server)

    def step(self) -> bool:
        """Advance to the next delivery or timer; False when nothing is left to happen."""
        self.pump()
        candidates: list[float] = []
        if self._heap:
            candidates.append(self._heap[0][0])
        for conn in (self.client, self.server):
            if conn is not None and (when := conn.next_timer()) is not None:
                candidates.append(when)
        if not candidates:
            return False
        self.now = max(self.now, min(candidates))
        while self._heap and self._heap[0][0] <= self.now:
            _, _, target, data = heapq.heappop(self._heap)
            self._deliver(target, data)
        for conn in (self.client, self.server):
            if conn is not None and (when := conn.next_timer()) is not None and when <= self.now:
                if self._handled.get(id(conn)) == self.now:
                    raise AssertionError(
                        f"timer spin: due at {when} again after firing at {self.now}"
                    )
                self._handled[id(conn)] = self.now
                conn.handle_timer(self.now)
        self._collect("client", self.client)
        if self.server is not None:
            self._collect("server", self.server)
        for observer in self.observers:
            observer(self)
        return True

    def run_until(self, condition: Callable[[], bool], timeout: float) -> bool:
        """Step until ``condition()`` holds or ``timeout`` virtual seconds pass."""
        deadline = self.now + timeout
        while not condition():
            if self.now > deadline or not self.step():
                return condition()
        return True


def client_and_server(
    *,
    forward: LinkDirection | None = None,
    backward: LinkDirection | None = None,
    seed: int = 0,
    client_seq: int = 100,
    server_seq: int = 20000,
    mtu: Limits | None = None,
) -> UtpLink:
    """A connecting client (recv id 1000) on a path; the server appears on its SYN.

    With ``mtu``, both ends search the path MTU within those limits."""
    client_mtu = None if mtu is None else PathMtu(mtu, 0.0)
    client = UtpConnection.connect(1000, client_seq, 0.0, client_mtu)
    return UtpLink(
        client,
        forward=forward or LinkDirection(),
        backward=backward or LinkDirection(),
        seed=seed,
        server_seq=server_seq,
        mtu_limits=mtu,
    )
