"""uTP codec round trips and hostile datagrams against a live connection."""

from __future__ import annotations

import random
import struct

from hypothesis import event, example, given, settings
from hypothesis import strategies as st

from servent.errors import UtpError
from servent.proto.utp import (
    Connected,
    ConnectionClosed,
    ConnectionState,
    PacketType,
    PeerFinished,
    decode_packet,
    encode_packet,
    looks_like_utp,
)
from servent.proto.utp.tunables import MAX_SYN_TIMEOUTS
from servent.testing.utp_link import LinkDirection, UtpLink, client_and_server

u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)


@given(
    kind=st.sampled_from(list(PacketType)),
    conn_id=u16,
    ts=u32,
    diff=u32,
    wnd=u32,
    seq=u16,
    ack=u16,
    sack=st.none() | st.binary(min_size=1, max_size=128),
    payload=st.binary(max_size=1500),
)
def test_encode_decode_round_trip(
    kind: PacketType,
    conn_id: int,
    ts: int,
    diff: int,
    wnd: int,
    seq: int,
    ack: int,
    sack: bytes | None,
    payload: bytes,
) -> None:
    data = encode_packet(
        kind,
        conn_id,
        timestamp_us=ts,
        timestamp_difference_us=diff,
        wnd_size=wnd,
        seq_nr=seq,
        ack_nr=ack,
        sack=sack,
        payload=payload,
    )
    assert looks_like_utp(data)
    packet = decode_packet(data)
    assert (packet.type, packet.connection_id, packet.timestamp_us) == (kind, conn_id, ts)
    assert (packet.timestamp_difference_us, packet.wnd_size) == (diff, wnd)
    assert (packet.seq_nr, packet.ack_nr, packet.sack, packet.payload) == (seq, ack, sack, payload)


@given(st.binary(max_size=300))
def test_decode_arbitrary_bytes_raises_only_utp_error(data: bytes) -> None:
    try:
        packet = decode_packet(data)
    except UtpError:
        return
    assert looks_like_utp(data)
    assert len(packet.payload) <= len(data) - 20


def _header(
    first: int, extension: int = 0, conn_id: int = 1001, seq: int = 5, ack: int = 0
) -> bytes:
    return struct.pack(">BBHIIIHH", first, extension, conn_id, 1, 0, 65536, seq, ack)


def test_bad_version_unknown_type_and_overlong_extension_are_refused() -> None:
    for bad in (
        _header(0x02),  # version 2
        _header(0x51),  # type 5
        _header(0x21, extension=1) + bytes((0, 200)) + b"\0" * 8,  # SACK longer than the packet
        _header(0x21, extension=1) + bytes((0, 0)),  # an empty SACK
        _header(0x21, extension=9) + bytes((9, 0)) * 20,  # endless chain
        b"d1:ad2:id20:",  # a DHT message
    ):
        try:
            decode_packet(bad)
        except UtpError:
            continue
        raise AssertionError(f"accepted {bad!r}")
    assert not looks_like_utp(b"d1:ad2:id20:aaaaaaaaaaaaaaaaaaaaaaa")


def _started() -> tuple[UtpLink, bytes]:
    link = client_and_server(seed=11)
    assert link.run_until(lambda: link.server is not None, 5)
    data = random.Random(3).randbytes(200_000)
    link.client.send(data)
    link.run_until(lambda: len(link.received["server"]) > 50_000, 30)
    return link, data


def _finishes(link: UtpLink, data: bytes) -> None:
    assert link.server is not None
    assert link.server.state is ConnectionState.CONNECTED
    assert link.run_until(lambda: len(link.received["server"]) == len(data), 120)
    assert bytes(link.received["server"]) == data


def test_hostile_packets_are_dropped_and_the_transfer_completes() -> None:
    link, data = _started()
    server = link.server
    assert server is not None
    recv_id = server.recv_id
    dropped = server.packets_dropped
    hostile = [
        _header(0x02, conn_id=recv_id),  # bad version
        _header(0x61, conn_id=recv_id),  # unknown type
        _header(0x21, extension=1, conn_id=recv_id) + bytes((0, 255)) + b"\xff" * 40,
        # a SACK whose bits lie past everything the server sent, acking nothing real
        _header(0x21, extension=1, conn_id=recv_id, ack=server.acked_seq)
        + bytes((0, 128))
        + b"\xff" * 128,
        _header(0x01, conn_id=recv_id ^ 0x5555),  # DATA on a wrong connection ID
        _header(0x31, conn_id=recv_id ^ 0x5555),  # RESET on a wrong connection ID
        _header(
            0x31, conn_id=recv_id, ack=(server.seq_nr + 500) & 0xFFFF
        ),  # RESET acking the future
        _header(0x01, conn_id=recv_id, seq=(server.ack_nr + 30000) & 0xFFFF) + b"x" * 100,
    ]
    for datagram in hostile:
        server.receive_datagram(datagram, link.now)
    assert server.packets_dropped >= dropped + 6
    _finishes(link, data)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(min_size=0, max_size=120), max_size=20))
def test_random_datagrams_on_the_right_connection_id_never_crash(garbage: list[bytes]) -> None:
    link, _ = _started()
    server = link.server
    assert server is not None
    for blob in garbage:
        first = blob[:1] or b"\x21"
        datagram = first + b"\x00" + server.recv_id.to_bytes(2, "big") + blob[1:]
        server.receive_datagram(datagram, link.now)
        link.client.receive_datagram(datagram, link.now)
    link.pump()
    for side, conn in (("server", server), ("client", link.client)):
        assert conn.bytes_in_flight >= 0
        assert 0 <= conn.receive_window() <= conn.receive_buffer
        closed = any(isinstance(e, ConnectionClosed) for e in link.events[side])
        assert (conn.state is ConnectionState.CLOSED) == closed


