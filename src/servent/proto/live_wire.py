"""Messages of the live protocol ``servent/live/1`` (sans-IO): encode and parse, bounded.

Wire format in ``docs/live.md`` ("The live protocol"): each stream message
is one bencoded dictionary whose ``t`` names the kind.  Parsing checks every
field's type and bound and raises :class:`~servent.proto.live.LiveError`;
the signature of a piece is checked by the receiver with
:func:`servent.proto.live.verify_piece`.
"""

from __future__ import annotations

from dataclasses import dataclass

from servent.codec.bencode import BValue, Encodable, decode, encode
from servent.codec.compact import Address, decode_peer, encode_peer
from servent.errors import CompactEncodingError, DecodeError
from servent.proto.live import LiveError, LivePiece, decode_piece

__all__ = [
    "LIVE_PROTOCOL",
    "MAX_WIRE_PIECE",
    "Busy",
    "Have",
    "Hello",
    "LiveMessage",
    "Peers",
    "PieceMessage",
    "Want",
    "decode_live_message",
    "encode_live_message",
]

LIVE_PROTOCOL = "servent/live/1"
#: Data bytes of one piece on this transport (one channel message of 64 KiB + 1 KiB).
MAX_WIRE_PIECE = 64_000
MAX_MESSAGE = 64 * 1024 + 1024
MAX_PEERS = 50
MAX_NAME = 200
_MAX_INDEX = 2**63


@dataclass(frozen=True, slots=True)
class Hello:
    topic: bytes
    edge: int | None
    port: int
    name: str = ""


@dataclass(frozen=True, slots=True)
class Have:
    index: int


@dataclass(frozen=True, slots=True)
class Want:
    index: int


@dataclass(frozen=True, slots=True)
class Busy:
    index: int


@dataclass(frozen=True, slots=True)
class PieceMessage:
    piece: LivePiece


@dataclass(frozen=True, slots=True)
class Peers:
    addresses: tuple[Address, ...]


LiveMessage = Hello | Have | Want | Busy | PieceMessage | Peers


def encode_live_message(message: LiveMessage) -> bytes:
    value: dict[bytes | str, Encodable]
    if isinstance(message, Hello):
        edge = -1 if message.edge is None else message.edge
        value = {b"t": b"hello", b"k": message.topic, b"e": edge, b"p": message.port}
        if message.name:
            value[b"n"] = message.name.encode()[:MAX_NAME]
    elif isinstance(message, PieceMessage):
        value = {b"t": b"piece", b"x": message.piece.to_bytes()}
    elif isinstance(message, Peers):
        value = {b"t": b"peers", b"a": [encode_peer(a) for a in message.addresses[:MAX_PEERS]]}
    else:
        kind = {Have: b"have", Want: b"want", Busy: b"busy"}[type(message)]
        value = {b"t": kind, b"i": message.index}
    return encode(value)


def decode_live_message(raw: bytes) -> LiveMessage:
    """Parse one message (raises :class:`LiveError`; the piece signature is not checked)."""
    if len(raw) > MAX_MESSAGE:
        raise LiveError("live message too large")
    try:
        value = decode(raw)
    except DecodeError as exc:
        raise LiveError(f"bad live message encoding: {exc}") from None
    if not isinstance(value, dict):
        raise LiveError("a live message is a dictionary")
    kind = value.get(b"t")
    if kind == b"hello":
        return _hello(value)
    if kind == b"piece":
        raw_piece = value.get(b"x")
        if not isinstance(raw_piece, bytes):
            raise LiveError("a piece message carries x, a byte string")
        piece = decode_piece(raw_piece)
        if len(piece.data) > MAX_WIRE_PIECE:
            raise LiveError("live piece larger than the transport's limit")
        return PieceMessage(piece)
    if kind == b"peers":
        return Peers(_addresses(value.get(b"a")))
    if kind in (b"have", b"want", b"busy"):
        index = _index(value.get(b"i"))
        return Have(index) if kind == b"have" else Want(index) if kind == b"want" else Busy(index)
    raise LiveError("unknown live message kind")


def _index(value: BValue | None) -> int:
    if not isinstance(value, int) or not 0 <= value < _MAX_INDEX:
        raise LiveError("live piece index out of range")
    return value


def _hello(value: dict[bytes, BValue]) -> Hello:
    topic, edge, port, name = value.get(b"k"), value.get(b"e"), value.get(b"p"), value.get(b"n")
    if not isinstance(topic, bytes) or len(topic) != 20:
        raise LiveError("hello: k is a 20-byte topic")
    if not isinstance(edge, int) or not -1 <= edge < _MAX_INDEX:
        raise LiveError("hello: e is an index or -1")
    if not isinstance(port, int) or not 0 <= port <= 0xFFFF:
        raise LiveError("hello: p is a port")
    if name is not None and (not isinstance(name, bytes) or len(name) > MAX_NAME):
        raise LiveError("hello: n is a name of at most 200 bytes")
    text = name.decode("utf-8", "replace") if isinstance(name, bytes) else ""
    return Hello(topic, None if edge == -1 else edge, port, text)


def _addresses(value: BValue | None) -> tuple[Address, ...]:
    if not isinstance(value, list) or len(value) > MAX_PEERS:
        raise LiveError("peers: a is a list of at most 50 addresses")
    out: list[Address] = []
    for item in value:
        if not isinstance(item, bytes):
            raise LiveError("peers: an address is a compact byte string")
        try:
            out.append(decode_peer(item))
        except CompactEncodingError as exc:
            raise LiveError(f"peers: {exc}") from None
    return tuple(out)
