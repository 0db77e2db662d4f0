"""The uTP packet codec (BEP 29): a 20-byte header, an extension chain, a payload.

Pure functions over bytes. Decoding bounds everything a hostile sender
controls (version, type, extension count and lengths, SACK size) and raises
:class:`~servent.errors.UtpError`; the endpoint drops such a datagram.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from servent.errors import UtpError

__all__ = [
    "HEADER_SIZE",
    "MAX_SACK_BYTES",
    "Packet",
    "PacketType",
    "decode_packet",
    "encode_packet",
    "looks_like_utp",
    "sack_bitmask",
]

VERSION = 1
HEADER_SIZE = 20
#: Largest datagram accepted (the IPv4 UDP payload limit rounded up to the length field).
MAX_DATAGRAM = 65535
#: Extensions chained in one packet; more is hostile.
MAX_EXTENSIONS = 8
#: Largest SACK bitmask accepted (1,024 packets); libtorrent sends at most a few dozen bytes.
MAX_SACK_BYTES = 128
EXTENSION_SACK = 1

_HEADER = struct.Struct(">BBHIIIHH")


class PacketType(IntEnum):
    DATA = 0
    FIN = 1
    STATE = 2
    RESET = 3
    SYN = 4


@dataclass(frozen=True, slots=True)
class Packet:
    """One decoded packet; ``sack`` is the raw selective-ACK bitmask or ``None``."""

    type: PacketType
    connection_id: int
    timestamp_us: int
    timestamp_difference_us: int
    wnd_size: int
    seq_nr: int
    ack_nr: int
    sack: bytes | None = None
    payload: bytes = b""


_TYPES = tuple(PacketType)


def looks_like_utp(data: bytes) -> bool:
    """True if ``data`` may be a uTP packet (version 1, type 0..4, a full header)."""
    if len(data) < HEADER_SIZE:
        return False
    first = data[0]
    return first & 0x0F == VERSION and first >> 4 <= PacketType.SYN


def decode_packet(data: bytes) -> Packet:
    """Parse one datagram; raise :class:`UtpError` on anything out of bounds."""
    size = len(data)
    if size < HEADER_SIZE:
        raise UtpError(f"uTP packet of {size} bytes is shorter than its header")
    if size > MAX_DATAGRAM:
        raise UtpError(f"uTP packet of {size} bytes is too long")
    first, extension, conn_id, ts, ts_diff, wnd, seq_nr, ack_nr = _HEADER.unpack_from(data)
    if first & 0x0F != VERSION:
        raise UtpError(f"uTP version {first & 0x0F} is not 1")
    kind = first >> 4
    if kind > PacketType.SYN:
        raise UtpError(f"unknown uTP packet type {kind}")
    offset = HEADER_SIZE
    sack: bytes | None = None
    count = 0
    while extension:
        count += 1
        if count > MAX_EXTENSIONS:
            raise UtpError("too many uTP extensions")
        if offset + 2 > size:
            raise UtpError("uTP extension header runs past the packet")
        following, length = data[offset], data[offset + 1]
        offset += 2
        if offset + length > size:
            raise UtpError("uTP extension runs past the packet")
        if extension == EXTENSION_SACK:
            # BEP 29 says a multiple of 4; libtorrent sends any length: accept 1..128.
            if length == 0 or length > MAX_SACK_BYTES:
                raise UtpError(f"uTP selective ACK of {length} bytes")
            sack = bytes(data[offset : offset + length])
        offset += length
        extension = following
    payload = bytes(data[offset:]) if offset < size else b""
    return Packet(_TYPES[kind], conn_id, ts, ts_diff, wnd, seq_nr, ack_nr, sack, payload)


def encode_packet(
    kind: PacketType,
    connection_id: int,
    *,
    timestamp_us: int,
    timestamp_difference_us: int,
    wnd_size: int,
    seq_nr: int,
    ack_nr: int,
    sack: bytes | None = None,
    payload: bytes | memoryview = b"",
) -> bytes:
    """Serialise one packet (header, optional SACK extension, payload)."""
    header = _HEADER.pack(
        (kind << 4) | VERSION,
        EXTENSION_SACK if sack else 0,
        connection_id & 0xFFFF,
        timestamp_us & 0xFFFFFFFF,
        timestamp_difference_us & 0xFFFFFFFF,
        max(0, min(wnd_size, 0xFFFFFFFF)),
        seq_nr & 0xFFFF,
        ack_nr & 0xFFFF,
    )
    if sack:
        return b"".join((header, bytes((0, len(sack))), sack, payload))
    if payload:
        return header + payload
    return header


def sack_bitmask(ack_nr: int, received: set[int] | dict[int, bytes], max_bytes: int = 32) -> bytes:
    """The SACK bitmask for packets ``ack_nr + 2 ...`` held out of order (empty if none)."""
    if not received:
        return b""
    highest = 0
    for seq in received:
        distance = (seq - ack_nr - 2) & 0xFFFF
        if distance < max_bytes * 8 and distance >= highest:
            highest = distance + 1
    if highest == 0:
        return b""
    length = (highest + 31) // 32 * 4
    mask = bytearray(length)
    for seq in received:
        distance = (seq - ack_nr - 2) & 0xFFFF
        if distance < length * 8:
            mask[distance >> 3] |= 1 << (distance & 7)
    return bytes(mask)
