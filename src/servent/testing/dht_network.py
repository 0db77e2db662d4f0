"""Build a simulated Mainline DHT of N nodes on a :class:`FakeDatagramNetwork`.

The nodes are the production sans-IO :class:`~servent.proto.dht.DhtNode`; only
the network and the clock are fake. Two ways to fill routing tables:

* ``join="oracle"`` gives each node, straight from the sorted list of all IDs,
  up to k contacts per bucket depth (what a converged network looks like), as
  *questionable* contacts via ``routing_table.import_nodes`` — the same path a
  restart from a saved table takes. It costs O(N log N) and lets 100,000 nodes
  start in seconds.
* ``join="bootstrap"`` lets nodes join one after another through ``bootstrap``
  to a few live nodes, exercising the real join path (slower; for small N).

Churn: every node draws a heavy-tailed session length (Pareto, as measured on
the real DHT: most sessions are short, a few last days). :meth:`vanish` removes
the nodes whose sessions end first, without notice; :meth:`run_with_churn`
keeps the population steady, each departure replaced by a newcomer that
bootstraps from a random live node.
"""

from __future__ import annotations

import bisect
import heapq
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from servent.codec.compact import Address
from servent.proto.dht.node_id import generate_secure_id
from servent.testing.datagram_network import FakeDatagramNetwork, LatencyModel

ID_BITS = 160


class SimulatedDhtNode(Protocol):
    """The part of ``DhtNode`` the builder uses."""

    def receive_datagram(self, data: bytes, addr: Address, now: float) -> None: ...

    def datagrams_to_send(self) -> list[tuple[bytes, Address]]: ...

    def next_timer(self) -> float | None: ...

    def handle_timer(self, now: float) -> None: ...

    def bootstrap(self, addrs: list[Address], now: float) -> Any: ...

    def next_event(self) -> Any: ...

    @property
    def routing_table(self) -> Any: ...


NodeFactory = Callable[[bytes, random.Random, float], SimulatedDhtNode]


def default_node_factory(config: Any = None) -> NodeFactory:
    """Production ``DhtNode`` with loopback-style IP restrictions off (one IP per node is
    real in the simulation, but a simulation should measure lookups, not /24 luck)."""
    from servent.proto.dht import DhtNode
    from servent.proto.dht.config import DhtConfig

    cfg = config if config is not None else DhtConfig()

    def make(node_id: bytes, rng: random.Random, now: float) -> SimulatedDhtNode:
        node: SimulatedDhtNode = DhtNode(node_id, config=cfg, rng=rng, now=now)
        return node

    return make


@dataclass(frozen=True, slots=True)
class ChurnModel:
    """Pareto session lengths: ``scale`` is the shortest session, ``shape`` the tail."""

    shape: float = 1.2
    scale: float = 600.0

    def draw(self, rng: random.Random) -> float:
        return self.scale * rng.paretovariate(self.shape)


