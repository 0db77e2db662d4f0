"""Port mapping against a real miniupnpd, in a NAT lab the test builds (``nat_lab``).

A ``servent daemon`` in the LAN namespace maps its ports on the router and a
peer in the WAN namespace downloads from it through the router's public
address; without miniupnpd the node says it is not reachable and still
downloads outbound.  The driver is also run alone with each protocol (PCP,
NAT-PMP) to check the forwarded ports appear and are removed at stop.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from nat_lab import ROUTER_WAN_IP, WAN_IP, WAN_OBSERVERS, NatLab, nat_lab

from polling import poll

pytestmark = pytest.mark.e2e

WAIT = 60.0
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "PYTHONUNBUFFERED": "1"}


@pytest.fixture
def lab() -> Iterator[NatLab]:
    with nat_lab() as made:
        yield made


def in_ns(ns: str, *args: str | Path, python: bool = False) -> subprocess.CompletedProcess[str]:
    """``servent ARGS`` (or ``python ARGS``) in namespace ``ns``, bounded."""
    program = [sys.executable] if python else [sys.executable, "-m", "servent"]
    return subprocess.run(
        ["ip", "netns", "exec", ns, *program, *map(str, args)],
        capture_output=True, text=True, timeout=WAIT + 30, env=ENV, check=False,
    )  # fmt: skip


def wait_for(what: str, check: Callable[[], Any], timeout: float = WAIT) -> Any:
    """``check()``'s first truthy answer, polled with a deadline."""
    return poll(check, what, timeout, every=0.1)


class LanDaemon:
    """``servent daemon`` in a namespace; its log in the test folder."""

    def __init__(self, ns: str, folder: Path, *flags: str) -> None:
        self.ns, self.data_dir, self.log = ns, folder / "data", folder / "daemon.log"
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                ["ip", "netns", "exec", ns, sys.executable, "-m", "servent", "-v", "daemon",
                 "--data-dir", str(self.data_dir), "--api-port", "0", "--listen-host", "0.0.0.0",
                 "--listen-port", "0", "--lsd-enabled", "false", *flags],
                stdout=out, stderr=subprocess.STDOUT, env=ENV,
            )  # fmt: skip
        wait_for("the daemon's API", lambda: "web UI and API at" in self.log.read_text())

    def cli(self, *args: str) -> Any:
        done = in_ns(self.ns, *args, "--data-dir", str(self.data_dir), "--json")
        assert done.returncode == 0, done.stderr + self.log.read_text()
        return json.loads(done.stdout)

    def status(self) -> dict[str, Any]:
        answer: dict[str, Any] = self.cli("status")
        return answer

    def stop(self) -> int:
        self.process.terminate()
        return self.process.wait(30)


def write_payload(folder: Path, size: int = 3 * 2**20 + 123) -> bytes:
    data = hashlib.shake_256(b"nat lab").digest(size)
    folder.mkdir(parents=True)
    (folder / "payload.bin").write_bytes(data)
    return data


def test_driver_maps_tcp_and_udp_with_each_protocol_and_removes_them(
    lab: NatLab, tmp_path: Path
) -> None:
    script = (
        "import asyncio, sys\n"
        "from servent.net.port_mapper import PortMapper\n"
        "async def main():\n"
        "    mapper = PortMapper([('tcp', 7001), ('udp', 7002)], protocols=[sys.argv[1]])\n"
        "    result = await mapper.start()\n"
        "    print(result.protocol, result.external_ip, result.error, flush=True)\n"
        "    sys.stdin.readline()\n"
        "    await mapper.close()\n"
        "    print('closed', flush=True)\n"
        "asyncio.run(main())\n"
    )
    with lab.miniupnpd(tmp_path):
        for protocol in ("pcp", "natpmp"):
            process = subprocess.Popen(
                ["ip", "netns", "exec", lab.lan, sys.executable, "-c", script, protocol],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                text=True, env=ENV,
            )  # fmt: skip
            try:
                assert process.stdout is not None and process.stdin is not None
                first = process.stdout.readline()
                assert first == f"{protocol} {ROUTER_WAN_IP} None\n", process.stderr
                assert sorted(lab.forwarded_ports()) == ["tcp 7001", "udp 7002"]
                out, err = process.communicate("\n", timeout=WAIT)
                assert out == "closed\n", err
            finally:
                if process.poll() is None:
                    process.kill()
                    process.wait(10)
            assert lab.forwarded_ports() == []  # deleted at stop


