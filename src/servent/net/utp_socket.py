"""A uTP endpoint: many connections on one UDP port, told apart by connection ID.

:class:`UtpSocket` reads its datagrams from a :class:`~servent.net.udp_demux.UdpPort`
(its own, or the one the DHT shares), routes each to its connection by
``(address, connection ID)``, accepts SYNs for the ``accept`` protocol
factory (the peer listener's), and dials with :meth:`UtpSocket.create_connection`,
which works like ``loop.create_connection``. After each batch of datagrams
every connection touched is pumped once, so one ACK answers a burst.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
from collections import Counter
from collections.abc import Callable, Sequence

from servent.errors import UtpError
from servent.net.dont_fragment import route_mtu
from servent.net.udp_demux import UdpPort
from servent.net.utp_transport import UtpTransport
from servent.proto.utp import Packet, PacketType, UtpConnection, decode_packet
from servent.proto.utp.mtu import PathMtu, datagram_limits
from servent.proto.utp.packet import encode_packet

__all__ = ["UtpSocket", "open_utp"]

log = logging.getLogger(__name__)

MAX_CONNECTIONS = 512
#: Connections one remote IP may hold at once (a SYN flood from one host is refused).
MAX_PER_IP = 32

Address = tuple[str, int]
ProtocolFactory = Callable[[], asyncio.BaseProtocol]


class UtpSocket:
    """uTP on one or two UDP ports (IPv4, IPv6); see the module docstring."""

    def __init__(
        self,
        *,
        accept: ProtocolFactory | None = None,
        max_connections: int = MAX_CONNECTIONS,
        max_per_ip: int = MAX_PER_IP,
        rng: random.Random | None = None,
    ) -> None:
        self.accept = accept
        self.max_connections = max_connections
        self.max_per_ip = max_per_ip
        self.rng = rng or random.Random(int.from_bytes(os.urandom(8), "big"))
        self.ports: list[UdpPort] = []
        self._owned: list[UdpPort] = []
        self._connections: dict[tuple[Address, int], UtpTransport] = {}
        self._per_ip: Counter[str] = Counter()
        self.dropped = 0
        self.refused = 0
        self.accepted = 0

    # ------------------------------------------------------------ life

    def attach(self, port: UdpPort) -> None:
        """Receive uTP datagrams from a port someone else owns (shared with the DHT)."""
        port.utp_handler = self._receive_batch
        port.start()
        self.ports.append(port)

    def bind(self, host: str, port: int = 0) -> UdpPort:
        """Open and own a UDP port for uTP alone."""
        return self.adopt(UdpPort.bind(host, port))

    def adopt(self, udp: UdpPort) -> UdpPort:
        """Own a UDP port bound for uTP alone (closed with this socket)."""
        self._owned.append(udp)
        self.attach(udp)
        return udp

    @property
    def port(self) -> int:
        return self.ports[0].address[1] if self.ports else 0

    def close(self) -> None:
        """Reset every connection and release the ports."""
        for transport in list(self._connections.values()):
            transport.abort()
        for port in self.ports:
            port.utp_handler = None
        for port in self._owned:
            port.close()
        self.ports.clear()
        self._owned.clear()

    def __len__(self) -> int:
        return len(self._connections)

    def path_mtus(self) -> list[tuple[int, bool]]:
        """Per open connection: the IP packet size uTP sends on its path now (UDP payload
        plus IP and UDP headers), and whether its path MTU search is still going."""
        return [
            (t.conn.mtu.size + t.conn.mtu.limits.overhead, t.conn.mtu.searching)
            for t in self._connections.values()
        ]

    # ------------------------------------------------------------ dialling

    async def create_connection(
        self, protocol_factory: ProtocolFactory, host: str, port: int
    ) -> tuple[UtpTransport, asyncio.BaseProtocol]:
        """Connect to ``host:port`` (an IP address); raise OSError if refused or unanswered."""
        address = (host, port)
        udp = self._port_for(host)
        loop = asyncio.get_running_loop()
        recv_id = self._free_id(address)
        now = loop.time()
        conn = UtpConnection.connect(
            recv_id, self.rng.getrandbits(16), now, _path_mtu(udp, address, now)
        )
        transport = self._register(conn, udp, address)
        transport.pump(loop.time())
        try:
            await transport.connected
        except BaseException:
            transport.abort()
            raise
        protocol = protocol_factory()
        transport.attach(protocol)
        return transport, protocol

    def _port_for(self, host: str) -> UdpPort:
        ipv6 = ":" in host
        for udp in self.ports:
            if (":" in udp.address[0]) == ipv6:
                return udp
        raise OSError(f"no uTP socket for the address family of {host}")

    def _free_id(self, address: Address) -> int:
        while True:
            recv_id = self.rng.getrandbits(16)
            if (address, recv_id) not in self._connections:
                return recv_id

    def _register(self, conn: UtpConnection, udp: UdpPort, address: Address) -> UtpTransport:
        transport = UtpTransport(conn, udp, address, self._forget)
        self._connections[(address, conn.recv_id)] = transport
        self._per_ip[address[0]] += 1
        return transport

    def _forget(self, transport: UtpTransport) -> None:
        key = (transport.address, transport.conn.recv_id)
        if self._connections.get(key) is transport:
            del self._connections[key]
            self._per_ip[transport.address[0]] -= 1
            if self._per_ip[transport.address[0]] <= 0:
                del self._per_ip[transport.address[0]]

    # ------------------------------------------------------------ receiving

    def _receive_batch(self, datagrams: list[tuple[bytes, Address]], now: float) -> None:
        touched: dict[UtpTransport, None] = {}
        connections = self._connections
        for data, address in datagrams:
            try:
                packet = decode_packet(data)
            except UtpError:
                self.dropped += 1
                continue
            conn_id = packet.connection_id
            if packet.type is PacketType.SYN:
                conn_id = (conn_id + 1) & 0xFFFF
            transport = connections.get((address, conn_id))
            if transport is None:
                self._unknown(packet, address, now)
                continue
            transport.conn.receive_packet(packet, now)
            touched[transport] = None
        for transport in touched:
            transport.pump(now)

    def _unknown(self, packet: Packet, address: Address, now: float) -> None:
        if packet.type is PacketType.SYN:
            self._accept(packet, address, now)
        else:  # a stray packet of a forgotten connection, or a guess: never answered
            self.dropped += 1

    def _accept(self, syn: Packet, address: Address, now: float) -> None:
        udp = self._port_for(address[0])
        if (
            self.accept is None
            or len(self._connections) >= self.max_connections
            or self._per_ip[address[0]] >= self.max_per_ip
        ):
            self.refused += 1
            self._reset(syn, address)
            return
        conn = UtpConnection.accept(
            syn, self.rng.getrandbits(16), now, _path_mtu(udp, address, now)
        )
        transport = self._register(conn, udp, address)
        self.accepted += 1
        try:
            transport.attach(self.accept())
        except Exception:  # a refusing factory must not take the endpoint down
            log.exception("uTP accept failed for %s", address)
            transport.abort()
            return
        transport.pump(now)

    def _reset(self, packet: Packet, address: Address) -> None:
        with contextlib.suppress(OSError):
            udp = self._port_for(address[0])
            udp.sendto(
                encode_packet(
                    PacketType.RESET,
                    packet.connection_id,
                    timestamp_us=0,
                    timestamp_difference_us=0,
                    wnd_size=0,
                    seq_nr=self.rng.getrandbits(16),
                    ack_nr=packet.seq_nr,
                ),
                address,
            )


def _path_mtu(udp: UdpPort, address: Address, now: float) -> PathMtu:
    """A path MTU search toward ``address``, bounded by its route; fixed sizes without DF."""
    route = route_mtu(address) if udp.dont_fragment else None
    return PathMtu(datagram_limits(":" in address[0], route), now, enabled=udp.dont_fragment)


def open_utp(
    accept: ProtocolFactory,
    host: str | None,
    port: int,
    shared: Sequence[UdpPort] = (),
    *,
    owned: Sequence[UdpPort] = (),
) -> UtpSocket:
    """uTP on ``port`` (the TCP listener's number): ``shared`` (the DHT's sockets, one per
    family) where one is on that port, then ``owned`` (bound for uTP beforehand, now the
    socket's to close), else sockets of our own; ``host`` ``None`` means IPv4 and IPv6."""
    utp = UtpSocket(accept=accept)
    for udp in shared:
        if udp.address[1] == port:
            utp.attach(udp)
    for udp in owned:
        if any(udp.sock.family == used.sock.family for used in utp.ports):
            udp.close()  # the DHT's socket of that family serves uTP already
        else:
            utp.adopt(udp)
    for address in ["0.0.0.0", "::"] if host is None else [host]:
        if any((":" in address) == (":" in udp.address[0]) for udp in utp.ports):
            continue
        try:
            utp.bind(address, port)
        except OSError as exc:
            log.info("no uTP on %s:%d: %s", address, port, exc)
    return utp