@dataclass
class SimulatedDht:
    """A running simulated DHT: the network, its nodes and their IDs."""

    network: FakeDatagramNetwork
    factory: NodeFactory
    rng: random.Random
    churn: ChurnModel
    k: int = 8
    nodes: dict[Address, SimulatedDhtNode] = field(default_factory=dict)
    ids: dict[Address, bytes] = field(default_factory=dict)
    by_id: dict[bytes, Address] = field(default_factory=dict)
    departures: list[tuple[float, Address]] = field(default_factory=list)
    joined: int = 0
    departed: int = 0
    _sorted_keys: list[int] | None = None
    #: Callbacks for operations in flight: (origin, lookup_id) -> called with the final event.
    waiters: dict[tuple[Address, int], Callable[[Any], None]] = field(default_factory=dict)
    #: Callbacks for early results (``PeersArrived``) of operations still running.
    partial_waiters: dict[tuple[Address, int], Callable[[Any], None]] = field(
        default_factory=dict
    )

    def __post_init__(self) -> None:
        self.network.on_activity = self._drain_events

    def _drain_events(self, addr: Address, endpoint: object) -> None:
        node = self.nodes.get(addr)
        if node is None:
            return
        waiters = self.waiters
        while (event := node.next_event()) is not None:
            lookup_id = getattr(event, "lookup_id", None)
            if lookup_id is None:
                continue
            if getattr(event, "partial", False):
                partial = self.partial_waiters.get((addr, lookup_id))
                if partial is not None:
                    partial(event)
                continue
            self.partial_waiters.pop((addr, lookup_id), None)
            callback = waiters.pop((addr, lookup_id), None)
            if callback is not None:
                callback(event)

    def start(
        self,
        addr: Address,
        operation: Callable[[Any, float], int],
        on_done: Callable[[Any], None],
        on_partial: Callable[[Any], None] | None = None,
    ) -> None:
        """Run ``operation(node, now) -> lookup_id`` on node ``addr``; ``on_done(event)`` later,
        ``on_partial(event)`` for each early result before that."""
        node = self.nodes[addr]
        lookup_id = operation(node, self.now)
        self.waiters[(addr, lookup_id)] = on_done
        if on_partial is not None:
            self.partial_waiters[(addr, lookup_id)] = on_partial
        self.network.flush(addr)
        self._drain_events(addr, node)

    @property
    def now(self) -> float:
        return self.network.clock.now

    def live_addresses(self) -> list[Address]:
        return list(self.nodes)

    def random_live(self) -> tuple[Address, SimulatedDhtNode]:
        addr = self.rng.choice(list(self.nodes))
        return addr, self.nodes[addr]

    def add_node(self, node_id: bytes | None = None) -> Address:
        """Create a node with a fresh address (not yet connected to anyone).

        Without ``node_id`` the node gets a BEP 42 ID for its address, as a
        real node would after learning its external IP (a random one would
        be replaced by the node itself, behind the simulation's back).
        """
        addr = self.network.allocate_address()
        if node_id is None:
            node_id = generate_secure_id(addr[0], self.rng)
        node_rng = random.Random(self.rng.getrandbits(64))
        node = self.factory(node_id, node_rng, self.now)
        self.network.add(node, addr)
        self.nodes[addr] = node
        self.ids[addr] = node_id
        self.by_id[node_id] = addr
        self._sorted_keys = None
        heapq.heappush(self.departures, (self.now + self.churn.draw(self.rng), addr))
        self.joined += 1
        return addr

    def join(self, addr: Address, via: Iterable[Address]) -> None:
        """Bootstrap node ``addr`` through ``via`` (its lookups then run with the network)."""
        self.nodes[addr].bootstrap(list(via), self.now)
        self.network.flush(addr)
        self._drain_events(addr, self.nodes[addr])

    def remove_node(self, addr: Address) -> None:
        """The node vanishes without notice."""
        if self.nodes.pop(addr, None) is not None:
            node_id = self.ids.pop(addr, None)
            if node_id is not None:
                self.by_id.pop(node_id, None)
            self._sorted_keys = None
            self.network.remove(addr)
            self.departed += 1

    def vanish(self, fraction: float) -> list[Address]:
        """Remove at once the ``fraction`` of live nodes whose sessions end first."""
        count = round(len(self.nodes) * fraction)
        leaving: list[Address] = []
        while self.departures and len(leaving) < count:
            _, addr = heapq.heappop(self.departures)
            if addr in self.nodes:
                leaving.append(addr)
        for addr in leaving:
            self.remove_node(addr)
        return leaving

    def run_with_churn(self, duration: float, *, bootstrap_via: int = 2) -> None:
        """Advance ``duration`` seconds; nodes leave at their session's end, replaced by
        newcomers bootstrapping through ``bootstrap_via`` random live nodes."""
        end = self.now + duration
        while self.departures and self.departures[0][0] <= end:
            when, addr = heapq.heappop(self.departures)
            self.network.run_until(when)
            if addr not in self.nodes:
                continue
            self.remove_node(addr)
            if self.nodes:
                via = self.rng.sample(list(self.nodes), min(bootstrap_via, len(self.nodes)))
                self.join(self.add_node(), via)
        self.network.run_until(end)

    def closest_live_id(self, target: bytes) -> bytes:
        """The live node ID closest to ``target`` (ground truth for lookups).

        Walks the implicit binary trie of the sorted live IDs: 160 bisections,
        so checking a lookup costs microseconds even with 100,000 nodes.
        """
        if self._sorted_keys is None:
            self._sorted_keys = sorted(int.from_bytes(i, "big") for i in self.ids.values())
        if not self._sorted_keys:
            raise ValueError("no live nodes")
        return closest_key(self._sorted_keys, int.from_bytes(target, "big")).to_bytes(20, "big")


