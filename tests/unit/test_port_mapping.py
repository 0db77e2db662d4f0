"""PCP and NAT-PMP messages (RFC 6887, RFC 6886), the gateway lookup and the verdict."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from servent.net.port_mapper import MappingResult, default_gateway
from servent.node.reachability import assess
from servent.proto.dht.external_ip import ReflectedPorts
from servent.proto.port_mapping import (
    Mapping,
    MappingRefusedError,
    PortMappingError,
    UnsupportedVersionError,
    natpmp_address_request,
    natpmp_map_request,
    parse_natpmp_address,
    parse_natpmp_map,
    parse_pcp_map,
    pcp_map_request,
)

NONCE = bytes(range(12))


def _pcp_answer(
    result: int = 0, *, nonce: bytes = NONCE, proto: int = 6, port: int = 6881
) -> bytes:
    header = struct.pack("!BBBBII", 2, 0x81, 0, result, 3600, 77) + bytes(12)
    mapped_ip = bytes(10) + b"\xff\xff" + bytes([11, 77, 0, 1])
    return header + nonce + struct.pack("!B3xHH", proto, port, 40000) + mapped_ip


def test_natpmp_map_request_layout() -> None:
    assert natpmp_map_request("tcp", 6881, 6882, 7200) == struct.pack(
        "!BBHHHI", 0, 2, 0, 6881, 6882, 7200
    )
    assert natpmp_map_request("udp", 6881, 0, 0)[1] == 1
    assert natpmp_address_request() == b"\x00\x00"


def test_natpmp_answers_parse() -> None:
    address = struct.pack("!BBHI", 0, 128, 0, 5) + bytes([11, 77, 0, 1])
    assert parse_natpmp_address(address) == "11.77.0.1"
    answer = struct.pack("!BBHIHHI", 0, 130, 0, 5, 6881, 50000, 3600)
    assert parse_natpmp_map(answer, "tcp", 6881) == Mapping("tcp", 6881, 50000, 3600, None)


def test_natpmp_refusal_and_wrong_answers() -> None:
    refused = struct.pack("!BBHIHHI", 0, 130, 3, 5, 6881, 0, 0)
    with pytest.raises(MappingRefusedError, match="result 3"):
        parse_natpmp_map(refused, "tcp", 6881)
    udp_answer = struct.pack("!BBHIHHI", 0, 129, 0, 5, 6881, 6881, 60)
    with pytest.raises(PortMappingError, match="opcode"):
        parse_natpmp_map(udp_answer, "tcp", 6881)
    other_port = struct.pack("!BBHIHHI", 0, 130, 0, 5, 9999, 6881, 60)
    with pytest.raises(PortMappingError, match="for port 9999"):
        parse_natpmp_map(other_port, "tcp", 6881)
    with pytest.raises(PortMappingError, match="too short"):
        parse_natpmp_map(other_port[:10], "tcp", 6881)
    with pytest.raises(PortMappingError, match="too long"):
        parse_natpmp_address(bytes(2000))


def test_pcp_request_layout() -> None:
    request = pcp_map_request("udp", 6881, 6881, 7200, client_ip="192.168.77.2", nonce=NONCE)
    assert len(request) == 60
    assert request[:8] == struct.pack("!BBHI", 2, 1, 0, 7200)
    assert request[8:24] == bytes(10) + b"\xff\xff" + bytes([192, 168, 77, 2])
    assert request[24:36] == NONCE
    assert request[36] == 17 and request[40:44] == struct.pack("!HH", 6881, 6881)
    assert request[44:] == bytes(16)
    with pytest.raises(ValueError, match="nonce"):
        pcp_map_request("tcp", 1, 1, 1, client_ip="10.0.0.1", nonce=b"short")
    with pytest.raises(ValueError, match="protocol"):
        pcp_map_request("sctp", 1, 1, 1, client_ip="10.0.0.1", nonce=NONCE)


def test_pcp_answer_parses_port_and_external_address() -> None:
    mapping = parse_pcp_map(_pcp_answer(), "tcp", 6881, NONCE)
    assert mapping == Mapping("tcp", 6881, 40000, 3600, "11.77.0.1")


def test_pcp_answer_for_another_request_is_refused() -> None:
    with pytest.raises(PortMappingError, match="nonce"):
        parse_pcp_map(_pcp_answer(nonce=bytes(12)), "tcp", 6881, NONCE)
    with pytest.raises(PortMappingError, match="another mapping"):
        parse_pcp_map(_pcp_answer(proto=17), "tcp", 6881, NONCE)
    with pytest.raises(MappingRefusedError, match="result 2"):
        parse_pcp_map(_pcp_answer(result=2), "tcp", 6881, NONCE)


def test_pcp_falls_back_on_a_natpmp_only_router() -> None:
    natpmp_reply = struct.pack("!BBHI", 0, 129, 1, 0)  # version 0, "unsupported version"
    with pytest.raises(UnsupportedVersionError):
        parse_pcp_map(natpmp_reply, "tcp", 6881, NONCE)
    pcp_v1 = struct.pack("!BBBB", 1, 0x81, 0, 1) + bytes(56)
    with pytest.raises(UnsupportedVersionError):
        parse_pcp_map(pcp_v1, "tcp", 6881, NONCE)


def test_default_gateway_reads_the_default_route(tmp_path: Path) -> None:
    table = tmp_path / "route"
    table.write_text(
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\n"
        "eth0\t004DA8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\n"
        "eth0\t00000000\t014DA8C0\t0003\t0\t0\t0\t00000000\n"
    )
    assert default_gateway(table) == "192.168.77.1"
    table.write_text("Iface\tDestination\tGateway \tFlags\n")
    assert default_gateway(table) is None
    assert default_gateway(tmp_path / "missing") is None


def _mapped() -> MappingResult:
    tcp = Mapping("tcp", 6881, 40000, 7200, "11.77.0.1")
    return MappingResult("192.168.77.1", "pcp", [tcp], "11.77.0.1")


def test_verdict_mapped_router() -> None:
    verdict = assess(_mapped(), local_ip="192.168.77.2", dht_ip=None, listen_port=6881)
    assert (verdict.reachable, verdict.external_address, verdict.nat) == (
        True,
        ("11.77.0.1", 40000),
        "mapped",
    )


def test_verdict_behind_a_router_that_does_not_map() -> None:
    failed = MappingResult("192.168.77.1", error="no answer")
    verdict = assess(failed, local_ip="192.168.77.2", dht_ip="11.77.0.1", listen_port=6881)
    assert (verdict.reachable, verdict.external_address, verdict.nat) == (
        False,
        ("11.77.0.1", 6881),
        "unknown",
    )


def test_verdict_public_address_without_nat_and_nothing_known() -> None:
    public = assess(None, local_ip="11.77.0.9", dht_ip="11.77.0.9", listen_port=6881)
    assert (public.reachable, public.external_address, public.nat) == (
        None,
        ("11.77.0.9", 6881),
        "none",
    )
    unknown = assess(None, local_ip=None, dht_ip=None, listen_port=None)
    assert (unknown.reachable, unknown.external_address, unknown.nat) == (None, None, "unknown")


def test_verdict_names_the_nat_from_the_dht_ports_when_unmapped() -> None:
    failed = MappingResult("192.168.77.1", error="no answer")
    for behaviour in ("cone", "symmetric"):
        verdict = assess(
            failed,
            local_ip="192.168.77.2",
            dht_ip="11.77.0.1",
            listen_port=1,
            nat_behaviour=behaviour,
        )
        assert (verdict.reachable, verdict.nat) == (False, behaviour)
    mapped = assess(
        _mapped(), local_ip="192.168.77.2", dht_ip=None, listen_port=1, nat_behaviour="cone"
    )
    assert mapped.nat == "mapped"


def test_reflected_ports_tell_cone_from_symmetric() -> None:
    ports = ReflectedPorts(window=3)
    ports.report("11.77.0.2", 6881)
    assert ports.behaviour() is None  # one voter says nothing about other destinations
    ports.report("11.77.0.3", 6881)
    assert ports.behaviour() == "cone"
    ports.report("11.77.0.4", 40001)
    assert ports.behaviour() == "symmetric"
    for voter in ("11.77.0.5", "11.77.0.6", "11.77.0.7"):
        ports.report(voter, 6881)
    assert ports.behaviour() == "cone"  # the old report fell out of the window
