"""IPv6 pinholes: PCP MAP from an IPv6 address (RFC 6887 §11), the IPv6 default route,
and what ``servent status`` shows of them and of uTP's path MTU."""

from __future__ import annotations

import dataclasses
import struct
from ipaddress import IPv6Network
from pathlib import Path

import pytest

from servent.cli.commands.status import _path_mtu, _pinhole
from servent.net.pinholes import PinholeOpener, can_have_pinholes, default_gateway6
from servent.net.port_mapper import MappingResult
from servent.net.upnp_pinholes import on_link, own_link
from servent.node.reachability import pinhole_status
from servent.node.status import PathMtuSummary, PinholeStatus, summarise_path_mtus
from servent.proto.port_mapping import (
    Mapping,
    PortMappingError,
    parse_pcp_map,
    pcp_pinhole_request,
)

NONCE = bytes.fromhex("da54549bc312e832012dc07b")
#: What Debian's miniupnpd 2.3.1 answered (captured in the netns lab) to a TCP
#: pinhole for [fd00:77::2]:7001 with NONCE: lifetime 600, our own address back.
MINIUPNPD_ANSWER = bytes.fromhex(
    "028100000000025800000003000000000000000000000000"
    "da54549bc312e832012dc07b060000001b591b59fd000077000000000000000000000002"
)


def test_pinhole_request_layout() -> None:
    request = pcp_pinhole_request("tcp", 7001, 600, client_ip="fd00:77::2", nonce=NONCE)
    assert len(request) == 60
    assert request[:8] == struct.pack("!BBHI", 2, 1, 0, 600)
    assert request[8:24] == bytes.fromhex("fd000077000000000000000000000002")  # not v4-mapped
    assert request[24:36] == NONCE
    assert request[36] == 6 and request[40:44] == struct.pack("!HH", 7001, 7001)
    assert request[44:] == bytes(16)  # suggested external address: any
    scoped = pcp_pinhole_request("udp", 7001, 0, client_ip="2001:db8::5%eth0", nonce=NONCE)
    assert scoped[8:24] == bytes.fromhex("20010db8000000000000000000000005") and scoped[36] == 17


def test_pinhole_request_refuses_an_ipv4_address() -> None:
    for address in ("192.168.77.2", "::ffff:192.168.77.2"):
        with pytest.raises(ValueError, match="IPv6"):
            pcp_pinhole_request("tcp", 7001, 600, client_ip=address, nonce=NONCE)


def test_miniupnpd_pinhole_answer_parses_to_our_own_address() -> None:
    mapping = parse_pcp_map(MINIUPNPD_ANSWER, "tcp", 7001, NONCE)
    assert mapping == Mapping("tcp", 7001, 7001, 600, "fd00:77::2")


def test_pinhole_answer_for_another_port_or_nonce_is_ignored() -> None:
    with pytest.raises(PortMappingError, match="another mapping"):
        parse_pcp_map(MINIUPNPD_ANSWER, "tcp", 7002, NONCE)
    with pytest.raises(PortMappingError, match="nonce"):
        parse_pcp_map(MINIUPNPD_ANSWER, "tcp", 7001, bytes(12))
    with pytest.raises(PortMappingError, match="too short"):
        parse_pcp_map(MINIUPNPD_ANSWER[:59], "tcp", 7001, NONCE)


ROUTES = (
    "fd000077000000000000000000000000 40 00000000000000000000000000000000 00 "
    "00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0\n"
    "00000000000000000000000000000000 00 00000000000000000000000000000000 00 "
    "{hop} 00000400 00000001 00000000 {flags}     eth0\n"
    "00000000000000000000000000000000 00 00000000000000000000000000000000 00 "
    "00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo\n"
)


def test_default_gateway6_reads_the_default_route(tmp_path: Path) -> None:
    table = tmp_path / "ipv6_route"
    table.write_text(ROUTES.format(hop="fe800000000000000000000000000001", flags="00000003"))
    assert default_gateway6(table) == "fe80::1%eth0"  # link-local: with its interface
    table.write_text(ROUTES.format(hop="fd000077000000000000000000000001", flags="00000003"))
    assert default_gateway6(table) == "fd00:77::1"
    table.write_text(ROUTES.format(hop="fd000077000000000000000000000001", flags="00000001"))
    assert default_gateway6(table) is None  # not a gateway route
    table.write_text("garbage\n" + ROUTES.format(hop="zz" * 16, flags="00000003"))
    assert default_gateway6(table) is None
    assert default_gateway6(tmp_path / "missing") is None


