"""A signed search entry: one torrent (or one person) as its publisher describes it.

The bytes signed and every bound are fixed here (``docs/search.md`` §3);
signing needs the node key and is done by the caller, verifying needs only
the entry (the publisher's key is in it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from servent.codec.bencode import BValue, Encodable, encode
from servent.errors import ProtocolError

__all__ = [
    "FILE",
    "PERSON",
    "SearchEntry",
    "SearchProtocolError",
    "entry_from_value",
    "verify_entry",
]

SIGNED_PREFIX = b"servent-search-v1\x00"
FILE = b"f"
PERSON = b"p"
MAX_NAME = 255
MAX_PERSON_NAME = 64
MAX_FILE_NAMES = 8
MAX_SIZE = 2**53
MAX_FILES = 2**31
MAX_LIFE = 2 * 3600


class SearchProtocolError(ProtocolError):
    """A search message or entry broke the format or a bound."""


@dataclass(frozen=True, slots=True)
class SearchEntry:
    """What a publisher says it shares (or who it is), until ``expires``."""

    kind: bytes
    name: str
    publisher: bytes
    address: bytes
    expires: int
    info_hash: bytes = b""
    size: int = 0
    files: int = 0
    file_names: tuple[str, ...] = ()
    signature: bytes = b""

    @property
    def identity(self) -> tuple[bytes, bytes, bytes]:
        """One entry per publisher and thing: a newer one replaces it."""
        thing = self.info_hash if self.kind == FILE else b""
        return (self.publisher, self.kind, thing)

    @property
    def texts(self) -> tuple[str, ...]:
        return (self.name, *self.file_names)

    def _fields(self) -> dict[bytes | str, Encodable]:
        fields: dict[bytes | str, Encodable] = {
            b"k": self.kind,
            b"n": self.name,
            b"p": self.publisher,
            b"a": self.address,
            b"x": self.expires,
            b"s": self.size,
            b"f": self.files,
        }
        if self.kind == FILE:
            fields[b"h"] = self.info_hash
        if self.file_names:
            fields[b"m"] = list(self.file_names)
        return fields

    def signed_bytes(self) -> bytes:
        return SIGNED_PREFIX + encode(self._fields())

    def to_dict(self) -> dict[bytes | str, Encodable]:
        fields = self._fields()
        fields[b"sig"] = self.signature
        return fields

    def signed(self, sign: Callable[[bytes], bytes]) -> SearchEntry:
        return replace(self, signature=sign(self.signed_bytes()))


def verify_entry(entry: SearchEntry) -> bool:
    """The publisher's signature covers this entry."""
    try:
        Ed25519PublicKey.from_public_bytes(entry.publisher).verify(
            entry.signature, entry.signed_bytes()
        )
    except (InvalidSignature, ValueError):
        return False
    return True


def _bytes(value: dict[bytes, BValue], key: bytes, sizes: tuple[int, ...]) -> bytes:
    found = value.get(key)
    if not isinstance(found, bytes) or len(found) not in sizes:
        raise SearchProtocolError(f"entry field {key.decode()} is missing or of a wrong size")
    return found


def _int(value: dict[bytes, BValue], key: bytes, bound: int) -> int:
    found = value.get(key, 0)
    if not isinstance(found, int) or not 0 <= found < bound:
        raise SearchProtocolError(f"entry field {key.decode()} is out of range")
    return found


def _text(raw: BValue, limit: int) -> str:
    if not isinstance(raw, bytes) or not 0 < len(raw) <= limit:
        raise SearchProtocolError("entry name is missing or too long")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise SearchProtocolError("entry name is not UTF-8") from None


def entry_from_value(value: BValue) -> SearchEntry:
    """An entry from its decoded dictionary; every bound checked (not the signature)."""
    if not isinstance(value, dict):
        raise SearchProtocolError("an entry must be a dictionary")
    kind = _bytes(value, b"k", (1,))
    if kind not in (FILE, PERSON):
        raise SearchProtocolError("unknown entry kind")
    name = _text(value.get(b"n", b""), MAX_NAME if kind == FILE else MAX_PERSON_NAME)
    names_raw = value.get(b"m", [])
    if not isinstance(names_raw, list) or len(names_raw) > MAX_FILE_NAMES:
        raise SearchProtocolError("too many file names in an entry")
    return SearchEntry(
        kind=kind,
        name=name,
        publisher=_bytes(value, b"p", (32,)),
        address=_bytes(value, b"a", (6, 18)),
        expires=_int(value, b"x", 2**40),
        info_hash=_bytes(value, b"h", (20, 32)) if kind == FILE else b"",
        size=_int(value, b"s", MAX_SIZE),
        files=_int(value, b"f", MAX_FILES),
        file_names=tuple(_text(raw, MAX_NAME) for raw in names_raw),
        signature=_bytes(value, b"sig", (64,)),
    )


def check_fresh(entry: SearchEntry, now: float) -> None:
    """Refuse an expired entry, or one that claims to live longer than allowed."""
    if entry.expires <= now:
        raise SearchProtocolError("the entry has expired")
    if entry.expires > now + MAX_LIFE + 60:
        raise SearchProtocolError("the entry lives longer than 2 hours")
