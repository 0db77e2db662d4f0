"""Synced-share keys as people paste them (``docs/sync.md`` section 1).

A read-write key is the share's Ed25519 private key seed, a read-only key its
public key and read secret, an encrypted key its public key alone; each is
printed as a prefix and base32 of ``key || checksum``.  A password-protected
share prints its keys locked: sealed under a key derived from the password
with Argon2id, so the printed text alone gives nothing.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from servent.errors import DecodeError

__all__ = [
    "SYNC_SALT",
    "KeyKind",
    "ShareKey",
    "ShareKeyError",
    "WrongPasswordError",
    "format_share_key",
    "lock_share_key",
    "parse_share_key",
    "public_key_of",
    "read_secret_of",
    "share_id",
]

KEY_SIZE = 32
CHECKSUM_SIZE = 2
SALT_SIZE = 16
TAG_SIZE = 16
#: The BEP 44 salt of every synced share's version item.
SYNC_SALT = b"servent-sync"
_ALPHABET = frozenset("abcdefghijklmnopqrstuvwxyz234567")
#: Argon2id cost of a locked key (RFC 9106's second recommended setting).
ARGON2_ITERATIONS = 3
ARGON2_LANES = 4
ARGON2_MEMORY_KIB = 64 * 1024
MAX_PASSWORD_SIZE = 1024


class ShareKeyError(DecodeError):
    """A pasted share key is malformed, of an unknown kind, or its checksum fails."""


class WrongPasswordError(ShareKeyError):
    """A locked key does not open with the password given."""


class KeyKind(enum.Enum):
    """What a key lets its holder do; the value is its printed prefix."""

    READ_WRITE = "srw-"
    READ_ONLY = "sro-"
    ENCRYPTED = "sen-"


_SIZES = {
    KeyKind.READ_WRITE: KEY_SIZE,  # the private key seed
    KeyKind.READ_ONLY: 2 * KEY_SIZE,  # the public key and the read secret
    KeyKind.ENCRYPTED: KEY_SIZE,  # the public key
}
_NAMES = {KeyKind.READ_WRITE: b"rw", KeyKind.READ_ONLY: b"ro", KeyKind.ENCRYPTED: b"en"}


def _locked_prefix(kind: KeyKind) -> str:
    return "p" + kind.value[1:]


@dataclass(frozen=True, slots=True)
class ShareKey:
    """A parsed key: its kind and its bytes (a seed, public key + read secret, or public key)."""

    kind: KeyKind
    key: bytes

    @property
    def public_key(self) -> bytes:
        return public_key_of(self.key) if self.kind is KeyKind.READ_WRITE else self.key[:KEY_SIZE]

    @property
    def read_secret(self) -> bytes | None:
        """The secret that names and decrypts the share's files; an encrypted key has none."""
        if self.kind is KeyKind.READ_WRITE:
            return read_secret_of(self.key)
        return self.key[KEY_SIZE:] if self.kind is KeyKind.READ_ONLY else None


def _checksum(context: bytes, body: bytes) -> bytes:
    digest = hashes.Hash(hashes.BLAKE2b(64))
    digest.update(b"servent-share-" + context + b":" + body)
    return digest.finalize()[:CHECKSUM_SIZE]


def public_key_of(seed: bytes) -> bytes:
    """The Ed25519 public key of a 32-byte private key seed."""
    private = Ed25519PrivateKey.from_private_bytes(seed)
    return private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def read_secret_of(seed: bytes) -> bytes:
    """The read secret of a share: from its seed, one way (HKDF-SHA256)."""
    return HKDF(hashes.SHA256(), KEY_SIZE, None, b"servent-sync read secret").derive(seed)


def share_id(public_key: bytes) -> str:
    """The local name of a share: 16 hex digits of its item's BEP 44 target (SHA-1)."""
    return hashlib.sha1(public_key + SYNC_SALT).hexdigest()[:16]


def _text(prefix: str, context: bytes, body: bytes) -> str:
    raw = body + _checksum(context, body)
    return prefix + base64.b32encode(raw).decode("ascii").rstrip("=").lower()


