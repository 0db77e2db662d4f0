"""The sealed wire of a network torrent (``docs/networks.md`` section 8), sans-IO.

Both ends prove the torrent's swarm key of the current epoch and their roster
membership, then the peer wire travels in ChaCha20-Poly1305 frames.  Only
``cryptography`` primitives; this module only arranges them.
"""

from __future__ import annotations

import hmac as std_hmac
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.hmac import HMAC
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from servent.errors import SealedWireError, SealedWireRefused

__all__ = [
    "HELLO_SIZE",
    "MAGIC",
    "MAX_PLAINTEXT",
    "FrameOpener",
    "FrameSealer",
    "SealedInitiator",
    "SealedResponder",
    "SealedResult",
    "WireIdentity",
    "wire_tag",
]

MAGIC = b"\xf0servent-netw/1\n"
#: Message 1: magic, the initiator's ephemeral key, the tag.
HELLO_SIZE = 16 + 32 + 32
MAX_PLAINTEXT = 65_536
AEAD_TAG = 16
_LENGTH = struct.Struct(">I")
_MAX_LENGTH = MAX_PLAINTEXT + AEAD_TAG
_PAYLOAD_SIZE = 32 + 64
_TAG_CONTEXT = b"servent-netwire/1 tag:"
_KEYS_CONTEXT = b"servent-netwire/1 keys:"
_ROLE = {True: b"servent-netwire/1 initiator:", False: b"servent-netwire/1 responder:"}
_MAX_NONCE = 2**64 - 1


@dataclass(frozen=True)
class WireIdentity:
    """Our node key and a way to sign with it (the private key stays with the node)."""

    public_key: bytes
    sign: Callable[[bytes], bytes]


def wire_tag(swarm_key: bytes, ephemeral: bytes) -> bytes:
    """Proof of the swarm key bound to this connection's fresh key (names no torrent)."""
    mac = HMAC(swarm_key, hashes.SHA256())
    mac.update(_TAG_CONTEXT + ephemeral)
    return mac.finalize()


def _nonce(counter: int) -> bytes:
    return b"\x00\x00\x00\x00" + counter.to_bytes(8, "little")


class FrameSealer:
    """One direction out: plaintext in, frames out (cut at :data:`MAX_PLAINTEXT`)."""

    def __init__(self, key: bytes) -> None:
        self._aead = ChaCha20Poly1305(key)
        self._counter = 0

    def seal(self, data: bytes) -> bytes:
        if len(data) <= MAX_PLAINTEXT:  # the usual case: one frame, no slicing
            return self._frame(data) if data else b""
        view = memoryview(data)
        return b"".join(
            self._frame(view[start : start + MAX_PLAINTEXT])
            for start in range(0, len(view), MAX_PLAINTEXT)
        )

    def _frame(self, chunk: bytes | memoryview) -> bytes:
        if self._counter >= _MAX_NONCE:
            raise SealedWireError("frame counter exhausted")
        header = _LENGTH.pack(len(chunk) + AEAD_TAG)
        sealed = self._aead.encrypt(_nonce(self._counter), chunk, header)
        self._counter += 1
        return header + sealed


class FrameOpener:
    """One direction in: bytes as they arrive, whole frames' plaintext out."""

    def __init__(self, key: bytes) -> None:
        self._aead = ChaCha20Poly1305(key)
        self._counter = 0
        #: At most one unfinished frame (its length was checked before it was kept).
        self._rest = b""

    def open(self, data: bytes, limit: int | None = None) -> bytes:
        """Plaintext of every whole frame (at most ``limit`` frames); the rest waits."""
        if self._rest:
            data = self._rest + data
        out: list[bytes] = []
        at = 0
        size = len(data)
        with memoryview(data) as view:
            while size - at >= 4 and (limit is None or len(out) < limit):
                (length,) = _LENGTH.unpack_from(data, at)
                if not AEAD_TAG < length <= _MAX_LENGTH:
                    raise SealedWireError(f"sealed frame of {length} bytes refused")
                end = at + 4 + length
                if size < end:
                    break
                out.append(self._decrypt(view[at : at + 4], view[at + 4 : end]))
                at = end
        self._rest = data[at:] if at else data
        return out[0] if len(out) == 1 else b"".join(out)

    def _decrypt(self, header: memoryview, sealed: memoryview) -> bytes:
        if self._counter >= _MAX_NONCE:
            raise SealedWireError("frame counter exhausted")
        try:
            plaintext = self._aead.decrypt(_nonce(self._counter), sealed, header)
        except InvalidTag:
            raise SealedWireError(f"sealed frame {self._counter} failed authentication") from None
        self._counter += 1
        return plaintext


@dataclass
class SealedResult:
    """A finished handshake: the torrent, the peer's node key, the two directions."""

    info_hash: bytes
    peer_key: bytes
    sealer: FrameSealer
    opener: FrameOpener
    #: Peer-wire plaintext that arrived with the last handshake message.
    received: bytes


