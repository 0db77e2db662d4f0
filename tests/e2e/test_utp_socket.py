"""uTP endpoints on loopback UDP: streams, flow control, one port shared with the DHT."""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections.abc import Callable

import pytest

from servent.net.dht_driver import DhtDriver
from servent.net.peer_dialer import MAX_UTP_FIRST, PeerDialer
from servent.net.udp_demux import UdpPort
from servent.net.utp_socket import UtpSocket

DEADLINE = 60.0


class Sink(asyncio.BufferedProtocol):
    """Counts and hashes what arrives; can stop reading for a while."""

    def __init__(self) -> None:
        self.buffer = bytearray(65536)
        self.digest = hashlib.sha256()
        self.received = 0
        self.received_at_eof: int | None = None
        self.eof = asyncio.Event()
        self.lost = asyncio.Event()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def get_buffer(self, sizehint: int) -> memoryview:
        return memoryview(self.buffer)

    def buffer_updated(self, nbytes: int) -> None:
        self.digest.update(self.buffer[:nbytes])
        self.received += nbytes

    def eof_received(self) -> bool:
        self.received_at_eof = self.received
        self.eof.set()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost.set()


class Source(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.writable = asyncio.Event()
        self.writable.set()
        self.lost = asyncio.Event()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def pause_writing(self) -> None:
        self.writable.clear()

    def resume_writing(self) -> None:
        self.writable.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost.set()


async def _send_all(source: Source, data: bytes) -> None:
    assert source.transport is not None
    for offset in range(0, len(data), 1 << 16):
        await asyncio.wait_for(source.writable.wait(), DEADLINE)
        source.transport.write(data[offset : offset + (1 << 16)])
    source.transport.close()


def _pair(host: str) -> tuple[UtpSocket, UtpSocket, list[Sink]]:
    """A listening and a dialling socket on ``host``; accepted streams land in the list."""
    sinks: list[Sink] = []

    def accept() -> Sink:
        sinks.append(Sink())
        return sinks[-1]

    server = UtpSocket(accept=accept)
    server.bind(host)
    client = UtpSocket()
    client.bind(host)
    return server, client, sinks


async def test_stream_of_eight_mebibytes_over_loopback_then_fin() -> None:
    server, client, sinks = _pair("127.0.0.1")
    try:
        data = random.Random(1).randbytes(8 << 20)
        transport, source = await asyncio.wait_for(
            client.create_connection(Source, "127.0.0.1", server.port), 10
        )
        assert transport.get_extra_info("transport") == "utp"
        assert isinstance(source, Source)
        await _send_all(source, data)
        await asyncio.wait_for(sinks[0].eof.wait(), DEADLINE)
        assert sinks[0].received == len(data)
        assert sinks[0].digest.digest() == hashlib.sha256(data).digest()
        await asyncio.wait_for(source.lost.wait(), DEADLINE)
        await asyncio.wait_for(sinks[0].lost.wait(), DEADLINE)
    finally:
        client.close()
        server.close()


async def test_paused_reader_closes_the_window_and_nothing_is_lost() -> None:
    server, client, sinks = _pair("127.0.0.1")
    try:
        transport, source = await asyncio.wait_for(
            client.create_connection(Source, "127.0.0.1", server.port), 10
        )
        assert isinstance(source, Source)
        transport.write(b"x")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while not sinks or sinks[0].received == 0:
            assert loop.time() < deadline
            await asyncio.sleep(0.01)
        sink = sinks[0]
        assert sink.transport is not None
        sink.transport.pause_reading()
        data = random.Random(2).randbytes(3 << 20)
        sender = asyncio.create_task(_send_all(source, data))
        deadline = loop.time() + 20
        while transport.conn.peer_window > 0:  # the receiver's window fills and closes
            assert loop.time() < deadline
            await asyncio.sleep(0.02)
        assert sink.received == 1
        sink.transport.resume_reading()
        await asyncio.wait_for(sender, DEADLINE)
        await asyncio.wait_for(sink.eof.wait(), DEADLINE)
        assert sink.digest.digest() == hashlib.sha256(b"x" + data).digest()
    finally:
        client.close()
        server.close()


async def _until(condition: Callable[[], bool], what: str, within: float = DEADLINE) -> None:
    """Poll a condition of the connections (they offer no event for it), with a deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not condition():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


async def test_finished_comes_only_after_the_receiver_has_the_whole_stream() -> None:
    """Regression: a sender that exited on connection_lost (which comes once its bytes are
    queued, as with TCP) reset a stream whose tail was still in flight."""
    server, client, sinks = _pair("127.0.0.1")
    try:
        data = random.Random(4).randbytes(2 << 20)
        transport, source = await asyncio.wait_for(
            client.create_connection(Source, "127.0.0.1", server.port), 10
        )
        assert isinstance(source, Source)
        await _send_all(source, data)
        await asyncio.wait_for(transport.finished, DEADLINE)  # None: a clean close
        sink = sinks[0]
        assert sink.received_at_eof == len(data)
        assert sink.digest.digest() == hashlib.sha256(data).digest()
        assert source.lost.is_set()
        assert transport.conn.unacked_bytes == 0
    finally:
        client.close()
        server.close()


async def test_finished_raises_when_the_peer_resets() -> None:
    server, client, sinks = _pair("127.0.0.1")
    try:
        transport, _ = await asyncio.wait_for(
            client.create_connection(Source, "127.0.0.1", server.port), 10
        )
        await _until(lambda: bool(sinks), "the server to accept")
        server.close()  # resets its connections
        with pytest.raises(ConnectionResetError):
            await asyncio.wait_for(transport.finished, DEADLINE)
    finally:
        client.close()


async def test_a_paused_reader_gets_the_end_of_stream_after_the_held_bytes() -> None:
    """The FIN arrives while every byte is held for a paused reader: eof_received
    must wait until those bytes were handed over, as with TCP."""
    server, client, sinks = _pair("127.0.0.1")
    try:
        transport, source = await asyncio.wait_for(
            client.create_connection(Source, "127.0.0.1", server.port), 10
        )
        assert isinstance(source, Source) and source.transport is not None
        await _until(lambda: bool(sinks), "the server to accept")
        sink = sinks[0]
        assert sink.transport is not None
        sink.transport.pause_reading()
        data = random.Random(5).randbytes(100_000)
        source.transport.write(data)
        source.transport.close()
        conn = transport.conn
        await _until(
            lambda: conn.queued_bytes == 0 and conn.acked_seq == (conn.seq_nr - 1) & 0xFFFF,
            "the data and the FIN to be acknowledged",
        )
        assert sink.received == 0 and not sink.eof.is_set()
        sink.transport.resume_reading()
        await asyncio.wait_for(sink.eof.wait(), DEADLINE)
        assert sink.received_at_eof == len(data)
        assert sink.digest.digest() == hashlib.sha256(data).digest()
    finally:
        client.close()
        server.close()


async def test_dialling_a_port_nobody_answers_fails_in_bounded_time() -> None:
    silent = UdpPort.bind("127.0.0.1", 0)  # bound but never read: SYNs go unanswered
    client = UtpSocket()
    client.bind("127.0.0.1")
    try:
        with pytest.raises((OSError, TimeoutError)):
            await asyncio.wait_for(
                client.create_connection(Source, "127.0.0.1", silent.address[1]), 30
            )
        assert len(client) == 0
    finally:
        silent.close()
        client.close()


async def test_utp_and_dht_share_one_port() -> None:
    port = UdpPort.bind("127.0.0.1", 0)
    sinks: list[Sink] = []

    def accept() -> Sink:
        sinks.append(Sink())
        return sinks[-1]

    utp = UtpSocket(accept=accept)
    utp.attach(port)
    dht = DhtDriver(udp_port=port)
    other = DhtDriver(host="127.0.0.1")
    client = UtpSocket()
    client.bind("127.0.0.1")
    await dht.start()
    await other.start()
    try:
        assert dht.address == port.address
        pong = await asyncio.wait_for(other.ping(port.address), 10)
        assert pong.node_id == dht.node_id
        _transport, source = await asyncio.wait_for(
            client.create_connection(Source, "127.0.0.1", port.address[1]), 10
        )
        assert isinstance(source, Source)
        await _send_all(source, b"hello over the DHT's port")
        await asyncio.wait_for(sinks[0].eof.wait(), DEADLINE)
        assert sinks[0].received == len(b"hello over the DHT's port")
        assert port.unclaimed == 0
    finally:
        client.close()
        await other.close()
        await dht.close()
        utp.close()
        port.close()


async def test_dial_order_follows_the_preference() -> None:
    utp = UtpSocket()
    utp.bind("127.0.0.1")
    try:
        assert PeerDialer(utp, "prefer-tcp").order() == ["tcp", "utp"]
        assert PeerDialer(utp, "prefer-utp").order() == ["utp", "tcp"]
        assert PeerDialer(utp, "tcp-only").order() == ["tcp"]
        assert PeerDialer(None, "prefer-utp").order() == ["tcp"]
        with pytest.raises(ValueError, match="utp_preference"):
            PeerDialer(utp, "sometimes")
    finally:
        utp.close()


async def test_a_peer_that_drops_tcp_before_the_handshake_is_dialled_over_utp_first() -> None:
    """libtorrent with TCP off accepts TCP and closes it: that peer gets uTP first next
    time, whatever the preference (but never under tcp-only); the memory is bounded."""
    utp = UtpSocket()
    utp.bind("127.0.0.1")
    try:
        dialer = PeerDialer(utp, "prefer-tcp")
        dialer.tcp_closed_early("127.0.0.1", 6881)
        assert dialer.order(("127.0.0.1", 6881)) == ["utp", "tcp"]
        assert dialer.order(("127.0.0.1", 6882)) == ["tcp", "utp"]
        tcp_only = PeerDialer(utp, "tcp-only")
        tcp_only.tcp_closed_early("127.0.0.1", 6881)
        assert tcp_only.order(("127.0.0.1", 6881)) == ["tcp"]
        for port in range(1, MAX_UTP_FIRST + 10):
            dialer.tcp_closed_early("127.0.0.2", port)
        assert len(dialer.utp_first) == MAX_UTP_FIRST
        assert dialer.order(("127.0.0.1", 6881)) == ["tcp", "utp"]  # the oldest went first
        assert dialer.order(("127.0.0.2", MAX_UTP_FIRST + 9)) == ["utp", "tcp"]
    finally:
        utp.close()


async def test_stream_over_ipv6_loopback() -> None:
    server, client, sinks = _pair("::1")
    try:
        data = random.Random(3).randbytes(300_000)
        transport, source = await asyncio.wait_for(
            client.create_connection(Source, "::1", server.port), 10
        )
        assert transport.conn.payload_size == 1232 - 20  # the IPv6 minimum MTU
        assert isinstance(source, Source)
        await _send_all(source, data)
        await asyncio.wait_for(sinks[0].eof.wait(), DEADLINE)
        assert sinks[0].digest.digest() == hashlib.sha256(data).digest()
    finally:
        client.close()
        server.close()


async def test_syn_flood_from_one_address_is_capped_and_answered_with_reset() -> None:
    from servent.proto.utp import PacketType, decode_packet, encode_packet

    accepted: list[Sink] = []

    def accept() -> Sink:
        accepted.append(Sink())
        return accepted[-1]

    server = UtpSocket(accept=accept, max_per_ip=4)
    server.bind("127.0.0.1")
    flooder = UdpPort.bind("127.0.0.1", 0)
    replies: list[bytes] = []
    flooder.utp_handler = lambda batch, now: replies.extend(data for data, _ in batch)
    flooder.start()
    try:
        for conn_id in range(0, 40, 2):
            syn = encode_packet(
                PacketType.SYN, conn_id, timestamp_us=1, timestamp_difference_us=0,
                wnd_size=65536, seq_nr=1, ack_nr=0,
            )  # fmt: skip
            flooder.sendto(syn, ("127.0.0.1", server.port))
        flooder.sendto(b"\x41" * 30, ("127.0.0.1", server.port))  # version 1, type 4, garbage
        flooder.sendto(b"d1:q4:ping", ("127.0.0.1", server.port))  # not uTP: unclaimed
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while len(replies) < 20:
            assert loop.time() < deadline, len(replies)
            await asyncio.sleep(0.01)
        kinds = [decode_packet(r).type for r in replies]
        assert kinds.count(PacketType.STATE) == 4  # the four accepted SYNs
        assert kinds.count(PacketType.RESET) == 16
        assert len(server) == 4 and len(accepted) == 4
        assert server.refused == 16
    finally:
        flooder.close()
        server.close()
