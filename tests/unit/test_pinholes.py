"""IPv6 pinholes: PCP MAP from an IPv6 address (RFC 6887 §11), the IPv6 default route."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from servent.net.pinholes import PinholeOpener, can_have_pinholes, default_gateway6
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
