"""PeerConnection exchanges in memory: handshake, state rules, timers, hostile peers."""

from __future__ import annotations

import pytest

from servent.codec.bencode import encode
from servent.errors import (
    ExtensionNotSupportedError,
    HandshakeError,
    MalformedMessageError,
    MessageTooLargeError,
    RequestFloodError,
    UnexpectedMessageError,
)
from servent.proto.peerwire import (
    AllowedFast,
    Cancel,
    Choke,
    ConnectionConfig,
    ConnectionState,
    ConnectionTimedOut,
    Event,
    Extended,
    ExtensionHandshakeReceived,
    ExtensionMessage,
    ExtensionRegistry,
    HandshakeReceived,
    Hashes,
    HashReject,
    HashRequest,
    Have,
    HaveAll,
    HaveBitfield,
    HaveNone,
    Interested,
    PeerConnection,
    Piece,
    RejectRequest,
    Request,
    RequestsDropped,
    Snubbed,
    Unchoke,
    allowed_fast_set,
    encode_message,
)
from servent.proto.peerwire.handshake import RESERVED_V2, Handshake, make_reserved

# Every test runs on both receive paths (C where built, and Python).
pytestmark = pytest.mark.usefixtures("both_scan_paths")

INFO_HASH = b"\x11" * 20
V2_HASH = b"\x22" * 32
CLIENT_ID = b"-SV0001-client000000"
SERVER_ID = b"-SV0001-server000000"
BLOCK = 16384


def drain(conn: PeerConnection) -> list[Event]:
    events = []
    while (event := conn.next_event()) is not None:
        events.append(event)
    return events


def pump(a: PeerConnection, b: PeerConnection, now: float = 0.0) -> tuple[list[Event], list[Event]]:
    """Move bytes both ways until quiet; return the events each side saw."""
    seen_a: list[Event] = []
    seen_b: list[Event] = []
    for _ in range(10):
        to_b, to_a = a.data_to_send(), b.data_to_send()
        if not to_a and not to_b:
            break
        if to_b:
            b.receive_data(to_b, now)
            seen_b += drain(b)
        if to_a:
            a.receive_data(to_a, now)
            seen_a += drain(a)
    return seen_a, seen_b


def make_pair(
    *,
    fast: bool = True,
    extensions: bool = True,
    num_pieces: int | None = 100,
    client_v2: bytes | None = None,
    server_v2: bytes | None = None,
    registry: ExtensionRegistry | None = None,
) -> tuple[PeerConnection, PeerConnection]:

    config = ConnectionConfig(enable_fast=fast, enable_extensions=extensions)
    client = PeerConnection(
        peer_id=CLIENT_ID,
        info_hash=INFO_HASH,
        info_hash_v2=client_v2,
        initiator=True,
        num_pieces=num_pieces,
        config=config,
        now=0.0,
        extensions=registry,
    )
    server = PeerConnection(
        peer_id=SERVER_ID,
        info_hash=INFO_HASH,
        info_hash_v2=server_v2,
        initiator=False,
        num_pieces=num_pieces,
        config=config,
        now=0.0,
        extensions=registry,
    )
    client_events, server_events = pump(client, server)
    assert isinstance(client_events[0], HandshakeReceived)
    assert isinstance(server_events[0], HandshakeReceived)
    return client, server


def test_handshake_negotiates_fast_and_extension_bits() -> None:
    client, server = make_pair()
    assert client.state is ConnectionState.OPEN and server.state is ConnectionState.OPEN
    assert client.fast and server.fast and client.extension_protocol
    assert client.remote_handshake is not None
    assert client.remote_handshake.peer_id == SERVER_ID


def test_fast_is_off_when_one_side_lacks_it() -> None:
    client = PeerConnection(peer_id=CLIENT_ID, info_hash=INFO_HASH, initiator=True, now=0)
    server = PeerConnection(
        peer_id=SERVER_ID,
        info_hash=INFO_HASH,
        initiator=False,
        now=0,
        config=ConnectionConfig(enable_fast=False),
    )
    pump(client, server)
    assert not client.fast and not server.fast


def test_handshake_arriving_one_byte_at_a_time() -> None:
    client = PeerConnection(peer_id=CLIENT_ID, info_hash=INFO_HASH, initiator=True, now=0)
    server = PeerConnection(peer_id=SERVER_ID, info_hash=INFO_HASH, initiator=False, now=0)
    data = client.data_to_send() + encode_message(Interested())
    events: list[Event] = []
    for i in range(len(data)):
        server.receive_data(data[i : i + 1], 0.0)
        events += drain(server)
    assert isinstance(events[0], HandshakeReceived)
    assert events[1:] == [Interested()]
    assert server.peer_interested


