"""Mainline DHT core (BEP 5, 32, 42, 43, 44, 51), sans-IO."""

from servent.proto.dht.config import DhtConfig
from servent.proto.dht.events import (
    AnnounceDone,
    DhtEvent,
    ExternalAddressChanged,
    ItemFound,
    NodeIdChanged,
    NodesFound,
    PeerAnnounced,
    PeersArrived,
    PeersFound,
    PingDone,
    PutDone,
    SamplesFound,
)
from servent.proto.dht.node import DhtNode

__all__ = [
    "AnnounceDone",
    "DhtConfig",
    "DhtEvent",
    "DhtNode",
    "ExternalAddressChanged",
    "ItemFound",
    "NodeIdChanged",
    "NodesFound",
    "PeerAnnounced",
    "PeersArrived",
    "PeersFound",
    "PingDone",
    "PutDone",
    "SamplesFound",
]