@pytest.mark.parametrize("natpmp", [True, False], ids=["pcp", "upnp-igd-only"])
def test_a_node_behind_a_upnp_router_is_mapped_and_reachable_from_the_wan(
    lab: NatLab, tmp_path: Path, natpmp: bool
) -> None:
    shared = tmp_path / "shared"
    data = write_payload(shared)
    with lab.miniupnpd(tmp_path, natpmp=natpmp) as upnp_log:
        flags = ["--dht-enabled", "true", "--dht-bootstrap", "127.0.0.1:9"]
        node = LanDaemon(lab.lan, tmp_path, "--port-mapping", "true", *flags,
                         "--shared-folders", str(shared))  # fmt: skip
        try:
            status = wait_for("a mapping", lambda: (s := node.status())["nat"] != "unknown" and s)
            assert status["nat"] == "mapped", status
            assert ("AddPortMapping" in upnp_log.read_text()) is not natpmp  # UPnP: the fallback
            assert status["reachable"] is True and status["relay"] is None
            assert status["ipv6_pinhole"] is None  # listening on IPv4 only: none asked
            external_ip, external_port = status["external_address"]
            assert external_ip == ROUTER_WAN_IP
            listen_port = status["listen_address"][1]
            dht_port = status["dht_address"][1]
            assert f"tcp {listen_port}" in lab.forwarded_ports()
            assert f"udp {dht_port}" in lab.forwarded_ports()
            human = in_ns(lab.lan, "status", "--data-dir", str(node.data_dir))
            assert f"yes at {ROUTER_WAN_IP}:{external_port} (nat: mapped)" in human.stdout

            torrents = wait_for("the shared folder's torrent", lambda: node.cli("list"))
            magnet = torrents[0]["magnet"]
            got = in_ns(lab.wan, "get", magnet, "--peer", f"{ROUTER_WAN_IP}:{external_port}",
                        "-o", str(tmp_path / "wan"), "--metadata-timeout", "30")  # fmt: skip
            assert got.returncode == 0, got.stderr
            assert (tmp_path / "wan" / "shared" / "payload.bin").read_bytes() == data
        finally:
            assert node.stop() == 0, node.log.read_text()
        assert lab.forwarded_ports() == [], node.log.read_text()  # removed at stop


def test_without_a_mapping_router_the_node_is_unreachable_but_works_outbound(
    lab: NatLab, tmp_path: Path
) -> None:
    shared = tmp_path / "wan-shared"
    data = write_payload(shared)
    seeder = subprocess.Popen(
        ["ip", "netns", "exec", lab.wan, sys.executable, "-m", "servent", "seed", str(shared),
         "--host", WAN_IP],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV,
    )  # fmt: skip
    node = None
    try:
        assert seeder.stdout is not None
        listening = seeder.stdout.readline()
        assert listening.startswith("listening on"), seeder.stderr
        magnet = seeder.stdout.readline().strip()
        seed_port = listening.rsplit(":", 1)[1].strip()
        node = LanDaemon(lab.lan, tmp_path, "--port-mapping", "true", "--dht-enabled", "false")
        status = wait_for("a verdict", lambda: (s := node.status())["reachable"] is not None and s)
        assert status["reachable"] is False and status["nat"] == "unknown", status
        assert status["relay"] is None
        human = in_ns(lab.lan, "status", "--data-dir", str(node.data_dir))
        assert "reachable       no" in human.stdout and "(nat: unknown)" in human.stdout
        added = in_ns(lab.lan, "add", magnet, "--peer", f"{WAN_IP}:{seed_port}", "--no-watch",
                      "--data-dir", str(node.data_dir))  # fmt: skip
        assert added.returncode == 0, added.stderr
        done = wait_for("the download", lambda: (t := node.cli("list")) and t[0]["progress"] == 1.0)
        assert done
        saved = node.data_dir / "downloads" / shared.name / "payload.bin"
        assert saved.read_bytes() == data
    finally:
        if node is not None:
            assert node.stop() == 0, node.log.read_text()
        seeder.terminate()
        seeder.wait(30)


WAN_NODE = r"""
import asyncio, sys
from pathlib import Path
from servent.node.config import Config
from servent.node.node import Node
async def main():
    config = Config(data_dir=Path(sys.argv[1]), listen_host=sys.argv[2], listen_port=0,
                    dht_enabled=False, lsd_enabled=False)
    async with Node(config) as node:
        print(node.peer_address()[1], flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
asyncio.run(main())
"""

