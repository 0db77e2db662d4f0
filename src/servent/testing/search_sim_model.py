"""What the search simulator is made of: its settings, its nodes, a query, the report."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from servent.proto.search import KeywordIndexStore, QueryResults, SupernodeView
from servent.testing.name_catalogue import CatalogueFile

__all__ = ["QueryRecord", "SearchReport", "SearchSimConfig", "SimNode", "percentile"]


@dataclass(frozen=True, slots=True)
class SearchSimConfig:
    nodes: int = 1000
    churn: float = 0.2
    seed: int = 1
    duration: float = 600.0
    warmup: float = 30.0
    queries: int = 2000
    #: Share of queries for files that no node has.
    absent_share: float = 0.2
    #: Nodes reachable from outside (the others are behind NAT: leaves for good).
    reachable: float = 0.12
    #: Mean uptime of a node when the run starts (exponential): who qualifies as supernode.
    uptime_mean: float = 7200.0
    files_per_node: float = 6.0
    catalogue_factor: float = 3.0
    hop_min: float = 0.05
    hop_max: float = 0.15
    registrars: int = 2
    #: Node channels each node keeps open (its neighbours, as in the overlay simulator).
    neighbours: int = 8
    timeout: float = 2.0
    connect_timeout: float = 3.0
    #: A node notices a vanished neighbour within this (channel idle detection).
    detect_max: float = 15.0
    #: A new supernode is in the others' views after up to this long.
    membership_delay: float = 10.0
    #: A vanished supernode leaves the others' views after up to this long.
    failure_delay: float = 45.0
    offline_mean: float = 120.0
    channel_idle: float = 300.0


@dataclass(slots=True)
class SimNode:
    index: int
    key: bytes
    position: int
    reachable: bool
    shares: list[CatalogueFile]
    online: bool = True
    incarnation: int = 0
    online_since: float = 0.0
    role: str = "leaf"
    view: SupernodeView[int] | None = None
    store: KeywordIndexStore | None = None
    registrars: list[int] = field(default_factory=list)
    #: Nodes this one keeps a node channel with (asked too, as Tribler asks neighbours).
    neighbours: list[int] = field(default_factory=list)
    channels: dict[int, float] = field(default_factory=dict)
    messages: int = 0
    handled: int = 0


@dataclass(slots=True)
class SearchReport:
    nodes: int
    supernodes_start: int = 0
    supernodes_end: int = 0
    churned: int = 0
    queries: int = 0
    eligible: int = 0
    found: int = 0
    latencies: list[float] = field(default_factory=list)
    absent_queries: int = 0
    absent_false_hits: int = 0
    absent_completion: list[float] = field(default_factory=list)
    messages: int = 0
    virtual_seconds: float = 0.0
    events: int = 0
    supernode_messages: list[int] = field(default_factory=list)
    #: Messages sent from the end of the warm-up on (the first publication is over).
    steady_messages: int = 0
    steady_seconds: float = 0.0
    store_sizes: list[int] = field(default_factory=list)

    @property
    def recall(self) -> float:
        return self.found / self.eligible if self.eligible else 1.0


@dataclass(slots=True)
class QueryRecord:
    querier: int
    incarnation: int
    text: str
    wanted: bytes | None
    started: float
    results: QueryResults
    found_at: float | None = None
    last_answer: float = 0.0


def percentile(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
