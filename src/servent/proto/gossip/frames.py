"""The gossip frames neighbours exchange, and their bounded encoding."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from servent.codec.bencode import Limits, decode, encode
from servent.codec.node_id import is_usable_public_key
from servent.errors import BencodeError
from servent.proto.gossip.message import (
    ID_SIZE,
    MAX_CHANNEL,
    MAX_PAYLOAD,
    GossipError,
    GossipMessage,
)

MAX_IDS = 256
#: Nodes named in one peer-exchange frame, and channels in one subscription frame.
MAX_EXCHANGED = 16
MAX_CHANNELS = 32
#: A peer-exchange entry: the node's key, then its compact IPv4 or IPv6 address.
_ENTRY_SIZES = (32 + 6, 32 + 18)
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


@dataclass(frozen=True, slots=True)
class PeerExchange:
    """Nodes the sender knows, to widen the receiver's choice of neighbours.

    ``port`` is where the sender accepts node channels (0: it does not); each
    entry of ``peers`` is a 32-byte node key followed by a compact address.
    """

    port: int
    peers: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class Subscribe:
    """Every channel the sender keeps and relays (``b""`` is the whole network)."""

    channels: tuple[bytes, ...]


Frame = Publish | IHave | IWant | Graft | Prune | PeerExchange | Subscribe


def encode_frame(frame: Frame) -> bytes:
    if isinstance(frame, Publish):
        return encode({b"y": b"pub", b"m": frame.message.to_dict()})
    if isinstance(frame, IHave | IWant):
        kind = b"ihave" if isinstance(frame, IHave) else b"iwant"
        return encode({b"y": kind, b"ids": list(frame.ids)})
    if isinstance(frame, PeerExchange):
        return encode({b"y": b"px", b"l": frame.port, b"p": list(frame.peers)})
    if isinstance(frame, Subscribe):
        return encode({b"y": b"sub", b"c": list(frame.channels)})
    return encode({b"y": b"graft" if isinstance(frame, Graft) else b"prune"})


def _exchange(value: Mapping[bytes, object]) -> PeerExchange:
    port, peers = value.get(b"l"), value.get(b"p")
    if not isinstance(port, int) or not 0 <= port < 65536:
        raise GossipError("px port must be 0..65535")
    if not isinstance(peers, list) or len(peers) > MAX_EXCHANGED:
        raise GossipError(f"px peers must be a list of at most {MAX_EXCHANGED}")
    for entry in peers:
        if not isinstance(entry, bytes) or len(entry) not in _ENTRY_SIZES:
            raise GossipError("a px entry is a 32-byte key and a 6- or 18-byte address")
        if not is_usable_public_key(entry[:32]):
            raise GossipError("a px entry names a low-order or non-canonical key")
    return PeerExchange(port, tuple(peers))


def _subscription(value: Mapping[bytes, object]) -> Subscribe:
    channels = value.get(b"c")
    if not isinstance(channels, list) or len(channels) > MAX_CHANNELS:
        raise GossipError(f"sub channels must be a list of at most {MAX_CHANNELS}")
    for name in channels:
        if not isinstance(name, bytes) or len(name) > MAX_CHANNEL:
            raise GossipError(f"a channel name is at most {MAX_CHANNEL} bytes")
    return Subscribe(tuple(dict.fromkeys(channels)))


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
    if kind == b"px":
        return _exchange(value)
    if kind == b"sub":
        return _subscription(value)
    raise GossipError(f"unknown frame type {kind!r}")
