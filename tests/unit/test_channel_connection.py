"""The node channel's sans-IO core: handshake, authentication, frames, streams, timers."""

from __future__ import annotations

import pytest

from servent.proto.channel import (
    MAGIC,
    MAX_BODY,
    ChannelAuthError,
    ChannelConfig,
    ChannelConnection,
    ChannelHandshakeError,
    ChannelProtocolError,
    ChannelStateError,
    ChannelTimeoutError,
    CloseCode,
    ConnectionClosed,
    FrameTooLargeError,
    HandshakeComplete,
    LocalKeys,
    MessageReceived,
    Phase,
    StreamEnded,
    StreamOpened,
    StreamReset,
)
from servent.proto.channel.frames import FrameType
from servent.testing.channel_pair import client_and_server as channel_pair
from servent.testing.channel_pair import drain_events, new_keys, pump

ECHO = "servent/echo/1"


keys = new_keys
events = drain_events


def client_and_server(
    *, config: ChannelConfig | None = None, server_keys: LocalKeys | None = None
) -> tuple[ChannelConnection, ChannelConnection]:
    """A connected pair (``servent.testing``); the server serves the echo protocol."""
    return channel_pair(protocols={ECHO}, config=config, server_keys=server_keys)


def closed(conn: ChannelConnection) -> ConnectionClosed:
    found = [e for e in events(conn) if isinstance(e, ConnectionClosed)]
    assert len(found) == 1 and conn.phase is Phase.CLOSED
    return found[0]


def test_handshake_authenticates_both_sides() -> None:
    client_keys, server_keys = keys(), keys()
    client = ChannelConnection(client_keys, initiator=True, now=0.0)
    server = ChannelConnection(server_keys, initiator=False, now=0.0)
    first = client.data_to_send()
    assert first.startswith(MAGIC) and len(first) == 16 + 2 + 32
    server.receive_data(first, 0.0)
    second = server.data_to_send()
    assert second.startswith(MAGIC) and len(second) == 16 + 2 + 192
    client.receive_data(second, 0.0)
    third = client.data_to_send()
    assert len(third) == 2 + 160
    server.receive_data(third, 0.0)
    (done_client,) = events(client)
    (done_server,) = events(server)
    assert isinstance(done_client, HandshakeComplete) and isinstance(done_server, HandshakeComplete)
    assert done_client.peer_key == server_keys.public_key == server.keys.public_key
    assert done_server.peer_key == client_keys.public_key
    assert done_client.handshake_hash == done_server.handshake_hash
    assert client.phase is server.phase is Phase.OPEN


def test_messages_on_a_named_stream_both_ways() -> None:
    client, server = client_and_server()
    stream = client.open_stream(ECHO)
    client.send_message(stream, b"hello")
    client.send_message(stream, b"")
    client.send_message(stream, b"x" * MAX_BODY)
    pump(client, server)
    assert events(server) == [
        StreamOpened(stream, ECHO),
        MessageReceived(stream, b"hello"),
        MessageReceived(stream, b""),
        MessageReceived(stream, b"x" * MAX_BODY),
    ]
    server.send_message(stream, b"back")
    server.close_stream(stream)
    client.close_stream(stream)
    pump(client, server)
    assert events(client) == [MessageReceived(stream, b"back"), StreamEnded(stream)]
    assert events(server) == [StreamEnded(stream)]
    assert client.get_timer() is not None and not client._streams and not server._streams


def test_stream_ids_have_the_opener_parity() -> None:
    client, server = client_and_server()
    assert [client.open_stream(ECHO), client.open_stream(ECHO)] == [1, 3]
    server.protocols = {ECHO}
    assert server.open_stream(ECHO) == 2


def test_a_wrong_expected_node_is_refused_before_we_show_our_identity() -> None:
    client = ChannelConnection(keys(), initiator=True, now=0.0, expected_peer=keys().public_key)
    server = ChannelConnection(keys(), initiator=False, now=0.0)
    server.receive_data(client.data_to_send(), 0.0)
    client.receive_data(server.data_to_send(), 0.0)
    event = closed(client)
    assert isinstance(event.error, ChannelAuthError) and "expected node" in event.reason
    assert client.data_to_send() == b""  # message 3 (our identity) never sent


