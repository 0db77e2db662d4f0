"""Defences of the DHT core: floods, tokens, amplification, spoofing, bounds, BEP 44 errors."""

from __future__ import annotations

import random

from servent.codec.bencode import BValue, decode, encode
from servent.proto.dht import DhtConfig, DhtNode
from servent.proto.dht.items import mutable_target, private_key_from, public_key_bytes, sign

OWN = bytes.fromhex("aa" * 20)
OTHER = bytes.fromhex("55" * 20)
ALICE = ("203.0.113.5", 4000)
BOB = ("198.51.100.7", 5000)


def make_node(config: DhtConfig | None = None) -> DhtNode:
    return DhtNode(OWN, config=config or DhtConfig(), rng=random.Random(7), now=0.0)


def ask(
    node: DhtNode,
    method: bytes,
    args: dict[bytes, BValue],
    addr: tuple[str, int] = ALICE,
    now: float = 1.0,
    sender: bytes = OTHER,
) -> dict[bytes, BValue] | None:
    query = encode({b"t": b"tx", b"y": b"q", b"q": method, b"a": {b"id": sender, **args}})
    node.receive_datagram(query, addr, now)
    replies = [data for data, dest in node.datagrams_to_send() if dest == addr]
    if not replies:
        return None
    reply = decode(replies[0])
    assert isinstance(reply, dict)
    return reply


def error_code(reply: dict[bytes, BValue] | None) -> int:
    assert reply is not None and reply[b"y"] == b"e", reply
    err = reply[b"e"]
    assert isinstance(err, list) and isinstance(err[0], int)
    return err[0]


def token_for(node: DhtNode, addr: tuple[str, int], now: float = 1.0) -> bytes:
    reply = ask(node, b"get_peers", {b"info_hash": b"i" * 20}, addr, now)
    assert reply is not None
    values = reply[b"r"]
    assert isinstance(values, dict) and isinstance(values[b"token"], bytes)
    return values[b"token"]


def test_flooder_is_blocked_and_others_still_answered() -> None:
    node = make_node(DhtConfig(rate_limit_per_ip=10.0, rate_burst=20.0, block_duration=60.0))
    answered = sum(
        ask(node, b"ping", {}, ALICE, now=1.0 + i * 0.001) is not None for i in range(200)
    )
    assert answered <= 21
    assert node.statistics()["blocked_ips"] == 1
    assert ask(node, b"ping", {}, BOB, now=1.5) is not None
    assert ask(node, b"ping", {}, ALICE, now=30.0) is None  # still blocked
    assert ask(node, b"ping", {}, ALICE, now=62.0) is not None  # block expired


def test_announce_with_bad_token_is_refused_with_203() -> None:
    node = make_node()
    args = {b"info_hash": b"i" * 20, b"port": 6881, b"token": b"12345678"}
    assert error_code(ask(node, b"announce_peer", args)) == 203
    assert len(node.peers) == 0


def test_token_is_bound_to_the_requester_ip() -> None:
    node = make_node()
    token = token_for(node, ALICE)
    args = {b"info_hash": b"i" * 20, b"port": 6881, b"token": token}
    assert error_code(ask(node, b"announce_peer", args, BOB)) == 203
    reply = ask(node, b"announce_peer", args, ALICE)
    assert reply is not None and reply[b"y"] == b"r"
    assert node.peers.peers(b"i" * 20, 10, random.Random(1)) == [
        bytes([203, 0, 113, 5, 0x1A, 0xE1])
    ]


def test_previous_token_is_accepted_after_one_rotation_but_not_two() -> None:
    node = make_node()
    token = token_for(node, ALICE)
    args = {b"info_hash": b"i" * 20, b"port": 6881, b"token": token}
    node.handle_timer(301.0)  # one rotation
    assert ask(node, b"announce_peer", args, ALICE, now=301.0)[b"y"] == b"r"  # type: ignore[index]
    node.handle_timer(602.0)  # second rotation
    assert error_code(ask(node, b"announce_peer", args, ALICE, now=602.0)) == 203


def test_unknown_method_gets_204_and_malformed_query_203() -> None:
    node = make_node()
    assert error_code(ask(node, b"frobnicate", {})) == 204
    assert error_code(ask(node, b"find_node", {b"target": b"short"})) == 203
    node.receive_datagram(b"d1:ade1:q4:ping1:t2:aa1:y1:qe", ALICE, 1.0)  # no id
    replies = node.datagrams_to_send()
    assert len(replies) == 1 and error_code(decode(replies[0][0])) == 203  # type: ignore[arg-type]