def test_regression_libtorrent_sack_lengths_that_are_not_multiples_of_four_are_read() -> None:
    """libtorrent sends SACKs of 1, 14, 23 bytes; dropping them stalled servent->libtorrent."""
    for length in (1, 14, 23):
        mask = bytes([0b101]) + b"\0" * (length - 1)
        packet = decode_packet(_header(0x21, extension=1) + bytes((0, length)) + mask)
        assert packet.sack == mask


def _handshake_gave_up(link: UtpLink) -> bool:
    """True if the client never connected; then both ends must say so with an error.

    The initiator sends at most ``MAX_SYN_TIMEOUTS + 1`` SYNs (libtorrent: 3), so a lossy
    enough path can refuse a connection; what must never happen is a silent or clean end.
    """
    if Connected() in link.events["client"]:
        return False
    for side, conn in (("client", link.client), ("server", link.server)):
        if conn is None:
            continue
        closes = [e for e in link.events[side] if isinstance(e, ConnectionClosed)]
        assert conn.state is ConnectionState.CLOSED and closes, side
        assert all(e.error for e in closes), (side, closes)
        assert PeerFinished() not in link.events[side]
        assert link.received[side] == b""
    return True


HANDSHAKE_LOST = {"seed": 69789, "loss": 0.25, "jitter": 0.0, "client_seq": 0, "server_seq": 0}


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 1 << 30),
    loss=st.floats(0.0, 0.25),
    jitter=st.floats(0.0, 0.05),
    up=st.integers(0, 200_000),
    down=st.integers(0, 200_000),
    client_seq=u16,
    server_seq=u16,
)
@example(**HANDSHAKE_LOST, up=1, down=0)
@example(**HANDSHAKE_LOST, up=0, down=1)
def test_any_path_delivers_both_streams_exactly_and_closes(
    seed: int, loss: float, jitter: float, up: int, down: int, client_seq: int, server_seq: int
) -> None:
    """Random loss (up to 25 %), reordering, sizes and sequence numbers (wrapping
    included): once connected, both byte streams arrive exactly, then both FINs
    close both ends; a handshake that gives up closes both ends with an error."""
    forward = LinkDirection(delay=0.01, jitter=jitter, loss=loss)
    backward = LinkDirection(delay=0.01, jitter=jitter, loss=loss)
    link = client_and_server(
        forward=forward, backward=backward, seed=seed, client_seq=client_seq, server_seq=server_seq
    )
    rng = random.Random(seed)
    sent_up, sent_down = rng.randbytes(up), rng.randbytes(down)
    link.client.send(sent_up)
    link.client.close()
    assert link.run_until(
        lambda: link.server is not None or link.client.state is ConnectionState.CLOSED, 120
    )
    server = link.server
    if server is not None:
        server.send(sent_down)
        server.close()
    closed = link.run_until(
        lambda: (
            link.client.state is ConnectionState.CLOSED
            and (server is None or server.state is ConnectionState.CLOSED)
        ),
        3600,
    )
    assert closed, (link.client.state, server and server.state)
    if _handshake_gave_up(link):
        event("the handshake gave up")
        return
    assert bytes(link.received["server"]) == sent_up
    assert bytes(link.received["client"]) == sent_down


def test_regression_a_handshake_lost_under_loss_is_an_error_on_both_ends() -> None:
    """Hypothesis' find (25 % loss each way): the first SYN arrives, its SYN-ACK is lost,
    the three resent SYNs are lost. The client gives up after its fourth SYN; the
    server, never confirmed, sends nothing and times out. Neither end may report a
    clean close or an end of stream, and no byte may be delivered."""
    forward = LinkDirection(delay=0.01, loss=0.25)
    backward = LinkDirection(delay=0.01, loss=0.25)
    link = client_and_server(
        forward=forward, backward=backward, seed=69789, client_seq=0, server_seq=0
    )
    link.client.send(b"\xfb")
    link.client.close()
    assert link.run_until(lambda: link.server is not None, 1)
    server = link.server
    assert server is not None
    server.send(b"\xfb")
    server.close()
    assert link.run_until(lambda: server.state is ConnectionState.CLOSED, 3600)
    assert link.client.state is ConnectionState.CLOSED
    assert link.client.packets_sent == 1 + MAX_SYN_TIMEOUTS  # every SYN, nothing more
    assert forward.dropped == MAX_SYN_TIMEOUTS and backward.dropped >= 1
    assert _handshake_gave_up(link)
    assert ConnectionClosed("timed out", True) in link.events["client"]


def test_a_full_sack_mask_acknowledges_only_packets_that_were_sent() -> None:
    """A 1,024-bit SACK on a connection with a few packets out: the packets after
    ``ack_nr + 1`` count as received, bits past what was sent are ignored."""
    link, _ = _started()
    client = link.client
    outstanding = (client.seq_nr - client.acked_seq - 1) & 0xFFFF
    assert outstanding < 200
    state = encode_packet(
        PacketType.STATE, client.recv_id, timestamp_us=1, timestamp_difference_us=0,
        wnd_size=1 << 20, seq_nr=link.server.seq_nr if link.server else 0,
        ack_nr=client.acked_seq, sack=b"\xff" * 128,
    )  # fmt: skip
    client.receive_datagram(state, link.now)
    assert 0 <= client.unacked_bytes <= client.payload_size  # only ack_nr + 1 is left
    assert client.bytes_in_flight >= 0
    assert client.state is ConnectionState.CONNECTED
