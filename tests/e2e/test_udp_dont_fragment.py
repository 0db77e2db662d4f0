"""The don't-fragment bit on the UDP port shared by uTP and the DHT (docs/utp.md).

On loopback: the options are set and put back around a fragmentable send, and
the kernel reports the route's MTU. Across a 1,280-byte link between two
namespaces made by the test: a DHT-sized datagram larger than the link is
refused by the kernel (DF) and sent again fragmentable, so it still arrives.
"""

from __future__ import annotations

import hashlib
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from udp_port_peer import datagram

from servent.net.dont_fragment import (
    IP_MTU_DISCOVER,
    IPV6_DONTFRAG,
    IPV6_MTU_DISCOVER,
    PMTUDISC_DO,
    route_mtu,
    send_fragmenting,
)
from servent.net.udp_demux import UdpPort

pytestmark = pytest.mark.e2e

PEER = Path(__file__).with_name("udp_port_peer.py")
A_IP, B_IP = "10.79.0.1", "10.79.0.2"


def test_ipv4_port_sets_df_and_keeps_it_after_a_fragmentable_send() -> None:
    port = UdpPort.bind("127.0.0.1", 0)
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        receiver.bind(("127.0.0.1", 0))
        receiver.settimeout(5)
        assert port.dont_fragment
        level = socket.IPPROTO_IP
        assert port.sock.getsockopt(level, IP_MTU_DISCOVER) == PMTUDISC_DO
        assert send_fragmenting(port.sock, b"d1:a1:be", receiver.getsockname())
        assert receiver.recvfrom(100)[0] == b"d1:a1:be"
        assert port.sock.getsockopt(level, IP_MTU_DISCOVER) == PMTUDISC_DO
    finally:
        receiver.close()
        port.close()


def test_ipv6_port_sets_df_and_keeps_it_after_a_fragmentable_send() -> None:
    port = UdpPort.bind("::1", 0)
    receiver = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    try:
        receiver.bind(("::1", 0))
        receiver.settimeout(5)
        assert port.dont_fragment
        level = socket.IPPROTO_IPV6
        data = bytes(3000)  # above the 1,280 bytes a fragmentable IPv6 send is cut at
        assert send_fragmenting(port.sock, data, receiver.getsockname()[:2])
        assert receiver.recvfrom(4000)[0] == data
        assert port.sock.getsockopt(level, IPV6_MTU_DISCOVER) == PMTUDISC_DO
        assert port.sock.getsockopt(level, IPV6_DONTFRAG) == 1
    finally:
        receiver.close()
        port.close()


def test_route_mtu_is_the_loopback_interfaces() -> None:
    for address in ("127.0.0.1", "::1"):  # 65,535 or 65,536 depending on the family
        mtu = route_mtu((address, 9))
        assert mtu is not None and mtu >= 65535


def _run(*args: str) -> None:
    subprocess.run(args, check=True, timeout=10, capture_output=True)


@pytest.fixture
def narrow_link() -> Iterator[tuple[str, str]]:
    """Namespaces a (10.79.0.1) and b (10.79.0.2) on one veth pair of MTU 1,280."""
    tag = uuid.uuid4().hex[:6]
    a, b = f"dfa{tag}", f"dfb{tag}"
    made: list[str] = []
    try:
        for ns in (a, b):
            _run("ip", "netns", "add", ns)
            made.append(ns)
        _run("ip", "link", "add", f"da{tag}", "mtu", "1280", "netns", a, "type", "veth",
             "peer", "name", f"db{tag}", "mtu", "1280", "netns", b)  # fmt: skip
        for ns, dev, address in ((a, f"da{tag}", A_IP), (b, f"db{tag}", B_IP)):
            _run("ip", "-n", ns, "addr", "add", f"{address}/24", "dev", dev)
            _run("ip", "-n", ns, "link", "set", dev, "up")
        yield a, b
    finally:
        for ns in reversed(made):
            subprocess.run(["ip", "netns", "del", ns], check=False, timeout=10)


@pytest.mark.parametrize("size", [300, 3000])
def test_dht_datagrams_cross_a_narrow_link(narrow_link: tuple[str, str], size: int) -> None:
    a, b = narrow_link
    receiver = subprocess.Popen(
        ["ip", "netns", "exec", b, sys.executable, str(PEER), "receive", B_IP],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert receiver.stdout is not None
        first = receiver.stdout.readline().split()
        assert first and first[0] == "PORT", receiver.stderr.read() if receiver.stderr else ""
        sender = subprocess.run(
            ["ip", "netns", "exec", a, sys.executable, str(PEER), "send", B_IP, first[1],
             str(size)],
            capture_output=True, text=True, timeout=40, check=False,
        )  # fmt: skip
        assert sender.returncode == 0, sender.stderr
        assert sender.stdout.split() == ["SENT", "True", "True"]  # DF was on, and it was sent
        out, err = receiver.communicate(timeout=40)
        assert receiver.returncode == 0, err
    finally:
        if receiver.poll() is None:
            receiver.kill()
            receiver.wait(timeout=10)
    assert out.split() == ["GOT", str(size), hashlib.sha256(datagram(size)).hexdigest()]
