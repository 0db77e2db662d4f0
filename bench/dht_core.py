"""Micro-benchmark: KRPC queries answered per second by one ``DhtNode`` (no sockets).

Run: ``.venv/bin/python -m bench.dht_core [--queries 100000] [--seed 1]``.

The node has a realistic routing table (a few hundred contacts on distinct
public IPs, IP restrictions and the per-IP rate limit on) and stores some
peers. Queries come from many source IPs, as on the real DHT, in a mix of
ping / find_node / get_peers / announce_peer; the figure covers the whole hot
path: rate limit, decode, dispatch, answer, encode, routing-table upkeep.
The goal for the real node is >= 20,000 queries per second per core; the
driver adds the socket cost on top. The raw bencode decode rate of the same
datagrams is printed as the floor this core cannot beat.
"""

from __future__ import annotations

import argparse
import gc
import random
import time

from servent.codec.bencode import DATAGRAM_LIMITS, decode, encode
from servent.proto.dht import DhtConfig, DhtNode
from servent.proto.dht.fastbencode import decode_datagram
from servent.proto.dht.node_id import random_id


def _address(rng: random.Random) -> tuple[str, int]:
    octets = (rng.randrange(1, 224), rng.randrange(256), rng.randrange(256), rng.randrange(1, 255))
    return ".".join(map(str, octets)), rng.randrange(1024, 65535)


def build_node(rng: random.Random, contacts: int) -> DhtNode:
    node = DhtNode(random_id(rng), config=DhtConfig(), rng=random.Random(rng.random()), now=0.0)
    saved = [(random_id(rng), _address(rng)) for _ in range(contacts)]
    node.routing_table.import_nodes(saved, 0.0)
    return node


def make_queries(
    rng: random.Random, node: DhtNode, count: int, hashes: list[bytes]
) -> list[tuple[bytes, tuple[str, int]]]:
    out = []
    for index in range(count):
        addr = _address(rng)
        tid = index.to_bytes(4, "big")
        sender = random_id(rng)
        kind = index % 10
        if kind < 2:
            args = {b"id": sender}
            method = b"ping"
        elif kind < 6:
            args = {b"id": sender, b"target": random_id(rng)}
            method = b"find_node"
        elif kind < 9:
            args = {b"id": sender, b"info_hash": rng.choice(hashes)}
            method = b"get_peers"
        else:
            info_hash = rng.choice(hashes)
            args = {
                b"id": sender,
                b"info_hash": info_hash,
                b"port": 6881,
                b"token": node.tokens.token_for(addr[0]),
            }
            method = b"announce_peer"
        out.append((encode({b"t": tid, b"y": b"q", b"q": method, b"a": args}), addr))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=100_000)
    parser.add_argument("--contacts", type=int, default=400)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    node = build_node(rng, args.contacts)
    hashes = [random_id(rng) for _ in range(200)]
    for info_hash in hashes[:100]:
        for _ in range(20):
            node.peers.add(info_hash, rng.randbytes(6), 0.0)
    queries = make_queries(rng, node, args.queries, hashes)
    # The pre-built queries are the benchmark's own heap, not the node's: keep the cyclic
    # GC from rescanning them (a real node does not hold 100,000 datagrams).
    gc.collect()
    gc.freeze()
    table = node.routing_table
    print(f"routing table: {len(table)} contacts in {len(table.buckets)} buckets")

    start = time.process_time()
    for data, _ in queries:
        decode(data, DATAGRAM_LIMITS)
    generic_rate = len(queries) / (time.process_time() - start)
    start = time.process_time()
    for data, _ in queries:
        decode_datagram(data)
    decode_rate = len(queries) / (time.process_time() - start)

    now = 1.0
    answered = 0
    start = time.perf_counter()
    cpu_start = time.process_time()
    for data, addr in queries:
        node.receive_datagram(data, addr, now)
        answered += len(node.datagrams_to_send())
        while node.next_event() is not None:  # a driver drains events (announces) too
            pass
        now += 0.00001
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu_start
    rate = len(queries) / elapsed
    cpu_rate = len(queries) / cpu
    stats = node.statistics()
    print(f"generic bencode decode:{generic_rate:10,.0f} datagrams per CPU second")
    print(f"KRPC decoder only:     {decode_rate:10,.0f} datagrams per CPU second (floor)")
    print(
        f"DhtNode answered:      {rate:10,.0f} queries/s wall ({answered} replies, {elapsed:.2f} s)"
    )
    print(f"                       {cpu_rate:10,.0f} queries per CPU second (one core)")
    print(f"  ratio to decode-only: {cpu_rate / decode_rate:.2f}")
    print(f"  goal 20,000/s per core: {'met' if cpu_rate >= 20_000 else 'NOT met'}")
    print(f"  stats: {stats}")


if __name__ == "__main__":
    main()
