"""The Noise XX handshake (``Noise_XX_25519_ChaChaPoly_SHA256``) on ``cryptography``.

This is the Noise Protocol Framework's symmetric state (MixHash, MixKey,
EncryptAndHash, Split) and the three messages of the XX pattern, for the
node channel of ``docs/node-channel.md`` (section 3).  Primitives are
``cryptography``'s X25519, ChaCha20Poly1305, SHA-256 and HKDF; Noise's HKDF
is RFC 5869 HKDF with ``salt = ck`` and empty ``info``.  Why hand-written:
decision 0023.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from servent.codec.node_id import is_usable_public_key
from servent.proto.channel.errors import ChannelAuthError, ChannelHandshakeError

__all__ = ["CipherState", "HandshakeXX", "LocalKeys"]

PROTOCOL_NAME = b"Noise_XX_25519_ChaChaPoly_SHA256"
KEY_SIZE = 32
TAG_SIZE = 16
#: Noise reserves nonce 2^64 - 1 for rekeying; a counter reaching it ends the connection.
MAX_NONCE = 2**64 - 1
STATIC_KEY_CONTEXT = b"servent-node-channel/1 static key:"
SIGNATURE_SIZE = 64
#: Handshake payload: identity key, signature, then up to this many extension bytes.
MAX_PAYLOAD_EXTENSIONS = 256


def _raw(key: X25519PublicKey | Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _sha256(data: bytes) -> bytes:
    digest = hashes.Hash(hashes.SHA256())
    digest.update(data)
    return digest.finalize()


def _hkdf2(chaining_key: bytes, material: bytes) -> tuple[bytes, bytes]:
    out = HKDF(hashes.SHA256(), 2 * KEY_SIZE, salt=chaining_key, info=b"").derive(material)
    return out[:KEY_SIZE], out[KEY_SIZE:]


def _nonce(counter: int) -> bytes:
    return b"\x00\x00\x00\x00" + counter.to_bytes(8, "little")


def _dh(private: X25519PrivateKey, public: bytes) -> bytes:
    try:
        return private.exchange(X25519PublicKey.from_public_bytes(public))
    except ValueError:  # a low-order point: the shared secret would be all zeros
        raise ChannelHandshakeError("the peer sent an unusable X25519 key") from None


class CipherState:
    """One direction's key and nonce counter (Noise section 5.1)."""

    def __init__(self, key: bytes | None = None) -> None:
        self.nonce = 0
        self._aead: ChaCha20Poly1305 | None = None
        if key is not None:
            self._aead = ChaCha20Poly1305(key)

    @property
    def has_key(self) -> bool:
        return self._aead is not None

    def _next_nonce(self) -> bytes:
        if self.nonce >= MAX_NONCE:
            raise ChannelAuthError("nonce counter exhausted")
        nonce = _nonce(self.nonce)
        self.nonce += 1
        return nonce

    def encrypt(self, ad: bytes, plaintext: bytes) -> bytes:
        if self._aead is None:
            return plaintext
        return self._aead.encrypt(self._next_nonce(), plaintext, ad)

    def decrypt(self, ad: bytes, ciphertext: bytes) -> bytes:
        if self._aead is None:
            return ciphertext
        if self.nonce >= MAX_NONCE:
            raise ChannelAuthError("nonce counter exhausted")
        try:
            plaintext = self._aead.decrypt(_nonce(self.nonce), ciphertext, ad)
        except InvalidTag:
            raise ChannelAuthError(
                f"frame {self.nonce} failed authentication (tampered, replayed or reordered)"
            ) from None
        self.nonce += 1
        return plaintext

    def rekey(self) -> None:
        """Noise's Rekey(): the new key is the old one's encryption of zeros at nonce max."""
        assert self._aead is not None
        fresh = self._aead.encrypt(_nonce(MAX_NONCE), bytes(KEY_SIZE), b"")[:KEY_SIZE]
        self._aead = ChaCha20Poly1305(fresh)


class _SymmetricState:
    """Chaining key, handshake hash and the current handshake cipher (Noise section 5.2)."""

    def __init__(self, prologue: bytes) -> None:
        self.h = PROTOCOL_NAME  # exactly HASHLEN (32) bytes: used as is
        self.ck = PROTOCOL_NAME
        self.cipher = CipherState()
        self.mix_hash(prologue)

    def mix_hash(self, data: bytes) -> None:
        self.h = _sha256(self.h + data)

    def mix_key(self, material: bytes) -> None:
        self.ck, temp_key = _hkdf2(self.ck, material)
        self.cipher = CipherState(temp_key)

    def encrypt_and_hash(self, plaintext: bytes) -> bytes:
        ciphertext = self.cipher.encrypt(self.h, plaintext)
        self.mix_hash(ciphertext)
        return ciphertext

    def decrypt_and_hash(self, ciphertext: bytes) -> bytes:
        try:
            plaintext = self.cipher.decrypt(self.h, ciphertext)
        except ChannelAuthError:
            raise ChannelAuthError("handshake message failed authentication") from None
        self.mix_hash(ciphertext)
        return plaintext

    def split(self) -> tuple[CipherState, CipherState]:
        first, second = _hkdf2(self.ck, b"")
        return CipherState(first), CipherState(second)


