"""uTP connections over a simulated path in virtual time (no sockets)."""

from __future__ import annotations

import random
from dataclasses import replace

from servent.proto.utp import (
    Connected,
    ConnectionClosed,
    ConnectionState,
    PacketType,
    PeerFinished,
    decode_packet,
    encode_packet,
)
from servent.testing.utp_link import LinkDirection, UtpLink, client_and_server


def _payload(size: int, seed: int = 1) -> bytes:
    return random.Random(seed).randbytes(size)


def _transfer(link: UtpLink, data: bytes, timeout: float) -> None:
    assert link.run_until(lambda: link.server is not None, 10)
    link.client.send(data)
    link.client.close()
    done = link.run_until(lambda: len(link.received["server"]) >= len(data), timeout)
    assert done, (len(link.received["server"]), link.now)
    assert bytes(link.received["server"]) == data


def test_handshake_connects_both_sides() -> None:
    link = client_and_server()
    assert link.run_until(lambda: link.client.state is ConnectionState.CONNECTED, 5)
    assert link.server is not None
    link.pump()
    assert Connected() in link.events["client"]
    assert Connected() in link.events["server"]


def test_one_mebibyte_clean_link_then_both_close() -> None:
    link = client_and_server()
    data = _payload(1 << 20)
    _transfer(link, data, 60)
    assert link.server is not None
    assert link.run_until(lambda: PeerFinished() in link.events["server"], 10)
    link.server.close()
    both_closed = link.run_until(
        lambda: (
            link.client.state is ConnectionState.CLOSED
            and link.server is not None
            and link.server.state is ConnectionState.CLOSED
        ),
        30,
    )
    assert both_closed
    assert ConnectionClosed("closed", False) in link.events["client"]
    assert ConnectionClosed("closed", False) in link.events["server"]


def test_ten_mebibytes_under_loss_and_reordering() -> None:
    lossy = LinkDirection(delay=0.020, jitter=0.010, loss=0.05)
    link = client_and_server(forward=lossy, backward=replace(lossy), seed=7)
    data = _payload(10 << 20, seed=2)
    _transfer(link, data, 3600)
    assert link.client.packets_resent > 0
    assert link.forward.dropped > 0


def test_both_directions_at_once_under_loss() -> None:
    lossy = LinkDirection(delay=0.005, jitter=0.004, loss=0.05)
    link = client_and_server(forward=lossy, backward=replace(lossy), seed=3)
    assert link.run_until(lambda: link.server is not None, 10)
    assert link.server is not None
    up, down = _payload(300_000, 4), _payload(400_000, 5)
    link.client.send(up)
    link.server.send(down)
    done = link.run_until(
        lambda: (
            len(link.received["server"]) == len(up) and len(link.received["client"]) == len(down)
        ),
        600,
    )
    assert done
    assert bytes(link.received["server"]) == up
    assert bytes(link.received["client"]) == down


