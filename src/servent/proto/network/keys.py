"""What derives from a network's identity and its epoch key (``docs/networks.md`` 1-2).

Pure functions over bytes: HMAC-SHA256 and SHA-256 from ``cryptography``.
"""

from __future__ import annotations

import hmac as std_hmac

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.hmac import HMAC

__all__ = [
    "KEY_LENGTH",
    "NETWORK_ID_LENGTH",
    "NONCE_LENGTH",
    "membership_proof",
    "network_id",
    "proof_matches",
    "rendezvous_hash",
    "swarm_key",
]

NETWORK_ID_LENGTH = 16
NONCE_LENGTH = 16
KEY_LENGTH = 32
_ID_CONTEXT = b"servent-network/1 id:"
_SWARM_CONTEXT = b"servent-network/1 swarm:"
_RENDEZVOUS_CONTEXT = b"servent-network/1 rendezvous:"
_MEMBER_CONTEXT = b"servent-network/1 member:"


def network_id(creator_key: bytes, nonce: bytes) -> bytes:
    """The 16-byte ID that binds a network to its creator's key (nobody else can claim it)."""
    digest = hashes.Hash(hashes.SHA256())
    digest.update(_ID_CONTEXT + creator_key + nonce)
    return digest.finalize()[:NETWORK_ID_LENGTH]


def _mac(key: bytes, message: bytes) -> bytes:
    if len(key) != KEY_LENGTH:
        raise ValueError(f"a network key has {KEY_LENGTH} bytes, not {len(key)}")
    mac = HMAC(key, hashes.SHA256())
    mac.update(message)
    return mac.finalize()


def swarm_key(key: bytes, info_hash: bytes) -> bytes:
    """The MSE SKEY of a network torrent: only holders of the epoch key can compute it."""
    return _mac(key, _SWARM_CONTEXT + info_hash[:20])[:20]


def rendezvous_hash(key: bytes, ident: bytes, day: int) -> bytes:
    """The DHT info-hash members meet at on Unix day ``day`` (unrelated-looking to others)."""
    return _mac(key, _RENDEZVOUS_CONTEXT + ident + day.to_bytes(4, "big"))[:20]


def membership_proof(key: bytes, ident: bytes, epoch: int, sender: bytes, receiver: bytes) -> bytes:
    """What a member sends in ``hello``: it holds the key of ``epoch``, for this pair."""
    return _mac(key, _MEMBER_CONTEXT + ident + epoch.to_bytes(4, "big") + sender + receiver)


def proof_matches(
    key: bytes, ident: bytes, epoch: int, pair: tuple[bytes, bytes], proof: bytes
) -> bool:
    """Whether ``proof`` is :func:`membership_proof` for ``pair`` = (sender, receiver)."""
    expected = membership_proof(key, ident, epoch, *pair)
    return std_hmac.compare_digest(expected, proof)
