"""Peer wire messages (BEP 3, 5, 6, 10, 52) as frozen dataclasses, with codec.

Every message after the handshake is ``<length:u32><id:u8><payload>``; a
length of zero is a keep-alive.  :func:`encode_message` returns the whole
frame; :func:`decode_message` takes one frame's body (id byte + payload, i.e.
without the length prefix) and checks the exact payload size of every fixed
message, so a malformed frame raises :class:`MalformedMessageError` and never
anything else.  Unknown ids decode to :class:`UnknownMessage` so newer
extensions do not break old code.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import TypeAlias

from servent.errors import MalformedMessageError

# Message ids.
CHOKE = 0
UNCHOKE = 1
INTERESTED = 2
NOT_INTERESTED = 3
HAVE = 4
BITFIELD = 5
REQUEST = 6
PIECE = 7
CANCEL = 8
PORT = 9
SUGGEST_PIECE = 13
HAVE_ALL = 14
HAVE_NONE = 15
REJECT_REQUEST = 16
ALLOWED_FAST = 17
EXTENDED = 20
HASH_REQUEST = 21
HASHES = 22
HASH_REJECT = 23

#: Messages that only exist when both ends negotiated the fast extension.
FAST_IDS = frozenset({SUGGEST_PIECE, HAVE_ALL, HAVE_NONE, REJECT_REQUEST, ALLOWED_FAST})

_U32 = struct.Struct(">I")
_HEADER = struct.Struct(">IB")
_IDX = struct.Struct(">IBI")
_BLOCK = struct.Struct(">IBIII")
_PIECE_HEADER = struct.Struct(">IBII")
_PORT = struct.Struct(">IBH")
_HASH_FIELDS = struct.Struct(">32sIIII")
_THREE_U32 = struct.Struct(">III")
_HASH_FIELDS_LEN = 48
_HASH_SIZE = 32


@dataclass(frozen=True, slots=True)
class KeepAlive:
    """A zero-length frame; resets the peer's idle timer."""


@dataclass(frozen=True, slots=True)
class Choke:
    """The sender will not serve requests (except allowed-fast ones)."""


@dataclass(frozen=True, slots=True)
class Unchoke:
    """The sender will now serve requests."""


@dataclass(frozen=True, slots=True)
class Interested:
    """The sender wants pieces the receiver has."""


@dataclass(frozen=True, slots=True)
class NotInterested:
    """The sender wants nothing the receiver has."""


@dataclass(frozen=True, slots=True)
class Have:
    """The sender completed and verified piece ``index``."""

    index: int


@dataclass(frozen=True, slots=True)
class HaveBitfield:
    """The sender's pieces, high bit of byte 0 = piece 0 (BEP 3 ``bitfield``)."""

    bits: bytes


@dataclass(frozen=True, slots=True)
class Request:
    """Ask for ``length`` bytes of piece ``index`` from offset ``begin``.

    Also used as the identity of a block request (hashable) by the connection.
    """

    index: int
    begin: int
    length: int


@dataclass(frozen=True, slots=True)
class Piece:
    """A block of data answering a :class:`Request`.

    ``block`` is ``bytes``, except in a received event of a connection with
    ``borrow_input`` set: then it is a ``memoryview`` into the driver's read
    buffer, valid only while the event is being handled.
    """

    index: int
    begin: int
    block: bytes | memoryview

    def request(self) -> Request:
        """The request this block answers."""
        return Request(self.index, self.begin, len(self.block))


@dataclass(frozen=True, slots=True)
class Cancel:
    """Withdraw an earlier request (endgame)."""

    index: int
    begin: int
    length: int


@dataclass(frozen=True, slots=True)
class Port:
    """The sender's DHT port (BEP 5)."""

    port: int


@dataclass(frozen=True, slots=True)
class SuggestPiece:
    """BEP 6: "you might like to download this piece"."""

    index: int


@dataclass(frozen=True, slots=True)
class HaveAll:
    """BEP 6: the sender has every piece (replaces a full bitfield)."""


@dataclass(frozen=True, slots=True)
class HaveNone:
    """BEP 6: the sender has no piece."""


@dataclass(frozen=True, slots=True)
class RejectRequest:
    """BEP 6: the sender will not serve this request."""

    index: int
    begin: int
    length: int


@dataclass(frozen=True, slots=True)
class AllowedFast:
    """BEP 6: the receiver may request this piece even while choked."""

    index: int


@dataclass(frozen=True, slots=True)
class Extended:
    """BEP 10 frame: ``ext_id`` 0 is the extension handshake, others are per-peer ids."""

    ext_id: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class HashRequest:
    """BEP 52: ask for ``length`` hashes of a file's merkle tree layer plus proofs."""

    pieces_root: bytes
    base_layer: int
    index: int
    length: int
    proof_layers: int


