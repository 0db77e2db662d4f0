"""The routing table: range splits, k, replacement cache, failures, IP rules, BEP 42."""

from __future__ import annotations

import random

import pytest

from servent.proto.dht.config import DhtConfig
from servent.proto.dht.node_id import distance, generate_secure_id, random_id
from servent.proto.dht.routing import RoutingTable, ip_prefix

OWN = b"\x00" * 20
OPEN = DhtConfig(restrict_ips=False)


def _id(first: int, rng: random.Random) -> bytes:
    return bytes([first]) + rng.randbytes(19)


def _addr(i: int) -> tuple[str, int]:
    return (f"{1 + i % 200}.{i // 200 % 250}.{i % 7}.{1 + i % 250}", 1000 + i)


def test_buckets_split_by_range_and_hold_k_each() -> None:
    rng = random.Random(1)
    table = RoutingTable(OWN, OPEN, 0.0)
    for i in range(400):
        table.heard_from(random_id(rng), _addr(i), 1.0, responded=True, verified=True)
    assert len(table.buckets) > 3
    for index, bucket in enumerate(table.buckets):
        assert len(bucket.nodes) <= 8
        for entry in bucket.nodes:
            assert table.bucket_index(int.from_bytes(entry.node_id, "big")) == index
    # the far half of the ID space is a single bucket of 8 however many nodes we meet
    assert len(table.buckets[0].nodes) == 8


def test_only_nodes_that_answered_enter_the_table() -> None:
    table = RoutingTable(OWN, OPEN, 0.0)
    table.heard_from(b"\x80" * 20, ("1.1.1.1", 1), 1.0, responded=False, verified=True)
    assert len(table) == 0
    table.heard_from(b"\x80" * 20, ("1.1.1.1", 1), 1.0, responded=True, verified=True)
    assert len(table) == 1


def test_own_id_never_enters_the_table() -> None:
    table = RoutingTable(OWN, OPEN, 0.0)
    table.heard_from(OWN, ("1.1.1.1", 1), 1.0, responded=True, verified=True)
    assert len(table) == 0


def test_full_bucket_parks_newcomers_and_asks_to_ping_a_stale_node() -> None:
    rng = random.Random(2)
    table = RoutingTable(OWN, OPEN, 0.0)
    for i in range(8):
        table.heard_from(_id(0x80 + i, rng), _addr(i), 0.0, responded=True, verified=True)
    # At time 0 everyone is good: a newcomer is parked, nobody needs a ping.
    assert table.heard_from(_id(0x90, rng), _addr(50), 1.0, responded=True, verified=True) is None
    assert len(table.buckets[0].nodes) == 8 and len(table.buckets[0].replacements) == 1
    # Much later the old nodes are questionable: the stalest is proposed for a ping.
    stale = table.heard_from(_id(0x91, rng), _addr(51), 10_000.0, responded=True, verified=True)
    assert stale is not None and stale in table.buckets[0].nodes


def test_one_timeout_never_evicts_a_node() -> None:
    rng = random.Random(3)
    table = RoutingTable(OWN, OPEN, 0.0)
    ids = [_id(0x80 + i, rng) for i in range(8)]
    for i, node_id in enumerate(ids):
        table.heard_from(node_id, _addr(i), 0.0, responded=True, verified=True)
    table.heard_from(_id(0xA0, rng), _addr(60), 1.0, responded=True, verified=True)
    table.failed(ids[0], _addr(0))
    assert table.find(ids[0]) is not None
    table.failed(ids[0], _addr(0))
    assert table.find(ids[0]) is not None
    table.failed(ids[0], _addr(0))  # third consecutive failure: bad, replaced
    assert table.find(ids[0]) is None
    assert len(table.buckets[0].nodes) == 8


def test_an_answer_resets_failures() -> None:
    table = RoutingTable(OWN, OPEN, 0.0)
    node_id = b"\x80" * 20
    table.heard_from(node_id, ("1.1.1.1", 1), 0.0, responded=True, verified=True)
    table.failed(node_id, ("1.1.1.1", 1))
    table.failed(node_id, ("1.1.1.1", 1))
    table.heard_from(node_id, ("1.1.1.1", 1), 5.0, responded=True, verified=True)
    entry = table.find(node_id)
    assert entry is not None and entry.failures == 0


