"""Full DHT exchanges in memory between several ``DhtNode``s (virtual time, no sockets)."""

from __future__ import annotations

import heapq
import random

from servent.codec.bencode import decode, encode
from servent.codec.compact import encode_nodes
from servent.proto.dht import (
    AnnounceDone,
    DhtConfig,
    DhtEvent,
    DhtNode,
    ItemFound,
    NodesFound,
    PeersArrived,
    PeersFound,
    PingDone,
    PutDone,
    SamplesFound,
)
from servent.proto.dht.items import mutable_target
from servent.proto.dht.node_id import distance, random_id

Address = tuple[str, int]

LOOPBACK_CONFIG = DhtConfig(restrict_ips=False, rate_limit_per_ip=0.0)


class DatagramLoop:
    def __init__(self, seed: int = 1, latency: float = 0.01) -> None:
        self.rng = random.Random(seed)
        self.now = 0.0
        self.latency = latency
        self.nodes: dict[Address, DhtNode] = {}
        self.queue: list[tuple[float, int, bytes, Address, Address]] = []
        self.seq = 0
        self.dropped: set[Address] = set()
        self.sent = 0

    def add_node(
        self,
        config: DhtConfig = LOOPBACK_CONFIG,
        ip: str = "127.0.0.1",
        node_id: bytes | None = None,
    ) -> tuple[DhtNode, Address]:
        addr = (ip, 10000 + len(self.nodes))
        node = DhtNode(
            node_id or random_id(self.rng),
            config=config,
            rng=random.Random(self.rng.random()),
            now=self.now,
        )
        self.nodes[addr] = node
        return node, addr

    def flush(self, addr: Address) -> None:
        for data, dest in self.nodes[addr].datagrams_to_send():
            self.inject(data, addr, dest)

    def inject(self, data: bytes, source: Address, dest: Address) -> None:
        assert source != dest, "a node never queries itself"
        self.seq += 1
        self.sent += 1
        heapq.heappush(self.queue, (self.now + self.latency, self.seq, data, source, dest))

    def run(self, until: float) -> None:
        """Advance virtual time to ``until``, delivering datagrams and timers."""
        for addr in self.nodes:
            self.flush(addr)
        while True:
            next_packet = self.queue[0][0] if self.queue else None
            timer_addr, timer_at = None, None
            for addr, node in self.nodes.items():
                at = node.next_timer()
                if at is not None and (timer_at is None or at < timer_at):
                    timer_addr, timer_at = addr, at
            candidates = [t for t in (next_packet, timer_at) if t is not None]
            if not candidates or min(candidates) > until:
                self.now = until
                return
            if next_packet is not None and (timer_at is None or next_packet <= timer_at):
                at, _, data, source, dest = heapq.heappop(self.queue)
                self.now = max(self.now, at)
                node = self.nodes.get(dest)
                if node is not None and dest not in self.dropped:
                    node.receive_datagram(data, source, self.now)
                    self.flush(dest)
            else:
                assert timer_addr is not None and timer_at is not None
                self.now = max(self.now, timer_at)
                self.nodes[timer_addr].handle_timer(self.now)
                self.flush(timer_addr)

    def events(self, addr: Address) -> list[DhtEvent]:
        out = []
        node = self.nodes[addr]
        while (event := node.next_event()) is not None:
            out.append(event)
        return out

    def build(self, count: int, config: DhtConfig = LOOPBACK_CONFIG) -> list[Address]:
        """``count`` nodes, all bootstrapped from the first, settled for a few seconds."""
        addrs = [self.add_node(config)[1] for _ in range(count)]
        for addr in addrs[1:]:
            self.nodes[addr].bootstrap([addrs[0]], self.now)
        self.run(self.now + 5)
        for addr in addrs:
            self.nodes[addr].find_node(random_id(self.rng), self.now)
        self.run(self.now + 5)
        for addr in addrs:
            self.events(addr)
        return addrs


def _one(loop: DatagramLoop, addr: Address, kind: type[DhtEvent]) -> DhtEvent:
    events = [event for event in loop.events(addr) if isinstance(event, kind)]
    assert len(events) == 1, events
    return events[0]


def test_bootstrap_fills_routing_tables() -> None:
    loop = DatagramLoop()
    addrs = loop.build(30)
    sizes = [len(loop.nodes[addr].routing_table) for addr in addrs]
    assert min(sizes) >= 8
    assert all(loop.nodes[addr].statistics()["pending_transactions"] == 0 for addr in addrs)


