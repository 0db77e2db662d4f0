"""BEP 44 items: targets, signing buffers and ed25519 signatures.

An immutable item's target is the SHA-1 of its bencoded value; a mutable
item's target is the SHA-1 of the public key and the optional salt, and its
signature covers ``salt``, ``seq`` and the bencoded value exactly as BEP 44
lays them out.
"""

from __future__ import annotations

import hashlib

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

MAX_VALUE_SIZE = 1000
MAX_SALT_SIZE = 64
PUBLIC_KEY_SIZE = 32
SIGNATURE_SIZE = 64


def immutable_target(encoded_value: bytes) -> bytes:
    return hashlib.sha1(encoded_value).digest()


def mutable_target(public_key: bytes, salt: bytes = b"") -> bytes:
    return hashlib.sha1(public_key + salt).digest()


def signing_buffer(encoded_value: bytes, seq: int, salt: bytes = b"") -> bytes:
    """The exact bytes an ed25519 signature of a mutable item covers."""
    head = b"4:salt%d:%s" % (len(salt), salt) if salt else b""
    return head + b"3:seqi%de1:v" % seq + encoded_value


def private_key_from(key: bytes | Ed25519PrivateKey) -> Ed25519PrivateKey:
    """Accept a 32-byte seed or a ready key object."""
    if isinstance(key, Ed25519PrivateKey):
        return key
    return Ed25519PrivateKey.from_private_bytes(key)


def public_key_bytes(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def sign(key: Ed25519PrivateKey, encoded_value: bytes, seq: int, salt: bytes = b"") -> bytes:
    return key.sign(signing_buffer(encoded_value, seq, salt))


def verify(
    public_key: bytes, signature: bytes, encoded_value: bytes, seq: int, salt: bytes
) -> bool:
    """Whether ``signature`` is valid; malformed keys simply fail."""
    if len(public_key) != PUBLIC_KEY_SIZE or len(signature) != SIGNATURE_SIZE:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(
            signature, signing_buffer(encoded_value, seq, salt)
        )
    except (InvalidSignature, ValueError):
        return False
    return True
