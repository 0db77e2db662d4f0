"""A NAT lab in network namespaces: a LAN host behind a router, and a WAN host.

``lan`` (192.168.77.2) -- ``router`` (192.168.77.1 | 11.77.0.1) -- ``wan``
(11.77.0.2).  The router masquerades the LAN (iptables MASQUERADE: a
cone-like NAT) and may run miniupnpd (UPnP IGD, NAT-PMP and PCP) with its
config file in the test's folder.  The "public" side uses 11.77.0.0/24
because miniupnpd refuses to map behind a private or documentation address
(RFC 1918, RFC 5737...); the namespaces have no route anywhere else, so no
packet can leave them.  Everything made is removed on exit.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

LAN_IP, ROUTER_LAN_IP = "192.168.77.2", "192.168.77.1"
ROUTER_WAN_IP, WAN_IP = "11.77.0.1", "11.77.0.2"
WAN_OBSERVERS = (WAN_IP, "11.77.0.3", "11.77.0.4")
"""Addresses of the WAN host: DHT nodes there are distinct observers of the LAN's NAT."""
IPTABLES = "iptables-legacy"  # miniupnpd's Debian build edits the legacy tables (libiptc)
IP6TABLES = "ip6tables-legacy"  # and the IPv6 ones through libip6tc
#: ``nat_lab(ipv6=True)``: unique local addresses (no NAT), the LAN's gateway link-local.
LAN_IP6, ROUTER_LAN_IP6, ROUTER_LINK_LOCAL = "fd00:77::2", "fd00:77::1", "fe80::1"
ROUTER_WAN_IP6, WAN_IP6 = "fd00:78::1", "fd00:78::2"


def run(*args: str, timeout: float = 15) -> str:
    done = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed: {done.stderr}")
    return done.stdout


@dataclass
class NatLab:
    router: str
    lan: str
    wan: str
    wan_if: str
    lan_if: str
    ipv6: bool = False

    def iptables(self, *args: str) -> str:
        return run("ip", "netns", "exec", self.router, IPTABLES, *args)

    def ip6tables(self, *args: str) -> str:
        return run("ip", "netns", "exec", self.router, IP6TABLES, *args)

    def pinholes(self) -> list[str]:
        """``tcp fd00:77::2 N`` / ``udp ...`` of the IPv6 ACCEPT rules miniupnpd added."""
        found = []
        for rule in self.ip6tables("-S", "MINIUPNPD").splitlines():
            fields = rule.split()
            if "--dport" in fields and "-d" in fields:
                host = fields[fields.index("-d") + 1].removesuffix("/128")
                proto, port = fields[fields.index("-p") + 1], fields[fields.index("--dport") + 1]
                found.append(f"{proto} {host} {port}")
        return found

    def forwarded_ports(self) -> list[str]:
        """``tcp dpt:N`` / ``udp dpt:N`` of the DNAT rules miniupnpd added."""
        rules = self.iptables("-t", "nat", "-S", "MINIUPNPD").splitlines()
        found = []
        for rule in rules:
            fields = rule.split()
            if "--dport" in fields:
                found.append(
                    f"{fields[fields.index('-p') + 1]} {fields[fields.index('--dport') + 1]}"
                )
        return found

    @contextlib.contextmanager
    def miniupnpd(self, folder: Path, *, natpmp: bool = True) -> Iterator[Path]:
        """miniupnpd in the router (foreground, killed on exit); yields its log file.

        ``natpmp=False`` leaves only UPnP IGD on (NAT-PMP and PCP off)."""
        self._upnp_chains()
        config = folder / "miniupnpd.conf"
        config.write_text(
            f"ext_ifname={self.wan_if}\nlistening_ip={self.lan_if}\nhttp_port=0\n"
            f"enable_natpmp={'yes' if natpmp else 'no'}\nenable_upnp=yes\n"
            "secure_mode=yes\nsystem_uptime=no\n"
            f"uuid={uuid.uuid4()}\nlease_file={folder / 'upnp.leases'}\n"
            "allow 1024-65535 192.168.77.0/24 1024-65535\ndeny 0-65535 0.0.0.0/0 0-65535\n"
        )
        log = folder / "miniupnpd.log"
        with log.open("ab") as out:
            process = subprocess.Popen(
                ["ip", "netns", "exec", self.router, "miniupnpd", "-d", "-f", str(config),
                 "-P", str(folder / "miniupnpd.pid")],
                stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        try:
            deadline = time.monotonic() + 20
            ready = "Listening for NAT-PMP/PCP" if natpmp else "HTTP listening on port"
            while ready not in log.read_text():
                assert process.poll() is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.05)  # polling another process's log, bounded
            yield log
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)

    def _upnp_chains(self) -> None:
        """The chains miniupnpd fills (Debian's init script lacks its helper file)."""
        wan = self.wan_if
        if self.ipv6:
            self.ip6tables("-t", "filter", "-N", "MINIUPNPD")
            self.ip6tables("-t", "filter", "-A", "FORWARD", "-i", wan, "!", "-o", wan,
                           "-j", "MINIUPNPD")  # fmt: skip
        self.iptables("-t", "nat", "-N", "MINIUPNPD")
        self.iptables("-t", "nat", "-I", "PREROUTING", "-i", wan, "-j", "MINIUPNPD")
        self.iptables("-t", "nat", "-N", "MINIUPNPD-POSTROUTING")
        self.iptables("-t", "nat", "-I", "POSTROUTING", "-o", wan, "-j", "MINIUPNPD-POSTROUTING")
        self.iptables("-t", "filter", "-N", "MINIUPNPD")
        self.iptables("-t", "filter", "-I", "FORWARD", "-i", wan, "!", "-o", wan, "-j", "MINIUPNPD")
        self.iptables("-t", "mangle", "-N", "MINIUPNPD")