def test_find_node_converges_on_the_true_closest_nodes() -> None:
    loop = DatagramLoop(seed=2)
    addrs = loop.build(60)
    target = random_id(loop.rng)
    searcher = addrs[17]
    lookup_id = loop.nodes[searcher].find_node(target, loop.now)
    loop.run(loop.now + 10)
    event = _one(loop, searcher, NodesFound)
    assert isinstance(event, NodesFound) and event.lookup_id == lookup_id
    everyone = sorted(
        (node.node_id for addr, node in loop.nodes.items() if addr != searcher),
        key=lambda node_id: distance(node_id, target),
    )
    found = [node_id for node_id, _ in event.nodes]
    # Kademlia finds the closest nodes that the visited tables know; in a small network
    # an outlier may be known only to nodes off the lookup path.
    assert found[:5] == everyone[:5]
    assert len(set(found) & set(everyone[:8])) >= 7


def test_announce_then_get_peers_finds_the_peer() -> None:
    loop = DatagramLoop(seed=3)
    addrs = loop.build(40)
    info_hash = random_id(loop.rng)
    announce_id = loop.nodes[addrs[3]].announce(info_hash, 6881, loop.now)
    loop.run(loop.now + 10)
    done = _one(loop, addrs[3], AnnounceDone)
    assert isinstance(done, AnnounceDone) and done.lookup_id == announce_id
    assert done.stored == 8
    loop.nodes[addrs[30]].get_peers(info_hash, loop.now)
    loop.run(loop.now + 10)
    found = _one(loop, addrs[30], PeersFound)
    assert isinstance(found, PeersFound)
    assert found.peers == (("127.0.0.1", 6881),)


def test_announce_with_implied_port_stores_the_source_port() -> None:
    loop = DatagramLoop(seed=4)
    addrs = loop.build(20)
    info_hash = random_id(loop.rng)
    loop.nodes[addrs[5]].announce(info_hash, 1, loop.now, implied_port=True)
    loop.run(loop.now + 10)
    loop.nodes[addrs[9]].get_peers(info_hash, loop.now)
    loop.run(loop.now + 10)
    found = _one(loop, addrs[9], PeersFound)
    assert isinstance(found, PeersFound) and found.peers == (addrs[5],)


def test_immutable_item_round_trip() -> None:
    loop = DatagramLoop(seed=5)
    addrs = loop.build(30)
    loop.nodes[addrs[1]].put_immutable([b"hello", 42], loop.now)
    loop.run(loop.now + 10)
    put = _one(loop, addrs[1], PutDone)
    assert isinstance(put, PutDone) and put.stored == 8
    loop.nodes[addrs[20]].get_item(put.target, loop.now)
    loop.run(loop.now + 10)
    got = _one(loop, addrs[20], ItemFound)
    assert isinstance(got, ItemFound) and got.value == [b"hello", 42]


def test_mutable_item_sequence_increases_and_newest_wins() -> None:
    loop = DatagramLoop(seed=6)
    addrs = loop.build(30)
    seed = bytes(range(32))
    writer = loop.nodes[addrs[2]]
    writer.put_mutable(seed, b"first", loop.now, salt=b"topic")
    loop.run(loop.now + 10)
    first = _one(loop, addrs[2], PutDone)
    assert isinstance(first, PutDone) and first.seq == 1 and first.stored == 8
    writer.put_mutable(seed, b"second", loop.now, salt=b"topic")
    loop.run(loop.now + 10)
    second = _one(loop, addrs[2], PutDone)
    assert isinstance(second, PutDone) and second.seq == 2
    loop.nodes[addrs[25]].get_item(second.target, loop.now, salt=b"topic")
    loop.run(loop.now + 10)
    got = _one(loop, addrs[25], ItemFound)
    assert isinstance(got, ItemFound)
    assert got.value == b"second" and got.seq == 2 and got.public_key is not None
    assert mutable_target(got.public_key, b"topic") == second.target


def test_put_mutable_with_stale_seq_is_refused_with_302() -> None:
    loop = DatagramLoop(seed=7)
    addrs = loop.build(20)
    seed = bytes(32)
    loop.nodes[addrs[2]].put_mutable(seed, b"v5", loop.now, seq=5)
    loop.run(loop.now + 10)
    loop.events(addrs[2])
    loop.nodes[addrs[3]].put_mutable(seed, b"v4", loop.now, seq=4)
    loop.run(loop.now + 10)
    stale = _one(loop, addrs[3], PutDone)
    assert isinstance(stale, PutDone) and stale.stored == 0
    assert stale.error is not None and stale.error.startswith("302")


def test_sample_infohashes_returns_announced_hashes() -> None:
    loop = DatagramLoop(seed=8)
    addrs = loop.build(20)
    hashes = {random_id(loop.rng) for _ in range(3)}
    for info_hash in hashes:
        loop.nodes[addrs[1]].announce(info_hash, 7000, loop.now)
    loop.run(loop.now + 10)
    loop.nodes[addrs[12]].sample_infohashes(random_id(loop.rng), loop.now)
    loop.run(loop.now + 10)
    samples = _one(loop, addrs[12], SamplesFound)
    assert isinstance(samples, SamplesFound)
    assert hashes <= set(samples.samples)
    assert samples.num >= 1 and samples.interval > 0


