"""BEP 55 ``ut_holepunch`` messages and the relaying peer's rule, without I/O.

See ``docs/holepunch.md``.  A message is 12 (IPv4) or 24 (IPv6) bytes (8
or 20 without the error code, as libtorrent sends them);
:func:`relay_rendezvous` says what a relay sends for a rendezvous request,
given what it knows of its connections.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum

from servent.codec.compact import Address
from servent.errors import ProtocolError

EXTENSION_NAME = "ut_holepunch"


class HolepunchError(ProtocolError):
    """A malformed ``ut_holepunch`` message."""


class MessageType(IntEnum):
    RENDEZVOUS = 0
    CONNECT = 1
    ERROR = 2


class ErrorCode(IntEnum):
    NONE = 0
    NO_SUCH_PEER = 1
    NOT_CONNECTED = 2
    NO_SUPPORT = 3
    NO_SELF = 4


@dataclass(frozen=True, slots=True)
class HolepunchMessage:
    type: MessageType
    peer: Address
    error: ErrorCode = ErrorCode.NONE


def encode(message: HolepunchMessage) -> bytes:
    host, port = message.peer
    address = ipaddress.ip_address(host)
    if not 0 <= port <= 0xFFFF:
        raise ValueError(f"port {port} out of range")
    family = 0 if address.version == 4 else 1
    return (
        struct.pack("!BB", message.type, family)
        + address.packed
        + struct.pack("!HI", port, message.error)
    )


def decode(data: bytes) -> HolepunchMessage:
    """One message; :class:`HolepunchError` for anything but an exact, known one.

    libtorrent leaves out ``err_code`` in rendezvous and connect messages (8 or 20
    bytes); BEP 55 sends it as 0 (12 or 24 bytes).  Both are read; an error message
    must carry its code."""
    if len(data) not in (8, 12, 20, 24):
        raise HolepunchError(f"a ut_holepunch message has 8 to 24 bytes, not {len(data)}")
    kind, family = data[0], data[1]
    size = {0: 4, 1: 16}.get(family)
    if size is None or len(data) not in (4 + size, 8 + size):
        raise HolepunchError(f"address type {family} does not fit {len(data)} bytes")
    (port,) = struct.unpack_from("!H", data, 2 + size)
    has_code = len(data) == 8 + size
    error = struct.unpack_from("!I", data, 4 + size)[0] if has_code else 0
    try:
        message_type, error_code = MessageType(kind), ErrorCode(error)
    except ValueError as exc:
        raise HolepunchError(f"unknown message type or error code: {exc}") from exc
    if message_type is MessageType.ERROR and not has_code:
        raise HolepunchError("an error message without its error code")
    host = str(ipaddress.ip_address(data[2 : 2 + size]))
    return HolepunchMessage(message_type, (host, port), error_code)


@dataclass(frozen=True, slots=True)
class PeerView:
    """What a relay knows of one peer it may introduce."""

    address: Address
    """Where the relay sees the peer (the address the other side must dial)."""
    connected: bool
    supports_holepunch: bool


def relay_rendezvous(
    requester: Address,
    target: Address,
    lookup: Callable[[Address], PeerView | None],
) -> list[tuple[Address, HolepunchMessage]]:
    """What a relay sends (to whom, what) when ``requester`` asks to meet ``target``."""
    if target == requester:
        return [(requester, HolepunchMessage(MessageType.ERROR, target, ErrorCode.NO_SELF))]
    view = lookup(target)
    error = None
    if view is None:
        error = ErrorCode.NO_SUCH_PEER
    elif not view.connected:
        error = ErrorCode.NOT_CONNECTED
    elif not view.supports_holepunch:
        error = ErrorCode.NO_SUPPORT
    if error is not None:
        return [(requester, HolepunchMessage(MessageType.ERROR, target, error))]
    assert view is not None
    return [
        (requester, HolepunchMessage(MessageType.CONNECT, view.address)),
        (view.address, HolepunchMessage(MessageType.CONNECT, requester)),
    ]
