"""The two frames of ``servent/message/1`` (direct messages), bounded both ways.

``msg`` carries one message to the node at the other end of the channel and
``ack`` says it was stored (``docs/gossip.md``, *Direct messages*).  Pure
encoding and parsing: anything malformed is a :class:`MessageFrameError`.
"""

from __future__ import annotations

from dataclasses import dataclass

from servent.codec.bencode import Limits, decode, encode
from servent.errors import BencodeError, ProtocolError

__all__ = [
    "MAX_TEXT",
    "MESSAGE_ID_SIZE",
    "Ack",
    "DirectMessage",
    "MessageFrameError",
    "decode_message_frame",
    "encode_message_frame",
]

MESSAGE_ID_SIZE = 16
#: Largest payload of one direct message (UTF-8 text for ``servent send``).
MAX_TEXT = 65_536
MAX_TIME = 2**40
FRAME_LIMITS = Limits(max_length=MAX_TEXT + 1024, max_depth=2, max_values=16)


class MessageFrameError(ProtocolError):
    """A ``servent/message/1`` frame broke the format or a bound."""


@dataclass(frozen=True, slots=True)
class DirectMessage:
    id: bytes
    time: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class Ack:
    id: bytes


MessageFrame = DirectMessage | Ack


def encode_message_frame(frame: MessageFrame) -> bytes:
    if isinstance(frame, Ack):
        return encode({b"y": b"ack", b"id": frame.id})
    return encode({b"y": b"msg", b"id": frame.id, b"t": frame.time, b"p": frame.payload})


def decode_message_frame(data: bytes) -> MessageFrame:
    """Parse one frame, checking every type and bound."""
    try:
        value = decode(data, FRAME_LIMITS)
    except BencodeError as exc:
        raise MessageFrameError(f"frame does not decode: {exc}") from None
    if not isinstance(value, dict):
        raise MessageFrameError("a frame is a dictionary")
    ident = value.get(b"id")
    if not isinstance(ident, bytes) or len(ident) != MESSAGE_ID_SIZE:
        raise MessageFrameError(f"id must be {MESSAGE_ID_SIZE} bytes")
    kind = value.get(b"y")
    if kind == b"ack":
        return Ack(ident)
    if kind != b"msg":
        raise MessageFrameError(f"unknown frame type {kind!r}")
    sent, payload = value.get(b"t"), value.get(b"p")
    if not isinstance(sent, int) or not 0 <= sent < MAX_TIME:
        raise MessageFrameError("t must be an integer time")
    if not isinstance(payload, bytes) or len(payload) > MAX_TEXT:
        raise MessageFrameError(f"p must be at most {MAX_TEXT} bytes")
    return DirectMessage(ident, sent, payload)
