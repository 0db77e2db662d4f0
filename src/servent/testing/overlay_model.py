"""The overlay simulation's model: its settings, a simulated node, and the report.

Kept apart from :mod:`servent.testing.overlay_network` so that the mesh part
(:mod:`servent.testing.overlay_mesh`) can name these types without a cycle.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from servent.proto.gossip import GossipConfig, GossipRouter
from servent.proto.gossip.neighbours import NeighbourBook
from servent.proto.outbox import Outbox, SeenIds

__all__ = ["OverlayConfig", "OverlayReport", "SimNode"]


@dataclass(frozen=True, slots=True)
class OverlayConfig:
    nodes: int = 1000
    #: Fraction of the nodes that leave during the run and come back at a new address.
    churn: float = 0.3
    seed: int = 1
    #: Virtual seconds of traffic; then a drain where nobody leaves any more, long
    #: enough for the last node away (3x ``offline_mean``) to return and for one
    #: more retry at the outbox's longest back-off (60 s).
    duration: float = 300.0
    drain: float = 270.0
    broadcasts: int = 20
    direct_messages: int = 1000
    #: Channels a node accepts at most (its connection limit); how many it keeps is
    #: the neighbour book's degree (6, between 4 and 12).
    max_links: int = 50
    #: Candidate addresses a node remembers (``NeighbourConfig.max_known``).
    known_addresses: int = 512
    #: Nodes start within this many seconds of the run's start.
    join_window: float = 8.0
    #: Median one-way access delay of a node, lognormal with this shape.
    access_median: float = 0.025
    access_sigma: float = 0.6
    #: Median and shape of a DHT lookup of an address record (seconds).
    lookup_median: float = 0.5
    lookup_sigma: float = 0.7
    #: A dial to an address where nobody answers fails after this long.
    connect_timeout: float = 3.0
    #: Neighbours notice a vanished node after a uniform delay up to this.
    idle_timeout: float = 15.0
    #: Mean time a leaving node stays away (exponential, capped at 3x).
    offline_mean: float = 60.0
    #: A returning node's new address record reaches the DHT after this long.
    publish_delay: float = 1.0
    #: How long after publication a broadcast's reach is counted.
    broadcast_window: float = 30.0
    gossip: GossipConfig = field(default_factory=GossipConfig)


@dataclass(slots=True)
class SimNode:
    index: int
    access: float
    router: GossipRouter
    book: NeighbourBook
    outbox: Outbox
    inbox: SeenIds = field(default_factory=SeenIds)
    online: bool = True
    incarnation: int = 0
    online_since: float = 0.0
    links: set[int] = field(default_factory=set)
    frames_sent: int = 0
    next_heartbeat: float = 0.0


@dataclass(slots=True)
class OverlayReport:
    nodes: int
    churned: int
    direct_sent: int = 0
    direct_delivered: int = 0
    direct_latencies: list[float] = field(default_factory=list)
    direct_attempts: list[int] = field(default_factory=list)
    broadcast_eligible: int = 0
    broadcast_reached: int = 0
    broadcast_latencies: list[float] = field(default_factory=list)
    gossip_frames: int = 0
    direct_frames: int = 0
    duplicates: int = 0
    mesh_frames: int = 0
    mesh_dials: int = 0
    rendezvous_lookups: int = 0
    neighbours_mean: float = 0.0
    virtual_seconds: float = 0.0
    events: int = 0

    @property
    def direct_rate(self) -> float:
        return self.direct_delivered / self.direct_sent if self.direct_sent else 1.0

    @property
    def broadcast_rate(self) -> float:
        eligible = self.broadcast_eligible
        return self.broadcast_reached / eligible if eligible else 1.0
