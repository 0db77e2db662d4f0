"""BEP 42 external IP: voting on the ``ip`` key of answers, then a new node ID.

Public-looking addresses appear only as data (the node is sans-IO, nothing is
sent); documentation ranges count as private in Python, hence exempt.
"""

from __future__ import annotations

import random

import pytest

from servent.codec.bencode import BValue, decode, encode
from servent.codec.compact import encode_peer
from servent.proto.dht import DhtConfig, DhtNode, ExternalAddressChanged, NodeIdChanged
from servent.proto.dht.external_ip import ExternalIpVoter
from servent.proto.dht.node_id import generate_secure_id, is_secure_id

OWN = b"\x11" * 20
NEW_IP = "8.8.4.4"


def _voters(count: int, first: int = 1) -> list[tuple[str, int]]:
    return [(f"9.9.{i}.1", 6881) for i in range(first, first + count)]


def test_three_distinct_voters_decide_the_first_address() -> None:
    voter = ExternalIpVoter()
    results = [voter.vote(addr, NEW_IP) for addr in _voters(3)]
    assert results == [None, None, NEW_IP]
    assert voter.current == NEW_IP
    assert voter.vote(_voters(1, 9)[0], NEW_IP) is None  # no change, no news


def test_one_voter_repeating_itself_cannot_decide() -> None:
    voter = ExternalIpVoter()
    liar = ("6.6.6.6", 1)
    assert [voter.vote(liar, "1.2.3.4") for _ in range(50)] == [None] * 50
    assert voter.votes_for("1.2.3.4") == 1 and len(voter) == 1


def test_a_minority_of_liars_does_not_move_an_established_address() -> None:
    voter = ExternalIpVoter(window=16)
    for addr in _voters(10):
        voter.vote(addr, NEW_IP)
    liars = [(f"6.6.{i}.6", 1) for i in range(5)]
    assert all(voter.vote(addr, "1.2.3.4") is None for addr in liars)
    assert voter.current == NEW_IP


def test_a_real_change_wins_once_it_outnumbers_the_old_reports() -> None:
    voter = ExternalIpVoter(window=8)
    for addr in _voters(8):
        voter.vote(addr, NEW_IP)
    moved = [voter.vote(addr, "1.2.3.4") for addr in _voters(8, first=100)]
    assert "1.2.3.4" in moved and voter.current == "1.2.3.4"
    assert len(voter) == 8  # bounded: the oldest voters fell out


def test_loopback_networks_count_each_port_as_a_voter() -> None:
    voter = ExternalIpVoter(per_port=True)
    results = [voter.vote(("127.0.0.1", port), NEW_IP) for port in (1001, 1002, 1003)]
    assert results[-1] == NEW_IP
    with pytest.raises(ValueError):
        ExternalIpVoter(window=2, min_votes=3)


def _answer_ping(node: DhtNode, addr: tuple[str, int], sender: bytes, seen_as: str) -> None:
    node.ping(addr, 1.0)
    pings = [
        decode(data)
        for data, dest in node.datagrams_to_send()
        if dest == addr and decode(data)[b"q"] == b"ping"  # type: ignore[index, call-overload]
    ]
    tid = pings[-1][b"t"]  # type: ignore[index, call-overload]
    reply: dict[bytes, BValue] = {
        b"t": tid,
        b"y": b"r",
        b"r": {b"id": sender},
        b"ip": encode_peer((seen_as, 6881)),
    }
    node.receive_datagram(encode(reply), addr, 1.1)


def _events(node: DhtNode) -> list[object]:
    out: list[object] = []
    while (event := node.next_event()) is not None:
        out.append(event)
    return out


def _node(config: DhtConfig | None = None) -> DhtNode:
    return DhtNode(OWN, config=config or DhtConfig(), rng=random.Random(5), now=0.0)


