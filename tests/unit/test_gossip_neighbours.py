"""The neighbour book: whom to dial, whom to drop, what to tell in a peer exchange."""

from __future__ import annotations

import random

from servent.proto.gossip.neighbours import Dial, Drop, NeighbourBook, NeighbourConfig

NOW = 1000.0


def book(**config: int | float) -> NeighbourBook:
    return NeighbourBook(own_key="me", rng=random.Random(5), config=NeighbourConfig(**config))


def dials(decisions: list[Dial | Drop]) -> list[Dial]:
    return [d for d in decisions if isinstance(d, Dial)]


def test_a_node_with_no_neighbours_dials_up_to_the_degree_then_stops() -> None:
    node = book(degree=6, degree_low=4, max_dialing=10)
    node.learn_many(((("10.0.0.1", port), None) for port in range(1, 21)), NOW)
    first = dials(node.tick(NOW))
    assert len(first) == 6
    assert dials(node.tick(NOW)) == []  # six dials under way: nothing more
    for number, dial in enumerate(first):
        node.dial_finished(dial.address, NOW, key=f"k{number}")
        node.opened(f"k{number}", NOW, outbound=True, address=dial.address)
    assert len(node.neighbours) == 6
    assert node.tick(NOW + 2) == []


def test_dials_start_again_below_degree_low_and_skip_nodes_just_closed() -> None:
    node = book(degree=4, degree_low=3, max_dialing=10, rest_after_close=30.0)
    for number in range(4):
        node.learn(("10.0.0.2", number + 1), NOW, key=f"k{number}")
        node.opened(f"k{number}", NOW, outbound=True, address=("10.0.0.2", number + 1))
    node.learn(("10.0.0.3", 1), NOW, key="spare")
    node.closed("k0", NOW)
    assert node.tick(NOW) == []  # three left: still at degree_low
    node.closed("k1", NOW)
    assert [d.key for d in dials(node.tick(NOW))] == ["spare"]  # k0 and k1 rest for 30 s
    node.dial_finished(("10.0.0.3", 1), NOW, key=None)
    later = {d.key for d in dials(node.tick(NOW + 31))}
    assert later == {"k0", "k1"}  # "spare" failed and waits; the rested ones are back


def test_an_address_that_keeps_failing_is_forgotten() -> None:
    node = book(retry_after=10.0, max_failures=3)
    address = ("10.0.0.4", 7)
    node.learn(address, NOW)
    now = NOW
    for attempt in range(3):
        assert [d.address for d in dials(node.tick(now))] == [address], attempt
        node.dial_finished(address, now, key=None)
        assert dials(node.tick(now)) == []  # backing off
        now += 10.0 * 2**attempt
    assert node.statistics()["known"] == 0


def test_over_degree_high_inbound_unprotected_neighbours_are_dropped_first() -> None:
    node = book(degree=6, degree_high=12)
    for number in range(10):
        node.opened(f"in{number}", NOW, outbound=False)
    for number in range(5):
        node.opened(f"out{number}", NOW, outbound=True)
    protected = frozenset({"in0", "in1"})
    drops = node.tick(NOW, protected)
    assert all(isinstance(d, Drop) for d in drops)
    dropped = {d.key for d in drops if isinstance(d, Drop)}
    assert len(dropped) == 15 - 6
    assert dropped == {f"in{n}" for n in range(2, 10)} | (dropped & {f"out{n}" for n in range(5)})
    assert len(dropped & {f"out{n}" for n in range(5)}) == 1
    assert not dropped & protected


def test_peer_exchange_names_neighbours_with_their_listening_address_first() -> None:
    node = book(exchange_size=3)
    node.opened("a", NOW, outbound=False)  # inbound: address unknown until it tells
    node.listening("a", ("10.0.0.5", 6881), NOW)
    node.opened("b", NOW, outbound=True, address=("10.0.0.6", 6881))
    node.opened("c", NOW, outbound=False)  # never said where it listens
    node.learn(("10.0.0.7", 1), NOW, key="d")
    node.learn(("10.0.0.8", 1), NOW)  # no key: not passed on
    offered = node.exchange("b")
    assert offered[0] == ("a", ("10.0.0.5", 6881))
    assert ("d", ("10.0.0.7", 1)) in offered and len(offered) == 2


def test_own_address_and_key_are_never_candidates() -> None:
    node = book()
    node.own_addresses.add(("10.0.0.9", 1))
    node.learn(("10.0.0.9", 1), NOW)
    node.learn(("10.0.0.9", 2), NOW, key="me")
    assert node.statistics()["known"] == 0


def test_the_candidate_list_is_bounded_oldest_first() -> None:
    node = book(max_known=5)
    for port in range(1, 11):
        node.learn(("10.0.1.1", port), NOW)
    assert node.statistics()["known"] == 5
    assert {d.address[1] for d in dials(node.tick(NOW))} <= set(range(6, 11))  # type: ignore[index]


def test_a_channel_with_too_few_neighbours_keeping_it_gets_a_dial_of_its_own() -> None:
    node = book(degree_low=2, channel_low=2)
    for number in range(3):
        node.opened(f"k{number}", NOW, outbound=True)
    node.learn(("10.0.2.1", 1), NOW)
    node.learn(("10.0.2.2", 1), NOW, channel=b"club")
    assert node.tick(NOW) == []  # enough neighbours for the whole network
    chosen = dials(node.tick(NOW, lacking=[b"club"]))
    assert [d.address for d in chosen] == [("10.0.2.2", 1)]


def test_the_rendezvous_is_looked_in_often_while_short_and_rarely_after() -> None:
    node = book(degree_low=2, rendezvous_when_short=30.0, rendezvous_every=900.0)
    assert node.wants_rendezvous(NOW)
    node.rendezvous_done(NOW)
    assert not node.wants_rendezvous(NOW + 29) and node.wants_rendezvous(NOW + 30)
    node.opened("a", NOW, outbound=True)
    node.opened("b", NOW, outbound=True)
    node.rendezvous_done(NOW + 30)
    assert not node.wants_rendezvous(NOW + 900) and node.wants_rendezvous(NOW + 930)
    node.rendezvous_soon()
    assert node.wants_rendezvous(NOW + 31)
