"""Synced-share keys as people paste them (``docs/sync.md`` section 1).

A read-write key is the share's Ed25519 private key seed, a read-only key its
public key; each printed as a prefix and base32 of ``key || checksum``.
"""

from __future__ import annotations

import base64
import enum
import hashlib
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from servent.errors import DecodeError

__all__ = [
    "SYNC_SALT",
    "KeyKind",
    "ShareKey",
    "ShareKeyError",
    "format_share_key",
    "parse_share_key",
    "public_key_of",
    "share_id",
]

KEY_SIZE = 32
CHECKSUM_SIZE = 2
_BODY_LENGTH = 55  # 34 bytes in base32, padding dropped
#: The BEP 44 salt of every synced share's version item.
SYNC_SALT = b"servent-sync"
_ALPHABET = frozenset("abcdefghijklmnopqrstuvwxyz234567")


class ShareKeyError(DecodeError):
    """A pasted share key is malformed, of an unknown kind, or its checksum fails."""


class KeyKind(enum.Enum):
    """What a key lets its holder do; the value is its printed prefix."""

    READ_WRITE = "srw-"
    READ_ONLY = "sro-"


_CONTEXT = {KeyKind.READ_WRITE: b"servent-share-rw:", KeyKind.READ_ONLY: b"servent-share-ro:"}


@dataclass(frozen=True, slots=True)
class ShareKey:
    """A parsed key: its kind and its 32 bytes (a seed or a public key)."""

    kind: KeyKind
    key: bytes

    @property
    def public_key(self) -> bytes:
        return public_key_of(self.key) if self.kind is KeyKind.READ_WRITE else self.key


def _checksum(kind: KeyKind, key: bytes) -> bytes:
    digest = hashes.Hash(hashes.BLAKE2b(64))
    digest.update(_CONTEXT[kind] + key)
    return digest.finalize()[:CHECKSUM_SIZE]


def public_key_of(seed: bytes) -> bytes:
    """The Ed25519 public key of a 32-byte private key seed."""
    private = Ed25519PrivateKey.from_private_bytes(seed)
    return private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def share_id(public_key: bytes) -> str:
    """The local name of a share: 16 hex digits of its item's BEP 44 target (SHA-1)."""
    return hashlib.sha1(public_key + SYNC_SALT).hexdigest()[:16]


def format_share_key(kind: KeyKind, key: bytes) -> str:
    """The printable form of a 32-byte seed (read-write) or public key (read-only)."""
    if len(key) != KEY_SIZE:
        raise ShareKeyError(f"a share key is {KEY_SIZE} bytes, got {len(key)}")
    body = base64.b32encode(key + _checksum(kind, key)).decode("ascii").rstrip("=").lower()
    return kind.value + body


def parse_share_key(text: str) -> ShareKey:
    """The key named by ``text``; raises :class:`ShareKeyError` saying what is wrong."""
    cleaned = text.strip().lower()
    kind = next((k for k in KeyKind if cleaned.startswith(k.value)), None)
    if kind is None:
        prefixes = " or ".join(repr(k.value) for k in KeyKind)
        raise ShareKeyError(f"a share key starts with {prefixes}: {_shown(text)}")
    body = cleaned[len(kind.value) :]
    if len(body) != _BODY_LENGTH or not set(body) <= _ALPHABET:
        raise ShareKeyError(
            f"a share key has {_BODY_LENGTH} characters a-z, 2-7 after its prefix: {_shown(text)}"
        )
    try:
        raw = base64.b32decode(body.upper() + "=", casefold=False)
    except ValueError as exc:
        raise ShareKeyError(f"not a share key ({exc}): {_shown(text)}") from None
    key, checksum = raw[:KEY_SIZE], raw[KEY_SIZE:]
    if base64.b32encode(raw).decode("ascii").rstrip("=").lower() != body:
        raise ShareKeyError(f"not a share key (stray bits in the last character): {_shown(text)}")
    if _checksum(kind, key) != checksum:
        raise ShareKeyError(f"share key checksum does not match (a typo?): {_shown(text)}")
    return ShareKey(kind, key)


def _shown(text: str) -> str:
    return repr(text if len(text) <= 80 else text[:77] + "...")
