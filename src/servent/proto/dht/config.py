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
    alpha: int = 5
    #: Requests in flight once the closest candidate standing has answered (the
    #: lookup's last stretch: the remaining close candidates are asked together).
    final_alpha: int = 8
    #: Hard timeout: a query stays open (a late answer still counts) this long.
    query_timeout: float = 2.0
    #: Soft timeout before any round trip was measured; then SRTT + 4 RTTVAR of the
    #: node's answers (RFC 6298), clamped to [min_slow_after, max_slow_after]. A slow
    #: query frees its lookup slot; the lookup asks the next candidate meanwhile.
    slow_after: float = 1.0
    min_slow_after: float = 0.2
    max_slow_after: float = 1.5
    #: A lookup query later than SRTT + RTTVAR (most answers are in by then) frees its
    #: slot: the next candidate is asked while it may still answer.
    min_late_after: float = 0.05
    #: Queries to one close candidate before the lookup gives it up (a retry goes out
    #: at each soft timeout): at 5% packet loss find_node success rises from ~90% (1)
    #: to ~99.9% (3).
    lookup_attempts: int = 3
    #: A slow candidate with this many answered candidates closer to the target is given
    #: up at its first soft timeout (no retry, the lookup does not wait for it); closer
    #: ones are retried and waited for. ``k`` waits for every one of the k closest.
    lookup_wait_rank: int = 1
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
    first_maintenance: float = 1.0
    #: Questionable contacts (never answered first) pinged at each maintenance round.
    verify_per_maintenance: int = 4
    client_version: bytes = b"SV\x00\x01"
