"""What to do to a synced folder when a new version arrives (``docs/sync.md`` section 4).

Pure decisions over three listings (path -> content digest): the version
applied last, the folder as it is now, and the new version.  The caller
carries them out; every replace or delete keeps the old file.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import cast

from servent.codec import bencode
from servent.codec.bencode import BValue
from servent.errors import DecodeError
from servent.proto.dht.items import verify

__all__ = [
    "INFO_HASH_SIZE",
    "MAX_PUSH_SIZE",
    "Action",
    "Change",
    "Listing",
    "PushedVersion",
    "RelPath",
    "VersionError",
    "decode_push",
    "decode_version_value",
    "encode_push",
    "encode_version_value",
    "plan_changes",
    "supersedes",
]

INFO_HASH_SIZE = 20

#: A path relative to the folder, as its parts.
RelPath = tuple[str, ...]
Listing = Mapping[RelPath, bytes]


class VersionError(DecodeError):
    """A version item's value is not ``{"ih": <20 bytes>}``."""


def encode_version_value(info_hash: bytes) -> dict[bytes, BValue]:
    """The BEP 46 value naming the torrent of a version."""
    if len(info_hash) != INFO_HASH_SIZE:
        raise VersionError(f"a version's info-hash is {INFO_HASH_SIZE} bytes")
    return {b"ih": info_hash}


def decode_version_value(value: BValue | None) -> bytes:
    """The info-hash a version item names; a malformed value is refused."""
    if not isinstance(value, dict):
        raise VersionError("a version value is a dictionary")
    info_hash = value.get(b"ih")
    if not isinstance(info_hash, bytes) or len(info_hash) != INFO_HASH_SIZE:
        raise VersionError(f"a version's 'ih' is {INFO_HASH_SIZE} bytes")
    return info_hash


#: A push frame is a BEP 44 item: a 1000-byte value at most, a key and a signature.
MAX_PUSH_SIZE = 2048
_PUSH_LIMITS = bencode.Limits(max_length=MAX_PUSH_SIZE, max_depth=4, max_values=64)


@dataclass(frozen=True, slots=True)
class PushedVersion:
    """A version item sent over the node channel; its signature was checked."""

    public_key: bytes
    seq: int
    info_hash: bytes


def encode_push(public_key: bytes, seq: int, value: BValue, signature: bytes) -> bytes:
    """The push frame of a signed version item (``docs/sync.md`` section 8)."""
    frame = {b"k": public_key, b"seq": seq, b"sig": signature, b"v": value}
    return bencode.encode(cast("bencode.Encodable", frame))


def decode_push(data: bytes, salt: bytes) -> PushedVersion:
    """A pushed version whose BEP 44 signature verifies; anything else is refused."""
    frame = bencode.decode_dict(data, _PUSH_LIMITS, VersionError, "a push frame")
    key, seq, signature = frame.get(b"k"), frame.get(b"seq"), frame.get(b"sig")
    value = frame.get(b"v")
    if not isinstance(key, bytes) or not isinstance(seq, int) or not isinstance(signature, bytes):
        raise VersionError("a push frame has 'k', 'seq', 'sig' and 'v'")
    if value is None or seq < 1 or not verify(key, signature, _encoded(value), seq, salt):
        raise VersionError("a pushed version's signature does not verify")
    return PushedVersion(key, seq, decode_version_value(value))


def _encoded(value: BValue) -> bytes:
    return bencode.encode(cast("bencode.Encodable", value))


class Action(enum.Enum):
    ADD = "add"  # the folder lacks the file: write it
    REPLACE = "replace"  # the folder has the previous version: keep it in versions, write new
    DELETE = "delete"  # gone from the share: keep it in versions, remove it
    CONFLICT = "conflict"  # edited locally: keep it as a conflict copy, write new


@dataclass(frozen=True, slots=True)
class Change:
    action: Action
    path: RelPath


def plan_changes(previous: Listing, local: Listing, new: Listing) -> list[Change]:
    """The changes that make ``local`` show ``new``, in path order.

    A local edit (content differing from both ``previous`` and ``new``) is
    never overwritten without a conflict copy, and a file the share never
    had, or one edited locally and deleted from the share, is left alone.
    """
    changes: list[Change] = []
    for path in sorted(set(new) | set(local)):
        change = _change_for(path, previous.get(path), local.get(path), new.get(path))
        if change is not None:
            changes.append(Change(change, path))
    return changes


def _change_for(
    path: RelPath, previous: bytes | None, local: bytes | None, new: bytes | None
) -> Action | None:
    if new is not None:
        if local == new:
            return None
        if local is None:
            return Action.ADD
        return Action.REPLACE if local == previous else Action.CONFLICT
    if local is not None and local == previous:
        return Action.DELETE
    return None  # a local addition, or a local edit of a file the share deleted


def supersedes(seq: int, info_hash: bytes, have_seq: int, have_hash: bytes | None) -> bool:
    """Whether the version (``seq``, ``info_hash``) replaces the one a node has.

    A higher sequence number wins.  Two writers that published the same
    number at once (each compare-and-swap met a different DHT node) would
    never hear of each other, so at equal numbers the greater info-hash
    wins: every node picks the same one, and the loser merges into it.
    A lower number is a stale or replayed version and is refused.
    """
    if seq != have_seq:
        return seq > have_seq
    return have_hash is not None and info_hash > have_hash