def test_ping_reports_id_or_timeout() -> None:
    loop = DatagramLoop(seed=9)
    addrs = loop.build(5)
    node = loop.nodes[addrs[0]]
    ok_id = node.ping(addrs[1], loop.now)
    dead_id = node.ping(("127.0.0.1", 9), loop.now)
    loop.run(loop.now + 10)
    events = {
        event.lookup_id: event for event in loop.events(addrs[0]) if isinstance(event, PingDone)
    }
    assert events[ok_id].node_id == loop.nodes[addrs[1]].node_id
    assert events[dead_id].node_id is None


def test_lookup_survives_dead_nodes() -> None:
    loop = DatagramLoop(seed=10)
    addrs = loop.build(60)
    info_hash = random_id(loop.rng)
    loop.nodes[addrs[4]].announce(info_hash, 5000, loop.now)
    loop.run(loop.now + 10)
    loop.dropped.update(addrs[20:45])  # a large part of the network vanishes without notice
    loop.nodes[addrs[50]].get_peers(info_hash, loop.now)
    loop.run(loop.now + 30)
    found = _one(loop, addrs[50], PeersFound)
    assert isinstance(found, PeersFound) and ("127.0.0.1", 5000) in found.peers


def test_read_only_node_is_not_added_to_routing_tables() -> None:
    loop = DatagramLoop(seed=11)
    addrs = loop.build(10)
    ro_node, ro_addr = loop.add_node(
        DhtConfig(restrict_ips=False, rate_limit_per_ip=0.0, read_only=True)
    )
    ro_node.bootstrap([addrs[0]], loop.now)
    loop.run(loop.now + 10)
    assert len(ro_node.routing_table) > 0
    assert all(loop.nodes[addr].routing_table.find(ro_node.node_id) is None for addr in addrs)
    ro_node.ping(addrs[2], loop.now)  # queries still work
    loop.run(loop.now + 5)
    assert _one(loop, ro_addr, PingDone)


def test_routing_table_survives_export_and_import() -> None:
    loop = DatagramLoop(seed=12)
    addrs = loop.build(20)
    saved = loop.nodes[addrs[3]].routing_table.export_nodes()
    fresh = DhtNode(
        loop.nodes[addrs[3]].node_id, config=LOOPBACK_CONFIG, rng=random.Random(1), now=loop.now
    )
    assert fresh.routing_table.import_nodes(saved, loop.now) == len(saved)
    assert len(fresh.routing_table) == len(saved)


class LyingNode(DhtNode):
    """Answers honestly, except that every node list names made-up nodes right next to the
    target, at addresses where nobody listens (a classic routing attack)."""

    def receive_datagram(self, data: bytes, addr: Address, now: float) -> None:
        super().receive_datagram(data, addr, now)
        if self._out:
            reply = decode(self._out[-1][0])
            values = reply.get(b"r") if isinstance(reply, dict) else None
            query = decode(data)
            args = query.get(b"a") if isinstance(query, dict) else None
            if isinstance(values, dict) and isinstance(args, dict) and b"nodes" in values:
                target = args.get(b"target") or args.get(b"info_hash")
                assert isinstance(target, bytes) and isinstance(reply, dict)
                fakes = [
                    (target[:19] + bytes([target[19] ^ (i + 1)]), ("127.0.0.2", 40000 + i))
                    for i in range(8)
                ]
                values[b"nodes"] = encode_nodes(fakes)
                self._out[-1] = (encode(reply), self._out[-1][1])


def test_lookups_survive_nodes_that_lie_about_closer_nodes() -> None:
    loop = DatagramLoop(seed=13)
    honest = loop.build(40)
    liars = []
    for _ in range(10):
        addr = ("127.0.0.1", 10000 + len(loop.nodes))
        liar = LyingNode(
            random_id(loop.rng), config=LOOPBACK_CONFIG, rng=random.Random(5), now=loop.now
        )
        loop.nodes[addr] = liar
        liar.bootstrap([honest[0]], loop.now)
        liars.append(addr)
    loop.run(loop.now + 10)
    for addr in honest:
        loop.nodes[addr].find_node(random_id(loop.rng), loop.now)
    loop.run(loop.now + 20)
    for addr in loop.nodes:
        loop.events(addr)
    assert any(
        loop.nodes[addr].routing_table.find(loop.nodes[liar].node_id)
        for addr in honest
        for liar in liars
    )
    info_hash = random_id(loop.rng)
    loop.nodes[honest[2]].announce(info_hash, 4242, loop.now)
    loop.run(loop.now + 30)
    done = _one(loop, honest[2], AnnounceDone)
    assert isinstance(done, AnnounceDone) and done.stored >= 6
    loop.nodes[honest[30]].get_peers(info_hash, loop.now)
    loop.run(loop.now + 30)
    found = _one(loop, honest[30], PeersFound)
    assert isinstance(found, PeersFound) and ("127.0.0.1", 4242) in found.peers
    # made-up nodes never answered, so none of them is reported or entered a table
    assert all(addr[0] != "127.0.0.2" for _, addr in found.nodes)
    for addr in honest:
        assert all(
            entry.addr[0] != "127.0.0.2" for entry in loop.nodes[addr].routing_table.all_nodes()
        )


