"""NAT-PMP (RFC 6886) and PCP (RFC 6887) MAP messages, without I/O.

Both protocols ask the home router (UDP port 5351) to forward a port; PCP's
MAP from an IPv6 address opens a pinhole in the router's IPv6 firewall (no
translation: the "external" address and port are our own).  These
functions build requests and parse answers; every answer is hostile input and
is checked for size, version, opcode and (PCP) nonce before it is believed.
Wire formats: ``docs/port-mapping.md``.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

from servent.errors import ProtocolError

SERVER_PORT = 5351
MAX_ANSWER = 1100
"""PCP's maximum message size; anything longer is not an answer."""
TCP, UDP = "tcp", "udp"
_NATPMP_OPCODE = {UDP: 1, TCP: 2}
_PCP_PROTOCOL = {TCP: 6, UDP: 17}
_PCP_VERSION = 2
_PCP_MAP = 1
_PCP_UNSUPP_VERSION = 1
_NATPMP_UNSUPPORTED_VERSION = 1


class PortMappingError(ProtocolError):
    """The router refused or garbled a port mapping request."""


class MappingRefusedError(PortMappingError):
    """The router answered with an error result: asking again will not help."""


class UnsupportedVersionError(MappingRefusedError):
    """The router speaks the other protocol (PCP vs NAT-PMP): try it."""


@dataclass(frozen=True, slots=True)
class Mapping:
    """A mapping the router granted."""

    protocol: str
    internal_port: int
    external_port: int
    lifetime: int
    """Seconds the router keeps it (0: deleted)."""
    external_ip: str | None
    """The router's public address, when the answer carried it (PCP does, NAT-PMP not)."""


def _check_protocol(protocol: str) -> None:
    if protocol not in _NATPMP_OPCODE:
        raise ValueError(f"protocol must be {TCP!r} or {UDP!r}, not {protocol!r}")


def _check_port(port: int) -> None:
    if not 0 <= port <= 0xFFFF:
        raise ValueError(f"port {port} is outside 0..65535")


# -- NAT-PMP ------------------------------------------------------------------


def natpmp_address_request() -> bytes:
    """Ask for the router's external IPv4 address."""
    return b"\x00\x00"


def natpmp_map_request(
    protocol: str, internal_port: int, external_port: int, lifetime: int
) -> bytes:
    """Ask to map (lifetime > 0) or delete (lifetime 0) ``internal_port``."""
    _check_protocol(protocol)
    _check_port(internal_port)
    _check_port(external_port)
    if not 0 <= lifetime <= 0xFFFFFFFF:
        raise ValueError("lifetime out of range")
    opcode = _NATPMP_OPCODE[protocol]
    return struct.pack("!BBHHHI", 0, opcode, 0, internal_port, external_port, lifetime)


def _natpmp_header(data: bytes, opcode: int, size: int) -> None:
    if len(data) > MAX_ANSWER:
        raise PortMappingError("NAT-PMP answer too long")
    if len(data) < 4:
        raise PortMappingError("NAT-PMP answer too short")
    version, op, result = struct.unpack_from("!BBH", data)
    if version != 0:
        raise PortMappingError(f"NAT-PMP answer has version {version}")
    if op != 128 + opcode:
        raise PortMappingError(f"NAT-PMP answer has opcode {op}, expected {128 + opcode}")
    if result == _NATPMP_UNSUPPORTED_VERSION:
        raise UnsupportedVersionError("router does not speak NAT-PMP")
    if result != 0:
        raise MappingRefusedError(f"router refused (NAT-PMP result {result})")
    if len(data) < size:
        raise PortMappingError("NAT-PMP answer too short")


def parse_natpmp_address(data: bytes) -> str:
    """The external IPv4 address from an answer to :func:`natpmp_address_request`."""
    _natpmp_header(data, 0, 12)
    return str(ipaddress.IPv4Address(data[8:12]))


def parse_natpmp_map(data: bytes, protocol: str, internal_port: int) -> Mapping:
    """The mapping from an answer to :func:`natpmp_map_request` for this port."""
    _check_protocol(protocol)
    _natpmp_header(data, _NATPMP_OPCODE[protocol], 16)
    internal, external, lifetime = struct.unpack_from("!HHI", data, 8)
    if internal != internal_port:
        raise PortMappingError(f"NAT-PMP answer is for port {internal}, not {internal_port}")
    return Mapping(protocol, internal, external, lifetime, None)