def test_garbage_gets_no_reply_and_no_crash() -> None:
    node = make_node()
    for data in (b"", b"\xff" * 100, b"d" * 5000, b"i1e", b"l" * 70000):
        node.receive_datagram(data, ALICE, 1.0)
    assert node.datagrams_to_send() == []
    assert node.statistics()["dropped_malformed"] == 5


def test_get_peers_reply_is_not_much_larger_than_the_query() -> None:
    config = DhtConfig()
    node = make_node(config)
    for i in range(200):
        node.peers.add(b"i" * 20, bytes([10, 0, i // 256, i % 256, 0, 80]), 0.0)
    query = encode(
        {b"t": b"tx", b"y": b"q", b"q": b"get_peers", b"a": {b"id": OTHER, b"info_hash": b"i" * 20}}
    )
    node.receive_datagram(query, ALICE, 1.0)
    reply = node.datagrams_to_send()[0][0]  # the answer; a ping to the newcomer may follow
    assert len(reply) <= max(config.reply_size_floor, config.reply_size_factor * len(query))
    values = decode(reply)[b"r"][b"values"]  # type: ignore[index, call-overload]
    assert 0 < len(values) < 200


def test_unmatched_response_is_ignored() -> None:
    node = make_node()
    reply = encode({b"t": b"zz", b"y": b"r", b"r": {b"id": OTHER}})
    node.receive_datagram(reply, ALICE, 1.0)
    assert len(node.routing_table) == 0
    assert node.statistics()["dropped_unmatched"] == 1


def test_response_from_the_wrong_address_is_ignored() -> None:
    node = make_node()
    ping_id = node.ping(ALICE, 1.0)
    ((query, _),) = node.datagrams_to_send()
    tid = decode(query)[b"t"]  # type: ignore[index, call-overload]
    spoof = encode({b"t": tid, b"y": b"r", b"r": {b"id": OTHER}})
    node.receive_datagram(spoof, BOB, 1.1)
    node.receive_datagram(spoof, (ALICE[0], ALICE[1] + 1), 1.1)
    assert len(node.routing_table) == 0 and node.next_event() is None
    node.receive_datagram(spoof, ALICE, 1.2)
    event = node.next_event()
    assert event is not None and getattr(event, "lookup_id", None) == ping_id
    assert len(node.routing_table) == 1


def test_our_own_id_echoed_back_is_dropped_as_reflection() -> None:
    node = make_node()
    assert ask(node, b"ping", {}, ALICE, sender=OWN) is None
    node.ping(ALICE, 1.0)
    ((query, _),) = node.datagrams_to_send()
    tid = decode(query)[b"t"]  # type: ignore[index, call-overload]
    node.receive_datagram(encode({b"t": tid, b"y": b"r", b"r": {b"id": OWN}}), ALICE, 1.1)
    assert len(node.routing_table) == 0
    assert node.statistics()["dropped_reflected"] == 2


def test_storage_is_bounded() -> None:
    node = make_node(DhtConfig(max_infohashes=10, max_peers_per_infohash=5, rate_limit_per_ip=0.0))
    for i in range(30):
        token = token_for(node, (f"10.0.{i}.1", 1))
        for port in range(1, 9):
            args = {b"info_hash": bytes([i]) * 20, b"port": port, b"token": token}
            ask(node, b"announce_peer", args, (f"10.0.{i}.1", 1))
    assert len(node.peers) == 10
    assert len(node.peers.peers(bytes([29]) * 20, 100, random.Random(1))) == 5


def test_want_n6_adds_nodes6() -> None:
    node = make_node()
    node.routing_table.import_nodes(
        [(b"\x01" * 20, ("2001:db8::1", 1)), (b"\x02" * 20, ("9.9.9.9", 2))], 0.0
    )
    reply = ask(node, b"find_node", {b"target": b"\x01" * 20, b"want": [b"n4", b"n6"]})
    values = reply[b"r"]  # type: ignore[index]
    assert isinstance(values, dict)
    assert len(values[b"nodes"]) == 26 and len(values[b"nodes6"]) == 38  # type: ignore[arg-type]


def _put(node: DhtNode, args: dict[bytes, BValue]) -> dict[bytes, BValue] | None:
    return ask(node, b"put", {b"token": token_for(node, ALICE), **args})


def _signed(
    value: bytes, seq: int, salt: bytes = b"", key_seed: bytes = bytes(32)
) -> dict[bytes, BValue]:
    key = private_key_from(key_seed)
    args: dict[bytes, BValue] = {
        b"v": value,
        b"seq": seq,
        b"k": public_key_bytes(key),
        b"sig": sign(key, encode(value), seq, salt),
    }
    if salt:
        args[b"salt"] = salt
    return args


def test_bep44_value_too_big_205() -> None:
    assert error_code(_put(make_node(), {b"v": b"x" * 1001})) == 205


def test_bep44_bad_signature_206() -> None:
    args = _signed(b"hello", 1)
    args[b"v"] = b"hellO"
    assert error_code(_put(make_node(), args)) == 206


def test_bep44_salt_too_big_207() -> None:
    assert error_code(_put(make_node(), _signed(b"hello", 1, salt=b"s" * 65))) == 207


def test_bep44_cas_mismatch_301_and_seq_too_low_302() -> None:
    node = make_node()
    assert _put(node, _signed(b"v5", 5))[b"y"] == b"r"  # type: ignore[index]
    assert error_code(_put(node, {**_signed(b"v6", 6), b"cas": 4})) == 301
    assert error_code(_put(node, _signed(b"v4", 4))) == 302
    assert _put(node, {**_signed(b"v6", 6), b"cas": 5})[b"y"] == b"r"  # type: ignore[index]


def test_bep44_get_omits_value_when_requester_has_seq() -> None:
    node = make_node()
    _put(node, _signed(b"v5", 5))
    target = mutable_target(public_key_bytes(private_key_from(bytes(32))))
    fresh = ask(node, b"get", {b"target": target, b"seq": 5})[b"r"]  # type: ignore[index]
    assert isinstance(fresh, dict) and b"v" not in fresh and fresh[b"seq"] == 5
    full = ask(node, b"get", {b"target": target})[b"r"]  # type: ignore[index]
    assert isinstance(full, dict) and full[b"v"] == b"v5"


def test_read_only_node_ignores_queries() -> None:
    node = make_node(DhtConfig(read_only=True))
    assert ask(node, b"ping", {}) is None
    node.ping(ALICE, 1.0)
    ((query, _),) = node.datagrams_to_send()
    assert decode(query)[b"ro"] == 1  # type: ignore[index, call-overload]


def test_querier_with_ro_flag_is_not_pinged_for_the_table() -> None:
    node = make_node()
    query = encode({b"t": b"tx", b"y": b"q", b"q": b"ping", b"ro": 1, b"a": {b"id": OTHER}})
    node.receive_datagram(query, ALICE, 1.0)
    assert len(node.datagrams_to_send()) == 1  # only the answer, no ping back


def _answer_ping(
    node: DhtNode, addr: tuple[str, int], sender: bytes, reflected: bytes | None = None
) -> None:
    node.ping(addr, 1.0)
    ((query, _),) = [item for item in node.datagrams_to_send() if item[1] == addr]
    tid = decode(query)[b"t"]  # type: ignore[index, call-overload]
    reply: dict[bytes, BValue] = {b"t": tid, b"y": b"r", b"r": {b"id": sender}}
    if reflected is not None:
        reply[b"ip"] = reflected
    node.receive_datagram(encode(reply), addr, 1.1)


def test_enforced_bep42_keeps_insecure_ids_out_of_the_table() -> None:
    from servent.proto.dht.node_id import generate_secure_id

    # Public-looking addresses (no traffic leaves the test: the node is sans-IO);
    # documentation ranges like 203.0.113.0/24 count as private, hence exempt.
    insecure_addr, secure_addr = ("8.8.8.8", 6881), ("9.9.9.9", 6881)
    node = make_node(DhtConfig(enforce_node_id=True))
    _answer_ping(node, insecure_addr, b"\x12" * 20)
    assert len(node.routing_table) == 0
    secure = generate_secure_id(secure_addr[0], random.Random(1))
    _answer_ping(node, secure_addr, secure)
    assert node.routing_table.find(secure) is not None


def test_external_ip_is_learnt_from_several_answers() -> None:
    from servent.proto.dht import ExternalAddressChanged

    node = make_node()
    peers = [(f"198.51.{i}.1", 6881) for i in range(1, 4)]
    for i, addr in enumerate(peers):
        _answer_ping(
            node, addr, bytes([0x20 + i]) * 20, reflected=bytes([192, 0, 2, 44, 0x1A, 0xE1])
        )
    events = []
    while (event := node.next_event()) is not None:
        events.append(event)
    assert ExternalAddressChanged("192.0.2.44") in events
    assert node.external_ip == "192.0.2.44"


def test_a_flood_of_unsolicited_replies_gets_the_sender_blocked() -> None:
    node = make_node(DhtConfig(rate_limit_per_ip=10.0, rate_burst=20.0))
    for i in range(100):
        reply = encode({b"t": i.to_bytes(2, "big"), b"y": b"r", b"r": {b"id": OTHER}})
        node.receive_datagram(reply, ALICE, 1.0 + i * 0.001)
    stats = node.statistics()
    assert stats["blocked_ips"] == 1 and stats["dropped_blocked"] > 50
