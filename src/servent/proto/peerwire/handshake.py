"""The 68-byte peer wire handshake (BEP 3) and its reserved capability bits.

``<19>"BitTorrent protocol"<reserved:8><info_hash:20><peer_id:20>``.  The
reserved bytes advertise extensions; each is enabled only when both ends set
it.  For v2 and hybrid torrents (BEP 52) the info-hash field carries the
SHA-256 info-hash truncated to 20 bytes, and a hybrid peer that sends the
v1 hash can set :data:`RESERVED_V2` to invite the other side to answer with
the truncated v2 hash ("upgrade").
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from servent.codec.bencode import decode, encode
from servent.errors import HandshakeError

PROTOCOL = b"\x13BitTorrent protocol"
HANDSHAKE_LENGTH = 68
#: Bytes up to and including the info-hash: enough to route an incoming connection.
HEADER_LENGTH = 48

# (byte index, mask) of each capability bit in the reserved field.
RESERVED_DHT = (7, 0x01)  # BEP 5
RESERVED_FAST = (7, 0x04)  # BEP 6
RESERVED_V2 = (7, 0x10)  # BEP 52 upgrade
RESERVED_EXTENSION = (5, 0x10)  # BEP 10


def make_reserved(*bits: tuple[int, int]) -> bytes:
    """Eight reserved bytes with the given capability bits set."""
    out = bytearray(8)
    for index, mask in bits:
        out[index] |= mask
    return bytes(out)


def has_bit(reserved: bytes, bit: tuple[int, int]) -> bool:
    """Whether capability ``bit`` is set in ``reserved``."""
    index, mask = bit
    return bool(reserved[index] & mask)


@dataclass(frozen=True, slots=True)
class Handshake:
    """One side's handshake."""

    reserved: bytes
    info_hash: bytes
    peer_id: bytes

    def encode(self) -> bytes:
        """The 68 bytes on the wire."""
        if len(self.reserved) != 8 or len(self.info_hash) != 20 or len(self.peer_id) != 20:
            raise ValueError("reserved must be 8 bytes, info_hash and peer_id 20 bytes")
        return PROTOCOL + self.reserved + self.info_hash + self.peer_id

    @property
    def supports_fast(self) -> bool:
        return has_bit(self.reserved, RESERVED_FAST)

    @property
    def supports_extensions(self) -> bool:
        return has_bit(self.reserved, RESERVED_EXTENSION)

    @property
    def supports_dht(self) -> bool:
        return has_bit(self.reserved, RESERVED_DHT)

    @property
    def supports_v2(self) -> bool:
        return has_bit(self.reserved, RESERVED_V2)


def check_protocol_header(data: bytes | bytearray | memoryview) -> None:
    """Raise :class:`HandshakeError` if the first bytes are not the BitTorrent protocol string.

    Checks as many bytes as are present (up to 20), so a wrong protocol is
    refused before the rest of the handshake arrives.
    """
    count = min(len(data), len(PROTOCOL))
    if bytes(data[:count]) != PROTOCOL[:count]:
        raise HandshakeError("not a BitTorrent handshake")


def parse_handshake(data: bytes | bytearray | memoryview) -> Handshake:
    """Parse exactly the 68 handshake bytes."""
    if len(data) != HANDSHAKE_LENGTH:
        raise HandshakeError(f"handshake of {len(data)} bytes, expected {HANDSHAKE_LENGTH}")
    check_protocol_header(data)
    raw = bytes(data)
    return Handshake(raw[20:28], raw[28:48], raw[48:68])


def aria2_info_hash(info_bytes: bytes) -> bytes | None:
    """The info-hash aria2 1.36 uses for a v2/hybrid torrent, or ``None`` if it is the v1 hash.

    aria2 re-encodes the info dictionary and drops entries whose key is the
    empty string, which every BEP 52 ``file tree`` leaf uses (``{"": {length}}``),
    so for hybrid torrents it announces and expects SHA-1 of that stripped
    dictionary instead of the real v1 info-hash.  A session that wants aria2
    peers on hybrid torrents accepts this alias for incoming handshakes
    (``PeerConnection.accept(alias, ...)`` answers with it) and may dial aria2
    with it.  Measured with aria2 1.36.0 against libtorrent-made hybrids.
    """

    def strip(value: object) -> object:
        if isinstance(value, dict):
            return {key: strip(item) for key, item in value.items() if key}
        if isinstance(value, list):
            return [strip(item) for item in value]
        return value

    info = decode(info_bytes)
    stripped = strip(info)
    if stripped == info:
        return None
    return hashlib.sha1(encode(stripped)).digest()  # type: ignore[arg-type]
