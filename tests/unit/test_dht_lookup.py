"""The iterative lookup state machine: alpha in flight, no rounds, convergence, slow nodes."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from servent.codec.bencode import decode, encode
from servent.codec.compact import encode_nodes
from servent.proto.dht import DhtConfig, DhtNode, NodesFound
from servent.proto.dht.lookup import FAILED, FIND_NODE, IN_FLIGHT, RESPONDED, Lookup
from servent.proto.dht.node_id import random_id

TARGET = bytes(20)
OPEN = DhtConfig(restrict_ips=False)
#: No maintenance round (verification pings, self-refresh) during these short lookups.
QUIET = DhtConfig(restrict_ips=False, first_maintenance=60.0)


def _lookup(alpha: int = 3, k: int = 8) -> Lookup:
    return Lookup(1, FIND_NODE, TARGET, b"\xff" * 20, alpha=alpha, k=k, max_candidates=16)


def _node(distance: int) -> tuple[bytes, tuple[str, int]]:
    return distance.to_bytes(20, "big"), ("10.0.0.1", 1000 + distance)


def test_keeps_alpha_in_flight_without_rounds() -> None:
    lookup = _lookup(alpha=3)
    lookup.add(_node(d) for d in range(10, 30))
    first = lookup.next_to_query()
    assert [c.key for c in first] == [10, 11, 12]
    assert lookup.next_to_query() == []  # alpha reached
    lookup.answered(first[1])  # one answer frees exactly one slot
    again = lookup.next_to_query()
    assert [c.key for c in again] == [13]


def test_slow_request_stops_counting_against_alpha() -> None:
    lookup = _lookup(alpha=2)
    lookup.add(_node(d) for d in range(10, 20))
    first = lookup.next_to_query()
    lookup.mark_slow(first[0])
    assert [c.key for c in lookup.next_to_query()] == [12]
    lookup.answered(first[0])  # a late answer still counts
    assert first[0].state == RESPONDED and lookup.in_flight == 2


def test_closer_nodes_from_answers_are_asked_first() -> None:
    lookup = _lookup(alpha=1)
    lookup.add([_node(100)])
    (far,) = lookup.next_to_query()
    lookup.answered(far)
    lookup.add([_node(5), _node(50)])
    assert [c.key for c in lookup.next_to_query()] == [5]


def test_finishes_when_the_k_closest_answered_or_failed() -> None:
    lookup = _lookup(alpha=8, k=3)
    lookup.add(_node(d) for d in range(1, 7))
    asked = lookup.next_to_query()
    assert not lookup.is_finished()
    lookup.failed(asked[0])
    for candidate in asked[1:4]:
        lookup.answered(candidate)
    assert lookup.is_finished()  # 2, 3, 4 answered; 1 failed; farther ones do not matter
    assert [c.key for c in lookup.closest_responded(3)] == [2, 3, 4]
    assert asked[0].state == FAILED and asked[4].state == IN_FLIGHT


def test_candidates_are_bounded_and_unique() -> None:
    lookup = _lookup()
    lookup.add(_node(d) for d in range(100))
    lookup.add(_node(d) for d in range(100))
    lookup.add([(b"\x01" * 20, ("10.0.0.1", 1005))])  # same address as a known candidate
    assert len(lookup.candidates) == 16
    assert [c.key for c in lookup.candidates] == list(range(16))
    lookup.add([(b"\xff" * 20, ("9.9.9.9", 1))])  # our own ID is never a candidate
    assert all(c.node_id != b"\xff" * 20 for c in lookup.candidates)


def test_unanswered_lookup_times_out_and_still_reports() -> None:
    node = DhtNode(random_id(random.Random(1)), config=OPEN, rng=random.Random(2), now=0.0)
    node.routing_table.import_nodes([_node(d) for d in (1, 2)], 0.0)
    lookup_id = node.find_node(TARGET, 0.0)
    assert len(node.datagrams_to_send()) == 2
    deadline = 0.0
    for _ in range(10):
        at = node.next_timer()
        assert at is not None
        deadline = at
        node.handle_timer(at)
        if (event := node.next_event()) is not None:
            break
    assert isinstance(event, NodesFound) and event.lookup_id == lookup_id and event.nodes == ()
    assert deadline <= 2.0 + 1e-9


def _lookup_queries(node: DhtNode) -> list[tuple[bytes, tuple[str, int]]]:
    """The lookup queries among what the node sends (maintenance pings aside)."""
    return [
        (data, addr)
        for data, addr in node.datagrams_to_send()
        if decode(data).get(b"q") == b"find_node"  # type: ignore[union-attr]
    ]


def test_late_node_lets_the_lookup_ask_another_before_its_soft_timeout() -> None:
    node = DhtNode(
        b"\xff" * 20, config=DhtConfig(alpha=1, restrict_ips=False), rng=random.Random(2), now=0.0
    )
    node.routing_table.import_nodes([_node(d) for d in (1, 2, 3)], 0.0)
    node.find_node(TARGET, 0.0)
    assert len(_lookup_queries(node)) == 1
    # No round trip measured yet: late at slow_after / 2, and the next node is asked;
    # the late one is the closest the lookup has, so it is asked again at once.
    assert node.next_timer() == 0.5
    node.handle_timer(0.5)
    sent = _lookup_queries(node)
    assert sorted(addr for _, addr in sent) == [("10.0.0.1", 1001), ("10.0.0.1", 1002)]


def _reply(query: bytes, node_id: bytes, nodes: bytes = b"") -> bytes:
    tid = decode(query)[b"t"]  # type: ignore[index, call-overload]
    return encode({b"t": tid, b"y": b"r", b"r": {b"id": node_id, b"nodes": nodes}})


def test_late_close_node_is_asked_again_and_its_late_first_answer_is_ignored() -> None:
    node = DhtNode(b"\xff" * 20, config=replace(QUIET, alpha=1, k=2),
                   rng=random.Random(2), now=0.0)  # fmt: skip
    node.routing_table.import_nodes([_node(1)], 0.0)
    lookup_id = node.find_node(TARGET, 0.0)
    ((first, addr),) = _lookup_queries(node)
    node.handle_timer(0.5)
    ((retry, retry_addr),) = _lookup_queries(node)
    assert retry_addr == addr and retry != first  # a new transaction to the same node
    node.receive_datagram(_reply(retry, _node(1)[0]), addr, 0.6)
    event = node.next_event()
    assert isinstance(event, NodesFound) and event.lookup_id == lookup_id
    assert [node_id for node_id, _ in event.nodes] == [_node(1)[0]]
    node.receive_datagram(_reply(first, _node(1)[0]), addr, 0.7)  # the lost-looking answer
    assert node.next_event() is None and _lookup_queries(node) == []
    assert node.statistics()["lookup_retries"] == 1


def test_close_node_fails_only_after_every_attempt_and_by_the_first_deadline() -> None:
    node = DhtNode(b"\xff" * 20, config=replace(QUIET, alpha=1, k=2),
                   rng=random.Random(2), now=0.0)  # fmt: skip
    node.routing_table.import_nodes([_node(1)], 0.0)
    lookup_id = node.find_node(TARGET, 0.0)
    sent_to = [addr for _, addr in _lookup_queries(node)]
    event = None
    while event is None:
        at = node.next_timer()
        assert at is not None and at <= 2.0 + 1e-9  # retries never push the deadline out
        node.handle_timer(at)
        sent_to += [addr for _, addr in _lookup_queries(node)]
        event = node.next_event()
    assert isinstance(event, NodesFound) and event.lookup_id == lookup_id and event.nodes == ()
    assert sent_to == [_node(1)[1]] * 3  # the first query and two retries
    entry = node.routing_table.find(_node(1)[0])
    assert entry is None or entry.failures >= 1


def _warmed_up(config: DhtConfig, round_trip: float) -> DhtNode:
    """A node whose round-trip estimate has seen a few answers ``round_trip`` late."""
    node = DhtNode(b"\xff" * 20, config=config, rng=random.Random(2), now=0.0)
    for _ in range(8):
        node.round_trips.observe(round_trip)
    return node


def test_vanished_node_is_given_up_after_measured_round_trips_not_seconds() -> None:
    # Regression: a lookup waited the fixed 1 s / 2 s timeouts on every vanished node.
    node = _warmed_up(DhtConfig(alpha=1, k=2, restrict_ips=False, first_maintenance=60.0), 0.05)
    assert node.soft_timeout() == DhtConfig().min_slow_after  # 50 ms answers: the floor
    start = 0.2
    node.routing_table.import_nodes([_node(1)], start)
    lookup_id = node.find_node(TARGET, start)
    sent = len(_lookup_queries(node))
    event = None
    while event is None:
        at = node.next_timer()
        assert at is not None
        node.handle_timer(at)
        sent += len(_lookup_queries(node))
        event = node.next_event()
    assert isinstance(event, NodesFound) and event.lookup_id == lookup_id
    assert node.routing_table is not None and sent == 3
    assert at - start < 0.5  # three attempts, given up within half a second


def test_lookup_does_not_wait_for_a_slow_node_once_a_closer_one_answered() -> None:
    node = _warmed_up(replace(QUIET, alpha=2, k=2), 0.05)
    node.routing_table.import_nodes([_node(1), _node(2)], 1.0)
    lookup_id = node.find_node(TARGET, 1.0)
    queries = dict((addr, data) for data, addr in _lookup_queries(node))
    node.receive_datagram(_reply(queries[_node(1)[1]], _node(1)[0]), _node(1)[1], 1.05)
    assert node.next_event() is None  # node 2 is still within its round trip
    at = node.next_timer()
    assert at is not None and at < 1.2  # late: past SRTT + RTTVAR
    node.handle_timer(at)
    event = node.next_event()
    assert isinstance(event, NodesFound) and event.lookup_id == lookup_id
    assert [node_id for node_id, _ in event.nodes] == [_node(1)[0]]
    assert node.statistics().get("lookup_retries", 0) == 0  # node 1 answered: no retry


def test_given_up_node_that_answers_while_the_lookup_runs_is_taken_back() -> None:
    node = _warmed_up(replace(QUIET, alpha=1, k=2, lookup_attempts=1), 0.05)
    node.routing_table.import_nodes([_node(5), _node(1000)], 1.0)
    node.find_node(TARGET, 1.0)
    ((first, addr),) = _lookup_queries(node)
    assert addr == _node(5)[1]
    while node.statistics().get("lookup_give_ups", 0) == 0:
        at = node.next_timer()
        assert at is not None and at < 3.0
        node.handle_timer(at)
    (_, other), *_ = _lookup_queries(node) or [(b"", None)]
    assert other == _node(1000)[1]  # the lookup moved on
    node.receive_datagram(_reply(first, _node(5)[0], encode_nodes([_node(3)])), addr, at + 0.1)
    assert node.statistics()["lookup_late_answers"] == 1
    assert [a for _, a in _lookup_queries(node)] == [_node(3)[1]]  # its nodes are followed


def test_only_candidates_among_the_k_closest_are_retried() -> None:
    lookup = _lookup(alpha=4, k=2)
    lookup.add(_node(d) for d in range(1, 5))
    asked = lookup.next_to_query()
    for candidate in asked:
        lookup.mark_slow(candidate)
    assert [lookup.wants_retry(c) for c in asked] == [True, True, False, False]
    lookup.answered(asked[1])
    assert not lookup.wants_retry(asked[1])  # answered: nothing to retry
    lookup.failed(asked[0])  # the closest failed: the third moves into the k closest
    assert lookup.wants_retry(asked[2]) and not lookup.wants_retry(asked[3])
    lookup.retrying(asked[2])
    lookup.failed(asked[2])  # one of two queries timed out: not failed yet
    assert asked[2].state == IN_FLIGHT
    lookup.failed(asked[2])
    assert asked[2].state == FAILED


def test_loss_tolerance_can_be_turned_off() -> None:
    node = DhtNode(b"\xff" * 20, config=replace(QUIET, alpha=1, lookup_attempts=1),
                   rng=random.Random(2), now=0.0)  # fmt: skip
    node.routing_table.import_nodes([_node(1)], 0.0)
    node.find_node(TARGET, 0.0)
    node.datagrams_to_send()
    node.handle_timer(1.0)
    assert _lookup_queries(node) == []


def test_bucket_refresh_runs_after_fifteen_minutes() -> None:
    rng = random.Random(3)
    node = DhtNode(random_id(rng), config=DhtConfig(restrict_ips=False), rng=rng, now=0.0)
    contacts = [(random_id(rng), ("10.0.0.1", 2000 + i)) for i in range(20)]
    node.routing_table.import_nodes(contacts, 0.0)
    node.handle_timer(10.0)
    before = [decode(d)[b"q"] for d, _ in node.datagrams_to_send()]  # type: ignore[index, call-overload]
    assert b"find_node" not in before
    node.handle_timer(15 * 60.0 + 11.0)
    after = [decode(d)[b"q"] for d, _ in node.datagrams_to_send()]  # type: ignore[index, call-overload]
    assert b"find_node" in after


def test_answer_with_nodes_extends_the_lookup() -> None:
    node = DhtNode(
        b"\xff" * 20, config=DhtConfig(alpha=1, restrict_ips=False), rng=random.Random(2), now=0.0
    )
    node.routing_table.import_nodes([_node(1000)], 0.0)
    node.find_node(TARGET, 0.0)
    ((query, addr),) = node.datagrams_to_send()
    tid = decode(query)[b"t"]  # type: ignore[index, call-overload]
    closer = encode_nodes([_node(7)])
    reply = encode({b"t": tid, b"y": b"r", b"r": {b"id": _node(1000)[0], b"nodes": closer}})
    node.receive_datagram(reply, addr, 0.1)
    ((_, next_addr),) = node.datagrams_to_send()
    assert next_addr == ("10.0.0.1", 1007)


def test_one_candidate_per_ip_when_restricted() -> None:
    lookup = Lookup(
        1, FIND_NODE, TARGET, b"\xff" * 20, alpha=3, k=8, max_candidates=16, one_per_ip=True
    )
    lookup.add([(d.to_bytes(20, "big"), ("10.6.6.6", 1000 + d)) for d in range(1, 10)])
    lookup.add([_node(50)])
    assert [c.addr[0] for c in lookup.candidates] == ["10.6.6.6", "10.0.0.1"]


def test_contact_known_to_be_slow_gets_its_own_longer_timeout() -> None:
    node = _warmed_up(replace(QUIET, alpha=1, k=1), 0.05)  # overall: soft timeout 0.2 s
    slow_id, slow_addr = _node(1)
    node.routing_table.heard_from(slow_id, slow_addr, 1.0, responded=True, verified=True, rtt=0.6)
    node.find_node(TARGET, 1.0)
    ((query, addr),) = _lookup_queries(node)
    assert node.next_timer() == pytest.approx(1.0 + 1.25 * 0.6)  # late: 1.25 x its RTT
    node.receive_datagram(_reply(query, slow_id), addr, 1.0 + 0.7)
    event = node.next_event()
    assert isinstance(event, NodesFound) and [n for n, _ in event.nodes] == [slow_id]
    assert node.statistics().get("lookup_retries", 0) == 0
