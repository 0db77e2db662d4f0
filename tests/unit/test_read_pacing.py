"""Which connections a download limit paces: only those that may still carry pieces.

A node that caps its download rate must not hold back a peer's PEX or BEP 55
rendezvous behind the debt another peer's blocks ran up (issue 18: a capped
hub delayed each introduction by ~25 s).  The rule is
``PeerConnection.expects_blocks``; ``PeerSession`` pauses reading only then.
"""

from __future__ import annotations

from test_peerwire_connection import make_pair, pump

from servent.proto.peerwire import (
    Cancel,
    Piece,
    Request,
    Unchoke,
    encode_message,
)

BLOCK = 16384


def test_a_fresh_connection_expects_no_blocks() -> None:
    client, server = make_pair()
    assert not client.expects_blocks and not server.expects_blocks


def test_a_request_expects_its_block_until_it_arrives() -> None:
    client, server = make_pair()
    server.send(Unchoke())
    client.send(Request(3, 0, BLOCK))
    pump(client, server)
    assert client.expects_blocks and not server.expects_blocks
    server.send(Piece(3, 0, b"z" * BLOCK))
    pump(client, server)
    assert not client.expects_blocks


def test_a_cancel_without_fast_still_expects_the_late_block() -> None:
    client, server = make_pair(fast=False)
    server.send(Unchoke())
    client.send(Request(4, 0, BLOCK))
    pump(client, server)
    client.send(Cancel(4, 0, BLOCK))
    assert client.expects_blocks  # without BEP 6 the piece may still come
    client.receive_data(encode_message(Piece(4, 0, b"l" * BLOCK)), 0.0)
    while client.next_event() is not None:
        pass
    assert not client.expects_blocks


def test_a_rejected_request_expects_nothing_more() -> None:
    client, server = make_pair()
    server.send(Unchoke())
    client.send(Request(5, 0, BLOCK))
    pump(client, server)
    client.send(Cancel(5, 0, BLOCK))
    pump(client, server)  # BEP 6: the server answers the cancel with a reject
    assert not client.expects_blocks
