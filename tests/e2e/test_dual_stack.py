"""A node with ``listen_host = ""`` serves IPv4 and IPv6 on one port number.

Peers reach it over TCP and uTP at 127.0.0.1 and at ::1 on the same port,
and its DHT answers a ping from both families (BEP 32: one socket each).
Only loopback addresses are dialled.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from servent.codec.bencode import decode, encode
from servent.net.utp_socket import UtpSocket
from servent.node.config import Config
from servent.node.node import Node
from servent.proto.peerwire.handshake import HANDSHAKE_LENGTH, Handshake, parse_handshake

WAIT = 30.0
LOOPBACKS = ("127.0.0.1", "::1")


@asynccontextmanager
async def dual_stack_node(folder: Path, **settings: object) -> AsyncIterator[Node]:
    chosen: dict[str, Any] = {
        "listen_host": "", "listen_port": 0, "dht_bootstrap": (), "dht_restrict_ips": False,
        "lsd_enabled": False, **settings,
    }  # fmt: skip
    config = Config(data_dir=folder, **chosen)
    async with Node(config) as node:
        yield node


def write_share(folder: Path) -> Path:
    folder.mkdir()
    (folder / "data.bin").write_bytes(os.urandom(40_000))
    return folder


async def shared_info_hash(node: Node, folder: Path) -> bytes:
    shared = await node.share(folder)
    hex_hash = node.torrent(shared.id).info_hash_v1
    assert hex_hash is not None
    return bytes.fromhex(hex_hash)


def handshake(info_hash: bytes) -> bytes:
    return Handshake(bytes(8), info_hash, b"-DS0001-" + os.urandom(12)).encode()


class Collector(asyncio.Protocol):
    """Keeps what a uTP stream delivers; ``enough`` is set at a handshake's length."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.enough = asyncio.Event()

    def data_received(self, data: bytes) -> None:
        self.data += data
        if len(self.data) >= HANDSHAKE_LENGTH:
            self.enough.set()


async def tcp_handshake(host: str, port: int, info_hash: bytes) -> bytes:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(handshake(info_hash))
        return await reader.readexactly(HANDSHAKE_LENGTH)
    finally:
        writer.close()


async def utp_handshake(host: str, port: int, info_hash: bytes) -> bytes:
    client = UtpSocket()
    try:
        client.bind(host, 0)
        transport, protocol = await client.create_connection(Collector, host, port)
        assert isinstance(protocol, Collector)
        transport.write(handshake(info_hash))
        await protocol.enough.wait()
        transport.close()
        return bytes(protocol.data[:HANDSHAKE_LENGTH])
    finally:
        client.close()


async def dht_ping(host: str, port: int) -> dict[Any, Any]:
    loop = asyncio.get_running_loop()
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        sock.bind((host, 0))
        query = {b"t": b"p1", b"y": b"q", b"q": b"ping", b"a": {b"id": os.urandom(20)}}
        await loop.sock_sendto(sock, encode(query), (host, port))
        data, _ = await loop.sock_recvfrom(sock, 2048)
    answer = decode(data)
    assert isinstance(answer, dict)
    return answer


async def test_dual_stack_node_takes_peers_and_dht_pings_on_both_families(
    tmp_path: Path,
) -> None:
    async with dual_stack_node(tmp_path / "node") as node, asyncio.timeout(WAIT):
        status = node.status()
        assert status.listen_address is not None
        port = status.listen_address[1]
        assert set(status.listen_addresses) == {("0.0.0.0", port), ("::", port)}
        assert status.dht_address == ("0.0.0.0", port)
        assert status.dht_address6 == ("::", port)
        info_hash = await shared_info_hash(node, write_share(tmp_path / "share"))
        dht = node.dht
        assert dht is not None and dht.node.dual_stack
        utp = node._swarm.utp  # private: the Node API does not expose transports
        assert utp is not None and utp.ports == dht.shared_ports  # one UDP socket per family
        assert [udp.address for udp in utp.ports] == [("0.0.0.0", port), ("::", port)]
        for host in LOOPBACKS:
            assert parse_handshake(await tcp_handshake(host, port, info_hash)).info_hash == (
                info_hash
            ), host
            assert parse_handshake(await utp_handshake(host, port, info_hash)).info_hash == (
                info_hash
            ), host
            answer = await dht_ping(host, port)
            assert answer[b"y"] == b"r", (host, answer)
            assert answer[b"r"][b"id"] == dht.node_id, host


async def test_dual_stack_without_utp_gives_the_dht_a_socket_per_family(tmp_path: Path) -> None:
    async with dual_stack_node(tmp_path / "node", utp_enabled=False) as node, asyncio.timeout(WAIT):
        status = node.status()
        assert status.listen_address is not None
        port = status.listen_address[1]
        assert status.dht_address == ("0.0.0.0", port)
        assert status.dht_address6 == ("::", port)
        for host in LOOPBACKS:
            assert (await dht_ping(host, port))[b"y"] == b"r", host


async def test_ipv6_only_listen_host_runs_the_dht_on_ipv6(tmp_path: Path) -> None:
    async with dual_stack_node(tmp_path / "node", listen_host="::") as node, asyncio.timeout(WAIT):
        status = node.status()
        assert status.listen_address is not None
        port = status.listen_address[1]
        assert status.listen_addresses == (("::", port),)
        assert status.dht_address6 == ("::", port)
        assert (await dht_ping("::1", port))[b"y"] == b"r"


def ipv6_port_taken() -> tuple[socket.socket, socket.socket, int]:
    """TCP and UDP sockets holding one port number on IPv6 only (its IPv4 side stays free)."""
    udp = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    udp.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    udp.bind(("::", 0))
    port = int(udp.getsockname()[1])
    tcp = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    tcp.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    tcp.bind(("::", port))
    tcp.listen(1)
    return udp, tcp, port


@pytest.mark.parametrize("utp_enabled", [True, False])
async def test_dual_stack_with_the_ipv6_port_taken_runs_on_ipv4_and_warns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, utp_enabled: bool
) -> None:
    udp, tcp, port = ipv6_port_taken()
    with udp, tcp, caplog.at_level(logging.WARNING):
        settings = {"listen_port": port, "utp_enabled": utp_enabled}
        async with dual_stack_node(tmp_path / "node", **settings) as node, asyncio.timeout(WAIT):
            status = node.status()
            assert status.listen_addresses == (("0.0.0.0", port),)
            assert status.dht_address == ("0.0.0.0", port)
            assert status.dht_address6 is None
            assert (await dht_ping("127.0.0.1", port))[b"y"] == b"r"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("peers on IPv4 only" in text for text in warnings), warnings
    assert any("IPv4 only: cannot bind" in text for text in warnings), warnings