def test_which_addresses_can_have_pinholes() -> None:
    assert can_have_pinholes("2001:db8::5") and can_have_pinholes("fd00:77::2")
    for address in (None, "fe80::1%eth0", "::1", "::", "192.168.1.2", "::ffff:10.0.0.1", "x"):
        assert not can_have_pinholes(address), address
    with pytest.raises(ValueError, match="no pinhole"):
        PinholeOpener([("tcp", 1)], local_ip="fe80::1")
    with pytest.raises(ValueError, match="natpmp"):
        PinholeOpener([("tcp", 1)], local_ip="fd00::2", protocols=["natpmp"])


def test_pinhole_status_open_pending_failed() -> None:
    tcp = Mapping("tcp", 6881, 6881, 120, "fd00:77::2")
    udp = Mapping("udp", 6881, 6881, 7200, "fd00:77::2")
    opened = pinhole_status(MappingResult("fe80::1%eth0", "pcp", [tcp, udp], "fd00:77::2"), "x")
    assert opened == PinholeStatus(
        "open", ("fd00:77::2", 6881), "pcp", ("tcp 6881", "udp 6881"), 120, None
    )
    asking = pinhole_status(MappingResult("fe80::1%eth0"), "fd00:77::2")
    assert asking == PinholeStatus("pending", None, None, (), None, None)
    failed = pinhole_status(MappingResult(None, error="no default gateway"), "fd00:77::2")
    assert (failed.state, failed.error, failed.address) == ("failed", "no default gateway", None)


def test_status_lines_for_pinholes_and_path_mtu() -> None:
    opened = {"state": "open", "address": ["fd00::2", 6881], "protocol": "pcp",
              "ports": ["tcp 6881", "udp 6881"], "lifetime": 120, "error": None}  # fmt: skip
    assert _pinhole(opened) == "open at [fd00::2]:6881 (pcp: tcp 6881, udp 6881)"
    assert _pinhole({**opened, "state": "failed", "error": "pcp: no answer"}) == (
        "failed (pcp: no answer)"
    )
    assert _pinhole({**opened, "state": "pending", "address": None}) == "pending"
    assert _pinhole(None).startswith("off")
    one = summarise_path_mtus([(1500, False)])
    assert one == PathMtuSummary(1, 1500, 1500, 1500, 0)
    assert _path_mtu(dataclasses.asdict(one)) == "1500 bytes (median of 1 path)"
    many = summarise_path_mtus([(1428, True), (1280, False), (1500, False), (1500, True)])
    assert many == PathMtuSummary(4, 1280, 1428, 1500, 2)  # the lower median: a real size
    assert _path_mtu(dataclasses.asdict(many)) == (
        "1428 bytes (median of 4 paths, 1280..1500; 2 still searching)"
    )
    assert summarise_path_mtus([]) is None and _path_mtu(None) == "no uTP connection"


IF_INET6 = (
    "00000000000000000000000000000001 01 80 10 80       lo\n"
    "fd000077000000000000000000000002 03 40 00 80     eth0\n"
    "20010db8000000050000000000000002 03 40 00 80     eth0\n"
    "fe8000000000000000f3fcfffed68ef6 03 40 20 80     eth0\n"
    "20010db8000000990000000000000002 04 40 00 80     eth1\n"
)


def test_own_link_names_the_interface_and_its_prefixes(tmp_path: Path) -> None:
    table = tmp_path / "if_inet6"
    table.write_text(IF_INET6 + "garbage line\n")
    index, prefixes = own_link("fd00:77::2", table) or (0, [])
    assert index == 3
    assert [str(p) for p in prefixes] == ["fd00:77::/64", "2001:db8:0:5::/64"]  # no fe80::/64
    assert own_link("fd00:99::2", table) is None and own_link("nonsense", table) is None
    assert own_link("fd00:77::2", tmp_path / "missing") is None


def test_only_the_gateway_or_our_own_link_is_trusted_for_upnp_urls() -> None:
    prefixes = [IPv6Network("fd00:77::/64")]
    assert on_link("fe80::1", "fe80::1%eth0", prefixes)  # the gateway itself
    assert on_link("[fd00:77::1]", "fe80::1%eth0", prefixes)  # another address on our link
    assert not on_link("fd00:78::1", "fe80::1%eth0", prefixes)  # routed elsewhere
    assert not on_link("192.168.77.1", "fe80::1%eth0", prefixes)
    assert not on_link("router.example", "fe80::1%eth0", prefixes)
