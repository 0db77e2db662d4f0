"""Two LSD drivers in two network namespaces on one bridge find each other by
multicast alone.  The test builds (and removes) its own namespaces: a bridge
namespace and two hosts with private addresses that exist only inside them."""

from __future__ import annotations

import contextlib
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PYTHON = str(ROOT / ".venv" / "bin" / "python")

PROBE = r"""
import asyncio, sys, time
from servent.net.lsd import LsdDriver, LsdRateLimit
ip, port, want = sys.argv[1], int(sys.argv[2]), bytes.fromhex(sys.argv[3])
async def main():
    found = asyncio.get_running_loop().create_future()
    def on_peer(h, addr):
        if h == want and not found.done():
            found.set_result(addr)
    d = LsdDriver(ip, on_peer, rate_limit=LsdRateLimit(min_interval=0.2))
    await d.start()
    deadline = time.monotonic() + 15
    try:
        while not found.done():
            if time.monotonic() > deadline:
                print("TIMEOUT"); return 1
            d.announce(want, port, time.monotonic())
            await asyncio.wait([found], timeout=0.25)  # re-announce until heard
        print("FOUND", *found.result(), flush=True)
        never = asyncio.get_running_loop().create_future()
        for _ in range(8):  # keep announcing a little so the other side hears us too
            d.announce(want, port, time.monotonic())
            await asyncio.wait([never], timeout=0.25)
        return 0
    finally:
        d.close()
sys.exit(asyncio.run(main()))
"""


def ip(*args: str) -> None:
    proc = subprocess.run(["ip", *args], timeout=10, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, f"ip {' '.join(args)}: {proc.stderr.strip()}"


@contextlib.contextmanager
def bridged_hosts(prefix: str, addresses: tuple[str, str]) -> Iterator[tuple[str, str]]:
    """Two host namespaces whose ``eth0`` hang on one bridge (in a third namespace).

    ``addresses`` are CIDR addresses for the hosts' ``eth0``: IPv4 ones get a
    multicast route, IPv6 ones are added without duplicate detection.  Every
    namespace made is removed on exit.
    """
    tag = uuid.uuid4().hex[:6]
    br, a, b = f"{prefix}br{tag}", f"{prefix}a{tag}", f"{prefix}b{tag}"
    made: list[str] = []
    try:
        for ns in (br, a, b):
            ip("netns", "add", ns)
            made.append(ns)
        ip("-n", br, "link", "add", "br0", "type", "bridge")
        ip("-n", br, "link", "set", "br0", "up")
        for ns, addr in zip((a, b), addresses, strict=True):
            veth = "v" + ns[len(prefix) :]
            ip("-n", br, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
            ip("-n", br, "link", "set", veth, "master", "br0", "up")
            ipv6 = ":" in addr
            ip("-n", ns, "addr", "add", addr, "dev", "eth0", *(["nodad"] if ipv6 else []))
            ip("-n", ns, "link", "set", "eth0", "up", "multicast", "on")
            ip("-n", ns, "link", "set", "lo", "up")
            if not ipv6:
                ip("-n", ns, "route", "add", "224.0.0.0/4", "dev", "eth0")
        yield a, b
    finally:
        for ns in reversed(made):
            subprocess.run(["ip", "netns", "del", ns], timeout=10, check=False)


@pytest.fixture
def namespaces() -> Iterator[tuple[str, str]]:
    with bridged_hosts("sv", ("10.213.7.1/24", "10.213.7.2/24")) as hosts:
        yield hosts


def test_two_nodes_in_two_namespaces_find_each_other_by_lsd(namespaces: tuple[str, str]) -> None:
    a, b = namespaces
    info_hash = "ab" * 20
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    procs = [
        subprocess.Popen(
            ["ip", "netns", "exec", ns, PYTHON, "-c", PROBE, addr, port, info_hash],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        )
        for ns, addr, port in ((a, "10.213.7.1", "5001"), (b, "10.213.7.2", "5002"))
    ]  # fmt: skip
    outputs = []
    for proc in procs:
        try:
            out, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
        outputs.append((proc.returncode, out, err))
    assert outputs[0][:2] == (0, "FOUND 10.213.7.2 5002\n"), outputs[0]
    assert outputs[1][:2] == (0, "FOUND 10.213.7.1 5001\n"), outputs[1]