def test_the_expected_node_is_accepted() -> None:
    server_keys = keys()
    client = ChannelConnection(
        keys(), initiator=True, now=0.0, expected_peer=server_keys.public_key
    )
    server = ChannelConnection(server_keys, initiator=False, now=0.0)
    pump(client, server)
    assert client.peer_key == server_keys.public_key and client.phase is Phase.OPEN


def test_mitm_with_its_own_static_key_and_a_copied_signature_fails() -> None:
    """The attacker forwards the real node's identity payload but must use its own s."""
    real = keys()
    attacker = keys()
    forged = LocalKeys(attacker.identity, attacker.static, real.public_key, real.payload)
    client = ChannelConnection(keys(), initiator=True, now=0.0, expected_peer=real.public_key)
    mitm = ChannelConnection(forged, initiator=False, now=0.0)
    pump(client, mitm)
    event = closed(client)
    assert isinstance(event.error, ChannelAuthError) and "vouch" in event.reason
    assert mitm.phase is not Phase.OPEN


def test_mitm_swapping_the_ephemeral_key_breaks_the_handshake() -> None:
    client = ChannelConnection(keys(), initiator=True, now=0.0)
    server = ChannelConnection(keys(), initiator=False, now=0.0)
    server.receive_data(client.data_to_send(), 0.0)
    answer = bytearray(server.data_to_send())
    attacker_e = ChannelConnection(keys(), initiator=True, now=0.0).data_to_send()[18:50]
    answer[18:50] = attacker_e  # the responder's e, after magic and length
    client.receive_data(bytes(answer), 0.0)
    event = closed(client)
    assert isinstance(event.error, ChannelAuthError)


def test_mitm_relaying_two_handshakes_is_seen_as_itself() -> None:
    """A relay that terminates both handshakes shows its own ID, never the server's."""
    server_keys, relay_keys = keys(), keys()
    client = ChannelConnection(
        keys(), initiator=True, now=0.0, expected_peer=server_keys.public_key
    )
    relay = ChannelConnection(relay_keys, initiator=False, now=0.0)
    pump(client, relay)
    assert closed(client).error is not None


def _tamper_test(mutate: object) -> ConnectionClosed:
    client, server = client_and_server()
    stream = client.open_stream(ECHO)
    frames = []
    for text in (b"one", b"two", b"three"):
        client.send_message(stream, text)
        frames.append(client.data_to_send())
    assert callable(mutate)
    for chunk in mutate(frames):
        server.receive_data(chunk, 0.0)
    return closed(server)


def test_a_tampered_frame_fails_authentication() -> None:
    def flip(frames: list[bytes]) -> list[bytes]:
        last = bytearray(frames[1])
        last[-1] ^= 1
        return [frames[0], bytes(last)]

    event = _tamper_test(flip)
    assert isinstance(event.error, ChannelAuthError) and event.code == CloseCode.PROTOCOL_ERROR


def test_a_replayed_frame_fails_authentication() -> None:
    event = _tamper_test(lambda frames: [frames[0], frames[1], frames[1]])
    assert isinstance(event.error, ChannelAuthError) and "replayed" in event.reason


def test_reordered_frames_fail_authentication() -> None:
    event = _tamper_test(lambda frames: [frames[0], frames[2], frames[1]])
    assert isinstance(event.error, ChannelAuthError)


def test_a_changed_length_prefix_fails_authentication() -> None:
    def grow(frames: list[bytes]) -> list[bytes]:
        first = bytearray(frames[0] + frames[1])
        first[3] -= 1  # claims one byte less: the cut lands inside the frame
        return [bytes(first)]

    assert isinstance(_tamper_test(grow).error, ChannelAuthError)


def test_an_oversized_frame_is_refused_before_its_body_arrives() -> None:
    _client, server = client_and_server()
    server.receive_data((MAX_BODY + 22).to_bytes(4, "big"), 0.0)
    event = closed(server)
    assert isinstance(event.error, FrameTooLargeError)
    assert len(server._in) <= 4


def test_a_frame_shorter_than_a_header_is_refused() -> None:
    _client, server = client_and_server()
    server.receive_data((5).to_bytes(4, "big") + b"12345", 0.0)
    assert isinstance(closed(server).error, ChannelProtocolError)


