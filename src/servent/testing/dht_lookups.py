"""Measure lookups on a :class:`~servent.testing.dht_network.SimulatedDht`.

Lookups start from random live nodes and are checked against ground truth:
``find_node`` must return the live node closest to its target, ``get_peers``
the peer another node announced. Besides success, each lookup reports its
rounds (the longest chain of answers), the messages its origin sent, its
simulated latency and, for ``get_peers``, when the caller first held a peer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from servent.codec.compact import Address
from servent.testing.dht_network import ID_BITS, SimulatedDht


@dataclass
class LookupReport:
    """Figures of a batch of lookups; lists hold one value per finished lookup."""

    kind: str
    attempted: int = 0
    succeeded: int = 0
    unfinished: int = 0
    rounds: list[int] = field(default_factory=list)
    #: Round in which the goal was reached: the closest live node answered (find_node), or
    #: the first answer carrying peers arrived (get_peers). Only for successful lookups.
    rounds_to_goal: list[int] = field(default_factory=list)
    messages: list[int] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    #: get_peers: when the caller first held the announced peer (an early ``PeersArrived``
    #: or, failing that, the final event). Only for successful lookups.
    first_peers: list[float] = field(default_factory=list)

    @property
    def success_rate(self) -> float:
        return self.succeeded / self.attempted if self.attempted else 0.0


def percentile(values: list[float] | list[int], fraction: float) -> float:
    """Nearest-rank percentile (``fraction`` in [0, 1]); 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * len(ordered) + 0.5) - 1))
    return float(ordered[index])


class _Probe:
    """One measured lookup: where it started and how deep its chain of answers went."""

    __slots__ = (
        "depth",
        "expected",
        "first_peers",
        "goal_addr",
        "max_depth",
        "origin",
        "reached",
        "sent_before",
        "started",
    )

    def __init__(self, origin: Address, started: float, sent_before: int, expected: Any) -> None:
        self.origin = origin
        self.started = started
        self.sent_before = sent_before
        self.expected = expected
        self.depth: dict[Address, int] = {}
        self.max_depth = 0
        self.goal_addr: Address | None = None
        self.reached = 0
        self.first_peers: float | None = None


def _response_nodes(data: bytes) -> tuple[list[Address], bool] | None:
    """(addresses in ``nodes``, whether it carries ``values``) of a KRPC response, or None."""
    from servent.codec.bencode import DATAGRAM_LIMITS, decode
    from servent.codec.compact import decode_nodes

    try:
        message = decode(data, DATAGRAM_LIMITS)
    except Exception:
        return None
    if not isinstance(message, dict) or message.get(b"y") != b"r":
        return None
    reply = message.get(b"r")
    if not isinstance(reply, dict):
        return [], False
    has_values = bool(reply.get(b"values"))
    nodes = reply.get(b"nodes")
    if not isinstance(nodes, bytes):
        return [], has_values
    try:
        return [addr for _, addr in decode_nodes(nodes)], has_values
    except Exception:
        return [], has_values


def _announce_operation(info_hash: bytes, port: int) -> Callable[[Any, float], int]:
    def operation(node: Any, now: float) -> int:
        lookup_id: int = node.announce(info_hash, port, now)
        return lookup_id

    return operation


def _discarder(pending: set[Address], addr: Address) -> Callable[[Any], None]:
    def discard(event: Any) -> None:
        pending.discard(addr)

    return discard


