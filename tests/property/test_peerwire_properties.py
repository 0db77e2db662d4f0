"""Hypothesis: the peer wire codec round-trips and the connection survives hostile bytes.

Hostile or mutated input may only ever raise a PeerWireError subclass (the
driver then drops the peer); any other exception is a bug.
"""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from servent.errors import PeerWireError
from servent.proto.peerwire import (
    AllowedFast,
    Cancel,
    Choke,
    ConnectionConfig,
    ConnectionState,
    Event,
    Extended,
    HandshakeReceived,
    Hashes,
    HashReject,
    HashRequest,
    Have,
    HaveAll,
    HaveBitfield,
    HaveNone,
    Interested,
    KeepAlive,
    Message,
    NotInterested,
    PeerConnection,
    Piece,
    Port,
    RejectRequest,
    Request,
    SuggestPiece,
    Unchoke,
    UnknownMessage,
    decode_message,
    encode_message,
)

INFO_HASH = b"\x11" * 20
U32 = st.integers(0, 2**32 - 1)
ROOT = st.binary(min_size=32, max_size=32)

messages: st.SearchStrategy[Message] = st.one_of(
    st.sampled_from(
        [KeepAlive(), Choke(), Unchoke(), Interested(), NotInterested(), HaveAll(), HaveNone()]
    ),
    st.builds(Have, U32),
    st.builds(HaveBitfield, st.binary(max_size=64)),
    st.builds(Request, U32, U32, U32),
    st.builds(Piece, U32, U32, st.binary(max_size=256)),
    st.builds(Cancel, U32, U32, U32),
    st.builds(Port, st.integers(0, 65535)),
    st.builds(SuggestPiece, U32),
    st.builds(RejectRequest, U32, U32, U32),
    st.builds(AllowedFast, U32),
    st.builds(Extended, st.integers(0, 255), st.binary(max_size=64)),
    st.builds(HashRequest, ROOT, U32, U32, U32, U32),
    st.builds(HashReject, ROOT, U32, U32, U32, U32),
    st.builds(Hashes, ROOT, U32, U32, U32, U32, st.integers(0, 4).map(lambda n: bytes(32 * n))),
    st.builds(UnknownMessage, st.integers(24, 255), st.binary(max_size=32)),
)


@given(messages)
def test_encode_decode_round_trip(message: Message) -> None:
    frame = encode_message(message)
    assert decode_message(frame[4:]) == message


@given(st.binary(max_size=300))
def test_decode_message_raises_only_peer_wire_errors(body: bytes) -> None:
    try:
        message = decode_message(body)
    except PeerWireError:
        return
    # Whatever decodes re-encodes to a frame that decodes to the same message.
    assert decode_message(encode_message(message)[4:]) == message


def _open_connection(fast: bool, num_pieces: int | None) -> PeerConnection:
    """A connection that has completed its handshake (as the responder)."""
    initiator = PeerConnection(peer_id=b"I" * 20, info_hash=INFO_HASH, initiator=True, now=0.0)
    conn = PeerConnection(
        peer_id=b"R" * 20,
        info_hash=INFO_HASH,
        initiator=False,
        now=0.0,
        num_pieces=num_pieces,
        config=ConnectionConfig(enable_fast=fast, max_receive_buffer=1 << 16),
    )
    conn.receive_data(initiator.data_to_send(), 0.0)
    assert isinstance(conn.next_event(), HandshakeReceived)
    conn.data_to_send()
    return conn


def _feed(conn: PeerConnection, data: bytes, cuts: list[int]) -> list[Event]:
    """Feed ``data`` split at ``cuts``; return events until a PeerWireError (if any).

    Checks the invariants of hostile input: only PeerWireError escapes, and
    after one the connection is closed and yields nothing more.
    """
    events: list[Event] = []
    bounds = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    try:
        for start, end in itertools.pairwise(bounds):
            conn.receive_data(data[start:end], 1.0)
            while (event := conn.next_event()) is not None:
                events.append(event)
                if isinstance(event, Request) and conn.is_request_pending(event):
                    conn.send(Piece(event.index, event.begin, bytes(event.length % 64)))
                conn.data_to_send()
    except PeerWireError:
        assert conn.state is ConnectionState.CLOSED
        assert conn.next_event() is None
    assert conn.state in (ConnectionState.OPEN, ConnectionState.HANDSHAKE, ConnectionState.CLOSED)
    assert all(not isinstance(e, KeepAlive | UnknownMessage | Extended) for e in events)
    return events


@settings(max_examples=300)
@given(
    st.binary(max_size=2000),
    st.lists(st.integers(0, 4000), max_size=8),
    st.booleans(),
    st.sampled_from([None, 1, 9, 1000]),
)
def test_random_bytes_after_handshake_only_raise_peer_wire_errors(
    data: bytes, cuts: list[int], fast: bool, num_pieces: int | None
) -> None:
    conn = _open_connection(fast, num_pieces)
    _feed(conn, data, cuts)


@settings(max_examples=200)
@given(st.binary(max_size=200), st.lists(st.integers(0, 400), max_size=6))
def test_random_bytes_as_handshake_only_raise_peer_wire_errors(
    data: bytes, cuts: list[int]
) -> None:
    conn = PeerConnection(peer_id=b"R" * 20, info_hash=INFO_HASH, initiator=False, now=0.0)
    _feed(conn, b"\x13BitTorrent protocol" + data, cuts)


@st.composite
def mutated_streams(draw: st.DrawFn) -> bytes:
    """A valid message stream with a few bytes flipped, inserted or deleted."""
    stream = bytearray(b"".join(encode_message(m) for m in draw(st.lists(messages, max_size=12))))
    for _ in range(draw(st.integers(1, 4))):
        position = draw(st.integers(0, len(stream)))
        action = draw(st.sampled_from(["flip", "insert", "delete"]))
        if action == "flip" and position < len(stream):
            stream[position] ^= 1 << draw(st.integers(0, 7))
        elif action == "insert":
            stream[position:position] = draw(st.binary(min_size=1, max_size=4))
        elif position < len(stream):
            del stream[position]
    return bytes(stream)


@settings(max_examples=300)
@given(mutated_streams(), st.lists(st.integers(0, 4000), max_size=8), st.booleans())
def test_mutated_streams_only_raise_peer_wire_errors(
    data: bytes, cuts: list[int], fast: bool
) -> None:
    conn = _open_connection(fast, 64)
    _feed(conn, data, cuts)


valid_in_order = st.lists(
    st.one_of(
        st.sampled_from([Choke(), Unchoke(), Interested(), NotInterested()]),
        st.builds(Have, st.integers(0, 63)),
        st.builds(Port, st.integers(1, 65535)),
    ),
    max_size=20,
)


@given(valid_in_order, st.lists(st.integers(0, 400), max_size=10))
def test_events_do_not_depend_on_how_the_stream_is_split(
    sent: list[Message], cuts: list[int]
) -> None:
    data = b"".join(encode_message(m) for m in sent)
    whole = _feed(_open_connection(True, 64), data, [])
    split = _feed(_open_connection(True, 64), data, cuts)
    assert whole == split == sent
