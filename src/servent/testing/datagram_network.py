"""A fake datagram network: many sans-IO endpoints in one process, one event heap.

Any object with ``receive_datagram(data, addr, now)``, ``datagrams_to_send()``,
``next_timer()`` and ``handle_timer(now)`` can be attached under an address.
Datagrams travel with a latency drawn per endpoint (a lognormal "access link",
so a pair's one-way delay is the sum of both ends plus optional jitter) and are
lost with a fixed probability. Everything (deliveries and timer wake-ups) sits
in a single heap ordered by time, so 100,000 endpoints cost no tasks, no
threads and no per-node timers: the simulation pops the next event, advances
the virtual clock to it, and lets the one endpoint concerned react.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from servent.codec.compact import Address
from servent.testing.clock import VirtualClock

#: The largest UDP payload over IPv4; bigger datagrams are dropped like a real stack would.
MAX_DATAGRAM = 65507

#: Minimal delay before re-running a timer that asks to fire again "now" (breaks busy loops).
_TIMER_EPSILON = 1e-3


class DatagramEndpoint(Protocol):
    """What the network drives: a sans-IO datagram protocol core."""

    def receive_datagram(self, data: bytes, addr: Address, now: float) -> None: ...

    def datagrams_to_send(self) -> list[tuple[bytes, Address]]: ...

    def next_timer(self) -> float | None: ...

    def handle_timer(self, now: float) -> None: ...


@dataclass(frozen=True, slots=True)
class LatencyModel:
    """One-way delay = access(src) + access(dst) + uniform jitter, in seconds.

    Each endpoint's access delay is lognormal with median ``access_median``
    and shape ``sigma``: most links are fast, a heavy tail is slow, as on the
    Internet. ``floor`` keeps every delay strictly positive.
    """

    access_median: float = 0.025
    sigma: float = 0.6
    jitter: float = 0.005
    floor: float = 0.0005

    def draw_access(self, rng: random.Random) -> float:
        if self.access_median <= 0:
            return 0.0
        return rng.lognormvariate(math.log(self.access_median), self.sigma)


@dataclass(slots=True)
class NetworkStatistics:
    """Counters over the whole run (``sent`` counts every datagram handed to the network)."""

    sent: int = 0
    delivered: int = 0
    lost: int = 0
    unreachable: int = 0
    oversized: int = 0
    bytes_sent: int = 0
    timers_fired: int = 0


class FakeDatagramNetwork:
    """Endpoints by address, a latency and loss model, delivery in time order."""

    def __init__(
        self,
        *,
        clock: VirtualClock | None = None,
        seed: int = 0,
        loss: float = 0.0,
        latency: LatencyModel | None = None,
    ) -> None:
        if not 0.0 <= loss < 1.0:
            raise ValueError("loss must be in [0, 1)")
        self.clock = clock if clock is not None else VirtualClock()
        self.loss = loss
        self.latency = latency if latency is not None else LatencyModel()
        self.stats = NetworkStatistics()
        self._rng = random.Random(seed)
        self._heap: list[tuple[float, int, int, bytes | None, Address | None, Address | None]] = []
        self._seq = 0
        self._slots: dict[Address, int] = {}
        self._endpoints: list[DatagramEndpoint | None] = []
        self._addresses: list[Address] = []
        self._access: list[float] = []
        self._timer_at: list[float | None] = []
        #: Time of the one timer entry each endpoint has in the heap (None: none). A later
        #: wish reuses it (re-armed when it pops), so the heap holds <= 1 timer per endpoint.
        self._queued_at: list[float | None] = []
        self._sent_by: list[int] = []
        self._used_ips: set[str] = set()
        #: Called as ``tap(now, data, src, dst)`` for every datagram delivered (observers only).
        self.tap: Callable[[float, bytes, Address, Address], None] | None = None
        #: Called as ``on_activity(addr, endpoint)`` after the network drove an endpoint
        #: (a delivery or a timer), e.g. to drain its events at the exact simulated time.
        self.on_activity: Callable[[Address, DatagramEndpoint], None] | None = None

    # -- membership --------------------------------------------------------

    def allocate_address(self, *, ipv6: bool = False, port: int | None = None) -> Address:
        """A fresh, unused, public-looking address (unique IP per endpoint)."""
        rng = self._rng
        while True:
            if ipv6:
                ip = "2001:db8:%x:%x::%x" % (  # noqa: UP031 - compact and fast
                    rng.getrandbits(16),
                    rng.getrandbits(16),
                    rng.getrandbits(16) + 1,
                )
            else:
                first = rng.randrange(1, 224)
                if first in (10, 127, 100, 169, 172, 192):
                    continue  # stay clear of private, loopback and shared ranges
                ip = f"{first}.{rng.getrandbits(8)}.{rng.getrandbits(8)}.{rng.randrange(1, 255)}"
            if ip not in self._used_ips:
                self._used_ips.add(ip)
                return (ip, port if port is not None else rng.randrange(1024, 65536))

    def add(self, endpoint: DatagramEndpoint, addr: Address | None = None) -> Address:
        """Attach ``endpoint`` at ``addr`` (or a fresh address); returns the address."""
        if addr is None:
            addr = self.allocate_address()
        elif addr in self._slots:
            raise ValueError(f"address {addr} is taken")
        self._used_ips.add(addr[0])
        slot = len(self._endpoints)
        self._slots[addr] = slot
        self._endpoints.append(endpoint)
        self._addresses.append(addr)
        self._access.append(self.latency.draw_access(self._rng))
        self._timer_at.append(None)
        self._queued_at.append(None)
        self._sent_by.append(0)
        self.flush(addr)
        return addr

    def remove(self, addr: Address) -> None:
        """The endpoint vanishes without notice: datagrams to it are silently lost."""
        slot = self._slots.pop(addr, None)
        if slot is not None:
            self._endpoints[slot] = None
            self._timer_at[slot] = None

    def __contains__(self, addr: object) -> bool:
        return addr in self._slots

    def __len__(self) -> int:
        return len(self._slots)

    def endpoint(self, addr: Address) -> DatagramEndpoint:
        endpoint = self._endpoints[self._slots[addr]]
        assert endpoint is not None
        return endpoint

    def addresses(self) -> list[Address]:
        return list(self._slots)

    def sent_by(self, addr: Address) -> int:
        """How many datagrams the endpoint at ``addr`` has sent so far."""
        return self._sent_by[self._slots[addr]]

    def round_trip_sample(self, count: int, seed: int = 0) -> list[float]:
        """Round trips (without jitter) between ``count`` random pairs of attached endpoints,
        to describe the latency model a run used."""
        rng = random.Random(seed)
        access = [self._access[slot] for slot in self._slots.values()]
        if len(access) < 2:
            return []
        return [2 * (rng.choice(access) + rng.choice(access)) for _ in range(count)]

    # -- traffic -------------------------------------------------------------

    def flush(self, addr: Address) -> None:
        """Collect what the endpoint wants to send and when it next wants to wake.

        Call this after calling the endpoint directly (starting a lookup ...);
        the network does it itself after every delivery and timer.
        """
        slot = self._slots.get(addr)
        if slot is not None:
            self._after(slot, fired=False)

    def inject(self, data: bytes, src: Address, dst: Address, delay: float = 0.0) -> None:
        """Deliver ``data`` to ``dst`` as if sent by ``src`` (which need not be attached)."""
        self._push(self.clock.now + delay, -1, data, src, dst)

    def _push(
        self, when: float, slot: int, data: bytes | None, src: Address | None, dst: Address | None
    ) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (when, self._seq, slot, data, src, dst))

    def _after(self, slot: int, *, fired: bool) -> None:
        endpoint = self._endpoints[slot]
        if endpoint is None:
            return
        now = self.clock.now
        outgoing = endpoint.datagrams_to_send()
        if outgoing:
            self._send_all(slot, outgoing, now)
        when = endpoint.next_timer()
        if when is None:
            self._timer_at[slot] = None
            return
        if fired and when <= now:
            when = now + _TIMER_EPSILON
        self._timer_at[slot] = when
        queued = self._queued_at[slot]
        if queued is None or queued > when:
            due = when if when > now else now
            self._queued_at[slot] = due
            self._push(due, slot, None, None, None)

    def _send_all(self, slot: int, outgoing: list[tuple[bytes, Address]], now: float) -> None:
        stats = self.stats
        src = self._addresses[slot]
        src_access = self._access[slot]
        slots = self._slots
        access = self._access
        rng = self._rng
        loss = self.loss
        jitter = self.latency.jitter
        floor = self.latency.floor
        self._sent_by[slot] += len(outgoing)
        for data, dst in outgoing:
            stats.sent += 1
            stats.bytes_sent += len(data)
            if len(data) > MAX_DATAGRAM:
                stats.oversized += 1
                continue
            if loss and rng.random() < loss:
                stats.lost += 1
                continue
            dst_slot = slots.get(dst)
            delay = src_access + (access[dst_slot] if dst_slot is not None else 0.0)
            if jitter:
                delay += rng.random() * jitter
            self._seq += 1
            heapq.heappush(self._heap, (now + max(delay, floor), self._seq, -1, data, src, dst))

    # -- running -------------------------------------------------------------

    def next_event_time(self) -> float | None:
        return self._heap[0][0] if self._heap else None

    def step(self) -> bool:
        """Process one event; False when nothing is left to do."""
        heap = self._heap
        while heap:
            when, _, slot, data, src, dst = heapq.heappop(heap)
            if self._dispatch(when, slot, data, src, dst):
                return True
        return False

    def _dispatch(
        self, when: float, slot: int, data: bytes | None, src: Address | None, dst: Address | None
    ) -> bool:
        clock = self.clock
        if data is None:
            if self._queued_at[slot] != when:
                return False  # an earlier entry replaced this one
            self._queued_at[slot] = None
            scheduled = self._timer_at[slot]
            endpoint = self._endpoints[slot]
            if scheduled is None or endpoint is None:
                return False  # no timer wanted any more, or the endpoint left
            if scheduled > when:
                self._queued_at[slot] = scheduled  # the wish moved later: re-arm
                self._push(scheduled, slot, None, None, None)
                return False
            clock.advance_to(when)
            self._timer_at[slot] = None
            self.stats.timers_fired += 1
            endpoint.handle_timer(clock.now)
            self._after(slot, fired=True)
            if self.on_activity is not None:
                self.on_activity(self._addresses[slot], endpoint)
            return True
        assert src is not None and dst is not None
        target = self._slots.get(dst)
        clock.advance_to(when)
        if target is None:
            self.stats.unreachable += 1
            return True
        endpoint = self._endpoints[target]
        assert endpoint is not None
        self.stats.delivered += 1
        if self.tap is not None:
            self.tap(clock.now, data, src, dst)
        endpoint.receive_datagram(data, src, clock.now)
        self._after(target, fired=False)
        if self.on_activity is not None:
            self.on_activity(dst, endpoint)
        return True

    def run_until(self, deadline: float) -> None:
        """Process every event up to ``deadline``, then set the clock to it."""
        heap = self._heap
        pop = heapq.heappop
        dispatch = self._dispatch
        while heap and heap[0][0] <= deadline:
            when, _, slot, data, src, dst = pop(heap)
            dispatch(when, slot, data, src, dst)
        self.clock.advance_to(deadline)

    def run_for(self, seconds: float) -> None:
        self.run_until(self.clock.now + seconds)

    def run_until_true(self, condition: Callable[[], bool], timeout: float) -> bool:
        """Run until ``condition()`` holds (checked after each event) or ``timeout`` elapses."""
        deadline = self.clock.now + timeout
        heap = self._heap
        pop = heapq.heappop
        dispatch = self._dispatch
        if condition():
            return True
        while heap and heap[0][0] <= deadline:
            when, _, slot, data, src, dst = pop(heap)
            if dispatch(when, slot, data, src, dst) and condition():
                return True
        self.clock.advance_to(deadline)
        return condition()
