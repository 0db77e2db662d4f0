"""The value of a node's BEP 44 address record (``docs/node-channel.md`` section 9).

Pure encode/decode of ``{"v": 1, "a": [compact addresses], "t": time, "n": name,
"r": [relay key + compact address]}`` (``r``: ``docs/relay.md``);
signing and the DHT round trip live in :mod:`servent.net.node_record`.
"""

from __future__ import annotations

from dataclasses import dataclass

from servent.codec.bencode import BValue
from servent.codec.compact import Address, decode_peer, encode_peer
from servent.errors import CompactEncodingError, DecodeError

__all__ = [
    "MAX_ADDRESSES",
    "RECORD_SALT",
    "NodeRecord",
    "NodeRecordError",
    "RelayRef",
    "decode_node_record",
    "decode_relays",
    "encode_node_record",
    "encode_relays",
]

#: BEP 44 salt of every servent address record.
RECORD_SALT = b"servent-node"
RECORD_VERSION = 1
MAX_ADDRESSES = 8
MAX_NAME_BYTES = 64
MAX_RELAYS = 2
KEY_SIZE = 32


class NodeRecordError(DecodeError):
    """An address record value is malformed (types, sizes, no usable address)."""


@dataclass(frozen=True, slots=True)
class RelayRef:
    """A relay that forwards to the node: the relay's key and where it listens."""

    key: bytes
    address: Address


@dataclass(frozen=True, slots=True)
class NodeRecord:
    """Where a node accepts channels, as it said at ``time`` (Unix seconds)."""

    addresses: tuple[Address, ...]
    time: int
    name: str | None = None
    relays: tuple[RelayRef, ...] = ()


def encode_node_record(record: NodeRecord) -> dict[bytes, BValue]:
    """The bencodable value; raises :class:`NodeRecordError` for what could not be read back."""
    if not 1 <= len(record.addresses) <= MAX_ADDRESSES:
        raise NodeRecordError(f"a record holds 1..{MAX_ADDRESSES} addresses")
    try:
        compact: list[BValue] = [encode_peer(address) for address in record.addresses]
    except CompactEncodingError as exc:
        raise NodeRecordError(f"cannot publish address: {exc}") from None
    value: dict[bytes, BValue] = {b"v": RECORD_VERSION, b"a": compact, b"t": record.time}
    if record.name is not None:
        name = record.name.encode("utf-8")
        if len(name) > MAX_NAME_BYTES:
            raise NodeRecordError(f"display name longer than {MAX_NAME_BYTES} bytes")
        value[b"n"] = name
    if record.relays:
        value[b"r"] = _encode_relays(record.relays)
    return value


def _encode_relays(relays: tuple[RelayRef, ...]) -> list[BValue]:
    if len(relays) > MAX_RELAYS or any(len(r.key) != KEY_SIZE for r in relays):
        raise NodeRecordError(f"a record names at most {MAX_RELAYS} relays by 32-byte key")
    try:
        return [relay.key + encode_peer(relay.address) for relay in relays]
    except CompactEncodingError as exc:
        raise NodeRecordError(f"cannot publish relay: {exc}") from None


def _relays(raw: BValue | None) -> tuple[RelayRef, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or len(raw) > MAX_RELAYS:
        raise NodeRecordError(f"r lists at most {MAX_RELAYS} relays")
    relays = []
    for entry in raw:
        if not isinstance(entry, bytes) or len(entry) not in (KEY_SIZE + 6, KEY_SIZE + 18):
            raise NodeRecordError("a relay is a 32-byte key and a compact address")
        try:
            relays.append(RelayRef(entry[:KEY_SIZE], decode_peer(entry[KEY_SIZE:])))
        except CompactEncodingError as exc:
            raise NodeRecordError(str(exc)) from None
    return tuple(relays)


def decode_node_record(value: BValue) -> NodeRecord:
    """Check and read a record value found in the DHT (hostile input)."""
    if not isinstance(value, dict):
        raise NodeRecordError("a node record is a dictionary")
    if value.get(b"v") != RECORD_VERSION:
        raise NodeRecordError(f"unknown record version {value.get(b'v')!r}")
    made = value.get(b"t")
    if not isinstance(made, int) or made < 0:
        raise NodeRecordError("record time missing or not a positive integer")
    entries = value.get(b"a")
    if not isinstance(entries, list) or not 1 <= len(entries) <= MAX_ADDRESSES:
        raise NodeRecordError(f"a record lists 1..{MAX_ADDRESSES} addresses")
    addresses = []
    for entry in entries:
        if not isinstance(entry, bytes):
            raise NodeRecordError("an address is a compact byte string")
        try:
            addresses.append(decode_peer(entry))
        except CompactEncodingError as exc:
            raise NodeRecordError(str(exc)) from None
    return NodeRecord(tuple(addresses), made, _name(value.get(b"n")), _relays(value.get(b"r")))


def _name(raw: BValue | None) -> str | None:
    if raw is None:
        return None
    if not isinstance(raw, bytes) or len(raw) > MAX_NAME_BYTES:
        raise NodeRecordError("display name is not a short byte string")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise NodeRecordError("display name is not UTF-8") from None


def encode_relays(relays: tuple[RelayRef, ...]) -> list[BValue]:
    """The ``r`` list of a record (also a torrent peer's ``sv_node`` advert)."""
    return _encode_relays(relays)


def decode_relays(raw: BValue | None) -> tuple[RelayRef, ...]:
    """Read an ``r`` list (hostile input); raises :class:`NodeRecordError`."""
    return _relays(raw)
