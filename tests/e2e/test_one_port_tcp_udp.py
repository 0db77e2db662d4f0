"""A node that picks its own port gets one number for TCP, uTP and the DHT.

Regression: ``servent get`` (DHT on, no ``--port``) bound the DHT on a random UDP
port, then listened for TCP on that number; when another process held it for TCP,
the swarm listened elsewhere and uTP opened UDP sockets of its own, two UDP ports
per family (``test_cli_utp_ports[get]`` failed on a loaded machine).  Here the first
number tried is made busy on purpose (``first_choices``), on real loopback and
wildcard sockets, and the node still ends up on one number.
"""

from __future__ import annotations

import argparse
import errno
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from servent.cli.peer_sources import add_discovery_arguments, dht_for
from servent.errors import ServentError
from servent.net.ipv6_probe import ipv6_unavailable
from servent.net.port_reservation import PortReservation, reservation_hosts, reserve_port
from servent.node.config import Config
from servent.node.node import Node
from servent.node.one_shot import one_shot_node

pytestmark = pytest.mark.e2e

#: The hosts a node listening on every address binds here (IPv4 alone without IPv6).
HOSTS = reservation_hosts("0.0.0.0" if ipv6_unavailable() else "")
LOOPBACK = {"0.0.0.0": "127.0.0.1", "::": "::1"}


@contextmanager
def busy(kind: socket.SocketKind, host: str, port: int = 0) -> Iterator[int]:
    """A socket of ``kind`` holding ``host:port`` (0: any) for the block; yields its port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, kind) as sock:
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((host, port))
        if kind == socket.SOCK_STREAM:
            sock.listen()
        yield int(sock.getsockname()[1])


def free_for_both(number: int) -> bool:
    """Whether TCP and UDP can bind ``number`` on every host (nothing holds it)."""
    try:
        for host in HOSTS:
            for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
                with busy(kind, host, number):
                    pass
    except OSError as exc:
        assert exc.errno == errno.EADDRINUSE, exc
        return False
    return True


def assert_held(reserved: PortReservation) -> None:
    """Every reserved socket is on the reserved number, one TCP and one UDP per host."""
    tcp = reserved.take_tcp()
    udp = reserved.take_udp()
    try:
        assert [sock.getsockname()[:2] for sock in tcp] == [(h, reserved.number) for h in HOSTS]
        assert [port.address for port in udp] == [(h, reserved.number) for h in HOSTS]
        assert not free_for_both(reserved.number)  # held: no one else can take it
    finally:
        for sock in tcp:
            sock.close()
        for port in udp:
            port.close()
    assert free_for_both(reserved.number)  # and released once closed


@pytest.mark.parametrize("kind", [socket.SOCK_STREAM, socket.SOCK_DGRAM], ids=["tcp", "udp"])
@pytest.mark.parametrize("host", HOSTS)
def test_a_number_taken_for_tcp_or_udp_on_any_family_is_passed_over(
    kind: socket.SocketKind, host: str
) -> None:
    with busy(kind, LOOPBACK[host]) as taken:
        reserved = reserve_port(HOSTS, first_choices=[taken])
        try:
            assert reserved.number != taken
        finally:
            assert_held(reserved)


def test_no_number_free_for_both_is_a_clear_error_after_the_attempts() -> None:
    with (
        busy(socket.SOCK_STREAM, "127.0.0.1") as tcp_taken,
        busy(socket.SOCK_DGRAM, "127.0.0.1") as udp_taken,
        pytest.raises(OSError, match="no port free for TCP and UDP after 2 tries") as caught,
    ):
        reserve_port(HOSTS, attempts=2, first_choices=[tcp_taken, udp_taken])
    assert caught.value.errno == errno.EADDRINUSE


def command_args(*flags: str) -> argparse.Namespace:
    """The discovery flags of ``get`` and ``seed``, parsed as the command parses them."""
    parser = argparse.ArgumentParser()
    add_discovery_arguments(parser)
    return parser.parse_args(list(flags))


async def test_dht_port_taken_for_tcp_still_gives_one_udp_port_per_family(tmp_path: Path) -> None:
    """The one-shot command's path (``get``, ``seed --dht-port 0``) with its first
    number held by another socket for TCP: the DHT, the listener and uTP share one
    number, uTP rides on the DHT's sockets, and the number is released on exit."""
    args = command_args("--dht-port", "0", "--no-ip-restrictions")
    with busy(socket.SOCK_STREAM, "127.0.0.1") as taken:
        reserved = reserve_port(HOSTS, first_choices=[taken])
        try:
            async with (
                dht_for(args, None, 0, reserved) as dht,
                one_shot_node({"utp_enabled": True}, client_version="0.0.0", dht=dht,
                              reserved_port=reserved) as node,
            ):  # fmt: skip
                assert dht is not None
                number = reserved.number
                assert number != taken
                assert [p.address for p in dht.shared_ports] == [(h, number) for h in HOSTS]
                assert node.listen_addresses() == [(h, number) for h in HOSTS]
                utp = node._swarm.utp if node._swarm is not None else None  # private: transports
                assert utp is not None and utp.ports == dht.shared_ports
        finally:
            reserved.close()
    assert free_for_both(number)


async def test_node_without_dht_gives_utp_the_reserved_udp_ports(tmp_path: Path) -> None:
    """``seed`` without the DHT and a daemon with ``listen_port = 0``: the node reserves
    the number itself; uTP owns the UDP sockets on the listener's number."""
    config = Config(data_dir=tmp_path, listen_host="", listen_port=0, dht_enabled=False,
                    lsd_enabled=False, port_mapping=False, utp_enabled=True)  # fmt: skip
    async with Node(config) as node:
        addresses = node.listen_addresses()
        number = addresses[0][1]
        assert addresses == [(h, number) for h in HOSTS]
        utp = node._swarm.utp if node._swarm is not None else None  # private: transports
        assert utp is not None
        assert [udp.address for udp in utp.ports] == [(h, number) for h in HOSTS]
    assert free_for_both(number)


async def test_a_port_the_user_named_that_is_taken_stays_an_error(tmp_path: Path) -> None:
    with busy(socket.SOCK_STREAM, "127.0.0.1") as taken:
        config = Config(data_dir=tmp_path, listen_host="127.0.0.1", listen_port=taken,
                        dht_enabled=False, lsd_enabled=False, port_mapping=False)  # fmt: skip
        with pytest.raises(ServentError, match=f"cannot listen for peers on port {taken}"):
            async with Node(config):
                pass


def test_a_first_choice_free_for_both_is_the_number_reserved() -> None:
    """(So the tests above pass over their first choice because it is busy.)"""
    probe = reserve_port(HOSTS)
    number = probe.number
    probe.close()
    reserved = reserve_port(HOSTS, first_choices=[number])
    assert reserved.number == number
    assert_held(reserved)