def test_wrong_info_hash_is_refused_after_48_bytes() -> None:
    server = PeerConnection(peer_id=SERVER_ID, info_hash=INFO_HASH, initiator=False, now=0)
    other = Handshake(make_reserved(), b"\x99" * 20, CLIENT_ID).encode()
    server.receive_data(other[:48], 0.0)
    with pytest.raises(HandshakeError):
        server.next_event()
    assert server.state is ConnectionState.CLOSED


def test_not_bittorrent_is_refused_early() -> None:
    server = PeerConnection(peer_id=SERVER_ID, info_hash=INFO_HASH, initiator=False, now=0)
    server.receive_data(b"GET / HTTP/1.1\r\n", 0.0)
    with pytest.raises(HandshakeError):
        server.next_event()


def test_connection_to_ourselves_is_refused() -> None:
    a = PeerConnection(peer_id=CLIENT_ID, info_hash=INFO_HASH, initiator=True, now=0)
    b = PeerConnection(peer_id=CLIENT_ID, info_hash=INFO_HASH, initiator=False, now=0)
    b.receive_data(a.data_to_send(), 0.0)
    with pytest.raises(HandshakeError):
        b.next_event()


def test_incoming_on_multi_torrent_listener_waits_for_accept() -> None:
    client = PeerConnection(peer_id=CLIENT_ID, info_hash=INFO_HASH, initiator=True, now=0)
    server = PeerConnection(peer_id=SERVER_ID, info_hash=None, initiator=False, now=0)
    server.receive_data(client.data_to_send() + encode_message(Interested()), 0.0)
    event = server.next_event()
    assert isinstance(event, HandshakeReceived)
    assert event.handshake.info_hash == INFO_HASH
    assert server.next_event() is None  # paused until accept
    server.accept(INFO_HASH, now=1.0, num_pieces=10)
    assert isinstance(server.next_event(), HandshakeReceived)
    assert server.next_event() == Interested()
    client.receive_data(server.data_to_send(), 1.0)
    assert isinstance(client.next_event(), HandshakeReceived)


def test_hybrid_peers_upgrade_to_truncated_v2_hash() -> None:
    client, server = make_pair(client_v2=V2_HASH, server_v2=V2_HASH)
    assert client.is_v2 and server.is_v2
    assert client.remote_handshake is not None
    assert client.remote_handshake.info_hash == V2_HASH[:20]


def test_v1_only_responder_keeps_v1_hash() -> None:
    client, server = make_pair(client_v2=V2_HASH, server_v2=None)
    assert not client.is_v2 and not server.is_v2


def test_v2_only_torrent_uses_truncated_hash() -> None:
    client = PeerConnection(
        peer_id=CLIENT_ID, info_hash=V2_HASH[:20], info_hash_v2=V2_HASH, initiator=True, now=0
    )
    server = PeerConnection(
        peer_id=SERVER_ID, info_hash=V2_HASH[:20], info_hash_v2=V2_HASH, initiator=False, now=0
    )
    pump(client, server)
    assert client.is_v2 and server.is_v2


def test_responder_answering_with_unoffered_hash_is_refused() -> None:
    client = PeerConnection(peer_id=CLIENT_ID, info_hash=INFO_HASH, initiator=True, now=0)
    reply = Handshake(make_reserved(RESERVED_V2), V2_HASH[:20], SERVER_ID).encode()
    client.receive_data(reply, 0.0)
    with pytest.raises(HandshakeError):
        client.next_event()


def test_request_piece_round_trip_and_payload_counters() -> None:
    client, server = make_pair()
    server.send(Unchoke())
    client.send(Interested())
    client_events, server_events = pump(client, server)
    assert client_events == [Unchoke()] and server_events == [Interested()]
    assert client.can_request(0)
    request = Request(3, 0, BLOCK)
    client.send(request)
    _, server_events = pump(client, server)
    assert server_events == [request]
    server.send(Piece(3, 0, b"x" * BLOCK))
    client_events, _ = pump(client, server)
    assert client_events == [Piece(3, 0, b"x" * BLOCK)]
    assert client.payload_received == BLOCK and server.payload_sent == BLOCK
    assert client.outstanding_requests == () and server.peer_requests == ()