def measure_lookups(
    sim: SimulatedDht,
    count: int,
    *,
    kind: str = "find_node",
    concurrency: int = 64,
    timeout: float = 300.0,
) -> LookupReport:
    """Run ``count`` lookups from random live nodes, ``concurrency`` at a time.

    ``find_node`` succeeds when the live node closest to a random target is
    among the results. ``get_peers`` first has a random node announce a random
    info-hash, then succeeds when another node's ``get_peers`` returns that
    peer. Rounds are the longest chain of answers the lookup followed (a node
    learnt from an answer of depth d has depth d + 1; routing-table contacts
    have depth 1); messages are the datagrams the origin sent meanwhile.
    """
    if kind not in ("find_node", "get_peers"):
        raise ValueError(f"unknown lookup kind {kind!r}")
    report = LookupReport(kind=kind)
    network = sim.network
    rng = sim.rng
    probes: dict[Address, _Probe] = {}

    def tap(now: float, data: bytes, src: Address, dst: Address) -> None:
        probe = probes.get(dst)
        if probe is None:
            return
        answer = _response_nodes(data)
        if answer is None:
            return
        learnt, has_values = answer
        depth = probe.depth.get(src, 1)
        probe.max_depth = max(probe.max_depth, depth)
        if not probe.reached and (has_values or src == probe.goal_addr):
            probe.reached = depth
        for addr in learnt:
            if addr not in probe.depth:
                probe.depth[addr] = depth + 1

    def finish(probe: _Probe, event: Any, success: bool) -> None:
        probes.pop(probe.origin, None)
        report.succeeded += success
        report.rounds.append(max(probe.max_depth, 1))
        if success and probe.reached:
            report.rounds_to_goal.append(probe.reached)
        report.messages.append(network.sent_by(probe.origin) - probe.sent_before)
        report.latencies.append(sim.now - probe.started)
        if success and report.kind == "get_peers":
            first = probe.first_peers if probe.first_peers is not None else sim.now
            report.first_peers.append(first - probe.started)

    def start_find_node(origin: Address) -> None:
        own = sim.ids[origin]
        while True:
            target = rng.getrandbits(ID_BITS).to_bytes(20, "big")
            expected = sim.closest_live_id(target)
            if expected != own:
                break
        probe = _Probe(origin, sim.now, network.sent_by(origin), expected)
        probe.goal_addr = sim.by_id.get(expected)
        probes[origin] = probe

        def done(event: Any) -> None:
            found = {node_id for node_id, _ in getattr(event, "nodes", ())}
            finish(probe, event, probe.expected in found)

        sim.start(origin, lambda node, now: node.find_node(target, now), done)

    def start_get_peers(origin: Address, info_hash: bytes, peer: Address) -> None:
        probe = _Probe(origin, sim.now, network.sent_by(origin), peer)
        probes[origin] = probe

        def done(event: Any) -> None:
            finish(probe, event, peer in getattr(event, "peers", ()))

        def early(event: Any) -> None:
            if probe.first_peers is None and peer in getattr(event, "peers", ()):
                probe.first_peers = sim.now

        sim.start(origin, lambda node, now: node.get_peers(info_hash, now), done, early)

    previous_tap = network.tap
    network.tap = tap
    try:
        remaining = count
        while remaining > 0 and len(sim.nodes) >= 2:
            batch = min(concurrency, remaining, len(sim.nodes) // 2)
            origins = rng.sample(list(sim.nodes), 2 * batch)
            askers, announcers = origins[:batch], origins[batch:]
            if kind == "get_peers":
                announced: list[tuple[Address, bytes, Address]] = []
                pending: set[Address] = set()
                for asker, announcer in zip(askers, announcers, strict=True):
                    info_hash = rng.getrandbits(ID_BITS).to_bytes(20, "big")
                    port = rng.randrange(1024, 65536)
                    announced.append((asker, info_hash, (announcer[0], port)))
                    pending.add(announcer)
                    sim.start(
                        announcer,
                        _announce_operation(info_hash, port),
                        _discarder(pending, announcer),
                    )
                network.run_until_true(lambda: not pending, timeout)  # noqa: B023
                for asker, info_hash, peer in announced:
                    if asker in sim.nodes:
                        start_get_peers(asker, info_hash, peer)
            else:
                for origin in askers:
                    start_find_node(origin)
            report.attempted += batch
            remaining -= batch
            network.run_until_true(lambda: not probes, timeout)
            report.unfinished += len(probes)
            for origin in list(probes):
                sim.waiters = {key: cb for key, cb in sim.waiters.items() if key[0] != origin}
                sim.partial_waiters = {
                    key: cb for key, cb in sim.partial_waiters.items() if key[0] != origin
                }
            probes.clear()
    finally:
        network.tap = previous_tap
    return report