def test_agreeing_answers_give_the_node_a_bep42_id_and_keep_its_contacts() -> None:
    node = _node()
    voters = _voters(3)
    for i, addr in enumerate(voters):
        _answer_ping(node, addr, bytes([0x40 + i]) * 20, NEW_IP)
    events = _events(node)
    assert ExternalAddressChanged(NEW_IP) in events
    changed = [e for e in events if isinstance(e, NodeIdChanged)]
    assert len(changed) == 1 and changed[0].old_id == OWN and changed[0].ip == NEW_IP
    assert node.node_id == changed[0].new_id != OWN
    assert is_secure_id(node.node_id, NEW_IP)
    assert node.routing_table.own_id == node.node_id
    assert {nid for nid, _ in node.routing_table.export_nodes()} == {
        bytes([0x40 + i]) * 20 for i in range(3)
    }
    # The new neighbourhood is looked up at once, under the new ID.
    sent = node.datagrams_to_send()
    queries = [decode(data) for data, _ in sent]
    assert any(
        q[b"q"] == b"find_node" and q[b"a"][b"target"] == node.node_id  # type: ignore[index, call-overload]
        for q in queries
    )
    assert all(q[b"a"][b"id"] == node.node_id for q in queries)  # type: ignore[index, call-overload]
    # And it answers queries with the new ID.
    ping = encode({b"t": b"zz", b"y": b"q", b"q": b"ping", b"a": {b"id": b"\x77" * 20}})
    node.receive_datagram(ping, ("9.9.200.1", 1), 2.0)
    replies = [decode(data) for data, _ in node.datagrams_to_send()]
    (answer,) = [r for r in replies if r[b"y"] == b"r"]  # type: ignore[index, call-overload]
    assert answer[b"r"][b"id"] == node.node_id  # type: ignore[index, call-overload]
    assert node.statistics()["id_changes"] == 1


def test_an_id_that_already_fits_the_address_is_kept() -> None:
    secure = generate_secure_id(NEW_IP, random.Random(9))
    node = DhtNode(secure, config=DhtConfig(), rng=random.Random(5), now=0.0)
    for i, addr in enumerate(_voters(3)):
        _answer_ping(node, addr, bytes([0x40 + i]) * 20, NEW_IP)
    assert node.external_ip == NEW_IP and node.node_id == secure
    assert not any(isinstance(e, NodeIdChanged) for e in _events(node))


@pytest.mark.parametrize(
    ("config", "seen_as"),
    [(DhtConfig(regenerate_id=False), NEW_IP), (DhtConfig(), "192.168.1.20")],
    ids=["regeneration-off", "private-address-is-exempt"],
)
def test_no_new_id_when_turned_off_or_for_an_exempt_address(
    config: DhtConfig, seen_as: str
) -> None:
    node = _node(config)
    for i, addr in enumerate(_voters(3)):
        _answer_ping(node, addr, bytes([0x40 + i]) * 20, seen_as)
    assert node.external_ip == seen_as and node.node_id == OWN


def test_one_responder_repeating_a_lie_changes_nothing() -> None:
    node = _node()
    liar = ("6.6.6.6", 6881)
    for _ in range(10):
        _answer_ping(node, liar, b"\x66" * 20, NEW_IP)
    assert node.external_ip is None and node.node_id == OWN


def test_a_dual_stack_node_keeps_one_id_for_its_ipv4_address() -> None:
    # Regression: IPv4 and IPv6 reports voted against each other, so a dual-stack
    # node's ID would have been regenerated back and forth.
    node = _node()
    v6_voters = [(f"2001:db8:{i}::1", 6881) for i in range(1, 6)]
    for i, addr in enumerate(v6_voters[:3]):
        _answer_ping(node, addr, bytes([0x50 + i]) * 20, "2600::5")
    assert node.external_ip6 == "2600::5" and node.external_ip is None
    assert is_secure_id(node.node_id, "2600::5")  # the only address known: it decides
    for i, addr in enumerate(_voters(3)):
        _answer_ping(node, addr, bytes([0x40 + i]) * 20, NEW_IP)
    assert node.external_ip == NEW_IP and is_secure_id(node.node_id, NEW_IP)
    v4_id = node.node_id
    for i, addr in enumerate(v6_voters):
        _answer_ping(node, addr, bytes([0x60 + i]) * 20, "2600::5")
    for i, addr in enumerate(_voters(3, first=50)):
        _answer_ping(node, addr, bytes([0x70 + i]) * 20, NEW_IP)
    assert node.node_id == v4_id
    assert node.statistics()["id_changes"] == 2  # once for IPv6, once for IPv4, no more
    assert node.external_ip6 == "2600::5"