def test_unsolicited_piece_disconnects() -> None:
    client, _server = make_pair()
    client.receive_data(encode_message(Piece(1, 0, b"zz")), 0.0)
    with pytest.raises(UnexpectedMessageError):
        client.next_event()
    assert client.state is ConnectionState.CLOSED


def test_request_while_choked_is_rejected_automatically_with_fast() -> None:
    client, server = make_pair()
    client.send(Request(5, 0, BLOCK))
    client_events, server_events = pump(client, server)
    assert server_events == []  # the session never sees it
    assert client_events == [RejectRequest(5, 0, BLOCK)]
    assert client.outstanding_requests == ()


def test_allowed_fast_request_is_served_while_choked() -> None:
    client, server = make_pair()
    server.send(AllowedFast(7))
    client_events, _ = pump(client, server)
    assert client_events == [AllowedFast(7)]
    assert client.can_request(7) and not client.can_request(8)
    client.send(Request(7, 0, BLOCK))
    _, server_events = pump(client, server)
    assert server_events == [Request(7, 0, BLOCK)]


def test_choking_rejects_pending_requests_except_allowed_fast() -> None:
    client, server = make_pair()
    server.send(AllowedFast(1))
    server.send(Unchoke())
    pump(client, server)
    client.send(Request(1, 0, BLOCK))
    client.send(Request(2, 0, BLOCK))
    pump(client, server)
    server.send(Choke())
    client_events, _ = pump(client, server)
    assert client_events == [Choke(), RejectRequest(2, 0, BLOCK)]
    assert server.peer_requests == (Request(1, 0, BLOCK),)


def test_cancel_gets_exactly_one_reject_and_late_piece_is_dropped() -> None:
    client, server = make_pair()
    server.send(Unchoke())
    client.send(Request(2, 0, BLOCK))
    pump(client, server)
    client.send(Cancel(2, 0, BLOCK))
    client_events, server_events = pump(client, server)
    assert server_events == [Cancel(2, 0, BLOCK)]
    assert client_events == [RejectRequest(2, 0, BLOCK)]
    server.send(Piece(2, 0, b"y" * BLOCK))  # the disk read finished late
    assert server.data_to_send() == b""


def test_choke_without_fast_reports_dropped_requests_and_tolerates_late_piece() -> None:
    client, server = make_pair(fast=False)
    server.send(Unchoke())
    client.send(Request(2, 0, BLOCK))
    pump(client, server)
    client.receive_data(encode_message(Choke()) + encode_message(Piece(2, 0, b"q" * BLOCK)), 0.0)
    events = drain(client)
    assert events == [
        Choke(),
        RequestsDropped((Request(2, 0, BLOCK),)),
        Piece(2, 0, b"q" * BLOCK),
    ]


def test_fast_messages_without_fast_extension_disconnect() -> None:
    client, _server = make_pair(fast=False)
    client.receive_data(encode_message(HaveAll()), 0.0)
    with pytest.raises(UnexpectedMessageError):
        client.next_event()


def test_aria2_have_none_then_bitfield_replaces_the_piece_set() -> None:
    # Regression: aria2 1.36 sends HaveNone and later a bitfield; refusing the
    # second piece-set message disconnected aria2 leechers.
    client, _ = make_pair(num_pieces=8)
    client.receive_data(encode_message(HaveNone()) + encode_message(HaveBitfield(b"\x81")), 0.0)
    assert drain(client) == [HaveNone(), HaveBitfield(b"\x81")]


def test_aria2_progress_bitfields_and_final_have_all_are_accepted() -> None:
    # Regression: aria2 1.36 as leecher reports progress with repeated
    # bitfields and finally have-all; a cap on them disconnected it.
    client, _ = make_pair(num_pieces=8)
    sets = [HaveNone(), HaveBitfield(b"\x10"), HaveBitfield(b"\x12"), HaveBitfield(b"\xbe")]
    client.receive_data(b"".join(encode_message(m) for m in [*sets, HaveAll()]), 0.0)
    assert drain(client) == [*sets, HaveAll()]


def test_bitfield_of_wrong_length_disconnects() -> None:
    client, _server = make_pair(num_pieces=20)
    client.receive_data(encode_message(HaveBitfield(b"\xff")), 0.0)
    with pytest.raises(MalformedMessageError):
        client.next_event()


def test_have_beyond_torrent_end_disconnects() -> None:
    client, _server = make_pair(num_pieces=10)
    client.receive_data(encode_message(Have(10)), 0.0)
    with pytest.raises(MalformedMessageError):
        client.next_event()


