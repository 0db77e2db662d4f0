"""Events a :class:`~servent.proto.dht.node.DhtNode` reports through ``next_event()``.

Every operation started by the application returns an int ID and ends with
exactly one event whose ``lookup_id`` is that ID; ``get_peers`` may report
``PeersArrived`` (``partial`` true) with that ID before.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from servent.codec.bencode import BValue
from servent.codec.compact import Address


@dataclass(frozen=True, slots=True)
class DhtEvent:
    """Base of all DHT events."""


@dataclass(frozen=True, slots=True)
class NodesFound(DhtEvent):
    """``find_node`` / ``bootstrap`` finished: the closest responding nodes, closest first."""

    lookup_id: int
    target: bytes
    nodes: tuple[tuple[bytes, Address], ...]


@dataclass(frozen=True, slots=True)
class PeersFound(DhtEvent):
    """``get_peers`` finished: every peer any node gave us for ``info_hash``."""

    lookup_id: int
    info_hash: bytes
    peers: tuple[Address, ...]
    nodes: tuple[tuple[bytes, Address], ...]


@dataclass(frozen=True, slots=True)
class PeersArrived(DhtEvent):
    """Early result of a running ``get_peers``: peers new to this lookup, as they arrive.

    A download can start on them while the lookup goes on; the final
    :class:`PeersFound` still lists every peer found.
    """

    #: Not the operation's final event: whoever waits for that keeps waiting.
    partial: ClassVar[bool] = True

    lookup_id: int
    info_hash: bytes
    peers: tuple[Address, ...]


@dataclass(frozen=True, slots=True)
class AnnounceDone(DhtEvent):
    """``announce`` finished; ``stored`` nodes acknowledged the announce."""

    lookup_id: int
    info_hash: bytes
    stored: int
    peers: tuple[Address, ...]


@dataclass(frozen=True, slots=True)
class ItemFound(DhtEvent):
    """``get_item`` finished; ``value`` is None when no valid item was found."""

    lookup_id: int
    target: bytes
    value: BValue | None
    seq: int | None = None
    public_key: bytes | None = None
    signature: bytes | None = None
    salt: bytes = b""


@dataclass(frozen=True, slots=True)
class PutDone(DhtEvent):
    """``put_immutable`` / ``put_mutable`` finished; ``stored`` nodes accepted it."""

    lookup_id: int
    target: bytes
    stored: int
    seq: int | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class SamplesFound(DhtEvent):
    """``sample_infohashes`` finished (BEP 51)."""

    lookup_id: int
    target: bytes
    samples: tuple[bytes, ...]
    num: int
    interval: int


@dataclass(frozen=True, slots=True)
class PingDone(DhtEvent):
    """``ping`` finished; ``node_id`` is None when the node did not answer."""

    lookup_id: int
    addr: Address
    node_id: bytes | None


@dataclass(frozen=True, slots=True)
class PeerAnnounced(DhtEvent):
    """Another node announced a peer to us (we store it)."""

    info_hash: bytes
    peer: Address


@dataclass(frozen=True, slots=True)
class ExternalAddressChanged(DhtEvent):
    """Nodes report a new external IP for us (BEP 42 ``ip``); a node may regenerate its ID."""

    ip: str


@dataclass(frozen=True, slots=True)
class NodeIdChanged(DhtEvent):
    """The node took a new ID (BEP 42: derived from the external IP ``ip``)."""

    old_id: bytes
    new_id: bytes
    ip: str | None
