"""``sv_nodes`` adverts and messages, and the rule for reaching a torrent peer as a node."""

from __future__ import annotations

import itertools

import pytest

from servent.codec.bencode import encode
from servent.codec.node_record import RelayRef
from servent.errors import NodeRoutesError
from servent.proto.node_routes import (
    INFLOW_BURST,
    INFLOW_INTERVAL,
    INFLOW_MAX_DEBT,
    LARGER_KEY_DELAY,
    MAX_ENTRIES,
    PUNCH_GRACE,
    RETRY_DELAYS,
    UPDATE_GAP,
    AdvertUpdates,
    NodeAdvert,
    NodeEntry,
    NodesInflow,
    RelayAttempts,
    advert_to_offer,
    decode_nodes,
    encode_advert,
    encode_nodes,
    parse_advert,
)

KEY_A = bytes([1]) * 32
KEY_B = bytes([2]) * 32
KEY_C = bytes([3]) * 32
RELAY = RelayRef(KEY_C, ("11.77.0.2", 6881))
RELAY6 = RelayRef(KEY_C, ("2001:db8::1", 6881))


def test_an_advert_round_trips_with_relays_and_the_symmetric_flag() -> None:
    advert = NodeAdvert(KEY_A, (RELAY, RELAY6), symmetric=True)
    assert parse_advert(encode_advert(advert)) == advert
    plain = NodeAdvert(KEY_B)
    assert encode_advert(plain) == {b"k": KEY_B}  # no r, no s when there is nothing to say
    assert parse_advert(encode_advert(plain)) == plain


@pytest.mark.parametrize(
    "raw",
    [
        b"not a dict",
        {},
        {b"k": bytes(31)},
        {b"k": bytes(33)},
        {b"k": 5},
        {b"k": KEY_A, b"r": [KEY_C + bytes(5)]},  # a relay with a cut address
        {b"k": KEY_A, b"r": [KEY_C + bytes(6)] * 3},  # more than two relays
        {b"k": KEY_A, b"r": b"not a list"},
        {b"k": KEY_A, b"s": 2},
        {b"k": KEY_A, b"s": b"1"},
    ],
)
def test_a_bad_advert_is_refused(raw: object) -> None:
    with pytest.raises(NodeRoutesError):
        parse_advert(raw)  # type: ignore[arg-type]


def test_unknown_keys_are_ignored_in_adverts_and_messages() -> None:
    assert parse_advert({b"k": KEY_A, b"zz": b"later", b"s": 0}) == NodeAdvert(KEY_A)
    payload = encode(
        {b"n": [{b"a": bytes([11, 77, 0, 1, 0x1A, 0xE1]), b"k": KEY_A, b"x": 1}], b"y": b"?"}
    )
    assert decode_nodes(payload) == [NodeEntry(("11.77.0.1", 6881), NodeAdvert(KEY_A))]


def test_a_message_round_trips_and_sends_at_most_the_entry_limit() -> None:
    entries = [
        NodeEntry(("11.77.0.1", 1000 + n), NodeAdvert(bytes([n]) * 32, (RELAY,), n % 2 == 0))
        for n in range(MAX_ENTRIES + 5)
    ]
    entries.append(NodeEntry(("2001:db8::7", 51413), NodeAdvert(KEY_B)))
    decoded = decode_nodes(encode_nodes(entries))
    assert decoded == entries[:MAX_ENTRIES]
    assert decode_nodes(encode_nodes(entries[-1:])) == entries[-1:]  # IPv6: 18 bytes


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"garbage",
        encode([1, 2]),
        encode({b"n": b"not a list"}),
        encode({b"n": [b"not a dict"]}),
        encode({b"n": [{b"k": KEY_A}]}),  # no address
        encode({b"n": [{b"a": bytes(5), b"k": KEY_A}]}),  # a cut address
        encode({b"n": [{b"a": bytes([1, 2, 3, 4, 0, 0]), b"k": KEY_A}]}),  # port 0
        encode({b"n": [{b"a": bytes([1, 2, 3, 4, 0, 9]), b"k": bytes(20)}]}),  # bad node id
        encode({b"n": [{b"a": bytes([1, 2, 3, 4, 0, 9]), b"k": KEY_A}] * (MAX_ENTRIES + 1)}),
        b"d1:nl" + b"i1e" * 5000 + b"ee",  # oversized
    ],
)
def test_a_hostile_message_is_refused(payload: bytes) -> None:
    with pytest.raises(NodeRoutesError):
        decode_nodes(payload)