LAN_NODE = r"""
import asyncio, dataclasses, json, sys
from pathlib import Path
from servent.node.config import Config
from servent.node.node import Node
async def main():
    config = Config(data_dir=Path(sys.argv[1]), listen_host="0.0.0.0", listen_port=0,
                    dht_enabled=False, lsd_enabled=False, port_mapping=True)
    async with Node(config) as node, asyncio.timeout(60):
        mapping_expected = sys.argv[4] == "maps"
        # The router's answer (or silence); behind a mapping router, its mapping (which a
        # loaded machine may only get on a later try or through the next protocol).
        while node.reachability().reachable is None or (
            mapping_expected and node.reachability().nat != "mapped"
        ):
            await asyncio.sleep(0.05)  # polling the node's state, bounded by the timeout
        channel = await node.channels.dial(sys.argv[2], int(sys.argv[3]))
        verdict = await node.check_reachable(channel)
        print(json.dumps(dataclasses.asdict(verdict)), flush=True)
asyncio.run(main())
"""


@pytest.mark.parametrize("router_maps", [True, False], ids=["miniupnpd", "no-mapping"])
def test_a_wan_node_dials_back_through_the_nat(
    lab: NatLab, tmp_path: Path, router_maps: bool
) -> None:
    wan = subprocess.Popen(
        ["ip", "netns", "exec", lab.wan, sys.executable, "-c", WAN_NODE, str(tmp_path / "w"),
         WAN_IP],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV,
    )  # fmt: skip
    try:
        assert wan.stdout is not None
        wan_port = wan.stdout.readline().strip()
        assert wan_port.isdigit(), wan.stderr
        with contextlib.ExitStack() as stack:
            if router_maps:
                stack.enter_context(lab.miniupnpd(tmp_path))
            expect = "maps" if router_maps else "silent"
            lan = in_ns(
                lab.lan, "-c", LAN_NODE, tmp_path / "l", WAN_IP, wan_port, expect, python=True
            )
        assert lan.returncode == 0, lan.stderr
        verdict = json.loads(lan.stdout)
        assert verdict["reachable"] is router_maps, verdict
        assert verdict["nat"] == ("mapped" if router_maps else "unknown")
        assert verdict["external_address"][0] == ROUTER_WAN_IP  # as the WAN node saw us
    finally:
        wan.communicate("\n", timeout=WAIT)


WAN_DHT = r"""
import asyncio, contextlib, sys
from servent.net.dht_driver import DhtDriver
async def main():
    async with contextlib.AsyncExitStack() as stack:
        nodes = [await stack.enter_async_context(DhtDriver(host=ip)) for ip in sys.argv[1:]]
        print(*(f"{ip}:{node.address[1]}" for ip, node in zip(sys.argv[1:], nodes)), flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
asyncio.run(main())
"""

LAN_DHT_NODE = r"""
import asyncio, dataclasses, json, sys
from pathlib import Path
from servent.node.config import Config
from servent.node.node import Node
async def main():
    config = Config(data_dir=Path(sys.argv[1]), listen_host="0.0.0.0", listen_port=0,
                    dht_bootstrap=tuple(sys.argv[2:]), lsd_enabled=False, port_mapping=True)
    async with Node(config) as node, asyncio.timeout(60):
        while node.reachability().external_address is None:  # until 3 DHT nodes answered
            await asyncio.sleep(0.05)
        print(json.dumps(dataclasses.asdict(node.reachability())), flush=True)
asyncio.run(main())
"""


@pytest.mark.parametrize("symmetric", [False, True], ids=["masquerade", "snat-random-fully"])
def test_status_tells_a_cone_nat_from_a_symmetric_one(tmp_path: Path, symmetric: bool) -> None:
    with nat_lab(symmetric=symmetric) as lab:
        wan = subprocess.Popen(
            ["ip", "netns", "exec", lab.wan, sys.executable, "-c", WAN_DHT, *WAN_OBSERVERS],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=ENV,
        )  # fmt: skip
        try:
            assert wan.stdout is not None
            entries = wan.stdout.readline().split()
            assert len(entries) == len(WAN_OBSERVERS), entries
            lan = in_ns(lab.lan, "-c", LAN_DHT_NODE, tmp_path / "l", *entries, python=True)
        finally:
            wan.communicate("\n", timeout=WAIT)
    assert lan.returncode == 0, lan.stderr
    verdict = json.loads(lan.stdout)
    assert verdict["nat"] == ("symmetric" if symmetric else "cone"), verdict
    assert verdict["reachable"] is False  # no mapping, behind a NAT
    assert verdict["external_address"][0] == ROUTER_WAN_IP  # the DHT's vote on our IP
