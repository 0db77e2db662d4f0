"""Fuzz the uTP packet codec and a live connection: ``python -m fuzz.utp --runs N``.

Each input is decoded (only ``UtpError`` may come out), then delivered as a
datagram to a connected responder that has data in flight and to an
initiator still waiting for its SYN-ACK; neither may raise, and both must
keep their counters sane. The corpus holds real packets of both kinds.
"""

from __future__ import annotations

import contextlib
import sys

from fuzz import run
from servent.errors import UtpError
from servent.proto.utp import PacketType, UtpConnection, decode_packet, encode_packet

CLIENT_ID = 1000  # the initiator's receive ID; it sends with 1001


def _packet(kind: PacketType, conn_id: int, seq: int, ack: int, **extra: object) -> bytes:
    return encode_packet(
        kind, conn_id, timestamp_us=123_456, timestamp_difference_us=789,
        wnd_size=1 << 20, seq_nr=seq, ack_nr=ack, **extra,  # type: ignore[arg-type]
    )  # fmt: skip


SYN = _packet(PacketType.SYN, CLIENT_ID, 100, 0)
CORPUS = [
    SYN,
    _packet(PacketType.DATA, CLIENT_ID + 1, 101, 20000, payload=b"\x13BitTorrent protocol"),
    _packet(PacketType.STATE, CLIENT_ID + 1, 101, 20003, sack=b"\x05\x00\x00\x00"),
    _packet(PacketType.STATE, CLIENT_ID + 1, 101, 20001, sack=b"\x07"),  # libtorrent: 1 byte
    _packet(PacketType.FIN, CLIENT_ID + 1, 102, 20001),
    _packet(PacketType.RESET, CLIENT_ID + 1, 101, 20001),
    _packet(PacketType.STATE, CLIENT_ID, 20000, 100),  # a SYN-ACK for the initiator
]


def _responder() -> UtpConnection:
    conn = UtpConnection.accept(decode_packet(SYN), 20000, 0.0)
    conn.datagrams_to_send(0.0)
    conn.receive_datagram(CORPUS[1], 0.01)  # the initiator speaks: data may flow
    conn.send(bytes(10_000))
    conn.datagrams_to_send(0.02)
    return conn


def _initiator() -> UtpConnection:
    conn = UtpConnection.connect(CLIENT_ID, 100, 0.0)
    conn.datagrams_to_send(0.0)
    return conn


def target(data: bytes) -> None:
    with contextlib.suppress(UtpError):
        decode_packet(data)
    for conn in (_responder(), _initiator()):
        conn.receive_datagram(data, 0.05)
        conn.datagrams_to_send(0.05)
        if (when := conn.next_timer()) is not None:
            conn.handle_timer(when)
        conn.datagrams_to_send(when or 0.05)
        while conn.next_event() is not None:
            pass
        if conn.bytes_in_flight < 0 or conn.unacked_bytes < 0 or conn.receive_window() < 0:
            raise AssertionError("negative counter after a hostile datagram")


if __name__ == "__main__":
    sys.exit(run("utp", target, CORPUS))
