"""A broadcast message: who wrote it, when, on which channel, signed by its author.

Signing and verifying are done by the caller (the node holds the Ed25519 key;
the simulator may skip the cost); this module fixes the bytes that are signed,
the message ID and the bounds every received message must meet.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from servent.codec.bencode import Encodable, Limits, decode, encode
from servent.codec.node_id import is_usable_public_key
from servent.errors import BencodeError, ProtocolError

SIGNED_PREFIX = b"servent-gossip-v1\x00"
AUTHOR_SIZE = 32
SIGNATURE_SIZE = 64
ID_SIZE = 20
MAX_CHANNEL = 64
MAX_PAYLOAD = 65_536
MAX_SEQUENCE = 2**63
MAX_TIME = 2**40
#: Bounds for one encoded message (payload plus a few hundred bytes of fields).
MESSAGE_LIMITS = Limits(max_length=MAX_PAYLOAD + 1024, max_depth=4, max_values=64)


class GossipError(ProtocolError):
    """A gossip message or frame broke the format or a bound."""


@dataclass(frozen=True, slots=True)
class GossipMessage:
    """One broadcast, as its author signed it."""

    author: bytes
    sequence: int
    time: int
    channel: bytes
    payload: bytes
    signature: bytes = b""

    def signed_bytes(self) -> bytes:
        """What the author's Ed25519 signature covers."""
        return SIGNED_PREFIX + encode(self._fields())

    def _fields(self) -> dict[bytes | str, Encodable]:
        return {
            b"a": self.author,
            b"s": self.sequence,
            b"t": self.time,
            b"c": self.channel,
            b"p": self.payload,
        }

    def to_dict(self) -> dict[bytes | str, Encodable]:
        fields = self._fields()
        fields[b"sig"] = self.signature
        return fields

    def encode(self) -> bytes:
        return encode(self.to_dict())

    def check_bounds(self) -> None:
        """Raise :class:`GossipError` unless every field is within its bound."""
        if len(self.author) != AUTHOR_SIZE:
            raise GossipError("author must be a 32-byte public key")
        if not is_usable_public_key(self.author):
            raise GossipError("author is a low-order or non-canonical Ed25519 key")
        if len(self.signature) != SIGNATURE_SIZE:
            raise GossipError("signature must be 64 bytes")
        if not 0 <= self.sequence < MAX_SEQUENCE or not 0 <= self.time < MAX_TIME:
            raise GossipError("sequence or time out of range")
        if len(self.channel) > MAX_CHANNEL:
            raise GossipError(f"channel name longer than {MAX_CHANNEL} bytes")
        try:
            self.channel.decode("utf-8")
        except UnicodeDecodeError:
            raise GossipError("channel name is not UTF-8") from None
        if len(self.payload) > MAX_PAYLOAD:
            raise GossipError(f"payload of {len(self.payload)} bytes exceeds {MAX_PAYLOAD}")

    @classmethod
    def from_dict(cls, value: object) -> GossipMessage:
        """Build a message from a decoded dictionary, checking types and bounds."""
        if not isinstance(value, dict):
            raise GossipError("a message is a dictionary")
        author, sequence = value.get(b"a"), value.get(b"s")
        time, channel = value.get(b"t"), value.get(b"c")
        payload, signature = value.get(b"p"), value.get(b"sig")
        if not (
            isinstance(author, bytes)
            and isinstance(sequence, int)
            and isinstance(time, int)
            and isinstance(channel, bytes)
            and isinstance(payload, bytes)
            and isinstance(signature, bytes)
        ):
            raise GossipError("message fields missing or of the wrong type")
        message = cls(author, sequence, time, channel, payload, signature)
        message.check_bounds()
        return message

    @classmethod
    def decode(cls, data: bytes) -> GossipMessage:
        try:
            value = decode(data, MESSAGE_LIMITS)
        except BencodeError as exc:
            raise GossipError(f"message does not decode: {exc}") from None
        return cls.from_dict(value)


def message_id(message: GossipMessage) -> bytes:
    """The 20-byte ID that names a message everywhere (de-duplication, IHAVE/IWANT)."""
    digest = hashlib.sha256(message.signed_bytes())
    digest.update(message.signature)
    return digest.digest()[:ID_SIZE]