def tools_present() -> list[str]:
    tools = (IPTABLES, IP6TABLES, "miniupnpd")
    return [tool for tool in tools if shutil.which(tool) is None]


@contextlib.contextmanager
def nat_lab(*, symmetric: bool = False, ipv6: bool = False) -> Iterator[NatLab]:
    """Three namespaces wired as above; removed (with their rules) on exit.

    ``symmetric``: SNAT with ``--random-fully`` (a new random port for every
    destination) instead of MASQUERADE (which keeps the source port).
    ``ipv6``: IPv6 as well (see :func:`_ipv6_firewall`)."""
    missing = tools_present()
    assert not missing, f"scripts/test installs these Debian packages: {missing}"
    tag = uuid.uuid4().hex[:6]
    lab = NatLab(f"nr{tag}", f"nl{tag}", f"nw{tag}", f"rw{tag}", f"rl{tag}", ipv6)
    made: list[str] = []
    try:
        for ns in (lab.router, lab.lan, lab.wan):
            run("ip", "netns", "add", ns)
            made.append(ns)
            run("ip", "-n", ns, "link", "set", "lo", "up")
            # No duplicate address detection: addresses usable at once (nothing else is there).
            run("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.default.accept_dad=0")
        _wire(lab.router, lab.wan_if, f"{ROUTER_WAN_IP}/24", lab.wan, f"{WAN_IP}/24")
        _wire(lab.router, lab.lan_if, f"{ROUTER_LAN_IP}/24", lab.lan, f"{LAN_IP}/24")
        run("ip", "-n", lab.lan, "route", "add", "default", "via", ROUTER_LAN_IP)
        run("ip", "netns", "exec", lab.router, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        for extra in WAN_OBSERVERS[1:]:
            run("ip", "-n", lab.wan, "addr", "add", f"{extra}/24", "dev", "eth0")
        nat = (
            ["SNAT", "--to-source", ROUTER_WAN_IP, "--random-fully"]
            if symmetric
            else ["MASQUERADE"]
        )
        lab.iptables("-t", "nat", "-A", "POSTROUTING", "-o", lab.wan_if, "-j", *nat)
        if ipv6:
            _ipv6_firewall(lab)
        yield lab
    finally:
        for ns in reversed(made):
            subprocess.run(["ip", "netns", "del", ns], timeout=10, check=False)


def _ipv6_firewall(lab: NatLab) -> None:
    """IPv6 with no NAT but a home router's firewall: out and back allowed, in dropped.

    LAN ``fd00:77::2`` (default route via the router's link-local ``fe80::1``, as
    router advertisements set it), WAN ``fd00:78::2``.  The router forwards
    between them with FORWARD policy DROP: replies and LAN-to-WAN pass; from the
    WAN only what miniupnpd's MINIUPNPD chain accepts (made by ``miniupnpd()``)."""
    for ns, dev, address in (
        (lab.router, lab.lan_if, f"{ROUTER_LAN_IP6}/64"),
        (lab.router, lab.lan_if, f"{ROUTER_LINK_LOCAL}/64"),
        (lab.router, lab.wan_if, f"{ROUTER_WAN_IP6}/64"),
        (lab.lan, "eth0", f"{LAN_IP6}/64"),
        (lab.wan, "eth0", f"{WAN_IP6}/64"),
    ):
        run("ip", "-n", ns, "addr", "add", address, "dev", dev, "nodad")
    run("ip", "-n", lab.lan, "-6", "route", "add", "default", "via", ROUTER_LINK_LOCAL,
        "dev", "eth0")  # fmt: skip
    run("ip", "-n", lab.wan, "-6", "route", "add", "default", "via", ROUTER_WAN_IP6)
    run("ip", "netns", "exec", lab.router, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1")
    lab.ip6tables("-P", "FORWARD", "DROP")
    lab.ip6tables("-A", "FORWARD", "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED",
                  "-j", "ACCEPT")  # fmt: skip
    lab.ip6tables("-A", "FORWARD", "-i", lab.lan_if, "-o", lab.wan_if, "-j", "ACCEPT")


def _wire(router: str, router_if: str, router_addr: str, host: str, host_addr: str) -> None:
    """A veth from the router to ``host`` (the host side is called eth0)."""
    run("ip", "-n", router, "link", "add", router_if, "type", "veth",
        "peer", "name", "eth0", "netns", host)  # fmt: skip
    run("ip", "-n", router, "addr", "add", router_addr, "dev", router_if)
    run("ip", "-n", router, "link", "set", router_if, "up")
    run("ip", "-n", host, "addr", "add", host_addr, "dev", "eth0")
    run("ip", "-n", host, "link", "set", "eth0", "up")


#: The two-NAT lab: hub (the "Internet", with a public host) and two LANs behind routers.
HUB_IP = "11.77.0.2"
TWO_NAT_SIDES = (
    ("11.77.0.1", "11.77.0.2", "192.168.77.1", "192.168.77.2"),
    ("11.78.0.1", "11.78.0.2", "192.168.78.1", "192.168.78.2"),
)
"""Per side: the router's public address, the hub's address facing it, the router's
LAN address and the LAN host's address."""


@dataclass
class TwoNatLab:
    hub: str
    routers: tuple[str, str]
    lans: tuple[str, str]

    def iptables(self, side: int, *args: str) -> str:
        return run("ip", "netns", "exec", self.routers[side], IPTABLES, *args)


@contextlib.contextmanager
def two_nat_lab(*, symmetric: bool = False, drop_unsolicited: bool = False) -> Iterator[TwoNatLab]:
    """``lan0 -- router0 -- hub -- router1 -- lan1``: two hosts behind two NATs and a
    public host (``hub``, at :data:`HUB_IP`) that both reach.  The hub routes between
    the routers (a packet with TTL 2 from a LAN dies in the hub, as on the Internet it
    dies before the other side).  ``symmetric``: both routers SNAT ``--random-fully``;
    else both MASQUERADE (port-preserving, cone-like).  ``drop_unsolicited``: the routers
    drop new connections to themselves from the hub, as a home router's firewall does
    (without it a Linux router answers a SYN for no mapping with a reset; decision
    0048).  Removed on exit."""
    missing = [tool for tool in (IPTABLES,) if shutil.which(tool) is None]
    assert not missing, f"scripts/test installs these Debian packages: {missing}"
    tag = uuid.uuid4().hex[:6]
    lab = TwoNatLab(f"nh{tag}", (f"nr0{tag}", f"nr1{tag}"), (f"nl0{tag}", f"nl1{tag}"))
    made: list[str] = []
    try:
        for ns in (lab.hub, *lab.routers, *lab.lans):
            run("ip", "netns", "add", ns)
            made.append(ns)
            run("ip", "-n", ns, "link", "set", "lo", "up")
        run("ip", "netns", "exec", lab.hub, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        for side, (router_wan, hub_ip, router_lan, lan_ip) in enumerate(TWO_NAT_SIDES):
            router, lan = lab.routers[side], lab.lans[side]
            _link(lab.hub, f"h{side}", f"{hub_ip}/24", router, "wan", f"{router_wan}/24")
            _link(router, "lan", f"{router_lan}/24", lan, "eth0", f"{lan_ip}/24")
            run("ip", "-n", router, "route", "add", "default", "via", hub_ip)
            run("ip", "-n", lan, "route", "add", "default", "via", router_lan)
            run("ip", "netns", "exec", router, "sysctl", "-qw", "net.ipv4.ip_forward=1")
            nat = (
                ["SNAT", "--to-source", router_wan, "--random-fully"]
                if symmetric
                else ["MASQUERADE"]
            )
            lab.iptables(side, "-t", "nat", "-A", "POSTROUTING", "-o", "wan", "-j", *nat)
            if drop_unsolicited:
                lab.iptables(side, "-A", "INPUT", "-i", "wan", "-m", "conntrack",
                             "--ctstate", "NEW", "-j", "DROP")  # fmt: skip
        yield lab
    finally:
        for ns in reversed(made):
            subprocess.run(["ip", "netns", "del", ns], timeout=10, check=False)


def _link(left: str, left_if: str, left_addr: str, right: str, right_if: str,
          right_addr: str) -> None:  # fmt: skip
    """A veth pair between two namespaces, addressed and up."""
    run("ip", "-n", left, "link", "add", left_if, "type", "veth",
        "peer", "name", right_if, "netns", right)  # fmt: skip
    for ns, name, addr in ((left, left_if, left_addr), (right, right_if, right_addr)):
        run("ip", "-n", ns, "addr", "add", addr, "dev", name)
        run("ip", "-n", ns, "link", "set", name, "up")