@dataclass(frozen=True, slots=True)
class Hashes:
    """BEP 52: answer to :class:`HashRequest`; ``hashes`` is concatenated 32-byte digests."""

    pieces_root: bytes
    base_layer: int
    index: int
    length: int
    proof_layers: int
    hashes: bytes


@dataclass(frozen=True, slots=True)
class HashReject:
    """BEP 52: the sender will not serve this hash request."""

    pieces_root: bytes
    base_layer: int
    index: int
    length: int
    proof_layers: int


@dataclass(frozen=True, slots=True)
class UnknownMessage:
    """A message id this implementation does not know; ignored by the connection."""

    msg_id: int
    payload: bytes


Message: TypeAlias = (
    KeepAlive
    | Choke
    | Unchoke
    | Interested
    | NotInterested
    | Have
    | HaveBitfield
    | Request
    | Piece
    | Cancel
    | Port
    | SuggestPiece
    | HaveAll
    | HaveNone
    | RejectRequest
    | AllowedFast
    | Extended
    | HashRequest
    | Hashes
    | HashReject
    | UnknownMessage
)

_BARE_FRAMES: dict[type, bytes] = {
    KeepAlive: b"\x00\x00\x00\x00",
    Choke: _HEADER.pack(1, CHOKE),
    Unchoke: _HEADER.pack(1, UNCHOKE),
    Interested: _HEADER.pack(1, INTERESTED),
    NotInterested: _HEADER.pack(1, NOT_INTERESTED),
    HaveAll: _HEADER.pack(1, HAVE_ALL),
    HaveNone: _HEADER.pack(1, HAVE_NONE),
}
_BARE_INSTANCES: dict[int, Message] = {
    CHOKE: Choke(),
    UNCHOKE: Unchoke(),
    INTERESTED: Interested(),
    NOT_INTERESTED: NotInterested(),
    HAVE_ALL: HaveAll(),
    HAVE_NONE: HaveNone(),
}
_INDEX_TYPES: dict[type, int] = {Have: HAVE, SuggestPiece: SUGGEST_PIECE, AllowedFast: ALLOWED_FAST}
_BLOCK_TYPES: dict[type, int] = {Request: REQUEST, Cancel: CANCEL, RejectRequest: REJECT_REQUEST}
_HASH_TYPES: dict[type, int] = {HashRequest: HASH_REQUEST, HashReject: HASH_REJECT}


def _u32(value: int, name: str) -> int:
    if not 0 <= value <= 0xFFFFFFFF:
        raise ValueError(f"{name}={value} does not fit in 32 bits")
    return value


def encode_piece_header(index: int, begin: int, block_length: int) -> bytes:
    """The 13-byte frame header of a piece message; lets a sender write the block unjoined."""
    return _PIECE_HEADER.pack(9 + block_length, PIECE, index, begin)


def encode_message(message: Message) -> bytes:
    """Encode one message as a complete frame (length prefix included)."""
    kind = type(message)
    bare = _BARE_FRAMES.get(kind)
    if bare is not None:
        return bare
    if isinstance(message, Piece):
        return encode_piece_header(message.index, message.begin, len(message.block)) + (
            message.block
        )
    if isinstance(message, Have | SuggestPiece | AllowedFast):
        return _IDX.pack(5, _INDEX_TYPES[kind], _u32(message.index, "index"))
    if isinstance(message, Request | Cancel | RejectRequest):
        return _BLOCK.pack(
            13,
            _BLOCK_TYPES[kind],
            _u32(message.index, "index"),
            _u32(message.begin, "begin"),
            _u32(message.length, "length"),
        )
    if isinstance(message, HaveBitfield):
        return _HEADER.pack(1 + len(message.bits), BITFIELD) + message.bits
    if isinstance(message, Port):
        if not 0 <= message.port <= 0xFFFF:
            raise ValueError(f"port {message.port} out of range")
        return _PORT.pack(3, PORT, message.port)
    if isinstance(message, Extended):
        if not 0 <= message.ext_id <= 0xFF:
            raise ValueError(f"extension id {message.ext_id} out of range")
        return (
            _HEADER.pack(2 + len(message.payload), EXTENDED)
            + bytes((message.ext_id,))
            + message.payload
        )
    if isinstance(message, HashRequest | HashReject | Hashes):
        if len(message.pieces_root) != _HASH_SIZE:
            raise ValueError("pieces_root must be 32 bytes")
        fields = _HASH_FIELDS.pack(
            message.pieces_root,
            _u32(message.base_layer, "base_layer"),
            _u32(message.index, "index"),
            _u32(message.length, "length"),
            _u32(message.proof_layers, "proof_layers"),
        )
        if isinstance(message, Hashes):
            if len(message.hashes) % _HASH_SIZE:
                raise ValueError("hashes must be a multiple of 32 bytes")
            body = fields + message.hashes
            return _HEADER.pack(1 + len(body), HASHES) + body
        return _HEADER.pack(1 + len(fields), _HASH_TYPES[kind]) + fields
    if isinstance(message, UnknownMessage):
        return _HEADER.pack(1 + len(message.payload), message.msg_id) + message.payload
    raise TypeError(f"not a peer wire message: {message!r}")


