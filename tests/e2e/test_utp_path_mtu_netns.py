"""uTP finds the path MTU (docs/utp.md, "Path MTU") on real kernels.

``sender`` (10.78.1.2) -- ``router`` (10.78.1.1 | 10.78.2.1) -- ``receiver``
(10.78.2.2): namespaces made by the test, the router's link toward the
receiver has an MTU of 1,280 while the sender's own link has 1,500. With
ICMP "fragmentation needed" working the sender's kernel learns the path MTU;
with the router dropping that ICMP (iptables) the path is a black hole for
larger datagrams and only the search's own losses tell. Either way the
stream must arrive byte for byte and the size found must fit the path. On
loopback (MTU 65,536) the search climbs to its Ethernet ceiling.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from servent.net.utp_socket import UtpSocket
from servent.proto.utp.mtu import PRECISION

pytestmark = pytest.mark.e2e

PEER = Path(__file__).with_name("utp_stream_peer.py")
DEADLINE = 120.0
SIZE = 4 << 20
PATH_MTU = 1280
SENDER_IP, ROUTER_SENDER_IP = "10.78.1.2", "10.78.1.1"
ROUTER_RECEIVER_IP, RECEIVER_IP = "10.78.2.1", "10.78.2.2"


def _run(*args: str) -> None:
    subprocess.run(args, check=True, timeout=10, capture_output=True)


@dataclass
class Path3:
    sender: str
    router: str
    receiver: str


@pytest.fixture
def narrow_path() -> Iterator[Path3]:
    """Three namespaces; the router -> receiver link has an MTU of 1,280."""
    tag = uuid.uuid4().hex[:6]
    lab = Path3(f"ms{tag}", f"mr{tag}", f"md{tag}")
    made: list[str] = []
    try:
        for ns in (lab.sender, lab.router, lab.receiver):
            _run("ip", "netns", "add", ns)
            made.append(ns)
            _run("ip", "-n", ns, "link", "set", "lo", "up")
        _wire(lab.router, f"rs{tag}", ROUTER_SENDER_IP, lab.sender, SENDER_IP, 1500)
        _wire(lab.router, f"rd{tag}", ROUTER_RECEIVER_IP, lab.receiver, RECEIVER_IP, PATH_MTU)
        _run("ip", "-n", lab.sender, "route", "add", "default", "via", ROUTER_SENDER_IP)
        _run("ip", "-n", lab.receiver, "route", "add", "default", "via", ROUTER_RECEIVER_IP)
        _run("ip", "netns", "exec", lab.router, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        yield lab
    finally:
        for ns in reversed(made):
            subprocess.run(["ip", "netns", "del", ns], check=False, timeout=10)


def _wire(router: str, name: str, router_ip: str, host: str, host_ip: str, mtu: int) -> None:
    """A veth of ``mtu`` from the router to ``host`` (the host's end is eth0)."""
    _run("ip", "-n", router, "link", "add", name, "mtu", str(mtu), "type", "veth",
         "peer", "name", "eth0", "mtu", str(mtu), "netns", host)  # fmt: skip
    _run("ip", "-n", router, "addr", "add", f"{router_ip}/24", "dev", name)
    _run("ip", "-n", router, "link", "set", name, "up")
    _run("ip", "-n", host, "addr", "add", f"{host_ip}/24", "dev", "eth0")
    _run("ip", "-n", host, "link", "set", "eth0", "up")


def _stream(lab: Path3) -> dict[str, Any]:
    """Send SIZE bytes sender -> receiver; check them; return the sender's statistics."""
    receiver = subprocess.Popen(
        ["ip", "netns", "exec", lab.receiver, sys.executable, str(PEER), "receive",
         RECEIVER_IP, "--deadline", str(DEADLINE)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert receiver.stdout is not None
        first = receiver.stdout.readline().split()
        assert first and first[0] == "PORT", receiver.stderr.read() if receiver.stderr else ""
        sender = subprocess.run(
            ["ip", "netns", "exec", lab.sender, sys.executable, str(PEER), "send",
             RECEIVER_IP, first[1], str(SIZE), "11", "--deadline", str(DEADLINE)],
            capture_output=True, text=True, timeout=DEADLINE + 10, check=False,
        )  # fmt: skip
        assert sender.returncode == 0, sender.stderr
        out, err = receiver.communicate(timeout=60)
        assert receiver.returncode == 0, err
    finally:
        if receiver.poll() is None:
            receiver.kill()
            receiver.wait(timeout=10)
    expected = hashlib.sha256(random.Random(11).randbytes(SIZE)).hexdigest()
    assert f"DONE {SIZE} {expected}" in out
    stats_line = next(line for line in sender.stdout.splitlines() if line.startswith("STATS "))
    stats: dict[str, Any] = json.loads(stats_line.removeprefix("STATS "))
    print(f"sender statistics: {stats}")
    return stats


def test_path_mtu_found_with_icmp(narrow_path: Path3) -> None:
    stats = _stream(narrow_path)
    # The kernel learned 1,280 from the router's ICMP and refused larger datagrams.
    assert stats["path_mtu"] == PATH_MTU
    assert stats["mtu_searching"] is False


def test_path_mtu_found_through_a_black_hole(narrow_path: Path3) -> None:
    _run("ip", "netns", "exec", narrow_path.router, "iptables", "-A", "OUTPUT", "-p", "icmp",
         "--icmp-type", "fragmentation-needed", "-j", "DROP")  # fmt: skip
    stats = _stream(narrow_path)
    assert PATH_MTU - 2 * PRECISION <= stats["path_mtu"] <= PATH_MTU
    assert stats["mtu_restarts"] >= 1  # the first 1,400-byte datagrams vanished
    assert stats["mtu_probes_lost"] >= 1


@pytest.mark.parametrize(("host", "ceiling"), [("127.0.0.1", 1472), ("::1", 1452)])
async def test_loopback_climbs_to_the_ceiling(host: str, ceiling: int) -> None:
    received = bytearray()
    done = asyncio.Event()

    class Sink(asyncio.Protocol):
        def data_received(self, data: bytes) -> None:
            received.extend(data)
            if len(received) >= SIZE:
                done.set()

    server = UtpSocket(accept=Sink)
    server.bind(host)
    client = UtpSocket()
    client.bind(host)
    try:
        transport, _ = await asyncio.wait_for(
            client.create_connection(asyncio.Protocol, host, server.port), 10
        )
        data = random.Random(5).randbytes(SIZE)
        transport.write(data)
        await asyncio.wait_for(done.wait(), DEADLINE)
        assert bytes(received) == data
        stats = transport.conn.statistics()
        assert (stats.datagram_size, stats.mtu_searching) == (ceiling, False)
        assert stats.mtu_probes_lost == 0
    finally:
        client.close()
        server.close()