def test_encoding_refuses_what_could_not_be_read_back() -> None:
    with pytest.raises(NodeRoutesError):
        encode_advert(NodeAdvert(bytes(31)))
    with pytest.raises(NodeRoutesError):
        encode_nodes([NodeEntry(("not an ip", 1), NodeAdvert(KEY_A))])


ADDRESS = ("11.78.0.1", 51413)


def test_a_node_known_to_be_reachable_keeps_its_id_out_of_its_handshakes() -> None:
    assert advert_to_offer(KEY_A, (), symmetric=False, reachable=True) is None
    # Not known to be reachable (unknown or not): peers may need to reach it as a node.
    assert advert_to_offer(KEY_A, (), symmetric=False, reachable=False) == NodeAdvert(KEY_A)
    assert advert_to_offer(KEY_A, (), symmetric=True, reachable=False) == NodeAdvert(
        KEY_A, symmetric=True
    )
    # A relay reservation is worth telling even when a connect-back once succeeded.
    assert advert_to_offer(KEY_A, (RELAY,), symmetric=False, reachable=True) == NodeAdvert(
        KEY_A, (RELAY,)
    )


def test_a_peer_we_reach_directly_is_never_relayed() -> None:
    attempts = RelayAttempts(KEY_A, we_are_symmetric=True)
    assert not attempts.due(ADDRESS, NodeAdvert(KEY_B), failures=0, now=100.0)
    assert not attempts.due(ADDRESS, NodeAdvert(KEY_A), failures=3, now=100.0)  # ourselves


def test_a_symmetric_nat_relays_at_once_after_a_failed_dial() -> None:
    ours = RelayAttempts(KEY_A, we_are_symmetric=True)
    assert ours.due(ADDRESS, NodeAdvert(KEY_B), failures=1, now=100.0)
    theirs = RelayAttempts(KEY_A)
    assert theirs.due(ADDRESS, NodeAdvert(KEY_B, symmetric=True), failures=1, now=100.0)


def test_cone_nats_give_the_hole_punch_its_grace_first() -> None:
    attempts = RelayAttempts(KEY_A)
    advert = NodeAdvert(KEY_B)
    assert not attempts.due(ADDRESS, advert, failures=1, now=100.0)
    assert not attempts.due(ADDRESS, advert, failures=2, now=100.0 + PUNCH_GRACE - 1)
    assert attempts.due(ADDRESS, advert, failures=2, now=100.0 + PUNCH_GRACE)


def test_the_larger_key_waits_for_the_smaller_one() -> None:
    larger = RelayAttempts(KEY_B, we_are_symmetric=True)
    advert = NodeAdvert(KEY_A)
    assert not larger.due(ADDRESS, advert, failures=1, now=0.0)
    assert larger.due(ADDRESS, advert, failures=1, now=LARGER_KEY_DELAY)


def test_three_attempts_with_back_off_then_none_until_a_success() -> None:
    attempts = RelayAttempts(KEY_A, we_are_symmetric=True)
    advert = NodeAdvert(KEY_B)
    now = 10.0
    assert attempts.due(ADDRESS, advert, 1, now)
    attempts.started(ADDRESS, now)
    for delay in RETRY_DELAYS:
        assert not attempts.due(ADDRESS, advert, 2, now + delay - 0.1)
        now += delay
        assert attempts.due(ADDRESS, advert, 2, now)
        attempts.started(ADDRESS, now)
    assert attempts.attempts(ADDRESS) == 3
    assert not attempts.due(ADDRESS, advert, 3, now + 10_000.0)  # given up
    attempts.succeeded(ADDRESS)
    assert attempts.attempts(ADDRESS) == 0
    assert attempts.due(ADDRESS, advert, 1, now + 10_000.0)


