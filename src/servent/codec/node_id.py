"""Node IDs as people copy them: base32 of the Ed25519 public key plus a checksum.

The format (``docs/node-channel.md`` section 1): lowercase RFC 4648 base32,
no padding, of ``public_key || checksum`` where the checksum is the first two
bytes of BLAKE2b-512 over ``b"servent-node-id:" || public_key``.  55 characters.
The checksum catches a mistyped ID before it is looked up in the DHT.

A key that is a low-order point (or a non-canonical encoding) is refused
(:func:`check_public_key`): such a "public key" has signatures that verify for
many messages or none, so it names no node.
"""

from __future__ import annotations

import base64

from cryptography.hazmat.primitives import hashes

from servent.errors import DecodeError

__all__ = [
    "NODE_ID_LENGTH",
    "PUBLIC_KEY_SIZE",
    "NodeIdError",
    "check_public_key",
    "format_node_id",
    "is_usable_public_key",
    "parse_node_id",
]

PUBLIC_KEY_SIZE = 32
CHECKSUM_SIZE = 2
#: Characters in a printed node ID (34 bytes in base32, padding dropped).
NODE_ID_LENGTH = 55
_ALPHABET = frozenset("abcdefghijklmnopqrstuvwxyz234567")
_CHECKSUM_CONTEXT = b"servent-node-id:"
#: The field prime of Ed25519 (RFC 8032).
_P = 2**255 - 19
#: The y coordinate of a point of order 8 (the other one is ``_P - _Y_ORDER8``).
_Y_ORDER8 = int.from_bytes(
    bytes.fromhex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"), "little"
)
#: y of every point of order 1, 2, 4 or 8 (the whole torsion subgroup; x is then
#: fixed up to its sign, so the sign bit does not matter).
_LOW_ORDER_Y = frozenset({1, _P - 1, 0, _Y_ORDER8, _P - _Y_ORDER8})


class NodeIdError(DecodeError):
    """A node ID is not 55 base32 characters or its checksum does not match."""


def _checksum(public_key: bytes) -> bytes:
    digest = hashes.Hash(hashes.BLAKE2b(64))
    digest.update(_CHECKSUM_CONTEXT + public_key)
    return digest.finalize()[:CHECKSUM_SIZE]


def is_usable_public_key(public_key: bytes) -> bool:
    """Whether ``public_key`` is 32 bytes, canonically encoded, and not of low order."""
    if len(public_key) != PUBLIC_KEY_SIZE:
        return False
    y = int.from_bytes(public_key, "little") & ((1 << 255) - 1)  # the top bit is x's sign
    return y < _P and y not in _LOW_ORDER_Y


def check_public_key(public_key: bytes) -> bytes:
    """``public_key`` when usable as a node key, else :class:`NodeIdError` saying why."""
    if len(public_key) != PUBLIC_KEY_SIZE:
        raise NodeIdError(f"a node key is {PUBLIC_KEY_SIZE} bytes, got {len(public_key)}")
    if not is_usable_public_key(public_key):
        raise NodeIdError("not a usable Ed25519 key (a low-order point or non-canonical)")
    return public_key


def format_node_id(public_key: bytes) -> str:
    """The printable ID of a 32-byte Ed25519 public key."""
    if len(public_key) != PUBLIC_KEY_SIZE:
        raise NodeIdError(f"a node key is {PUBLIC_KEY_SIZE} bytes, got {len(public_key)}")
    raw = public_key + _checksum(public_key)
    return base64.b32encode(raw).decode("ascii").rstrip("=").lower()


def parse_node_id(text: str) -> bytes:
    """The public key named by ``text``; raises :class:`NodeIdError` saying what is wrong."""
    cleaned = text.strip().lower()
    if len(cleaned) != NODE_ID_LENGTH:
        raise NodeIdError(
            f"a node ID is {NODE_ID_LENGTH} characters, got {len(cleaned)}: {_shown(text)}"
        )
    bad = sorted({c for c in cleaned if c not in _ALPHABET})
    if bad:
        listed = ", ".join(repr(c) for c in bad[:5])
        raise NodeIdError(f"a node ID uses only a-z and 2-7, found {listed}: {_shown(text)}")
    try:
        raw = base64.b32decode(cleaned.upper() + "=", casefold=False)
    except ValueError as exc:  # a last character whose spare bits are set
        raise NodeIdError(f"not a node ID ({exc}): {_shown(text)}") from None
    public_key, checksum = raw[:PUBLIC_KEY_SIZE], raw[PUBLIC_KEY_SIZE:]
    if base64.b32encode(raw).decode("ascii").rstrip("=").lower() != cleaned:
        raise NodeIdError(f"not a node ID (stray bits in the last character): {_shown(text)}")
    if _checksum(public_key) != checksum:
        raise NodeIdError(f"node ID checksum does not match (a typo?): {_shown(text)}")
    if not is_usable_public_key(public_key):
        raise NodeIdError(f"not a usable node key (low-order or non-canonical): {_shown(text)}")
    return public_key


def _shown(text: str) -> str:
    """The offending input, cut so an error line stays readable."""
    return repr(text if len(text) <= 80 else text[:77] + "...")
