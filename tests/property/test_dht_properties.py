"""Hypothesis: hostile datagrams never crash the DHT core nor poison its routing table.

Random bytes, mutated valid KRPC messages and responses with guessed
transaction IDs are fed to a ``DhtNode`` that has lookups in flight. The node
may only drop or answer them; no exception escapes, the routing table keeps
its invariants and gains only nodes that really answered one of our queries
from the address we asked, and a flooding IP ends up blocked.
"""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from servent.codec.bencode import DATAGRAM_LIMITS, BValue, decode, encode
from servent.codec.compact import decode_nodes, encode_nodes
from servent.errors import BencodeError, KrpcDecodeError
from servent.proto.dht import DhtConfig, DhtNode
from servent.proto.dht.fastbencode import decode_datagram

OWN = bytes.fromhex("c3" * 20)
KNOWN = [(bytes([i]) * 20, (f"198.51.{i}.1", 6881)) for i in range(1, 9)]
ATTACKER = ("203.0.113.66", 4444)
METHODS = [
    b"ping",
    b"find_node",
    b"get_peers",
    b"announce_peer",
    b"get",
    b"put",
    b"sample_infohashes",
    b"x",
]

RESPONSE_KEYS = [b"nodes", b"nodes6", b"values", b"token", b"v", b"k", b"sig", b"seq", b"samples"]

