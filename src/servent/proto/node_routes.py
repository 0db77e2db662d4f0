"""Torrent peers as nodes (``docs/relay.md``): the ``sv_nodes`` format and the relay rule.

A servent peer names its node key in its BEP 10 handshake (the ``sv_node``
*advert*); a peer connected to several servent peers of a swarm tells each
the others' adverts, keyed by the address they listen on (the ``sv_nodes``
message).  A peer we cannot dial or punch is then reached as a node, over a
``servent/peerwire/1`` stream of a node channel, by the rule of
:class:`RelayAttempts`.  No I/O here: time is an argument.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from typing import Generic, TypeVar, cast

from servent.codec.bencode import BValue, Encodable, Limits, decode_dict, encode
from servent.codec.compact import Address, decode_peer, encode_peer
from servent.codec.node_record import (
    KEY_SIZE,
    NodeRecordError,
    RelayRef,
    decode_relays,
    encode_relays,
)
from servent.errors import CompactEncodingError, NodeRoutesError

__all__ = [
    "ADVERT_KEY",
    "EXTENSION_NAME",
    "MAX_ENTRIES",
    "MAX_PAYLOAD",
    "PEERWIRE_PROTOCOL",
    "AdvertUpdates",
    "NodeAdvert",
    "NodeEntry",
    "NodesInflow",
    "RelayAttempts",
    "advert_to_offer",
    "decode_nodes",
    "encode_advert",
    "encode_nodes",
    "parse_advert",
]

EXTENSION_NAME = "sv_nodes"
#: The key of our advert in the BEP 10 handshake.
ADVERT_KEY = b"sv_node"
#: The node-channel stream protocol whose bytes are one BitTorrent connection.
PEERWIRE_PROTOCOL = "servent/peerwire/1"
MAX_ENTRIES = 32
MAX_PAYLOAD = 8 * 1024
_LIMITS = Limits(max_length=MAX_PAYLOAD, max_depth=5, max_values=1024)

#: After our first failed dial, how long BEP 55 may try before a channel is used (it
#: waits 35 s after our last direct dial, and those go on with back-off for a while).
PUNCH_GRACE = 90.0
#: The node with the larger key waits this much longer (both would dial at once).
LARGER_KEY_DELAY = 10.0
#: Waits before the 2nd and 3rd attempt; no attempt after the last.
RETRY_DELAYS = (15.0, 60.0)

#: A changed advert goes to a peer at most this often (changes in between coalesce).
UPDATE_GAP = 5.0
#: Incoming ``sv_nodes``: a bucket of this many messages, refilled one per interval ...
INFLOW_BURST = 4.0
INFLOW_INTERVAL = 10.0
#: ... and a peer this many ignored messages in debt is dropped.
INFLOW_MAX_DEBT = 16.0

P = TypeVar("P", bound=Hashable)


@dataclass(frozen=True, slots=True)
class NodeAdvert:
    """Who a torrent peer is as a node: its key, its relays, whether its NAT is symmetric."""

    key: bytes
    relays: tuple[RelayRef, ...] = ()
    symmetric: bool = False


@dataclass(frozen=True, slots=True)
class NodeEntry:
    """One ``sv_nodes`` entry: a node and the address its torrent peer listens on."""

    address: Address
    advert: NodeAdvert


def advert_to_offer(
    key: bytes, relays: tuple[RelayRef, ...], *, symmetric: bool, reachable: bool
) -> NodeAdvert | None:
    """Our advert for torrent peers, or None while it is not needed: a node known to be
    reachable (and holding no relay) is dialled directly, and keeps its node ID out of
    the swarms it joins."""
    if reachable and not relays:
        return None
    return NodeAdvert(key, relays, symmetric)


def encode_advert(advert: NodeAdvert) -> dict[bytes, BValue]:
    """The ``sv_node`` dictionary (or an ``sv_nodes`` entry without ``a``)."""
    if len(advert.key) != KEY_SIZE:
        raise NodeRoutesError("a node key is 32 bytes")
    value: dict[bytes, BValue] = {b"k": advert.key}
    if advert.relays:
        try:
            value[b"r"] = encode_relays(advert.relays)
        except NodeRecordError as exc:
            raise NodeRoutesError(str(exc)) from None
    if advert.symmetric:
        value[b"s"] = 1
    return value


def parse_advert(raw: BValue | None) -> NodeAdvert:
    """Read an advert (hostile input); raises :class:`NodeRoutesError`."""
    if not isinstance(raw, dict):
        raise NodeRoutesError("a node advert is a dictionary")
    key = raw.get(b"k")
    if not isinstance(key, bytes) or len(key) != KEY_SIZE:
        raise NodeRoutesError("a node key is 32 bytes")
    try:
        relays = decode_relays(raw.get(b"r"))
    except NodeRecordError as exc:
        raise NodeRoutesError(str(exc)) from None
    symmetric = raw.get(b"s", 0)
    if symmetric not in (0, 1):
        raise NodeRoutesError("s is 0 or 1")
    return NodeAdvert(key, relays, symmetric == 1)


def encode_nodes(entries: Iterable[NodeEntry]) -> bytes:
    """An ``sv_nodes`` payload of at most :data:`MAX_ENTRIES` entries (the first ones)."""
    listed: list[BValue] = []
    for entry in entries:
        if len(listed) == MAX_ENTRIES:
            break
        try:
            address = encode_peer(entry.address)
        except CompactEncodingError as exc:
            raise NodeRoutesError(str(exc)) from None
        listed.append({b"a": address, **encode_advert(entry.advert)})
    message: dict[bytes, BValue] = {b"n": listed}
    return encode(cast(Encodable, message))


def decode_nodes(payload: bytes) -> list[NodeEntry]:
    """Read an ``sv_nodes`` payload (hostile input); raises :class:`NodeRoutesError`."""
    value = decode_dict(payload, _LIMITS, NodeRoutesError, "sv_nodes message")
    listed = value.get(b"n")
    if not isinstance(listed, list) or len(listed) > MAX_ENTRIES:
        raise NodeRoutesError(f"n lists at most {MAX_ENTRIES} nodes")
    return [_entry(raw) for raw in listed]


def _entry(raw: BValue) -> NodeEntry:
    if not isinstance(raw, dict):
        raise NodeRoutesError("an sv_nodes entry is a dictionary")
    address = raw.get(b"a")
    if not isinstance(address, bytes):
        raise NodeRoutesError("an entry's address is a compact byte string")
    try:
        where = decode_peer(address)
    except CompactEncodingError as exc:
        raise NodeRoutesError(str(exc)) from None
    if where[1] == 0:
        raise NodeRoutesError("an entry's port is 0")
    return NodeEntry(where, parse_advert(raw))


@dataclass(slots=True)
class _Tries:
    first_failure: float
    count: int = 0
    last: float = float("-inf")


@dataclass
class RelayAttempts:
    """When to reach a torrent peer through a node channel (``docs/relay.md``).

    The shell reports what it sees of an address (:meth:`due`, with how often
    our direct dials to it failed) and what came of a channel dial
    (:meth:`started`, :meth:`succeeded`)."""

    our_key: bytes
    we_are_symmetric: bool = False
    max_tracked: int = 1024
    _tries: dict[Address, _Tries] = field(default_factory=dict)

    def due(self, address: Address, advert: NodeAdvert, failures: int, now: float) -> bool:
        """Whether to dial ``address`` through a channel to ``advert.key`` now."""
        if failures <= 0 or advert.key == self.our_key:
            self._tries.pop(address, None)  # reachable (or us): never relayed
            return False
        tries = self._tries.get(address)
        if tries is None:
            if len(self._tries) >= self.max_tracked:
                self._tries.clear()
            tries = self._tries[address] = _Tries(now)
        if tries.count > len(RETRY_DELAYS):
            return False
        start = tries.first_failure
        if not (self.we_are_symmetric or advert.symmetric):
            start += PUNCH_GRACE
        if advert.key < self.our_key:
            start += LARGER_KEY_DELAY
        if now < start:
            return False
        return tries.count == 0 or now - tries.last >= RETRY_DELAYS[tries.count - 1]

    def started(self, address: Address, now: float) -> None:
        tries = self._tries.setdefault(address, _Tries(now))
        tries.count += 1
        tries.last = now

    def succeeded(self, address: Address) -> None:
        """A channel connection worked: a later loss starts the count again."""
        self._tries.pop(address, None)

    def attempts(self, address: Address) -> int:
        tries = self._tries.get(address)
        return 0 if tries is None else tries.count


@dataclass(slots=True)
class _Sent:
    advert: NodeAdvert | None
    at: float


@dataclass
class AdvertUpdates(Generic[P]):
    """Which peers to send our changed advert to, at most once per :data:`UPDATE_GAP`.

    The shell reports every handshake it sends a peer (:meth:`sent`) and asks,
    with the advert current now, which peers are owed a new one (:meth:`due`)."""

    _sent: dict[P, _Sent] = field(default_factory=dict)

    def sent(self, peer: P, advert: NodeAdvert | None, now: float) -> None:
        self._sent[peer] = _Sent(advert, now)

    def due(self, peers: Iterable[P], current: NodeAdvert | None, now: float) -> list[P]:
        """The peers (of ``peers``) whose last handshake named another advert, and long
        enough ago; peers never sent a handshake are not ours to update."""
        return [
            peer
            for peer in peers
            if (sent := self._sent.get(peer)) is not None
            and sent.advert != current
            and now - sent.at >= UPDATE_GAP
        ]

    def forget(self, peer: P) -> None:
        self._sent.pop(peer, None)


class NodesInflow:
    """One peer's incoming ``sv_nodes`` rate: a token bucket that may go into debt.

    :meth:`admit` says whether to use a message; a message beyond the bucket is
    ignored but still costs a token, so only a sustained flood reaches
    :data:`INFLOW_MAX_DEBT` and :attr:`abusive` (the shell then drops the peer)."""

    __slots__ = ("_level", "_updated")

    def __init__(self, now: float) -> None:
        self._level = INFLOW_BURST
        self._updated = now

    def admit(self, now: float) -> bool:
        elapsed = max(0.0, now - self._updated)
        self._level = min(INFLOW_BURST, self._level + elapsed / INFLOW_INTERVAL)
        self._updated = max(self._updated, now)
        self._level -= 1.0
        return self._level >= 0.0

    @property
    def abusive(self) -> bool:
        return self._level < -INFLOW_MAX_DEBT