def closest_key(keys: list[int], target: int) -> int:
    """The XOR-closest of the sorted, non-empty ``keys`` to ``target``."""
    lo, hi = 0, len(keys)
    prefix = 0
    for bit in range(ID_BITS - 1, -1, -1):
        # keys[lo:hi] all share ``prefix`` above ``bit``; ``mid`` splits them on ``bit``.
        mid = bisect.bisect_left(keys, prefix | (1 << bit), lo, hi)
        if (target >> bit) & 1:
            if hi > mid:
                lo, prefix = mid, prefix | (1 << bit)
            else:
                hi = mid
        elif mid > lo:
            hi = mid
        else:
            prefix |= 1 << bit
        if hi - lo == 1:
            return keys[lo]
    return keys[lo]


def oracle_contacts(ids_sorted: list[int], own: int, k: int, rng: random.Random) -> list[int]:
    """Up to k random IDs per bucket depth around ``own``, from the sorted list of all IDs."""
    chosen: list[int] = []
    for depth in range(ID_BITS):
        shift = ID_BITS - depth - 1
        # IDs sharing exactly ``depth`` leading bits with ``own``: own's prefix, bit flipped.
        prefix = ((own >> shift) ^ 1) << shift
        lo = bisect.bisect_left(ids_sorted, prefix)
        hi = bisect.bisect_left(ids_sorted, prefix + (1 << shift))
        if hi > lo:
            span = hi - lo
            picks = range(lo, hi) if span <= k else rng.sample(range(lo, hi), k)
            chosen.extend(ids_sorted[index] for index in picks)
        # Stop once nobody else shares depth+1 bits with us.
        same = (own >> shift) << shift
        lo_same = bisect.bisect_left(ids_sorted, same)
        hi_same = bisect.bisect_left(ids_sorted, same + (1 << shift))
        if hi_same - lo_same <= 1:
            break
    return chosen


def build_dht_network(
    count: int,
    *,
    seed: int = 0,
    factory: NodeFactory | None = None,
    loss: float = 0.0,
    latency: LatencyModel | None = None,
    churn: ChurnModel | None = None,
    join: str = "oracle",
    k: int = 8,
    settle: float = 0.0,
) -> SimulatedDht:
    """A DHT of ``count`` nodes, reproducible from ``seed``.

    ``settle`` seconds of simulated time run after the join (lets nodes ping
    and refresh their imported contacts).
    """
    if count < 2:
        raise ValueError("a DHT needs at least two nodes")
    rng = random.Random(seed)
    network = FakeDatagramNetwork(seed=rng.getrandbits(64), loss=loss, latency=latency)
    sim = SimulatedDht(
        network=network,
        factory=factory if factory is not None else default_node_factory(),
        rng=rng,
        churn=churn if churn is not None else ChurnModel(),
        k=k,
    )
    if join == "oracle":
        addrs = [sim.add_node() for _ in range(count)]
        # One shared (id, addr) tuple per node: 100,000 tables then hold references only.
        contact_of = {int.from_bytes(sim.ids[addr], "big"): (sim.ids[addr], addr) for addr in addrs}
        ids_sorted = sorted(contact_of)
        now = network.clock.now
        for addr in addrs:
            own = int.from_bytes(sim.ids[addr], "big")
            contacts = oracle_contacts(ids_sorted, own, k, rng)
            sim.nodes[addr].routing_table.import_nodes([contact_of[key] for key in contacts], now)
            network.flush(addr)
    elif join == "bootstrap":
        sim.add_node()
        for _ in range(count - 1):
            live = list(sim.nodes)
            addr = sim.add_node()
            sim.join(addr, rng.sample(live, min(3, len(live))))
            network.run_for(0.5)
        network.run_for(10.0)
    else:
        raise ValueError(f"unknown join mode {join!r}")
    if settle:
        network.run_for(settle)
    return sim
