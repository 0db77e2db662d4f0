"""IPv6 pinholes against a real miniupnpd, in the NAT lab with IPv6 (``nat_lab(ipv6=True)``).

The LAN host has its own IPv6 address (no NAT), but the router's ip6tables
FORWARD policy is DROP: peers on the WAN side cannot dial it until miniupnpd
adds an ACCEPT rule to its MINIUPNPD chain, which a PCP MAP from the node's
IPv6 address asks for (RFC 6887 §11).  ``docs/port-mapping.md``, "IPv6 pinholes".
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from nat_lab import LAN_IP6, NatLab, nat_lab
from test_port_mapping_netns import ENV, WAIT, LanDaemon, in_ns, wait_for

pytestmark = pytest.mark.e2e

CONNECT_TIMEOUT = 3.0
"""A dropped SYN is silence: a connect that has not succeeded by then is refused entry."""


@pytest.fixture
def lab() -> Iterator[NatLab]:
    with nat_lab(ipv6=True) as made:
        yield made


def tcp_connects(ns: str, host: str, port: int) -> bool:
    """Does a TCP connect from namespace ``ns`` to ``[host]:port`` succeed (bounded)?"""
    probe = (
        "import socket, sys\n"
        "try:\n"
        f"    socket.create_connection(({host!r}, {port}), timeout={CONNECT_TIMEOUT}).close()\n"
        "except OSError as exc:\n"
        "    sys.exit(f'no: {exc!r}')\n"
        "print('yes')\n"
    )
    done = subprocess.run(
        ["ip", "netns", "exec", ns, sys.executable, "-c", probe],
        capture_output=True, text=True, timeout=CONNECT_TIMEOUT + 30, check=False,
    )  # fmt: skip
    return done.stdout.strip() == "yes"


def without_pcp(lab: NatLab) -> None:
    """miniupnpd 2.3.1 answers PCP on IPv6 even with ``enable_natpmp=no``: the router's
    own firewall silences it, leaving UPnP IGDv2."""
    lab.ip6tables("-A", "INPUT", "-p", "udp", "--dport", "5351", "-j", "DROP")


@pytest.mark.parametrize("protocol", ["pcp", "upnp"], ids=["pcp", "upnp-igd-only"])
def test_a_node_on_ipv6_is_reachable_only_once_its_pinholes_are_open(
    lab: NatLab, tmp_path: Path, protocol: str
) -> None:
    flags = ("--listen-host", "::", "--dht-enabled", "false")
    for run in ("before", "after"):
        (tmp_path / run).mkdir()
    if protocol == "upnp":
        without_pcp(lab)
    with lab.miniupnpd(tmp_path, natpmp=protocol == "pcp") as upnp_log:
        before = LanDaemon(lab.lan, tmp_path / "before", *flags, "--port-mapping", "false")
        try:
            status = wait_for("listening", lambda: (s := before.status())["listen_address"] and s)
            port = status["listen_address"][1]
            assert status["ipv6_pinhole"] is None  # port mapping off: nothing asked
            assert tcp_connects(lab.router, LAN_IP6, port)  # it listens on IPv6...
            assert not tcp_connects(lab.wan, LAN_IP6, port)  # ...but the firewall drops the WAN
        finally:
            assert before.stop() == 0, before.log.read_text()

        node = LanDaemon(lab.lan, tmp_path / "after", *flags, "--port-mapping", "true",
                         "--listen-port", str(port))  # fmt: skip
        try:
            pinhole = wait_for(
                "the pinholes",
                lambda: (p := node.status()["ipv6_pinhole"]) and p["state"] != "pending" and p,
            )
            assert pinhole["state"] == "open", pinhole
            assert pinhole["protocol"] == protocol and pinhole["error"] is None
            assert pinhole["address"] == [LAN_IP6, port]
            assert sorted(pinhole["ports"]) == [f"tcp {port}", f"udp {port}"]  # peer wire, uTP
            assert sorted(lab.pinholes()) == [f"tcp {LAN_IP6} {port}", f"udp {LAN_IP6} {port}"]
            asked = "PCP MAP: added mapping TCP" if protocol == "pcp" else "AddPinhole: (inbound)"
            assert asked in upnp_log.read_text()
            assert tcp_connects(lab.wan, LAN_IP6, port)  # through the pinhole
            human = in_ns(lab.lan, "status", "--data-dir", str(node.data_dir))
            assert f"IPv6 pinhole    open at [{LAN_IP6}]:{port} ({protocol}: " in human.stdout
        finally:
            assert node.stop() == 0, node.log.read_text()
        assert lab.pinholes() == [], node.log.read_text()  # removed at stop
        assert not tcp_connects(lab.wan, LAN_IP6, port)


RENEWING_DRIVER = r"""
import asyncio, sys
from servent.net.pinholes import PinholeOpener
async def main():
    opener = PinholeOpener([("tcp", 7001), ("udp", 7002)], local_ip=sys.argv[1])
    for step in (opener.start, opener.renew):
        result = await step()
        print(result.protocol, result.gateway, *sorted(f"{m.protocol} {m.external_port} "
              f"{m.external_ip}" for m in result.mappings), sep=",", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    await opener.close()
    print("closed", len(opener.result.mappings), flush=True)
asyncio.run(main())
"""


@pytest.mark.parametrize("natpmp", [True, False], ids=["pcp", "upnp-igd-only"])
def test_the_driver_opens_renews_and_closes_pinholes(
    lab: NatLab, tmp_path: Path, natpmp: bool
) -> None:
    """Without PCP, UPnP IGDv2's WANIPv6FirewallControl."""
    if not natpmp:
        without_pcp(lab)
    with lab.miniupnpd(tmp_path, natpmp=natpmp) as upnp_log:
        process = subprocess.Popen(
            ["ip", "netns", "exec", lab.lan, sys.executable, "-c", RENEWING_DRIVER, LAN_IP6],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, env=ENV,
        )  # fmt: skip
        try:
            assert process.stdout is not None and process.stdin is not None
            protocol = "pcp" if natpmp else "upnp"
            expected = f"{protocol},fe80::1%eth0,tcp 7001 {LAN_IP6},udp 7002 {LAN_IP6}\n"
            for _ in ("opened", "renewed"):  # the gateway: the router's link-local address
                assert process.stdout.readline() == expected, process.stderr
                holes = [f"tcp {LAN_IP6} 7001", f"udp {LAN_IP6} 7002"]
                assert sorted(lab.pinholes()) == holes  # a renewal adds no second rule
                process.stdin.write("\n")
                process.stdin.flush()
            out, err = process.communicate(timeout=WAIT)
            assert out == "closed 0\n", err
            if not natpmp:
                log = upnp_log.read_text()
                assert log.count("AddPinhole: (inbound)") == 2, log  # tcp and udp, once
                assert log.count("UpdatePinhole: (inbound)") == 2, log  # the renewal
                assert log.count("DeletePinhole: (inbound)") == 2, log
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(10)
    assert lab.pinholes() == []  # deleted at close