def test_oversized_handshake_message_and_wrong_magic() -> None:
    server = ChannelConnection(keys(), initiator=False, now=0.0)
    server.receive_data(MAGIC + (2000).to_bytes(2, "big"), 0.0)
    assert isinstance(closed(server).error, FrameTooLargeError)
    other = ChannelConnection(keys(), initiator=False, now=0.0)
    other.receive_data(b"\x13BitTorrent protocol", 0.0)
    assert isinstance(closed(other).error, ChannelHandshakeError)
    assert other.data_to_send() == b""  # nothing is answered before authentication


def test_a_truncated_handshake_times_out() -> None:
    client = ChannelConnection(keys(), initiator=True, now=0.0)
    server = ChannelConnection(keys(), initiator=False, now=0.0)
    server.receive_data(client.data_to_send()[:-5], 1.0)
    assert server.get_timer() == 10.0
    server.handle_timer(9.9)
    assert server.phase is Phase.AWAIT_MESSAGE_1
    server.handle_timer(10.0)
    event = closed(server)
    assert isinstance(event.error, ChannelTimeoutError) and server.data_to_send() == b""


def test_a_short_handshake_message_is_refused() -> None:
    server = ChannelConnection(keys(), initiator=False, now=0.0)
    server.receive_data(MAGIC + (3).to_bytes(2, "big") + b"abc", 0.0)
    assert isinstance(closed(server).error, ChannelHandshakeError)
    client = ChannelConnection(keys(), initiator=True, now=0.0)
    client.receive_data(MAGIC + (40).to_bytes(2, "big") + bytes(40), 0.0)
    assert isinstance(closed(client).error, ChannelHandshakeError)  # all-zero key: low order


def test_unknown_protocol_is_reset_with_code_2() -> None:
    client, server = client_and_server()
    stream = client.open_stream("servent/nothing/1")
    client.send_message(stream, b"ignored")
    pump(client, server)
    assert events(server) == []
    (reset,) = events(client)
    assert reset == StreamReset(
        stream, CloseCode.UNKNOWN_PROTOCOL, "unknown protocol servent/nothing/1"
    )
    with pytest.raises(ChannelStateError):
        client.send_message(stream, b"more")


def test_too_many_streams_from_the_peer_are_refused() -> None:
    client, server = client_and_server(config=ChannelConfig(max_peer_streams=2))
    ids = [client.open_stream(ECHO) for _ in range(3)]
    pump(client, server)
    assert [e.stream_id for e in events(server) if isinstance(e, StreamOpened)] == ids[:2]
    assert events(client) == [StreamReset(ids[2], CloseCode.REFUSED, "too many streams")]


def _inject(
    conn_from: ChannelConnection, conn_to: ChannelConnection, kind: FrameType, sid: int, body: bytes
) -> None:
    """Send a frame the honest API would never produce."""
    conn_from._queue(kind, sid, body)
    conn_to.receive_data(conn_from.data_to_send(), 0.0)


def test_stream_rule_violations_close_with_a_protocol_error() -> None:
    for kind, sid, body in (
        (FrameType.OPEN, 2, ECHO.encode()),  # the server's parity, from the client
        (FrameType.OPEN, 1, b"Bad Name"),
        (FrameType.DATA, 9, b"x"),  # never opened
        (FrameType.DATA, 0, b"x"),  # stream frame on stream 0
        (FrameType.PING, 1, bytes(8)),  # connection frame on a stream
        (FrameType.GOODBYE, 0, b"\x00"),  # body too short
    ):
        client, server = client_and_server()
        _inject(client, server, kind, sid, body)
        event = closed(server)
        assert isinstance(event.error, ChannelProtocolError), (kind, sid, event)
        pump(client, server)
        assert closed(client).by_peer  # the GOODBYE told the client why
    client, server = client_and_server()
    client._queue(FrameType.OPEN, 3, ECHO.encode())
    client._queue(FrameType.OPEN, 1, ECHO.encode())  # not above the last one
    server.receive_data(client.data_to_send(), 0.0)
    assert isinstance(closed(server).error, ChannelProtocolError)


def test_unknown_frame_types_below_0x80_close_and_above_are_ignored() -> None:
    client, server = client_and_server()
    _inject(client, server, 0x90, 0, b"future")  # type: ignore[arg-type]
    assert server.phase is Phase.OPEN and events(server) == []
    _inject(client, server, 0x42, 0, b"")  # type: ignore[arg-type]
    assert isinstance(closed(server).error, ChannelProtocolError)


