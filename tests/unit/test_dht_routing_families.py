"""BEP 32: IPv4 and IPv6 contacts live in separate routing tables."""

from __future__ import annotations

import random

from servent.codec.bencode import decode, encode
from servent.proto.dht import DhtConfig, DhtNode
from servent.proto.dht.routing_families import FamilyRoutingTables

OWN = bytes(20)
SMALL = DhtConfig(k=2, restrict_ips=False)


def _far(n: int) -> bytes:
    """IDs in the half of the space away from OWN (a bucket that cannot split)."""
    return bytes([0x80 + n]) + bytes(19)


V4 = [(_far(i), (f"10.0.0.{i + 1}", 6881)) for i in range(3)]
V6 = [(_far(3 + i), (f"2001:db8::{i + 1}", 6881)) for i in range(3)]


def test_ipv4_and_ipv6_contacts_do_not_compete_for_bucket_slots() -> None:
    tables = FamilyRoutingTables(OWN, SMALL, 0.0)
    assert tables.import_nodes(V4 + V6, 0.0) == 4  # k=2 of each family, not 2 in all
    assert tables.v6 is not None
    assert len(tables.v4) == 2 and len(tables.v6) == 2 and len(tables) == 4
    target = _far(0)
    assert all(":" in e.addr[0] for e in tables.closest(target, 8, ipv6=True))
    assert all(":" not in e.addr[0] for e in tables.closest(target, 8, ipv6=False))
    merged = tables.closest(target, 3)
    assert [e.node_id for e in merged] == sorted(
        (e.node_id for e in tables.all_nodes()),
        key=lambda node_id: int.from_bytes(node_id, "big") ^ int.from_bytes(target, "big"),
    )[:3]


def test_an_ipv4_only_node_never_builds_an_ipv6_table() -> None:
    tables = FamilyRoutingTables(OWN, SMALL, 0.0)
    tables.import_nodes(V4, 0.0)
    assert tables.v6 is None and tables.tables() == [tables.v4]
    assert tables.closest(_far(0), 8, ipv6=True) == []
    assert tables.find(_far(0), "2001:db8::9") is None
    tables.failed(_far(0), ("2001:db8::9", 1))  # nothing to fail, nothing created
    assert tables.v6 is None


def test_the_same_node_id_on_both_families_is_two_contacts() -> None:
    tables = FamilyRoutingTables(OWN, DhtConfig(restrict_ips=False, max_failures=1), 0.0)
    both = _far(7)
    tables.heard_from(both, ("10.0.0.7", 1), 1.0, responded=True, verified=True)
    tables.heard_from(both, ("2001:db8::7", 1), 1.0, responded=True, verified=True)
    tables.failed(both, ("2001:db8::7", 1))
    v4_entry = tables.find(both, "10.0.0.7")
    v6_entry = tables.find(both, "2001:db8::7")
    assert v4_entry is not None and v4_entry.failures == 0
    assert v6_entry is None or v6_entry.failures == 1


def test_saved_contacts_interleave_the_families() -> None:
    tables = FamilyRoutingTables(OWN, DhtConfig(restrict_ips=False), 0.0)
    tables.import_nodes(V4 + V6, 0.0)
    exported = tables.export_nodes()
    assert [":" in addr[0] for _, addr in exported[:4]] == [False, True, False, True]
    again = FamilyRoutingTables(OWN, DhtConfig(restrict_ips=False), 0.0)
    assert again.import_nodes(exported, 0.0) == 6


def test_node_answers_each_family_from_its_own_table() -> None:
    node = DhtNode(OWN, config=SMALL, rng=random.Random(1), now=0.0)
    node.routing_table.import_nodes(V4 + V6, 0.0)
    query = {b"t": b"aa", b"y": b"q", b"q": b"find_node"}
    args = {b"id": b"\x55" * 20, b"target": _far(0), b"want": [b"n4", b"n6"]}
    node.receive_datagram(encode({**query, b"a": args}), ("10.9.9.9", 1), 1.0)
    replies = [decode(data) for data, _ in node.datagrams_to_send()]
    (answer,) = [r for r in replies if r[b"y"] == b"r"]  # type: ignore[index, call-overload]
    assert len(answer[b"r"][b"nodes"]) == 2 * 26  # type: ignore[index, call-overload]
    assert len(answer[b"r"][b"nodes6"]) == 2 * 38  # type: ignore[index, call-overload]


def _query_of(data: bytes) -> dict[bytes, object]:
    message = decode(data)
    assert isinstance(message, dict)
    return message  # type: ignore[return-value]


def _lookup_with_one_contact(dual_stack: bool) -> tuple[DhtNode, bytes, tuple[str, int]]:
    node = DhtNode(OWN, config=DhtConfig(restrict_ips=False), rng=random.Random(3), now=0.0)
    node.dual_stack = dual_stack
    node.routing_table.import_nodes([V4[0]], 0.0)
    node.find_node(_far(9), 0.0)
    ((query, addr),) = node.datagrams_to_send()
    return node, query, addr


def test_a_dual_stack_node_asks_for_and_follows_both_families() -> None:
    from servent.codec.compact import encode_nodes

    node, query, addr = _lookup_with_one_contact(dual_stack=True)
    args = _query_of(query)[b"a"]
    assert isinstance(args, dict) and args[b"want"] == [b"n4", b"n6"]
    reply = {
        b"t": _query_of(query)[b"t"],
        b"y": b"r",
        b"r": {b"id": V4[0][0], b"nodes": encode_nodes(V4[1:2]), b"nodes6": encode_nodes(V6[:2])},
    }
    node.receive_datagram(encode(reply), addr, 0.1)
    asked = {dest for _, dest in node.datagrams_to_send()}
    assert V6[0][1] in asked and V6[1][1] in asked and V4[1][1] in asked


def test_a_single_stack_node_ignores_the_other_family() -> None:
    from servent.codec.compact import encode_nodes

    node, query, addr = _lookup_with_one_contact(dual_stack=False)
    args = _query_of(query)[b"a"]
    assert isinstance(args, dict) and b"want" not in args
    reply = {
        b"t": _query_of(query)[b"t"],
        b"y": b"r",
        b"r": {b"id": V4[0][0], b"nodes": encode_nodes(V4[1:2]), b"nodes6": encode_nodes(V6[:2])},
    }
    node.receive_datagram(encode(reply), addr, 0.1)
    asked = {dest for _, dest in node.datagrams_to_send()}
    assert asked == {V4[1][1]}