def test_ipv6_network_uses_nodes6() -> None:
    loop = DatagramLoop(seed=14)
    addrs = [loop.add_node(ip="::1")[1] for _ in range(25)]
    for addr in addrs[1:]:
        loop.nodes[addr].bootstrap([addrs[0]], loop.now)
    loop.run(loop.now + 10)
    info_hash = random_id(loop.rng)
    loop.nodes[addrs[4]].announce(info_hash, 6000, loop.now)
    loop.run(loop.now + 10)
    done = _one(loop, addrs[4], AnnounceDone)
    assert isinstance(done, AnnounceDone) and done.stored >= 6
    loop.nodes[addrs[20]].get_peers(info_hash, loop.now)
    loop.run(loop.now + 10)
    found = _one(loop, addrs[20], PeersFound)
    assert isinstance(found, PeersFound) and found.peers == (("::1", 6000),)
    assert min(len(loop.nodes[addr].routing_table) for addr in addrs) >= 8


def test_get_peers_reports_peers_as_they_arrive_then_all_of_them() -> None:
    loop = DatagramLoop(seed=21)
    addrs = loop.build(40)
    info_hash = random_id(loop.rng)
    for port, announcer in ((6881, addrs[3]), (6882, addrs[9])):
        loop.nodes[announcer].announce(info_hash, port, loop.now)
    loop.run(loop.now + 10)
    asker = loop.nodes[addrs[30]]
    lookup_id = asker.get_peers(info_hash, loop.now)
    loop.run(loop.now + 10)
    events = loop.events(addrs[30])
    early = [event for event in events if isinstance(event, PeersArrived)]
    final = [event for event in events if isinstance(event, PeersFound)]
    assert early and len(final) == 1 and events[-1] is final[0]
    assert all(event.lookup_id == lookup_id and event.partial for event in early)
    arrived = [peer for event in early for peer in event.peers]
    assert len(arrived) == len(set(arrived))  # each peer reported once
    assert set(arrived) == set(final[0].peers) == {("127.0.0.1", 6881), ("127.0.0.1", 6882)}


def _stored_only_at_asker(seed: int) -> tuple[DatagramLoop, Address, Address]:
    """Three nodes; the third is unreachable while the second stores, so the first is
    the only node that keeps what the second announces or puts."""
    loop = DatagramLoop(seed=seed)
    asker, writer, absent = loop.build(3)
    loop.dropped.add(absent)
    return loop, asker, writer


def test_get_peers_counts_peers_announced_to_the_asker_itself() -> None:
    loop, asker, writer = _stored_only_at_asker(22)
    info_hash = random_id(loop.rng)
    loop.nodes[writer].announce(info_hash, 6881, loop.now)
    loop.run(loop.now + 10)
    assert len(loop.nodes[asker].peers) == 1 and len(loop.nodes[writer].peers) == 0
    loop.dropped.clear()
    lookup_id = loop.nodes[asker].get_peers(info_hash, loop.now)
    loop.run(loop.now + 10)
    events = loop.events(asker)
    early = [event for event in events if isinstance(event, PeersArrived)]
    assert [event.peers for event in early] == [(("127.0.0.1", 6881),)]
    found = _one_of(events, PeersFound)
    assert found.lookup_id == lookup_id and found.peers == (("127.0.0.1", 6881),)


def test_get_item_counts_an_item_put_to_the_asker_itself() -> None:
    loop, asker, writer = _stored_only_at_asker(23)
    loop.nodes[writer].put_mutable(bytes(range(32)), b"only here", loop.now, salt=b"s")
    loop.run(loop.now + 10)
    put = _one(loop, writer, PutDone)
    assert isinstance(put, PutDone) and put.stored == 1
    loop.dropped.clear()
    loop.nodes[asker].get_item(put.target, loop.now, salt=b"s")
    loop.run(loop.now + 10)
    got = _one(loop, asker, ItemFound)
    assert isinstance(got, ItemFound) and got.value == b"only here" and got.seq == 1


def _one_of(events: list[DhtEvent], kind: type[PeersFound]) -> PeersFound:
    matching = [event for event in events if isinstance(event, kind)]
    assert len(matching) == 1, events
    return matching[0]
