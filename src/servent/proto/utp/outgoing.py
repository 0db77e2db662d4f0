"""Wire-level helpers of a uTP connection: sent packets, sequence order, timestamps, sizes."""

from __future__ import annotations

from dataclasses import dataclass

from servent.proto.utp.packet import HEADER_SIZE, Packet, PacketType

__all__ = [
    "DATAGRAM_SIZE_IPV4",
    "DATAGRAM_SIZE_IPV6",
    "OutgoingPacket",
    "micros",
    "payload_size_for",
    "reply_micro",
    "seq_after",
]

MASK = 0xFFFF

#: Datagram sizes that pass any ordinary path without fragmentation (see docs/utp.md).
DATAGRAM_SIZE_IPV4 = 1400
DATAGRAM_SIZE_IPV6 = 1232


def payload_size_for(ipv6: bool) -> int:
    """Payload bytes per DATA packet on a path of that family."""
    return (DATAGRAM_SIZE_IPV6 if ipv6 else DATAGRAM_SIZE_IPV4) - HEADER_SIZE


@dataclass(slots=True)
class OutgoingPacket:
    """A sent packet that is not acknowledged yet."""

    seq: int
    kind: PacketType
    payload: bytes
    first_sent: float = 0.0
    transmissions: int = 0
    need_resend: bool = True  # True until its first transmission
    fast_resent: bool = False
    fragmentable: bool = False  # sent once with fragmentation allowed: its ACK proves no size


def seq_after(a: int, b: int) -> bool:
    """``a`` is later than ``b`` in 16-bit sequence space."""
    return a != b and (a - b) & MASK < 0x8000


def micros(now: float) -> int:
    return int(now * 1_000_000) & 0xFFFFFFFF


def reply_micro(packet: Packet, now: float) -> int:
    """Our receive time minus the sender's timestamp: the delay sample we send back."""
    if not packet.timestamp_us:
        return 0
    return (micros(now) - packet.timestamp_us) & 0xFFFFFFFF