def test_the_table_of_tries_is_bounded() -> None:
    attempts = RelayAttempts(KEY_A, we_are_symmetric=True, max_tracked=8)
    for port in range(1, 100):
        attempts.due(("11.78.0.1", port), NodeAdvert(KEY_B), 1, 0.0)
    assert len(attempts._tries) <= 8


# -- a changed advert: the handshake again, coalesced ------------------------------------


def test_only_peers_whose_last_handshake_named_another_advert_are_due() -> None:
    updates: AdvertUpdates[str] = AdvertUpdates()
    bare, relayed = NodeAdvert(KEY_A), NodeAdvert(KEY_A, (RELAY,))
    updates.sent("old", bare, 0.0)
    updates.sent("new", relayed, 0.0)
    peers = ["old", "new", "never-sent"]
    assert updates.due(peers, relayed, UPDATE_GAP) == ["old"]
    assert updates.due(peers, bare, UPDATE_GAP) == ["new"]  # a relay lost is news too
    updates.forget("old")
    assert updates.due(peers, relayed, UPDATE_GAP) == []


def test_changes_within_the_gap_go_out_as_one_update_with_the_latest_advert() -> None:
    updates: AdvertUpdates[str] = AdvertUpdates()
    updates.sent("p", NodeAdvert(KEY_A), 0.0)
    relayed = NodeAdvert(KEY_A, (RELAY,))
    both = NodeAdvert(KEY_A, (RELAY,), symmetric=True)
    sends = []
    now = 1.0
    for current in (relayed, relayed, both, both, both, both, both, both, both, both):
        if updates.due(["p"], current, now):
            updates.sent("p", current, now)
            sends.append((now, current))
        now += 1.0  # the shell ticks about once a second
    assert sends == [(UPDATE_GAP, both)]  # the verdict that came meanwhile rides along


def test_an_advert_flapping_every_tick_is_sent_at_most_once_per_gap() -> None:
    updates: AdvertUpdates[str] = AdvertUpdates()
    adverts = (NodeAdvert(KEY_A), NodeAdvert(KEY_A, symmetric=True))
    updates.sent("p", adverts[0], 0.0)
    sent_at = []
    for tick in range(1, 61):
        current = adverts[tick % 2]
        if updates.due(["p"], current, float(tick)):
            updates.sent("p", current, float(tick))
            sent_at.append(tick)
    assert len(sent_at) <= 60 / UPDATE_GAP
    assert all(b - a >= UPDATE_GAP for a, b in itertools.pairwise(sent_at))


# -- incoming sv_nodes: the per-peer limit -----------------------------------------------


def test_a_burst_is_admitted_then_messages_are_ignored_until_the_bucket_refills() -> None:
    inflow = NodesInflow(0.0)
    admitted = [inflow.admit(0.0) for _ in range(int(INFLOW_BURST) + 2)]
    assert admitted == [True] * int(INFLOW_BURST) + [False, False]
    assert not inflow.abusive  # a burst is not abuse
    assert not inflow.admit(INFLOW_INTERVAL)  # the refill pays the debt first
    assert inflow.admit(6 * INFLOW_INTERVAL)


def test_a_well_behaved_sender_is_never_ignored() -> None:
    inflow = NodesInflow(0.0)
    assert all(inflow.admit(30.0 * i) for i in range(100))  # one per 30 s, as we send


def test_a_sustained_flood_becomes_abusive_and_a_late_clock_does_not_refill() -> None:
    inflow = NodesInflow(100.0)
    results = [inflow.admit(100.0 + i * 0.5) for i in range(200)]
    assert results.count(True) < INFLOW_BURST + 200 * 0.5 / INFLOW_INTERVAL + 1
    assert inflow.abusive
    flood = NodesInflow(10.0)
    for _ in range(int(INFLOW_BURST + INFLOW_MAX_DEBT)):
        flood.admit(10.0)
    assert not flood.abusive  # exactly at the debt bound
    flood.admit(5.0)  # a clock going back gives no tokens
    assert flood.abusive