class _Handshake:
    """What both roles share: the ephemeral key, the transcript, the payload check."""

    initiator = True

    def __init__(self, identity: WireIdentity) -> None:
        self.identity = identity
        self._ephemeral = X25519PrivateKey.generate()
        self.own_ephemeral = self._ephemeral.public_key().public_bytes_raw()
        self._out = bytearray()
        self._in = bytearray()
        self.result: SealedResult | None = None
        self._transcript = b""
        self._sealer: FrameSealer | None = None
        self._opener: FrameOpener | None = None

    def data_to_send(self) -> bytes:
        out = bytes(self._out)
        self._out.clear()
        return out

    def _derive(self, swarm_key: bytes, peer_ephemeral: bytes, transcript: bytes) -> None:
        try:
            shared = self._ephemeral.exchange(X25519PublicKey.from_public_bytes(peer_ephemeral))
        except ValueError:
            raise SealedWireError("the peer sent an unusable X25519 key") from None
        digest = hashes.Hash(hashes.SHA256())
        digest.update(transcript)
        self._transcript = digest.finalize()
        keys = HKDF(hashes.SHA256(), 64, swarm_key, _KEYS_CONTEXT + self._transcript)
        material = keys.derive(shared)
        outgoing, incoming = material[:32], material[32:]
        if not self.initiator:
            outgoing, incoming = incoming, outgoing
        self._sealer, self._opener = FrameSealer(outgoing), FrameOpener(incoming)

    def _payload(self) -> bytes:
        assert self._sealer is not None
        signature = self.identity.sign(_ROLE[self.initiator] + self._transcript)
        return self._sealer.seal(self.identity.public_key + signature)

    def _peer_key(self, frame_bytes: bytes, admits: Callable[[bytes], bool]) -> bytes | None:
        """The peer's checked node key from its payload frame, or None if it is incomplete."""
        assert self._opener is not None
        payload = self._opener.open(frame_bytes, limit=1)
        if not payload:
            return None
        if len(payload) != _PAYLOAD_SIZE:
            raise SealedWireError("a sealed handshake payload of the wrong size")
        key, signature = payload[:32], payload[32:]
        try:
            Ed25519PublicKey.from_public_bytes(key).verify(
                signature, _ROLE[not self.initiator] + self._transcript
            )
        except (InvalidSignature, ValueError):
            raise SealedWireRefused("the peer's signature does not verify") from None
        if not admits(key):
            raise SealedWireRefused("the peer is not a member of the network")
        return key

    def _finish(self, info_hash: bytes, peer_key: bytes) -> None:
        assert self._sealer is not None and self._opener is not None
        received = self._opener.open(b"")
        self.result = SealedResult(info_hash, peer_key, self._sealer, self._opener, received)


class SealedInitiator(_Handshake):
    """We dial: we know the torrent and its swarm key."""

    def __init__(
        self,
        info_hash: bytes,
        swarm_key: bytes,
        identity: WireIdentity,
        admits: Callable[[bytes], bool],
    ) -> None:
        super().__init__(identity)
        self.info_hash = info_hash
        self._swarm_key = swarm_key
        self._admits = admits
        self._hello = MAGIC + self.own_ephemeral + wire_tag(swarm_key, self.own_ephemeral)
        self._out += self._hello
        self._derived = False

    def receive_data(self, data: bytes) -> None:
        if self.result is not None:
            raise SealedWireError("the handshake is over")
        self._in += data
        if not self._derived:
            if len(self._in) < 32:
                return
            peer_ephemeral = bytes(self._in[:32])
            del self._in[:32]
            self._derive(self._swarm_key, peer_ephemeral, self._hello + peer_ephemeral)
            self._derived = True
        pending = bytes(self._in)
        self._in.clear()
        peer_key = self._peer_key(pending, self._admits)
        if peer_key is not None:
            self._out += self._payload()
            self._finish(self.info_hash, peer_key)


class SealedResponder(_Handshake):
    """Someone dialled us: message 1 tells (by its tag) which of our torrents it wants."""

    initiator = False

    def __init__(
        self,
        swarm_keys: Iterable[tuple[bytes, bytes]],
        identity: WireIdentity,
        admits: Callable[[bytes, bytes], bool],
    ) -> None:
        super().__init__(identity)
        self._swarm_keys = swarm_keys
        self._admits = admits
        self.info_hash: bytes | None = None

    def receive_data(self, data: bytes) -> None:
        if self.result is not None:
            raise SealedWireError("the handshake is over")
        self._in += data
        if self.info_hash is None:
            if len(self._in) < HELLO_SIZE:
                return
            self._read_hello(bytes(self._in[:HELLO_SIZE]))
            del self._in[:HELLO_SIZE]
        pending = bytes(self._in)
        self._in.clear()
        info_hash = self.info_hash
        assert info_hash is not None
        peer_key = self._peer_key(pending, lambda key: self._admits(info_hash, key))
        if peer_key is not None:
            self._finish(info_hash, peer_key)

    def _read_hello(self, hello: bytes) -> None:
        if hello[:16] != MAGIC:
            raise SealedWireError("not a sealed-wire handshake")
        ephemeral, tag = hello[16:48], hello[48:]
        for info_hash, swarm_key in self._swarm_keys:
            if std_hmac.compare_digest(wire_tag(swarm_key, ephemeral), tag):
                self.info_hash = info_hash
                self._derive(swarm_key, ephemeral, hello + self.own_ephemeral)
                self._out += self.own_ephemeral + self._payload()
                return
        raise SealedWireRefused("no network torrent matches the tag")