def test_one_entry_per_ip_and_per_slash24_in_a_bucket() -> None:
    table = RoutingTable(OWN, DhtConfig(), 0.0)
    table.heard_from(b"\x80" * 20, ("9.9.9.9", 1), 0.0, responded=True, verified=True)
    table.heard_from(b"\x81" * 20, ("9.9.9.9", 2), 0.0, responded=True, verified=True)
    table.heard_from(b"\x82" * 20, ("9.9.9.10", 2), 0.0, responded=True, verified=True)
    assert len(table) == 1
    table.heard_from(b"\x83" * 20, ("9.9.10.10", 2), 0.0, responded=True, verified=True)
    assert len(table) == 2


def test_ip_restrictions_can_be_turned_off_for_loopback() -> None:
    table = RoutingTable(OWN, OPEN, 0.0)
    for i in range(5):
        table.heard_from(
            bytes([0x80 + i]) * 20, ("127.0.0.1", 1000 + i), 0.0, responded=True, verified=True
        )
    assert len(table) == 5


def test_ipv6_prefix_is_slash64() -> None:
    assert ip_prefix("2001:db8:1:2::1") == ip_prefix("2001:db8:1:2:ffff::9")
    assert ip_prefix("2001:db8:1:2::1") != ip_prefix("2001:db8:1:3::1")
    assert ip_prefix("1.2.3.4") == ip_prefix("1.2.3.99") != ip_prefix("1.2.4.4")


def test_changed_address_for_a_known_id_is_ignored() -> None:
    table = RoutingTable(OWN, OPEN, 0.0)
    table.heard_from(b"\x80" * 20, ("1.1.1.1", 1), 0.0, responded=True, verified=True)
    table.heard_from(b"\x80" * 20, ("6.6.6.6", 1), 1.0, responded=True, verified=True)
    entry = table.find(b"\x80" * 20)
    assert entry is not None and entry.addr == ("1.1.1.1", 1)


def test_enforced_bep42_refuses_unverified_ids() -> None:
    table = RoutingTable(OWN, DhtConfig(enforce_node_id=True), 0.0)
    table.heard_from(b"\x80" * 20, ("8.8.8.8", 1), 0.0, responded=True, verified=False)
    assert len(table) == 0


def test_verified_newcomer_replaces_unverified_questionable_node() -> None:
    rng = random.Random(5)
    table = RoutingTable(OWN, OPEN, 0.0)
    for i in range(8):
        table.heard_from(_id(0x80 + i, rng), _addr(i), 0.0, responded=True, verified=i != 3)
    unverified = table.buckets[0].nodes[3]
    secure = generate_secure_id("8.8.8.8", rng)
    secure = bytes([secure[0] | 0x80]) + secure[1:]
    table.heard_from(secure, ("8.8.8.8", 1), 5000.0, responded=True, verified=True)
    assert unverified not in table.buckets[0].nodes


def test_closest_matches_brute_force() -> None:
    rng = random.Random(6)
    table = RoutingTable(random_id(rng), OPEN, 0.0)
    for i in range(300):
        table.heard_from(random_id(rng), _addr(i), 1.0, responded=True, verified=True)
    everyone = list(table.all_nodes())
    for _ in range(20):
        target = random_id(rng)
        expected = sorted(everyone, key=lambda e: distance(e.node_id, target))[:8]
        assert table.closest(target, 8) == expected


def test_stale_bucket_is_reported_and_refresh_target_falls_inside_it() -> None:
    rng = random.Random(7)
    table = RoutingTable(random_id(rng), OPEN, 0.0)
    for i in range(200):
        table.heard_from(random_id(rng), _addr(i), 0.0, responded=True, verified=True)
    assert table.stale_bucket(10.0) is None
    assert table.stale_bucket(16 * 60.0) is not None
    for index in range(len(table.buckets)):
        for _ in range(5):
            target = table.random_id_in_bucket(index, rng)
            assert table.bucket_index(int.from_bytes(target, "big")) == index