def _expect(size: int, expected: int, name: str) -> None:
    if size != expected:
        raise MalformedMessageError(f"{name} payload of {size} bytes, expected {expected}")


def decode_message(body: bytes | bytearray | memoryview) -> Message:
    """Decode one frame body: the id byte and payload, without the length prefix.

    An empty body is a keep-alive.  Raises :class:`MalformedMessageError` on a
    payload whose size does not fit the message id.
    """
    size = len(body)
    if size == 0:
        return KeepAlive()
    msg_id = body[0]
    payload_size = size - 1
    bare = _BARE_INSTANCES.get(msg_id)
    if bare is not None:
        _expect(payload_size, 0, type(bare).__name__)
        return bare
    if msg_id == PIECE:
        if payload_size < 8:
            raise MalformedMessageError(f"piece payload of {payload_size} bytes")
        index, begin = struct.unpack_from(">II", body, 1)
        return Piece(index, begin, bytes(body[9:]))
    if msg_id in (HAVE, SUGGEST_PIECE, ALLOWED_FAST):
        _expect(payload_size, 4, f"message {msg_id}")
        (index,) = _U32.unpack_from(body, 1)
        if msg_id == HAVE:
            return Have(index)
        if msg_id == SUGGEST_PIECE:
            return SuggestPiece(index)
        return AllowedFast(index)
    if msg_id in (REQUEST, CANCEL, REJECT_REQUEST):
        _expect(payload_size, 12, f"message {msg_id}")
        index, begin, length = _THREE_U32.unpack_from(body, 1)
        if msg_id == REQUEST:
            return Request(index, begin, length)
        if msg_id == CANCEL:
            return Cancel(index, begin, length)
        return RejectRequest(index, begin, length)
    if msg_id == BITFIELD:
        return HaveBitfield(bytes(body[1:]))
    if msg_id == PORT:
        _expect(payload_size, 2, "port")
        return Port(int.from_bytes(body[1:3], "big"))
    if msg_id == EXTENDED:
        if payload_size < 1:
            raise MalformedMessageError("extended message without an extension id")
        return Extended(body[1], bytes(body[2:]))
    if msg_id in (HASH_REQUEST, HASH_REJECT, HASHES):
        if msg_id == HASHES:
            if payload_size < _HASH_FIELDS_LEN or (payload_size - _HASH_FIELDS_LEN) % _HASH_SIZE:
                raise MalformedMessageError(f"hashes payload of {payload_size} bytes")
        else:
            _expect(payload_size, _HASH_FIELDS_LEN, f"message {msg_id}")
        root, base, index, length, proofs = _HASH_FIELDS.unpack_from(body, 1)
        if msg_id == HASH_REQUEST:
            return HashRequest(root, base, index, length, proofs)
        if msg_id == HASH_REJECT:
            return HashReject(root, base, index, length, proofs)
        return Hashes(root, base, index, length, proofs, bytes(body[1 + _HASH_FIELDS_LEN :]))
    return UnknownMessage(msg_id, bytes(body[1:]))


def bitfield_length(num_pieces: int) -> int:
    """Bytes in a bitfield of ``num_pieces`` pieces."""
    return (num_pieces + 7) // 8


def check_bitfield(bits: bytes, num_pieces: int) -> None:
    """Raise :class:`MalformedMessageError` unless ``bits`` fits ``num_pieces`` exactly.

    The length must be exact and the spare bits of the last byte zero (BEP 3).
    """
    expected = bitfield_length(num_pieces)
    if len(bits) != expected:
        raise MalformedMessageError(f"bitfield of {len(bits)} bytes, expected {expected}")
    spare = expected * 8 - num_pieces
    if spare and bits[-1] & ((1 << spare) - 1):
        raise MalformedMessageError("bitfield has spare bits set")


def bitfield_indices(bits: bytes, num_pieces: int) -> list[int]:
    """Piece indices set in ``bits`` (only those below ``num_pieces``)."""
    found: list[int] = []
    for byte_index, byte in enumerate(bits):
        if byte:
            base = byte_index * 8
            for bit in range(8):
                if byte & (0x80 >> bit) and base + bit < num_pieces:
                    found.append(base + bit)
    return found


def bitfield_from_indices(indices: list[int] | set[int] | range, num_pieces: int) -> bytes:
    """Encode piece indices as a BEP 3 bitfield of ``num_pieces`` pieces."""
    length = bitfield_length(num_pieces)
    value = 0
    total = length * 8
    for index in indices:
        if not 0 <= index < num_pieces:
            raise ValueError(f"piece {index} out of range")
        value |= 1 << (total - 1 - index)
    return value.to_bytes(length, "big")