def test_frames_for_a_stream_we_reset_are_ignored() -> None:
    client, server = client_and_server()
    stream = client.open_stream(ECHO)
    pump(client, server)
    events(server)
    server.send_message(stream, b"in flight")
    late = server.data_to_send()
    client.reset_stream(stream, CloseCode.NORMAL, "done")
    client.receive_data(late, 0.0)
    assert events(client) == [] and client.phase is Phase.OPEN
    pump(client, server)
    assert events(server) == [StreamReset(stream, CloseCode.NORMAL, "done")]


def test_rekey_keeps_both_sides_in_step() -> None:
    config = ChannelConfig(rekey_after_frames=3, rekey_after_bytes=100)
    client, server = client_and_server(config=config)
    stream = client.open_stream(ECHO)
    sent = [bytes([i]) * (i * 10) for i in range(20)]
    for message in sent:
        client.send_message(stream, message)
    wire = client.data_to_send()
    server.receive_data(wire, 0.0)
    received = [e.data for e in events(server) if isinstance(e, MessageReceived)]
    assert received == sent
    rekeys = client._send.nonce - 21  # 1 OPEN + 20 DATA: the rest were REKEY frames
    assert rekeys >= 6


def test_rekey_after_the_interval() -> None:
    client, server = client_and_server(config=ChannelConfig(rekey_interval=25.0))
    stream = client.open_stream(ECHO)
    client.handle_timer(25.0)
    server.handle_timer(25.0)
    client.send_message(stream, b"late")
    pump(client, server, now=25.0)
    assert events(server)[-1] == MessageReceived(stream, b"late")
    assert client._frames_under_key == 1  # the DATA frame went under a fresh key


def test_keepalive_and_dead_peer_timers() -> None:
    client, server = client_and_server()
    assert client.get_timer() == 30.0
    client.handle_timer(30.0)
    server.receive_data(client.data_to_send(), 30.0)  # a PING
    client.receive_data(server.data_to_send(), 30.0)  # its PONG
    assert client.phase is Phase.OPEN and server.phase is Phase.OPEN
    client.handle_timer(119.9)  # keep-alives only, nothing received since 30 s
    client.handle_timer(120.0)
    event = closed(client)
    assert isinstance(event.error, ChannelTimeoutError) and event.code == CloseCode.TIMEOUT


def test_an_idle_channel_says_goodbye() -> None:
    config = ChannelConfig(idle_timeout=50.0, keepalive_interval=20.0)
    client, server = client_and_server(config=config)
    for now in (20.0, 40.0):
        client.handle_timer(now)
        server.handle_timer(now)
        pump(client, server, now)
    client.handle_timer(50.0)
    assert closed(client) == ConnectionClosed(CloseCode.IDLE, "idle", by_peer=False)
    server.receive_data(client.data_to_send(), 50.0)
    assert closed(server) == ConnectionClosed(CloseCode.IDLE, "idle", by_peer=True)


def test_goodbye_reaches_the_peer_and_the_api_refuses_afterwards() -> None:
    client, server = client_and_server()
    client.close(CloseCode.SHUTDOWN, "bye")
    pump(client, server)
    assert closed(server) == ConnectionClosed(CloseCode.SHUTDOWN, "bye", by_peer=True)
    with pytest.raises(ChannelStateError):
        client.open_stream(ECHO)
    server.receive_data(b"anything after the end", 1.0)
    assert events(server) == []


def test_local_limits() -> None:
    client, _server = client_and_server()
    stream = client.open_stream(ECHO)
    with pytest.raises(ChannelStateError, match="at most"):
        client.send_message(stream, bytes(MAX_BODY + 1))
    with pytest.raises(ChannelStateError):
        client.send_message(99, b"x")
    with pytest.raises(ChannelProtocolError):
        client.open_stream("Not A Name")
    pending = ChannelConnection(keys(), initiator=True, now=0.0)
    with pytest.raises(ChannelStateError, match="not open"):
        pending.open_stream(ECHO)


def test_payload_with_extension_bytes_is_accepted_and_too_many_refused() -> None:
    base = keys()
    for extra, ok in ((b"e" * 256, True), (b"e" * 257, False)):
        server_keys = LocalKeys(base.identity, base.static, base.public_key, base.payload + extra)
        client = ChannelConnection(keys(), initiator=True, now=0.0)
        server = ChannelConnection(server_keys, initiator=False, now=0.0)
        pump(client, server)
        assert (client.phase is Phase.OPEN) is ok
