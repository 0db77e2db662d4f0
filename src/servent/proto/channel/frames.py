"""Node channel framing: the magic, handshake message framing, transport frame layout.

Pure functions over bytes (``docs/node-channel.md`` sections 2-4).  Every
length is checked before data is buffered or decrypted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import IntEnum

from servent.proto.channel.errors import ChannelProtocolError

__all__ = [
    "MAGIC",
    "MAX_BODY",
    "MAX_CIPHERTEXT",
    "MAX_HANDSHAKE_MESSAGE",
    "MIN_CIPHERTEXT",
    "CloseCode",
    "FrameType",
    "PlainFrame",
    "check_protocol_name",
    "decode_plain",
    "encode_coded",
    "encode_plain",
]

#: The first 16 bytes of a node channel, both ways (section 2).
MAGIC = b"\xf0servent-node/1\n"
MAX_HANDSHAKE_MESSAGE = 1024
HANDSHAKE_LENGTH_SIZE = 2
FRAME_LENGTH_SIZE = 4
HEADER_SIZE = 5
TAG_SIZE = 16
#: Largest DATA body: one message of a stream protocol; 64 KiB of user payload
#: (the bound of a message or broadcast) plus 1 KiB for the protocol's envelope.
MAX_BODY = 64 * 1024 + 1024
MIN_CIPHERTEXT = TAG_SIZE + HEADER_SIZE
MAX_CIPHERTEXT = TAG_SIZE + HEADER_SIZE + MAX_BODY
MAX_REASON = 200
MAX_PROTOCOL_NAME = 64
PING_SIZE = 8
_PROTOCOL_NAME = re.compile(rb"[a-z0-9._/-]{1,64}")


class FrameType(IntEnum):
    PING = 0x00
    PONG = 0x01
    GOODBYE = 0x02
    REKEY = 0x03
    OPEN = 0x10
    DATA = 0x11
    CLOSE = 0x12
    RESET = 0x13


class CloseCode(IntEnum):
    """Codes of GOODBYE and RESET frames."""

    NORMAL = 0
    PROTOCOL_ERROR = 1
    UNKNOWN_PROTOCOL = 2
    REFUSED = 3
    IDLE = 4
    SHUTDOWN = 5
    TIMEOUT = 6


CONNECTION_FRAMES = frozenset({FrameType.PING, FrameType.PONG, FrameType.GOODBYE, FrameType.REKEY})
#: Types from here on are extensions that version 1 ignores.
FIRST_EXTENSION_TYPE = 0x80


@dataclass(frozen=True, slots=True)
class PlainFrame:
    """A decrypted transport frame; ``kind`` is an int for ignored extension types."""

    kind: FrameType | int
    stream_id: int
    body: bytes


def encode_plain(kind: FrameType, stream_id: int, body: bytes = b"") -> bytes:
    return bytes([kind]) + stream_id.to_bytes(4, "big") + body


def encode_coded(code: int, reason: str) -> bytes:
    """Body of GOODBYE and RESET: u16 code, then the reason cut to its bound."""
    text = reason.encode("utf-8")[:MAX_REASON].decode("utf-8", "ignore").encode("utf-8")
    return code.to_bytes(2, "big") + text


def decode_coded(body: bytes) -> tuple[int, str]:
    if not 2 <= len(body) <= 2 + MAX_REASON:
        raise ChannelProtocolError(f"close frame body of {len(body)} bytes")
    try:
        reason = body[2:].decode("utf-8")
    except UnicodeDecodeError:
        raise ChannelProtocolError("close reason is not UTF-8") from None
    return int.from_bytes(body[:2], "big"), reason


def check_protocol_name(name: bytes) -> str:
    """A protocol name as OPEN carries it; raises for anything outside ``[a-z0-9._/-]{1,64}``."""
    if not _PROTOCOL_NAME.fullmatch(name):
        raise ChannelProtocolError(f"bad protocol name {name[:MAX_PROTOCOL_NAME]!r}")
    return name.decode("ascii")


_BODY_SIZES = {
    FrameType.PING: (PING_SIZE, PING_SIZE),
    FrameType.PONG: (PING_SIZE, PING_SIZE),
    FrameType.GOODBYE: (2, 2 + MAX_REASON),
    FrameType.REKEY: (0, 0),
    FrameType.OPEN: (1, MAX_PROTOCOL_NAME),
    FrameType.DATA: (0, MAX_BODY),
    FrameType.CLOSE: (0, 0),
    FrameType.RESET: (2, 2 + MAX_REASON),
}


def decode_plain(plaintext: bytes) -> PlainFrame:
    """Split and check a decrypted frame (type, stream rules, body size)."""
    if len(plaintext) < HEADER_SIZE:
        raise ChannelProtocolError("frame shorter than its header")
    raw_kind = plaintext[0]
    stream_id = int.from_bytes(plaintext[1:HEADER_SIZE], "big")
    body = plaintext[HEADER_SIZE:]
    if raw_kind >= FIRST_EXTENSION_TYPE:
        return PlainFrame(raw_kind, stream_id, body)
    try:
        kind = FrameType(raw_kind)
    except ValueError:
        raise ChannelProtocolError(f"unknown frame type 0x{raw_kind:02x}") from None
    if (kind in CONNECTION_FRAMES) != (stream_id == 0):
        where = "stream 0" if stream_id == 0 else f"stream {stream_id}"
        raise ChannelProtocolError(f"{kind.name} frame on {where}")
    low, high = _BODY_SIZES[kind]
    if not low <= len(body) <= high:
        raise ChannelProtocolError(f"{kind.name} frame with a {len(body)}-byte body")
    return PlainFrame(kind, stream_id, body)