# -- PCP ----------------------------------------------------------------------

_PCP_SIZE = 60


def _ip16(address: str) -> bytes:
    parsed = ipaddress.ip_address(address)
    if isinstance(parsed, ipaddress.IPv4Address):
        return ipaddress.IPv6Address(b"\x00" * 10 + b"\xff\xff" + parsed.packed).packed
    return parsed.packed


def _ip_text(raw: bytes) -> str | None:
    parsed = ipaddress.IPv6Address(raw)
    mapped = parsed.ipv4_mapped
    shown = mapped if mapped is not None else parsed
    return None if shown.is_unspecified else str(shown)


def pcp_map_request(
    protocol: str,
    internal_port: int,
    external_port: int,
    lifetime: int,
    *,
    client_ip: str,
    nonce: bytes,
) -> bytes:
    """A PCP MAP request from ``client_ip`` (the address the router sees us at)."""
    _check_protocol(protocol)
    _check_port(internal_port)
    _check_port(external_port)
    if len(nonce) != 12:
        raise ValueError("a PCP nonce is 12 bytes")
    if not 0 <= lifetime <= 0xFFFFFFFF:
        raise ValueError("lifetime out of range")
    header = struct.pack("!BBHI", _PCP_VERSION, _PCP_MAP, 0, lifetime) + _ip16(client_ip)
    body = (
        nonce
        + struct.pack("!B3xHH", _PCP_PROTOCOL[protocol], internal_port, external_port)
        + bytes(16)
    )
    return header + body


def pcp_pinhole_request(
    protocol: str, port: int, lifetime: int, *, client_ip: str, nonce: bytes
) -> bytes:
    """A PCP MAP asking the IPv6 firewall to let peers reach ``client_ip`` on ``port``.

    RFC 6887 §11: the same MAP opcode; with an IPv6 internal address and no
    NAT in between, the router opens an inbound pinhole for that address and
    port.  The suggested external address stays all-zero ("any")."""
    parsed = ipaddress.ip_address(client_ip.split("%", 1)[0])
    if not isinstance(parsed, ipaddress.IPv6Address) or parsed.ipv4_mapped is not None:
        raise ValueError(f"a pinhole is for an IPv6 address, not {client_ip!r}")
    return pcp_map_request(protocol, port, port, lifetime, client_ip=str(parsed), nonce=nonce)


def parse_pcp_map(data: bytes, protocol: str, internal_port: int, nonce: bytes) -> Mapping:
    """The mapping from a PCP MAP answer matching our request (nonce, protocol, port)."""
    _check_protocol(protocol)
    if len(data) > MAX_ANSWER:
        raise PortMappingError("PCP answer too long")
    if len(data) >= 4 and data[0] == 0:  # a NAT-PMP-only router answers in its own version
        raise UnsupportedVersionError("router speaks NAT-PMP, not PCP")
    if len(data) < 4:
        raise PortMappingError("PCP answer too short")
    version, op, result = data[0], data[1], data[3]
    if version != _PCP_VERSION:
        if result == _PCP_UNSUPP_VERSION:
            raise UnsupportedVersionError(f"router speaks PCP version {version}")
        raise PortMappingError(f"PCP answer has version {version}")
    if op != 0x80 | _PCP_MAP:
        raise PortMappingError(f"PCP answer has opcode {op:#x}")
    if result == _PCP_UNSUPP_VERSION:
        raise UnsupportedVersionError("router does not speak PCP version 2")
    if result != 0:
        raise MappingRefusedError(f"router refused (PCP result {result})")
    if len(data) < _PCP_SIZE:
        raise PortMappingError("PCP answer too short")
    (lifetime,) = struct.unpack_from("!I", data, 4)
    if data[24:36] != nonce:
        raise PortMappingError("PCP answer carries another nonce")
    proto, internal, external = struct.unpack_from("!B3xHH", data, 36)
    if proto != _PCP_PROTOCOL[protocol] or internal != internal_port:
        raise PortMappingError("PCP answer is for another mapping")
    return Mapping(protocol, internal, external, lifetime, _ip_text(data[44:60]))
