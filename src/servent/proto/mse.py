"""Message stream encryption (MSE/PE) handshake, sans-IO.

The obfuscation layer that libtorrent, qBittorrent and aria2 put in front of
the BitTorrent handshake: a 768-bit Diffie-Hellman exchange, then RC4 keyed by
the shared secret and the info-hash.  Both sides are byte-in/bytes-out objects:
feed :meth:`receive_data`, send :meth:`data_to_send`; when :attr:`result` is
set the handshake is over and it carries the ciphers (or None for plaintext)
and any bytes that already belong to the peer-wire stream.

RC4 comes from ``cryptography``'s decrepit ARC4 (no home-made cipher).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Collection
from dataclasses import dataclass
from enum import Enum

from cryptography.hazmat.decrepit.ciphers.algorithms import ARC4
from cryptography.hazmat.primitives.ciphers import Cipher

from servent.errors import MseError

P = int(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22"
    "514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6"
    "F44C42E9A63A36210000000000090563",
    16,
)
G = 2
KEY_BYTES = 96
VC = b"\x00" * 8
CRYPTO_PLAINTEXT = 0x01
CRYPTO_RC4 = 0x02
MAX_PAD = 512
PLAIN_HANDSHAKE_PREFIX = b"\x13BitTorrent protocol"


class EncryptionPolicy(Enum):
    OFF = "off"
    ENABLED = "enabled"
    REQUIRED = "required"

    def provide(self) -> int:
        return CRYPTO_RC4 if self is EncryptionPolicy.REQUIRED else CRYPTO_RC4 | CRYPTO_PLAINTEXT


class Rc4:
    """One RC4 keystream direction, with the first 1024 bytes discarded (MSE rule)."""

    def __init__(self, key: bytes) -> None:
        self._ctx = Cipher(ARC4(key), mode=None).encryptor()
        self._ctx.update(b"\x00" * 1024)

    def __call__(self, data: bytes) -> bytes:
        return self._ctx.update(data)

    def update_into(self, data: bytes | memoryview, out: bytearray | memoryview) -> int:
        """Transform ``data`` straight into ``out`` (no intermediate bytes); returns the count."""
        return self._ctx.update_into(data, out)


@dataclass(slots=True)
class MseResult:
    crypto: int
    """CRYPTO_RC4 or CRYPTO_PLAINTEXT: what protects the rest of the stream."""
    encrypt: Callable[[bytes], bytes] | None
    decrypt: Callable[[bytes], bytes] | None
    info_hash: bytes
    received: bytes
    """Peer-wire bytes that arrived with the handshake (already decrypted)."""


def is_plain_handshake(prefix: bytes) -> bool:
    """Whether an incoming stream starts a plaintext BitTorrent handshake."""
    n = min(len(prefix), len(PLAIN_HANDSHAKE_PREFIX))
    return n > 0 and prefix[:n] == PLAIN_HANDSHAKE_PREFIX[:n]


def _h(*parts: bytes) -> bytes:
    return hashlib.sha1(b"".join(parts)).digest()


def _int_bytes(value: int) -> bytes:
    return value.to_bytes(KEY_BYTES, "big")


class _Side:
    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._private = rng.getrandbits(160) | 1
        self._public = _int_bytes(pow(G, self._private, P))
        self._out = bytearray()
        self._in = bytearray()
        self._secret: bytes | None = None
        self.result: MseResult | None = None

    def _pad(self) -> bytes:
        return self._rng.randbytes(self._rng.randrange(0, MAX_PAD + 1))

    def _shared(self, peer_public: bytes) -> bytes:
        y = int.from_bytes(peer_public, "big")
        if not 1 < y < P - 1:
            raise MseError("peer sent a degenerate Diffie-Hellman key")
        return _int_bytes(pow(y, self._private, P))

    def receive_data(self, data: bytes) -> None:
        if self.result is not None:
            raise MseError("handshake already finished; decrypt with the result")
        self._in += data
        while self._step():
            pass

    def _step(self) -> bool:
        """Take one step of the handshake from ``self._in``; False when it needs more bytes."""
        raise NotImplementedError

    def data_to_send(self) -> bytes:
        out = bytes(self._out)
        self._out.clear()
        return out


def _select(provided: int, policy: EncryptionPolicy, prefer_plaintext: bool = False) -> int:
    if prefer_plaintext and provided & CRYPTO_PLAINTEXT and policy is not EncryptionPolicy.REQUIRED:
        return CRYPTO_PLAINTEXT
    if provided & CRYPTO_RC4:
        return CRYPTO_RC4
    if provided & CRYPTO_PLAINTEXT and policy is not EncryptionPolicy.REQUIRED:
        return CRYPTO_PLAINTEXT
    raise MseError(f"no acceptable crypto method in {provided:#x} with policy {policy.value}")


class MseInitiator(_Side):
    """The connecting side; ``initial_payload`` (our BT handshake) rides in IA."""

    def __init__(
        self,
        info_hash: bytes,
        *,
        policy: EncryptionPolicy = EncryptionPolicy.ENABLED,
        rng: random.Random,
        initial_payload: bytes = b"",
        provide: int | None = None,
    ) -> None:
        """``provide`` overrides the offered methods (e.g. plaintext only, for speed)."""
        super().__init__(rng)
        if policy is EncryptionPolicy.OFF:
            raise MseError("encryption is off: connect in plaintext")
        self._info_hash = info_hash
        self._policy = policy
        self._provide = policy.provide() if provide is None else provide
        if not self._provide & policy.provide():
            raise MseError(f"policy {policy.value} forbids offering crypto {self._provide:#x}")
        self._ia = initial_payload
        self._state = "key"
        self._enc: Rc4 | None = None
        self._dec: Rc4 | None = None
        self._pad_d = 0
        self._out += self._public + self._pad()

    def _step(self) -> bool:
        if self._state == "key":
            if len(self._in) < KEY_BYTES:
                return False
            secret = self._shared(bytes(self._in[:KEY_BYTES]))
            del self._in[:KEY_BYTES]
            self._secret = secret
            self._enc = Rc4(_h(b"keyA", secret, self._info_hash))
            self._dec = Rc4(_h(b"keyB", secret, self._info_hash))
            pad_c = self._pad()
            self._out += _h(b"req1", secret)
            self._out += bytes(
                a ^ b
                for a, b in zip(_h(b"req2", self._info_hash), _h(b"req3", secret), strict=True)
            )
            self._out += self._enc(
                VC
                + self._provide.to_bytes(4, "big")
                + len(pad_c).to_bytes(2, "big")
                + pad_c
                + len(self._ia).to_bytes(2, "big")
            )
            self._out += self._enc(self._ia)
            # B's encrypted VC: the expected bytes are the first 8 of B's keystream.
            self._vc_pattern = Rc4(_h(b"keyB", secret, self._info_hash))(VC)
            self._state = "sync"
            return True
        if self._state == "sync":
            index = self._in.find(self._vc_pattern)
            if index < 0:
                if len(self._in) > MAX_PAD + 8:
                    raise MseError("no verification constant from the responder")
                return False
            del self._in[: index + 8]
            assert self._dec is not None
            self._dec(VC)
            self._state = "select"
            return True
        if self._state == "select":
            if len(self._in) < 6:
                return False
            assert self._dec is not None
            head = self._dec(bytes(self._in[:6]))
            del self._in[:6]
            self._select = int.from_bytes(head[:4], "big")
            self._pad_d = int.from_bytes(head[4:6], "big")
            if self._pad_d > MAX_PAD:
                raise MseError("responder padding longer than 512 bytes")
            if self._select not in (CRYPTO_RC4, CRYPTO_PLAINTEXT) or not (
                self._select & self._provide
            ):
                raise MseError(f"responder selected crypto {self._select:#x} we did not offer")
            self._state = "pad"
            return True
        if self._state == "pad":
            if len(self._in) < self._pad_d:
                return False
            assert self._dec is not None and self._enc is not None
            self._dec(bytes(self._in[: self._pad_d]))
            del self._in[: self._pad_d]
            rest = bytes(self._in)
            self._in.clear()
            if self._select == CRYPTO_RC4:
                self.result = MseResult(
                    CRYPTO_RC4, self._enc, self._dec, self._info_hash, self._dec(rest)
                )
            else:
                self.result = MseResult(CRYPTO_PLAINTEXT, None, None, self._info_hash, rest)
            self._state = "done"
        return False


class MseResponder(_Side):
    """The accepting side; it learns the torrent from the obfuscated SKEY hash."""

    def __init__(
        self,
        info_hashes: Collection[bytes],
        *,
        policy: EncryptionPolicy = EncryptionPolicy.ENABLED,
        rng: random.Random,
        prefer_plaintext: bool = False,
    ) -> None:
        """``prefer_plaintext``: when the initiator offers both, pick plaintext after the
        obfuscated handshake (libtorrent's default, ``prefer_rc4`` off): no cipher cost."""
        super().__init__(rng)
        self._prefer_plaintext = prefer_plaintext
        self._by_req2 = {_h(b"req2", ih): ih for ih in info_hashes}
        self._policy = policy
        self._state = "key"
        self._pad_c = 0
        self._ia_len = 0
        self._out += self._public + self._pad()

    def _step(self) -> bool:
        if self._state == "key":
            if len(self._in) < KEY_BYTES:
                return False
            self._secret = self._shared(bytes(self._in[:KEY_BYTES]))
            del self._in[:KEY_BYTES]
            self._req1 = _h(b"req1", self._secret)
            self._state = "sync"
            return True
        if self._state == "sync":
            index = self._in.find(self._req1)
            if index < 0:
                if len(self._in) > MAX_PAD + 20:
                    raise MseError("no req1 hash from the initiator")
                return False
            del self._in[: index + 20]
            self._state = "skey"
            return True
        assert self._secret is not None
        if self._state == "skey":
            if len(self._in) < 20 + 14:
                return False
            obfuscated = bytes(self._in[:20])
            req3 = _h(b"req3", self._secret)
            req2 = bytes(a ^ b for a, b in zip(obfuscated, req3, strict=True))
            info_hash = self._by_req2.get(req2)
            if info_hash is None:
                raise MseError("initiator asked for a torrent we do not have")
            self._info_hash = info_hash
            self._dec = Rc4(_h(b"keyA", self._secret, info_hash))
            self._enc = Rc4(_h(b"keyB", self._secret, info_hash))
            head = self._dec(bytes(self._in[20:34]))
            del self._in[:34]
            if head[:8] != VC:
                raise MseError("bad verification constant")
            self._crypto = _select(
                int.from_bytes(head[8:12], "big"), self._policy, self._prefer_plaintext
            )
            self._pad_c = int.from_bytes(head[12:14], "big")
            if self._pad_c > MAX_PAD:
                raise MseError("initiator padding longer than 512 bytes")
            self._state = "padc"
            return True
        if self._state == "padc":
            if len(self._in) < self._pad_c + 2:
                return False
            raw = self._dec(bytes(self._in[: self._pad_c + 2]))
            del self._in[: self._pad_c + 2]
            self._ia_len = int.from_bytes(raw[-2:], "big")
            if self._ia_len > 65535:
                raise MseError("initial payload too long")
            self._state = "ia"
            return True
        if self._state == "ia":
            if len(self._in) < self._ia_len:
                return False
            ia = self._dec(bytes(self._in[: self._ia_len]))
            del self._in[: self._ia_len]
            pad_d = self._pad()
            self._out += self._enc(
                VC + self._crypto.to_bytes(4, "big") + len(pad_d).to_bytes(2, "big") + pad_d
            )
            rest = bytes(self._in)
            self._in.clear()
            if self._crypto == CRYPTO_RC4:
                received = ia + self._dec(rest)
                self.result = MseResult(CRYPTO_RC4, self._enc, self._dec, self._info_hash, received)
            else:
                self.result = MseResult(CRYPTO_PLAINTEXT, None, None, self._info_hash, ia + rest)
            self._state = "done"
        return False