def test_export_then_import_keeps_every_contact() -> None:
    rng = random.Random(8)
    table = RoutingTable(random_id(rng), DhtConfig(), 0.0)
    for i in range(100):
        table.heard_from(random_id(rng), _addr(i), 0.0, responded=True, verified=True)
    saved = table.export_nodes()
    restored = RoutingTable(table.own_id, DhtConfig(), 0.0)
    assert restored.import_nodes(saved, 1.0) == len(saved) == len(table)


def test_never_answered_contact_gives_way_to_a_replacement_at_its_first_failure() -> None:
    # Regression: imported (saved) contacts that vanished kept their slots for three
    # timeouts while live replacements waited.
    rng = random.Random(9)
    table = RoutingTable(OWN, OPEN, 0.0)
    imported = [(_id(0x80 + i, rng), _addr(i)) for i in range(8)]
    assert table.import_nodes(imported, 0.0) == 8
    newcomer = _id(0xC0, rng)
    table.heard_from(newcomer, _addr(70), 1.0, responded=True, verified=True, rtt=0.1)
    assert table.find(newcomer) is None  # parked: the bucket is full
    table.failed(*imported[2])
    assert table.find(imported[2][0]) is None
    entry = table.find(newcomer)
    assert entry is not None and entry.rtt == 0.1


def test_fastest_replacement_is_promoted() -> None:
    rng = random.Random(10)
    table = RoutingTable(OWN, OPEN, 0.0)
    members = [_id(0x80 + i, rng) for i in range(8)]
    for i, node_id in enumerate(members):
        table.heard_from(node_id, _addr(i), 0.0, responded=True, verified=True)
    slow, fast, unmeasured = _id(0xC1, rng), _id(0xC2, rng), _id(0xC3, rng)
    table.heard_from(slow, _addr(80), 1.0, responded=True, verified=True, rtt=0.9)
    table.heard_from(fast, _addr(81), 1.0, responded=True, verified=True, rtt=0.05)
    table.heard_from(unmeasured, _addr(82), 1.0, responded=True, verified=True)
    for _ in range(3):
        table.failed(members[0], _addr(0))
    assert table.find(fast) is not None
    assert table.find(slow) is None and table.find(unmeasured) is None


def test_answers_refresh_a_contacts_smoothed_round_trip() -> None:
    table = RoutingTable(OWN, OPEN, 0.0)
    table.heard_from(b"\x80" * 20, ("1.1.1.1", 1), 0.0, responded=True, verified=True, rtt=0.2)
    table.heard_from(b"\x80" * 20, ("1.1.1.1", 1), 1.0, responded=True, verified=True, rtt=1.0)
    entry = table.find(b"\x80" * 20)
    assert entry is not None and entry.rtt == pytest.approx(0.3)


def test_closest_puts_failed_contacts_behind_live_ones_when_there_are_enough() -> None:
    rng = random.Random(11)
    table = RoutingTable(random_id(rng), OPEN, 0.0)
    for i in range(300):
        table.heard_from(random_id(rng), _addr(i), 1.0, responded=True, verified=True)
    target = random_id(rng)
    best = table.closest(target, 8)
    table.failed(best[0].node_id, best[0].addr)
    again = table.closest(target, 8)
    assert best[0] not in again and again[:7] == best[1:]
    assert table.closest(target, 500)[0] is best[0]  # not enough others: still listed


def test_questionable_lists_never_answered_contacts_first() -> None:
    rng = random.Random(12)
    table = RoutingTable(OWN, OPEN, 0.0)
    seen = _id(0x90, rng)
    table.heard_from(seen, _addr(1), 0.0, responded=True, verified=True)
    table.import_nodes([(_id(0xA0 + i, rng), _addr(10 + i)) for i in range(3)], 0.0)
    doubtful = table.questionable(16 * 60.0, 10)
    assert len(doubtful) == 4 and doubtful[-1].node_id == seen
    assert table.questionable(1.0, 10) == doubtful[:3]  # the seen one is still good