def test_request_beyond_torrent_end_disconnects() -> None:
    _client, server = make_pair(num_pieces=10)
    server.send(Unchoke())
    server.receive_data(encode_message(Request(10, 0, BLOCK)), 0.0)
    with pytest.raises(MalformedMessageError):
        server.next_event()


def test_oversized_request_disconnects() -> None:
    _client, server = make_pair()
    server.send(Unchoke())
    server.receive_data(encode_message(Request(0, 0, 1 << 20)), 0.0)
    with pytest.raises(MalformedMessageError):
        server.next_event()


def test_oversized_length_prefix_disconnects_before_the_body_arrives() -> None:
    client, _server = make_pair()
    client.receive_data((10 * 1024 * 1024).to_bytes(4, "big") + b"\x07", 0.0)
    with pytest.raises(MessageTooLargeError):
        client.next_event()


def test_receive_buffer_is_bounded() -> None:
    client, _ = make_pair()
    with pytest.raises(MessageTooLargeError):
        client.receive_data(bytes(5 * 1024 * 1024), 0.0)


def test_request_flood_disconnects() -> None:
    config = ConnectionConfig(max_peer_requests=4)
    server = PeerConnection(
        peer_id=SERVER_ID, info_hash=INFO_HASH, initiator=False, now=0, config=config
    )
    client = PeerConnection(peer_id=CLIENT_ID, info_hash=INFO_HASH, initiator=True, now=0)
    pump(client, server)
    server.send(Unchoke())
    flood = b"".join(encode_message(Request(0, i * BLOCK, BLOCK)) for i in range(5))
    server.receive_data(flood, 0.0)
    assert len(drain_until_error(server)) == 4


def drain_until_error(conn: PeerConnection) -> list[Event]:
    events: list[Event] = []
    with pytest.raises(RequestFloodError):
        while (event := conn.next_event()) is not None:
            events.append(event)
    return events


def test_extension_handshake_and_messages_use_each_sides_ids() -> None:
    client_registry = ExtensionRegistry()
    client_registry.register("ut_metadata", 3)
    server_registry = ExtensionRegistry()
    server_registry.register("ut_pex", 1)
    server_registry.register("ut_metadata", 2)
    client = PeerConnection(
        peer_id=CLIENT_ID, info_hash=INFO_HASH, initiator=True, now=0, extensions=client_registry
    )
    server = PeerConnection(
        peer_id=SERVER_ID, info_hash=INFO_HASH, initiator=False, now=0, extensions=server_registry
    )
    pump(client, server)
    client.send_extension_handshake({"v": "servent test", "reqq": 250})
    server.send_extension_handshake({"metadata_size": 1234})
    client_events, server_events = pump(client, server)
    (received,) = server_events
    assert isinstance(received, ExtensionHandshakeReceived)
    assert dict(received.handshake.extensions) == {"ut_metadata": 3}
    assert received.handshake.client == "servent test"
    assert received.handshake.request_queue == 250
    assert server.max_outstanding_requests == 250
    assert client.max_outstanding_requests == ConnectionConfig().max_peer_requests  # our default
    assert isinstance(client_events[0], ExtensionHandshakeReceived)
    assert client_events[0].handshake.metadata_size == 1234
    assert server.remote_supports("ut_metadata") and not server.remote_supports("ut_pex")
    server.send_extension("ut_metadata", b"hello")
    client.send_extension("ut_metadata", b"back")
    client_events, server_events = pump(client, server)
    assert client_events == [ExtensionMessage("ut_metadata", b"hello")]
    assert server_events == [ExtensionMessage("ut_metadata", b"back")]
    with pytest.raises(ExtensionNotSupportedError):
        server.send_extension("ut_pex", b"")


def test_bad_extension_handshake_disconnects() -> None:
    client, _ = make_pair()
    frame = encode_message(Extended(0, encode([1, 2])))
    client.receive_data(frame, 0.0)
    with pytest.raises(MalformedMessageError):
        client.next_event()


def test_keepalive_is_sent_when_idle_and_idle_peer_times_out() -> None:
    client, server = make_pair()
    deadline = client.next_timer()
    assert deadline == 90.0
    client.handle_timer(90.0)
    assert client.data_to_send() == b"\x00\x00\x00\x00"
    server.receive_data(b"\x00\x00\x00\x00", 90.0)
    assert server.next_event() is None  # keep-alives are not events
    client.handle_timer(180.0)
    assert client.next_event() == ConnectionTimedOut("idle")
    assert client.next_timer() is None


