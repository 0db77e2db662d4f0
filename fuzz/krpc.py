"""Fuzz the DHT receive path: ``python -m fuzz.krpc --runs N [--seed S]``.

Each run builds a valid KRPC datagram (every query kind, responses carrying
nodes / values / tokens / items / samples, errors), mutates it (bit flips,
inserted, deleted and duplicated bytes, truncation), and feeds it to a busy
``DhtNode`` (contacts, lookups in flight) both from a stranger and from the
address a real query went to with its real transaction ID. The node must
never raise, and its routing table must keep its invariants. A crash prints
the input (hex) and exits 1.
"""

from __future__ import annotations

import argparse
import random
import sys
import traceback

from servent.codec.bencode import BValue, decode, encode
from servent.proto.dht import DhtConfig, DhtNode

OWN = bytes.fromhex("c3" * 20)
KNOWN = [(bytes([i]) * 20, (f"198.51.{i}.1", 6881)) for i in range(1, 9)]
METHODS = [
    b"ping",
    b"find_node",
    b"get_peers",
    b"announce_peer",
    b"get",
    b"put",
    b"sample_infohashes",
]
KEYS = [
    b"target", b"info_hash", b"token", b"port", b"implied_port", b"v", b"k", b"sig", b"seq",
    b"cas", b"salt", b"want", b"nodes", b"nodes6", b"values", b"samples", b"num", b"interval",
]  # fmt: skip


def random_value(rng: random.Random, depth: int = 0) -> BValue:
    choice = rng.randrange(6 if depth < 3 else 3)
    if choice == 0:
        return rng.choice([0, 1, -1, 6881, 2**63, rng.randrange(-(2**40), 2**40)])
    if choice == 1:
        return rng.randbytes(rng.choice([0, 1, 6, 8, 18, 20, 26, 32, 38, 64, 200, 1100]))
    if choice == 2:
        return rng.choice([b"n4", b"n6", b"\x00" * 20])
    if choice == 3:
        return [random_value(rng, depth + 1) for _ in range(rng.randrange(5))]
    if choice == 4:
        return [rng.randbytes(6) for _ in range(rng.randrange(40))]
    return {rng.choice(KEYS): random_value(rng, depth + 1) for _ in range(rng.randrange(4))}


def random_message(rng: random.Random, tid: bytes, sender: bytes) -> bytes:
    args: dict[bytes, BValue] = {b"id": sender}
    for _ in range(rng.randrange(6)):
        args[rng.choice(KEYS)] = random_value(rng)
    kind = rng.choice([b"q", b"r", b"r", b"e"])
    top: dict[bytes, BValue] = {b"t": tid, b"y": kind}
    if kind == b"q":
        top[b"q"] = rng.choice(METHODS)
        top[b"a"] = args
    elif kind == b"r":
        top[b"r"] = args
        if rng.random() < 0.3:
            top[b"ip"] = rng.randbytes(rng.choice([6, 18, 3]))
    else:
        top[b"e"] = [rng.choice([201, 203, 302, -1]), b"oops"]
    return encode(top)


def mutate(rng: random.Random, data: bytes) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randrange(5)):
        if not buf:
            break
        pos = rng.randrange(len(buf))
        op = rng.randrange(5)
        if op == 0:
            buf[pos] ^= 1 << rng.randrange(8)
        elif op == 1:
            buf[pos:pos] = rng.randbytes(rng.randrange(1, 9))
        elif op == 2:
            del buf[pos : pos + rng.randrange(1, 9)]
        elif op == 3:
            buf[pos:pos] = buf[pos : pos + rng.randrange(1, 30)]
        else:
            del buf[pos:]
    return bytes(buf)


def busy_node(rng: random.Random) -> tuple[DhtNode, list[tuple[bytes, tuple[str, int]]]]:
    config = DhtConfig(rate_limit_per_ip=rng.choice([0.0, 20.0]))
    node = DhtNode(OWN, config=config, rng=random.Random(rng.random()), now=0.0)
    node.routing_table.import_nodes(KNOWN, 0.0)
    node.find_node(rng.randbytes(20), 0.0)
    node.get_peers(rng.randbytes(20), 0.0)
    node.get_item(rng.randbytes(20), 0.0)
    node.announce(rng.randbytes(20), 6881, 0.0)
    return node, node.datagrams_to_send()


def check(node: DhtNode) -> None:
    table = node.routing_table
    for index, bucket in enumerate(table.buckets):
        assert len(bucket.nodes) <= node.config.k
        for entry in bucket.nodes:
            assert entry.node_id != OWN
            assert table.bucket_index(int.from_bytes(entry.node_id, "big")) == index


def one_run(rng: random.Random, fed: list[bytes]) -> None:
    """Feed one busy node; every datagram goes to ``fed`` first so a crash can be replayed."""
    node, queries = busy_node(rng)
    known = {addr: node_id for node_id, addr in KNOWN}
    now = 0.1
    for query, addr in queries:
        tid = decode(query)[b"t"]  # type: ignore[index, call-overload]
        assert isinstance(tid, bytes)
        data = mutate(rng, random_message(rng, tid, known.get(addr, rng.randbytes(20))))
        fed.append(data)
        node.receive_datagram(data, addr, now)
        stranger = mutate(rng, random_message(rng, rng.randbytes(2), rng.randbytes(20)))
        fed.append(stranger)
        node.receive_datagram(stranger, ("203.0.113.9", 1), now)
        node.datagrams_to_send()
        now += 0.05
    node.handle_timer(now + 30)
    while node.next_event() is not None:
        pass
    check(node)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    for run in range(args.runs):
        rng = random.Random(f"{seed}-{run}")
        fed: list[bytes] = []
        try:
            one_run(rng, fed)
        except Exception:
            traceback.print_exc()
            print(f"crash at run {run} (seed {seed}); last input: {fed[-1].hex() if fed else ''}")
            return 1
    print(f"krpc fuzz: {args.runs} runs, seed {seed}, no crash")
    return 0


if __name__ == "__main__":
    sys.exit(main())
