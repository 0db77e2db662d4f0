"""Compact peer and node info (BEP 5, 23, 32).

A compact peer is the IP address in network order followed by a 2-byte port
(6 bytes for IPv4, 18 for IPv6); a compact node is a 20-byte node ID followed
by a compact peer (26 or 38 bytes). Trackers, PEX and the DHT share these
functions, so they are pure and strict: a wrong length raises
:class:`~servent.errors.CompactEncodingError`, never anything else.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable

from servent.errors import CompactEncodingError

Address = tuple[str, int]
"""An ``(ip, port)`` pair as the socket layer spells it."""

NODE_ID_LENGTH = 20
PEER4_LENGTH = 6
PEER6_LENGTH = 18
NODE4_LENGTH = NODE_ID_LENGTH + PEER4_LENGTH
NODE6_LENGTH = NODE_ID_LENGTH + PEER6_LENGTH

_inet_ntoa = socket.inet_ntoa
_inet_ntop = socket.inet_ntop
_AF_INET6 = socket.AF_INET6


def is_ipv6(ip: str) -> bool:
    """Whether ``ip`` is written as an IPv6 address (cheap: looks for a colon)."""
    return ":" in ip


def encode_ip(ip: str) -> bytes:
    """The 4 or 16 network-order bytes of ``ip``."""
    try:
        if ":" in ip:
            return socket.inet_pton(_AF_INET6, ip)
        return socket.inet_aton(ip) if ip.count(".") == 3 else _bad_ip(ip)
    except (OSError, ValueError) as exc:
        raise CompactEncodingError(f"not an IP address: {ip!r}") from exc


def _bad_ip(ip: str) -> bytes:
    raise CompactEncodingError(f"not a dotted-quad IPv4 address: {ip!r}")


def decode_ip(data: bytes) -> str:
    """The textual form of a 4- or 16-byte address."""
    if len(data) == 4:
        return _inet_ntoa(data)
    if len(data) == 16:
        return _inet_ntop(_AF_INET6, data)
    raise CompactEncodingError(f"an IP address has 4 or 16 bytes, not {len(data)}")


def encode_peer(addr: Address) -> bytes:
    """Compact form of one ``(ip, port)``."""
    ip, port = addr
    if not 0 <= port <= 0xFFFF:
        raise CompactEncodingError(f"port {port} out of range")
    return encode_ip(ip) + port.to_bytes(2, "big")


def decode_peer(data: bytes) -> Address:
    """Decode one compact peer of 6 (IPv4) or 18 (IPv6) bytes."""
    size = len(data)
    if size == PEER4_LENGTH:
        return _inet_ntoa(data[:4]), (data[4] << 8) | data[5]
    if size == PEER6_LENGTH:
        return _inet_ntop(_AF_INET6, data[:16]), (data[16] << 8) | data[17]
    raise CompactEncodingError(f"a compact peer has 6 or 18 bytes, not {size}")


def encode_peers(addrs: Iterable[Address]) -> bytes:
    """Concatenated compact peers (the ``peers`` string of a tracker reply)."""
    return b"".join(encode_peer(addr) for addr in addrs)


def decode_peers(data: bytes, *, ipv6: bool = False) -> list[Address]:
    """Split a concatenation of compact peers (IPv4 unless ``ipv6``)."""
    step = PEER6_LENGTH if ipv6 else PEER4_LENGTH
    if len(data) % step:
        raise CompactEncodingError(f"compact peers length {len(data)} is not a multiple of {step}")
    return [decode_peer(data[i : i + step]) for i in range(0, len(data), step)]


def encode_node(node_id: bytes, addr: Address) -> bytes:
    """Compact node info: 20-byte ID followed by the compact peer."""
    if len(node_id) != NODE_ID_LENGTH:
        raise CompactEncodingError(f"a node ID has 20 bytes, not {len(node_id)}")
    return node_id + encode_peer(addr)


def encode_nodes(nodes: Iterable[tuple[bytes, Address]]) -> bytes:
    """Concatenated compact node infos (``nodes`` or ``nodes6``)."""
    return b"".join(encode_node(node_id, addr) for node_id, addr in nodes)


def decode_nodes(data: bytes, *, ipv6: bool = False) -> list[tuple[bytes, Address]]:
    """Split ``nodes`` (26-byte entries) or, with ``ipv6``, ``nodes6`` (38-byte entries)."""
    step = NODE6_LENGTH if ipv6 else NODE4_LENGTH
    size = len(data)
    if size % step:
        raise CompactEncodingError(f"compact nodes length {size} is not a multiple of {step}")
    out: list[tuple[bytes, Address]] = []
    append = out.append
    if ipv6:
        for i in range(0, size, step):
            append(
                (
                    data[i : i + 20],
                    (
                        _inet_ntop(_AF_INET6, data[i + 20 : i + 36]),
                        int.from_bytes(data[i + 36 : i + 38], "big"),
                    ),
                )
            )
    else:
        for i in range(0, size, step):
            append(
                (
                    data[i : i + 20],
                    (_inet_ntoa(data[i + 20 : i + 24]), (data[i + 24] << 8) | data[i + 25]),
                )
            )
    return out
