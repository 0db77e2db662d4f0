"""The five gossip frames neighbours exchange, and their bounded encoding."""

from __future__ import annotations

from dataclasses import dataclass

from servent.codec.bencode import Limits, decode, encode
from servent.errors import BencodeError
from servent.proto.gossip.message import (
    ID_SIZE,
    MAX_PAYLOAD,
    GossipError,
    GossipMessage,
)

MAX_IDS = 256
FRAME_LIMITS = Limits(max_length=MAX_PAYLOAD + 2048, max_depth=4, max_values=MAX_IDS + 64)


@dataclass(frozen=True, slots=True)
class Publish:
    """A whole message."""

    message: GossipMessage


@dataclass(frozen=True, slots=True)
class IHave:
    """IDs of recent messages the sender holds."""

    ids: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class IWant:
    """IDs the sender is missing and asks for."""

    ids: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class Graft:
    """The sender added us to its mesh."""


@dataclass(frozen=True, slots=True)
class Prune:
    """The sender removed us from its mesh."""


Frame = Publish | IHave | IWant | Graft | Prune


def encode_frame(frame: Frame) -> bytes:
    if isinstance(frame, Publish):
        return encode({b"y": b"pub", b"m": frame.message.to_dict()})
    if isinstance(frame, IHave | IWant):
        kind = b"ihave" if isinstance(frame, IHave) else b"iwant"
        return encode({b"y": kind, b"ids": list(frame.ids)})
    return encode({b"y": b"graft" if isinstance(frame, Graft) else b"prune"})


def _ids(value: object) -> tuple[bytes, ...]:
    if not isinstance(value, list) or len(value) > MAX_IDS:
        raise GossipError(f"ids must be a list of at most {MAX_IDS}")
    if not all(isinstance(item, bytes) and len(item) == ID_SIZE for item in value):
        raise GossipError("every id is 20 bytes")
    return tuple(value)


def decode_frame(data: bytes) -> Frame:
    """Parse one frame; anything malformed or out of bounds is a :class:`GossipError`."""
    try:
        value = decode(data, FRAME_LIMITS)
    except BencodeError as exc:
        raise GossipError(f"frame does not decode: {exc}") from None
    if not isinstance(value, dict):
        raise GossipError("a frame is a dictionary")
    kind = value.get(b"y")
    if kind == b"pub":
        return Publish(GossipMessage.from_dict(value.get(b"m")))
    if kind == b"ihave":
        return IHave(_ids(value.get(b"ids")))
    if kind == b"iwant":
        return IWant(_ids(value.get(b"ids")))
    if kind == b"graft":
        return Graft()
    if kind == b"prune":
        return Prune()
    raise GossipError(f"unknown frame type {kind!r}")