def format_share_key(kind: KeyKind, key: bytes) -> str:
    """The printable form of a key's bytes."""
    if len(key) != _SIZES[kind]:
        raise ShareKeyError(f"a {kind.name.lower()} share key is {_SIZES[kind]} bytes")
    return _text(kind.value, _NAMES[kind], key)


def _password_key(password: bytes, salt: bytes) -> bytes:
    if not password or len(password) > MAX_PASSWORD_SIZE:
        raise ShareKeyError(f"a password is 1 to {MAX_PASSWORD_SIZE} bytes")
    try:
        kdf = Argon2id(
            salt=salt,
            length=KEY_SIZE,
            iterations=ARGON2_ITERATIONS,
            lanes=ARGON2_LANES,
            memory_cost=ARGON2_MEMORY_KIB,
        )
        return kdf.derive(password)
    except UnsupportedAlgorithm as error:  # an OpenSSL build without Argon2 (decision 0047)
        raise ShareKeyError(f"password-locked keys need Argon2id, missing here: {error}") from None


def lock_share_key(text: str, password: bytes) -> str:
    """``text`` sealed under ``password`` (Argon2id, then ChaCha20-Poly1305): a locked key."""
    key = parse_share_key(text)
    salt = os.urandom(SALT_SIZE)
    nonce = bytes(12)  # the password key is new for every salt: used once
    sealed = ChaCha20Poly1305(_password_key(password, salt)).encrypt(
        nonce, key.key, _NAMES[key.kind]
    )
    return _text(_locked_prefix(key.kind), b"p" + _NAMES[key.kind], salt + sealed)


def _decode_body(text: str, prefix: str, size: int) -> bytes:
    body = text[len(prefix) :]
    length = -(-(size + CHECKSUM_SIZE) * 8 // 5)
    if len(body) != length or not set(body) <= _ALPHABET:
        raise ShareKeyError(
            f"this share key has {length} characters a-z, 2-7 after its prefix: {_shown(text)}"
        )
    padding = "=" * (-len(body) % 8)
    try:
        raw = base64.b32decode(body.upper() + padding, casefold=False)
    except ValueError as exc:
        raise ShareKeyError(f"not a share key ({exc}): {_shown(text)}") from None
    if base64.b32encode(raw).decode("ascii").rstrip("=").lower() != body:
        raise ShareKeyError(f"not a share key (stray bits in the last character): {_shown(text)}")
    return raw


def parse_share_key(text: str, password: bytes | None = None) -> ShareKey:
    """The key named by ``text``; raises :class:`ShareKeyError` saying what is wrong.

    A locked key needs its ``password``; a wrong one raises :class:`WrongPasswordError`.
    """
    cleaned = text.strip().lower()
    for kind in KeyKind:
        if cleaned.startswith(kind.value):
            raw = _decode_body(cleaned, kind.value, _SIZES[kind])
            return ShareKey(kind, _checked(raw, _NAMES[kind], text))
        if cleaned.startswith(_locked_prefix(kind)):
            size = SALT_SIZE + _SIZES[kind] + TAG_SIZE
            raw = _decode_body(cleaned, _locked_prefix(kind), size)
            return ShareKey(kind, _unlock(kind, _checked(raw, b"p" + _NAMES[kind], text), password))
    prefixes = " or ".join(repr(p) for k in KeyKind for p in (k.value, _locked_prefix(k)))
    raise ShareKeyError(f"a share key starts with {prefixes}: {_shown(text)}")


def _checked(raw: bytes, context: bytes, text: str) -> bytes:
    body, checksum = raw[:-CHECKSUM_SIZE], raw[-CHECKSUM_SIZE:]
    if _checksum(context, body) != checksum:
        raise ShareKeyError(f"share key checksum does not match (a typo?): {_shown(text)}")
    return body


def _unlock(kind: KeyKind, body: bytes, password: bytes | None) -> bytes:
    if password is None:
        raise ShareKeyError("this share key is locked with a password: give the password too")
    salt, sealed = body[:SALT_SIZE], body[SALT_SIZE:]
    try:
        return ChaCha20Poly1305(_password_key(password, salt)).decrypt(
            bytes(12), sealed, _NAMES[kind]
        )
    except InvalidTag:
        raise WrongPasswordError("wrong password for this share key") from None


def _shown(text: str) -> str:
    return repr(text if len(text) <= 80 else text[:77] + "...")
