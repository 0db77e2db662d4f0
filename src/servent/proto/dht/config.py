"""Settings of one DHT node; defaults follow BEP 5 and the public network's habits."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class DhtConfig:
    """Every tunable of :class:`~servent.proto.dht.node.DhtNode`.

    Loopback tests and simulations put many nodes on one IP: they turn off
    ``restrict_ips`` (one routing entry per IP, one per /24 or /64 in a bucket)
    and loosen the per-IP rate limit.
    """

    # routing table (BEP 5)
    k: int = 8
    replacement_cache: int = 8
    bucket_refresh: float = 15 * 60.0
    node_good_for: float = 15 * 60.0
    max_failures: int = 3
    restrict_ips: bool = True
    # BEP 42
    enforce_node_id: bool = False
    prefer_verified_ids: bool = True
    #: Take a BEP 42 ID when answers agree on a new external IP our ID does not fit.
    regenerate_id: bool = True
    # BEP 43
    read_only: bool = False
    # lookups
    alpha: int = 3
    query_timeout: float = 2.0
    slow_after: float = 1.0
    #: Queries to one close candidate before it counts as failed (retries go out
    #: when a query is slow, all within ``query_timeout``): at 5% packet loss
    #: find_node success rises from ~90% (1) to ~99.9% (3).
    lookup_attempts: int = 3
    max_lookup_candidates: int = 64
    announce_to: int = 8
    # transactions
    max_pending: int = 4096
    # tokens
    token_rotation: float = 5 * 60.0
    # defences
    rate_limit_per_ip: float = 20.0
    rate_burst: float = 40.0
    block_duration: float = 5 * 60.0
    max_tracked_ips: int = 4096
    reply_size_factor: int = 4
    reply_size_floor: int = 600
    reply_size_ceiling: int = 1400
    # storage
    max_infohashes: int = 2000
    max_peers_per_infohash: int = 200
    peer_ttl: float = 30 * 60.0
    max_items: int = 1000
    item_ttl: float = 2 * 60 * 60.0
    sample_interval: int = 6 * 60 * 60
    max_samples: int = 20
    # periodic work
    maintenance_interval: float = 10.0
    client_version: bytes = b"SV\x00\x01"