def test_handshake_timeout() -> None:
    client = PeerConnection(peer_id=CLIENT_ID, info_hash=INFO_HASH, initiator=True, now=5.0)
    assert client.next_timer() == 25.0
    client.handle_timer(25.0)
    assert client.next_event() == ConnectionTimedOut("handshake")


def test_peer_that_never_answers_requests_is_reported_snubbed() -> None:
    client, server = make_pair()
    server.send(Unchoke())
    pump(client, server)
    client.send(Request(0, 0, BLOCK), now=10.0)
    assert client.next_timer() == 40.0
    client.handle_timer(40.0)
    assert client.next_event() == Snubbed((Request(0, 0, BLOCK),))
    client.handle_timer(41.0)
    assert client.next_event() is None  # reported once


def test_peer_close_marks_connection_closed() -> None:
    client, _ = make_pair()
    client.receive_data(b"", 1.0)
    assert client.state is ConnectionState.CLOSED
    assert client.next_event() is None


def test_malformed_frame_raises_protocol_error_not_buffer_error() -> None:
    # Regression: a memoryview of the receive buffer kept alive by the decode
    # error's traceback made the cleanup raise BufferError instead.
    client, _ = make_pair()
    client.receive_data(b"\x00\x00\x00\x04\x04\x00\x00\x00\x00", 0.0)
    with pytest.raises(MalformedMessageError):
        client.next_event()
    assert client.state is ConnectionState.CLOSED


ROOT = b"\x33" * 32


def test_hash_request_is_answered_by_hashes_or_reject() -> None:
    client, server = make_pair()
    request = HashRequest(ROOT, 0, 0, 2, 1)
    client.send(request)
    _, server_events = pump(client, server)
    assert server_events == [request]
    server.send(Hashes(ROOT, 0, 0, 2, 1, bytes(96)))
    client_events, _ = pump(client, server)
    assert client_events == [Hashes(ROOT, 0, 0, 2, 1, bytes(96))]
    client.send(request)
    pump(client, server)
    server.send(HashReject(ROOT, 0, 0, 2, 1))
    client_events, _ = pump(client, server)
    assert client_events == [HashReject(ROOT, 0, 0, 2, 1)]


def test_unrequested_hashes_disconnect() -> None:
    client, _ = make_pair()
    client.receive_data(encode_message(Hashes(ROOT, 0, 0, 2, 0, bytes(64))), 0.0)
    with pytest.raises(UnexpectedMessageError):
        client.next_event()


def test_more_hashes_than_requested_disconnect() -> None:
    client, _ = make_pair()
    client.send(HashRequest(ROOT, 0, 0, 2, 0))
    client.receive_data(encode_message(Hashes(ROOT, 0, 0, 2, 0, bytes(32 * 40))), 0.0)
    with pytest.raises(MalformedMessageError):
        client.next_event()


def test_oversized_hash_request_disconnects() -> None:
    _, server = make_pair()
    server.receive_data(encode_message(HashRequest(ROOT, 0, 0, 100_000, 0)), 0.0)
    with pytest.raises(MalformedMessageError):
        server.next_event()


def test_offer_allowed_fast_sends_the_bep6_set_and_serves_it_while_choked() -> None:
    client, server = make_pair(num_pieces=1313)
    offered = server.offer_allowed_fast("127.0.0.1", 4)
    assert offered == allowed_fast_set("127.0.0.1", INFO_HASH, 1313, 4)
    client_events, _ = pump(client, server)
    assert client_events == [AllowedFast(i) for i in offered]
    client.send(Request(offered[0], 0, BLOCK))
    _, server_events = pump(client, server)
    assert server_events == [Request(offered[0], 0, BLOCK)]


def test_messages_buffered_before_the_peer_closes_are_still_delivered() -> None:
    client, _ = make_pair()
    client.receive_data(encode_message(HaveAll()) + encode_message(Unchoke()), 1.0)
    client.receive_data(b"", 1.0)
    assert client.state is ConnectionState.CLOSED
    assert drain(client) == [HaveAll(), Unchoke()]
    client.send(Interested())  # the peer is gone: ignored, not an error
    assert client.data_to_send() == b""


def test_send_before_handshake_is_a_programming_error() -> None:
    server = PeerConnection(peer_id=SERVER_ID, info_hash=INFO_HASH, initiator=False, now=0)
    with pytest.raises(RuntimeError):
        server.send(Interested())