def test_ledbat_backs_off_when_the_bottleneck_queue_grows() -> None:
    """A 1 MB/s link with a 1 s queue: LEDBAT keeps queueing near 100 ms, not the full queue."""
    bottleneck = LinkDirection(delay=0.010, rate=1_000_000, queue_bytes=1_000_000)
    link = client_and_server(forward=bottleneck, seed=5)
    windows: list[float] = []
    link.observers.append(lambda lk: windows.append(lk.client.ledbat.window))
    data = _payload(12 << 20, seed=6)
    _transfer(link, data, 600)
    late = windows[len(windows) // 2 :]
    # 1 MB/s * (20 ms RTT + 100 ms target) ~ 120 kB; the window stays in that range.
    assert max(late) < 300_000
    assert link.client.ledbat.last_delay_us < 200_000
    assert bottleneck.max_queue_delay < 0.6
    assert bottleneck.dropped == 0


def test_syn_to_nowhere_times_out() -> None:
    link = client_and_server(forward=LinkDirection(loss=1.0))
    assert link.run_until(lambda: link.client.state is ConnectionState.CLOSED, 60)
    assert any(isinstance(e, ConnectionClosed) and e.error for e in link.events["client"])


def test_abort_resets_the_peer() -> None:
    link = client_and_server()
    assert link.run_until(lambda: link.server is not None, 5)
    link.client.send(b"hello")
    assert link.run_until(lambda: bytes(link.received["server"]) == b"hello", 5)
    link.client.abort()
    link.pump()
    assert link.run_until(
        lambda: link.server is not None and link.server.state is ConnectionState.CLOSED, 5
    )
    assert ConnectionClosed("reset by peer", True) in link.events["server"]


def test_held_bytes_close_the_window_and_release_reopens_it() -> None:
    link = client_and_server()
    assert link.run_until(lambda: link.server is not None, 5)
    assert link.server is not None
    link.server.hold(link.server.receive_buffer)  # the application stops reading
    link.client.send(_payload(200_000))
    link.run_until(lambda: False, 5)
    assert len(link.received["server"]) < 30_000  # the first flight, then probes
    link.server.release(link.server.receive_buffer)
    assert link.run_until(lambda: len(link.received["server"]) == 200_000, 120)


def test_regression_an_unconfirmed_responder_with_data_does_not_spin_its_timer() -> None:
    """A responder holds DATA until the initiator speaks; its probe timer must not fire
    again and again at the same instant (the link raises on such a spin)."""
    link = client_and_server()
    assert link.run_until(lambda: link.server is not None, 5)
    assert link.server is not None
    link.forward.loss = 1.0  # nothing more from the initiator (as libtorrent, silent)
    link.server.send(b"greeting first")
    link.run_until(lambda: False, 60)
    assert link.received["client"] == b""
    link.forward.loss = 0.0
    assert link.server.state is ConnectionState.CONNECTED
    link.client.send(b"hello")  # now the responder is confirmed and its data flows
    assert link.run_until(lambda: bytes(link.received["client"]) == b"greeting first", 10)


def test_a_lost_syn_ack_is_answered_again_when_the_syn_is_resent() -> None:
    link = client_and_server()
    link.backward.loss = 1.0  # the responder's STATE (SYN-ACK) is lost
    assert link.run_until(lambda: link.server is not None, 5)
    link.run_until(lambda: False, 0.5)
    assert link.client.state is ConnectionState.SYN_SENT
    link.backward.loss = 0.0
    assert link.run_until(lambda: link.client.state is ConnectionState.CONNECTED, 5)
    assert link.client.packets_resent >= 1  # the SYN went out again
    link.client.send(b"after the second SYN")
    assert link.run_until(lambda: bytes(link.received["server"]) == b"after the second SYN", 5)


def test_a_lost_last_ack_is_sent_again_when_the_fin_repeats() -> None:
    link = client_and_server()
    assert link.run_until(lambda: link.server is not None, 5)
    server = link.server
    assert server is not None
    link.client.send(b"bye")
    link.client.close()
    assert link.run_until(lambda: PeerFinished() in link.events["server"], 5)
    server.close()
    # The client closes when the server's FIN arrives; its ACK of that FIN is lost.
    assert link.run_until(lambda: link.client.state is ConnectionState.CLOSED, 5)
    link.forward.loss = 1.0
    link.run_until(lambda: False, 0.05)
    assert server.state is ConnectionState.CONNECTED
    link.forward.loss = 0.0
    assert link.run_until(lambda: server.state is ConnectionState.CLOSED, 10)
    assert ConnectionClosed("closed", False) in link.events["server"]


def test_a_repeated_data_packet_after_a_clean_close_gets_the_final_ack_again() -> None:
    """Our ACKs of the peer's last DATA and FIN were lost and the peer resends the
    DATA first: the closed side answers it with the final ACK (the FIN may be lost)."""
    link = client_and_server()
    assert link.run_until(lambda: link.server is not None, 5)
    server = link.server
    assert server is not None
    link.client.close()
    assert link.run_until(lambda: PeerFinished() in link.events["server"], 5)
    server.send(b"last words")
    server.close()
    assert link.run_until(lambda: link.client.state is ConnectionState.CLOSED, 5)
    assert link.received["client"] == b"last words"
    link.pump()
    final_ack = link.client.ack_nr  # the server's FIN
    repeated = encode_packet(
        PacketType.DATA, link.client.recv_id, timestamp_us=1, timestamp_difference_us=0,
        wnd_size=1 << 20, seq_nr=(final_ack - 1) & 0xFFFF,
        ack_nr=(link.client.seq_nr - 1) & 0xFFFF, payload=b"last words",
    )  # fmt: skip
    link.client.receive_datagram(repeated, link.now)
    answer = [decode_packet(d) for d in link.client.datagrams_to_send(link.now)]
    assert [(p.type, p.ack_nr) for p in answer] == [(PacketType.STATE, final_ack)]
    assert link.received["client"] == b"last words"  # nothing delivered twice
