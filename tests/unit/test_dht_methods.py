"""DHT query methods are registrations: a test-only method, registered like the
BEP 5/44/51 ones, is answered by a production node inside the DHT simulator."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from servent.codec.bencode import BValue
from servent.codec.compact import Address, decode_nodes
from servent.errors import DhtError
from servent.proto.dht.krpc import (
    ERROR,
    METHOD_UNKNOWN,
    QUERY,
    RESPONSE,
    Message,
    encode_query,
    parse_message,
)
from servent.proto.dht.server import DHT_METHODS, QueryServer, Values, dht_method
from servent.testing.dht_network import build_dht_network

ECHO = b"x_test_echo"
ASKER_ID = b"\x42" * 20


def _echo(server: QueryServer, args: Values, addr: Address, now: float) -> Values:
    """Echoes ``text`` back with the nodes closest to ``target`` (a real lookup's data)."""
    text = args.get(b"text")
    target = args.get(b"target")
    if type(text) is not bytes or type(target) is not bytes or len(target) != 20:
        raise DhtError("x_test_echo needs 'text' and a 20-byte 'target'")
    out: dict[bytes, BValue] = {b"id": server.own_id, b"echo": text.upper()}
    return server.add_nodes(target, addr, args, out)


@pytest.fixture
def echo_method() -> Iterator[None]:
    dht_method(ECHO)(_echo)
    try:
        yield
    finally:
        DHT_METHODS.unregister(ECHO)


class Asker:
    """A bare endpoint on the fake network: sends queries, keeps the replies."""

    def __init__(self) -> None:
        self.outbox: list[tuple[bytes, Address]] = []
        self.replies: list[Message] = []

    def receive_datagram(self, data: bytes, addr: Address, now: float) -> None:
        message = parse_message(data)
        if message.kind != QUERY:  # the node may ping us back: not an answer
            self.replies.append(message)

    def datagrams_to_send(self) -> list[tuple[bytes, Address]]:
        out, self.outbox = self.outbox, []
        return out

    def next_timer(self) -> float | None:
        return None

    def handle_timer(self, now: float) -> None:
        return None


def _ask(method: bytes, args: dict[bytes, BValue], tid: bytes) -> Message:
    sim = build_dht_network(20, seed=7)
    asker = Asker()
    where = sim.network.add(asker)
    node_addr = sim.live_addresses()[0]
    asker.outbox.append((encode_query(tid, method, {b"id": ASKER_ID, **args}), node_addr))
    sim.network.flush(where)
    assert sim.network.run_until_true(lambda: bool(asker.replies), timeout=30.0)
    (reply,) = asker.replies
    assert reply.tid == tid
    return reply


def test_a_registered_method_is_answered_by_a_simulated_node(echo_method: None) -> None:
    target = b"\x07" * 20
    reply = _ask(ECHO, {b"text": b"hello", b"target": target}, b"e1")
    assert reply.kind is RESPONSE
    values = reply.args
    assert values[b"echo"] == b"HELLO"
    nodes = values[b"nodes"]
    assert isinstance(nodes, bytes) and len(decode_nodes(nodes)) == 8  # from its routing table


def test_a_registered_method_reports_bad_arguments_as_a_krpc_error(echo_method: None) -> None:
    reply = _ask(ECHO, {b"text": b"hello"}, b"e2")
    assert reply.kind is ERROR and reply.error_code == 203
    assert b"target" in (reply.error_text or b"")


def test_an_unregistered_method_is_unknown() -> None:
    assert ECHO not in DHT_METHODS
    reply = _ask(ECHO, {b"text": b"hello", b"target": b"\x07" * 20}, b"e3")
    assert reply.kind is ERROR and reply.error_code == METHOD_UNKNOWN


def test_the_built_in_methods_are_registrations_and_names_are_unique() -> None:
    assert set(DHT_METHODS.names()) >= {
        b"ping",
        b"find_node",
        b"get_peers",
        b"announce_peer",
        b"get",
        b"put",
        b"sample_infohashes",
    }
    with pytest.raises(ValueError, match="twice"):
        dht_method(b"ping")(_echo)
    with pytest.raises(ValueError):
        dht_method(b"")(_echo)