@dataclass(frozen=True)
class LocalKeys:
    """A node's Ed25519 identity, its X25519 static key for this run, and the payload
    in which the identity vouches for the static key (made once per start)."""

    identity: Ed25519PrivateKey = field(repr=False)
    static: X25519PrivateKey = field(repr=False)
    public_key: bytes
    payload: bytes

    @classmethod
    def create(
        cls, identity: Ed25519PrivateKey, static: X25519PrivateKey | None = None
    ) -> LocalKeys:
        """``static`` is for test vectors only; a fresh key is made otherwise."""
        static = static or X25519PrivateKey.generate()
        public_key = _raw(identity.public_key())
        signature = identity.sign(STATIC_KEY_CONTEXT + _raw(static.public_key()))
        return cls(identity, static, public_key, public_key + signature)


def verify_payload(payload: bytes, static_key: bytes) -> bytes:
    """The peer's identity key, once its signature over ``static_key`` checks out."""
    if (
        not KEY_SIZE + SIGNATURE_SIZE
        <= len(payload)
        <= (KEY_SIZE + SIGNATURE_SIZE + MAX_PAYLOAD_EXTENSIONS)
    ):
        raise ChannelHandshakeError(f"identity payload of {len(payload)} bytes")
    identity = payload[:KEY_SIZE]
    signature = payload[KEY_SIZE : KEY_SIZE + SIGNATURE_SIZE]
    if not is_usable_public_key(identity):  # a low-order key "signs" anything
        raise ChannelAuthError("the peer's identity is a low-order or non-canonical key")
    try:
        Ed25519PublicKey.from_public_bytes(identity).verify(
            signature, STATIC_KEY_CONTEXT + static_key
        )
    except (InvalidSignature, ValueError):
        raise ChannelAuthError("the peer's identity does not vouch for its static key") from None
    return identity


class HandshakeXX:
    """One side of ``-> e; <- e, ee, s, es; -> s, se`` with identity payloads.

    Call the methods in pattern order for the side (initiator: ``write_1``,
    ``read_2``, ``write_3``; responder: ``read_1``, ``write_2``, ``read_3``);
    then :meth:`split` gives (send, receive) ciphers for this side.
    """

    def __init__(
        self,
        keys: LocalKeys,
        *,
        initiator: bool,
        prologue: bytes,
        ephemeral: X25519PrivateKey | None = None,
    ) -> None:
        """``ephemeral`` is for test vectors only; a fresh key is made otherwise."""
        self.keys = keys
        self.initiator = initiator
        self._state = _SymmetricState(prologue)
        self._ephemeral = ephemeral or X25519PrivateKey.generate()
        self._remote_ephemeral = b""
        self._remote_static = b""
        #: The peer's Ed25519 key, once its payload was verified.
        self.remote_identity: bytes | None = None

    @property
    def handshake_hash(self) -> bytes:
        return self._state.h

    def _write_ephemeral(self) -> bytes:
        public = _raw(self._ephemeral.public_key())
        self._state.mix_hash(public)
        return public

    def _read_ephemeral(self, message: bytes) -> None:
        if len(message) < KEY_SIZE:
            raise ChannelHandshakeError("handshake message too short for a key")
        self._remote_ephemeral = message[:KEY_SIZE]
        self._state.mix_hash(self._remote_ephemeral)

    def write_1(self) -> bytes:
        return self._write_ephemeral() + self._state.encrypt_and_hash(b"")

    def read_1(self, message: bytes) -> None:
        self._read_ephemeral(message)
        if len(message) - KEY_SIZE > MAX_PAYLOAD_EXTENSIONS:
            raise ChannelHandshakeError("first handshake message too long")
        self._state.decrypt_and_hash(message[KEY_SIZE:])

    def write_2(self) -> bytes:
        state = self._state
        out = self._write_ephemeral()
        state.mix_key(_dh(self._ephemeral, self._remote_ephemeral))  # ee
        out += state.encrypt_and_hash(_raw(self.keys.static.public_key()))  # s
        state.mix_key(_dh(self.keys.static, self._remote_ephemeral))  # es
        return out + state.encrypt_and_hash(self.keys.payload)

    def read_2(self, message: bytes) -> bytes:
        state = self._state
        self._read_ephemeral(message)
        state.mix_key(_dh(self._ephemeral, self._remote_ephemeral))  # ee
        self._read_static(message[KEY_SIZE : 2 * KEY_SIZE + TAG_SIZE])
        state.mix_key(_dh(self._ephemeral, self._remote_static))  # es
        return self._read_payload(message[2 * KEY_SIZE + TAG_SIZE :])

    def write_3(self) -> bytes:
        state = self._state
        out = state.encrypt_and_hash(_raw(self.keys.static.public_key()))  # s
        state.mix_key(_dh(self.keys.static, self._remote_ephemeral))  # se
        return out + state.encrypt_and_hash(self.keys.payload)

    def read_3(self, message: bytes) -> bytes:
        state = self._state
        self._read_static(message[: KEY_SIZE + TAG_SIZE])
        state.mix_key(_dh(self._ephemeral, self._remote_static))  # se
        return self._read_payload(message[KEY_SIZE + TAG_SIZE :])

    def _read_static(self, sealed: bytes) -> None:
        if len(sealed) != KEY_SIZE + TAG_SIZE:
            raise ChannelHandshakeError("handshake message too short for a static key")
        self._remote_static = self._state.decrypt_and_hash(sealed)

    def _read_payload(self, sealed: bytes) -> bytes:
        payload = self._state.decrypt_and_hash(sealed)
        self.remote_identity = verify_payload(payload, self._remote_static)
        return self.remote_identity

    def split(self) -> tuple[CipherState, CipherState]:
        """(send, receive) transport ciphers for this side."""
        first, second = self._state.split()
        return (first, second) if self.initiator else (second, first)
