"""Node IDs: XOR distance and BEP 42 (IDs derived from the external IP).

BEP 42 ties the first 21 bits of a node ID to a CRC32-C of the node's masked
IP, so an attacker cannot choose IDs next to a target without controlling
many addresses. Local and private addresses are exempt.
"""

from __future__ import annotations

import ipaddress
import random

from servent.codec.compact import encode_ip
from servent.errors import CompactEncodingError

ID_BITS = 160
ID_LENGTH = 20

_IPV4_MASK = bytes.fromhex("030f3fff")
_IPV6_MASK = bytes.fromhex("0103070f1f3f7fff")


def _crc32c_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC32C = _crc32c_table()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli), used only on 4 or 8 bytes, so a table loop is fast enough."""
    crc = 0xFFFFFFFF
    table = _CRC32C
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def distance(a: bytes, b: bytes) -> int:
    """XOR distance of two IDs as an integer."""
    return int.from_bytes(a, "big") ^ int.from_bytes(b, "big")


def random_id(rng: random.Random) -> bytes:
    """A uniformly random 160-bit ID."""
    return rng.getrandbits(ID_BITS).to_bytes(ID_LENGTH, "big")


def _prefix_crc(ip_bytes: bytes, r: int) -> int:
    mask = _IPV4_MASK if len(ip_bytes) == 4 else _IPV6_MASK
    masked = bytearray(a & m for a, m in zip(ip_bytes[: len(mask)], mask, strict=True))
    masked[0] |= (r & 7) << 5
    return crc32c(bytes(masked))


def generate_secure_id(ip: str, rng: random.Random) -> bytes:
    """A random node ID that satisfies BEP 42 for external address ``ip``."""
    ip_bytes = encode_ip(ip)
    rand = rng.getrandbits(8)
    crc = _prefix_crc(ip_bytes, rand & 7)
    middle = rng.getrandbits(16 * 8).to_bytes(16, "big")
    third = ((crc >> 8) & 0xF8) | rng.getrandbits(3)
    return bytes(((crc >> 24) & 0xFF, (crc >> 16) & 0xFF, third)) + middle + bytes((rand,))


def is_exempt_ip(ip: str) -> bool:
    """Local, private and link-local addresses are exempt from BEP 42."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return address.is_private or address.is_loopback or address.is_link_local


def is_secure_id(node_id: bytes, ip: str) -> bool:
    """Whether ``node_id`` satisfies BEP 42 for ``ip`` (exempt addresses always do)."""
    if len(node_id) != ID_LENGTH:
        return False
    if is_exempt_ip(ip):
        return True
    try:
        ip_bytes = encode_ip(ip)
    except CompactEncodingError:
        return False
    crc = _prefix_crc(ip_bytes, node_id[19] & 7)
    return (
        node_id[0] == (crc >> 24) & 0xFF
        and node_id[1] == (crc >> 16) & 0xFF
        and (node_id[2] & 0xF8) == ((crc >> 8) & 0xF8)
    )
