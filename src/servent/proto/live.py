"""Live broadcasts: live keys, signed pieces and the window at the live edge (sans-IO).

Wire formats in ``docs/live.md``.  A viewer checks each piece against the
broadcaster's key, so pieces can be shared among viewers before any
info-hash exists; the window keeps only recent pieces and moves with the
highest verified index (the live edge).
"""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from servent.codec.bencode import decode, encode
from servent.codec.node_id import format_node_id, parse_node_id
from servent.errors import DecodeError

LIVE_PREFIX = "live:"
MAX_LIVE_PIECE = 1024 * 1024
SIGNATURE_SIZE = 64
_TOPIC_CONTEXT = b"servent-live:"
_PIECE_CONTEXT = b"servent-live-piece\x00"
_MAX_INDEX = 2**63


class LiveError(DecodeError):
    """A live key or a live piece is malformed or its signature does not verify."""


def format_live_key(public_key: bytes, hint: tuple[str, int] | None = None) -> str:
    """``live:KEY``, with ``@HOST:PORT`` (``@[IPv6]:PORT``) when a hint is given."""
    key = LIVE_PREFIX + format_node_id(public_key)
    if hint is None:
        return key
    host, port = hint
    return f"{key}@[{host}]:{port}" if ":" in host else f"{key}@{host}:{port}"


def parse_live_key(text: str) -> bytes:
    """The broadcaster's public key in a live key (raises :class:`LiveError`)."""
    return parse_live_key_with_hint(text)[0]


def parse_live_key_with_hint(text: str) -> tuple[bytes, tuple[str, int] | None]:
    """The public key and the address hint (None when the key has none)."""
    text = text.strip()
    if not text.lower().startswith(LIVE_PREFIX):
        raise LiveError("a live key starts with 'live:'")
    key_text, _, hint_text = text[len(LIVE_PREFIX) :].partition("@")
    try:
        key = parse_node_id(key_text)
    except DecodeError as exc:
        raise LiveError(f"bad live key: {exc}") from None
    return key, (_parse_hint(hint_text) if hint_text else None)


def _parse_hint(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        ipaddress.ip_address(host)
        number = int(port)
    except ValueError:
        raise LiveError(f"bad address hint in live key: {text[:60]!r}") from None
    if not sep or not 1 <= number <= 65535:
        raise LiveError(f"bad address hint in live key: {text[:60]!r}")
    return host, number


def live_topic(public_key: bytes) -> bytes:
    """The 20-byte swarm name of a broadcast (used where an info-hash would be)."""
    return hashlib.sha1(_TOPIC_CONTEXT + public_key).digest()


def _message(topic: bytes, index: int, data: bytes) -> bytes:
    return _PIECE_CONTEXT + topic + index.to_bytes(8, "big") + hashlib.sha256(data).digest()


@dataclass(frozen=True, slots=True)
class LivePiece:
    index: int
    data: bytes
    signature: bytes

    def to_bytes(self) -> bytes:
        return encode({b"d": self.data, b"i": self.index, b"s": self.signature})


def sign_piece(key: Ed25519PrivateKey, index: int, data: bytes) -> LivePiece:
    """The broadcaster's side: piece ``index`` with its signature."""
    if not 0 <= index < _MAX_INDEX or len(data) > MAX_LIVE_PIECE:
        raise LiveError("live piece index or size out of range")
    public = key.public_key().public_bytes_raw()
    return LivePiece(index, data, key.sign(_message(live_topic(public), index, data)))


def decode_piece(raw: bytes) -> LivePiece:
    """Parse an encoded piece (bounded; signature not checked yet)."""
    if len(raw) > MAX_LIVE_PIECE + 256:
        raise LiveError("live piece message too large")
    try:
        value = decode(raw)
    except DecodeError as exc:
        raise LiveError(f"bad live piece encoding: {exc}") from None
    if not isinstance(value, dict) or set(value) != {b"d", b"i", b"s"}:
        raise LiveError("a live piece is a dict of d, i, s")
    data, index, signature = value[b"d"], value[b"i"], value[b"s"]
    if not isinstance(data, bytes) or not isinstance(signature, bytes):
        raise LiveError("live piece data and signature are byte strings")
    if not isinstance(index, int) or not 0 <= index < _MAX_INDEX:
        raise LiveError("live piece index out of range")
    if len(data) > MAX_LIVE_PIECE or len(signature) != SIGNATURE_SIZE:
        raise LiveError("live piece data too large or signature not 64 bytes")
    return LivePiece(index, data, signature)


def verify_piece(public_key: bytes, piece: LivePiece) -> None:
    """Raise :class:`LiveError` unless the broadcaster of ``public_key`` signed ``piece``."""
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(
            piece.signature, _message(live_topic(public_key), piece.index, piece.data)
        )
    except (InvalidSignature, ValueError):
        raise LiveError(f"live piece {piece.index}: signature does not verify") from None


class LiveWindow:
    """Which piece indices a viewer keeps and asks for: the last ``size`` up to the edge."""

    def __init__(self, size: int) -> None:
        if size <= 0:
            raise ValueError("the window holds at least one piece")
        self.size = size
        self.edge: int | None = None  # None: nothing verified yet (a late joiner starts here)
        self.have: set[int] = set()

    def accepts(self, index: int) -> bool:
        """Whether a piece is worth taking (not behind the window)."""
        return self.edge is None or index > self.edge - self.size

    def add(self, index: int) -> list[int]:
        """A verified piece; returns the indices that fell out of the window (to drop)."""
        if not self.accepts(index):
            return []
        self.have.add(index)
        if self.edge is None or index > self.edge:
            self.edge = index
        low = self.edge - self.size + 1
        dropped = sorted(i for i in self.have if i < low)
        self.have.difference_update(dropped)
        return dropped

    def missing(self) -> list[int]:
        """Indices inside the window not held yet, newest first (closest to live)."""
        if self.edge is None:
            return []
        low = max(self.edge - self.size + 1, 0)
        return [i for i in range(self.edge, low - 1, -1) if i not in self.have]