ids = st.binary(min_size=20, max_size=20)
small_values: st.SearchStrategy[BValue] = st.recursive(
    st.integers(-(2**70), 2**70) | st.binary(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.binary(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@st.composite
def krpc_messages(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from([b"q", b"r", b"e"]))
    tid = draw(st.binary(min_size=0, max_size=4))
    top: dict[bytes, BValue] = {b"t": tid, b"y": kind}
    args: dict[bytes, BValue] = {b"id": draw(ids)}
    for key in draw(st.lists(st.sampled_from(
        [b"target", b"info_hash", b"token", b"port", b"implied_port", b"v", b"k", b"sig",
         b"seq", b"cas", b"salt", b"want", b"nodes", b"nodes6", b"values", b"samples"]
    ), max_size=5)):  # fmt: skip
        args[key] = draw(st.one_of(ids, small_values, st.binary(min_size=26, max_size=26 * 9)))
    if kind == b"q":
        top[b"q"] = draw(st.sampled_from(METHODS))
        top[b"a"] = args
        if draw(st.booleans()):
            top[b"ro"] = 1
    elif kind == b"r":
        top[b"r"] = args
        if draw(st.booleans()):
            top[b"ip"] = draw(st.binary(max_size=20))
    else:
        top[b"e"] = draw(st.lists(small_values, max_size=3))
    return encode(top)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(krpc_messages()))
    for _ in range(draw(st.integers(0, 4))):
        op = draw(st.integers(0, 2))
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        if op == 0 and data:
            data[pos] = draw(st.integers(0, 255))
        elif op == 1:
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif data:
            del data[pos : pos + draw(st.integers(1, 8))]
    return bytes(data)


def busy_node(config: DhtConfig | None = None) -> DhtNode:
    """A node with contacts and lookups in flight, so responses have somewhere to go."""
    node, _ = busy_node_and_queries(config)
    return node


def busy_node_and_queries(
    config: DhtConfig | None = None,
) -> tuple[DhtNode, list[tuple[bytes, tuple[str, int]]]]:
    node = DhtNode(OWN, config=config or DhtConfig(), rng=random.Random(3), now=0.0)
    node.routing_table.import_nodes(KNOWN, 0.0)
    node.find_node(bytes(20), 0.0)
    node.get_peers(b"\x11" * 20, 0.0)
    node.get_item(b"\x22" * 20, 0.0)
    node.ping(ATTACKER, 0.0)
    return node, node.datagrams_to_send()


def check_table(node: DhtNode, allowed: set[bytes]) -> None:
    for table in node.routing_table.tables():  # one per address family (BEP 32)
        for index, bucket in enumerate(table.buckets):
            assert len(bucket.nodes) <= node.config.k
            for entry in bucket.nodes:
                assert entry.node_id != OWN
                assert table.bucket_index(int.from_bytes(entry.node_id, "big")) == index
                assert entry.node_id in allowed, entry


@settings(max_examples=150)
@given(st.lists(st.binary(max_size=300) | mutated() | krpc_messages(), max_size=20))
def test_hostile_datagrams_never_crash_or_poison(datagrams: list[bytes]) -> None:
    node = busy_node(DhtConfig(rate_limit_per_ip=0.0))
    now = 0.5
    for data in datagrams:
        node.receive_datagram(data, ATTACKER, now)
        for reply, _ in node.datagrams_to_send():
            decode(reply, DATAGRAM_LIMITS)  # whatever we send is valid bencode
        now += 0.01
    node.handle_timer(now + 100)
    # only the attacker (answering our ping from the address we pinged) may have been added
    check_table(node, {node_id for node_id, _ in KNOWN} | _attacker_ids(node))


def _attacker_ids(node: DhtNode) -> set[bytes]:
    return {entry.node_id for entry in node.routing_table.all_nodes() if entry.addr == ATTACKER}


@settings(max_examples=100)
@given(st.lists(st.tuples(st.integers(0, 0xFFFF), ids, st.binary(max_size=26 * 10)), max_size=40))
def test_guessed_transaction_ids_from_strangers_change_nothing(
    replies: list[tuple[int, bytes, bytes]],
) -> None:
    node = busy_node(DhtConfig(rate_limit_per_ip=0.0))
    for tid, sender, nodes in replies:
        reply = encode(
            {b"t": tid.to_bytes(2, "big"), b"y": b"r", b"r": {b"id": sender, b"nodes": nodes}}
        )
        node.receive_datagram(reply, ("192.0.2.1", 53), 0.5)
        node.datagrams_to_send()
    assert {entry.node_id for entry in node.routing_table.all_nodes()} == {i for i, _ in KNOWN}


@settings(max_examples=40)
@given(st.data())
def test_hostile_answers_to_real_queries_never_crash_or_poison(data: st.DataObject) -> None:
    node, queries = busy_node_and_queries(DhtConfig(rate_limit_per_ip=0.0))
    known = dict((addr, node_id) for node_id, addr in KNOWN)
    for query, addr in queries:
        tid = decode(query)[b"t"]  # type: ignore[index, call-overload]
        values: dict[bytes, BValue] = {b"id": known.get(addr, b"\x99" * 20)}
        for key in data.draw(st.lists(st.sampled_from(RESPONSE_KEYS), max_size=5)):
            values[key] = data.draw(st.one_of(small_values, st.binary(max_size=26 * 12)))
        node.receive_datagram(encode({b"t": tid, b"y": b"r", b"r": values}), addr, 0.5)
        node.datagrams_to_send()
    node.handle_timer(50.0)
    while node.next_event() is not None:
        pass
    check_table(node, set(known.values()) | {b"\x99" * 20})


@settings(max_examples=50)
@given(st.integers(60, 400), st.floats(0.0, 1.0))
def test_a_flood_from_one_ip_gets_blocked(count: int, spread: float) -> None:
    config = DhtConfig(rate_limit_per_ip=20.0, rate_burst=40.0)
    node = DhtNode(OWN, config=config, rng=random.Random(1), now=0.0)
    query = encode({b"t": b"aa", b"y": b"q", b"q": b"ping", b"a": {b"id": b"\x01" * 20}})
    answered = 0
    for i in range(count):
        node.receive_datagram(query, ATTACKER, 1.0 + spread * i / count)
        answered += sum(1 for data, _ in node.datagrams_to_send() if b"1:y1:r" in data)
    assert answered <= 40 + 20 * spread + 1
    assert node.statistics()["blocked_ips"] == 1


@settings(max_examples=150)
@given(st.binary(max_size=200) | mutated())
def test_datagram_decoder_agrees_with_the_codec(data: bytes) -> None:
    try:
        expected = decode(data, DATAGRAM_LIMITS)
    except BencodeError:
        try:
            decode_datagram(data)
        except KrpcDecodeError:
            return
        raise AssertionError("fast decoder accepted what the codec refuses") from None
    assert decode_datagram(data) == expected


@given(st.lists(st.tuples(ids, st.integers(0, 2**32 - 1), st.integers(0, 65535)), max_size=10))
def test_compact_nodes_round_trip(nodes: list[tuple[bytes, int, int]]) -> None:
    entries = [
        (node_id, (".".join(str(b) for b in ip.to_bytes(4, "big")), port))
        for node_id, ip, port in nodes
    ]
    assert decode_nodes(encode_nodes(entries)) == entries
