"""The built-in tracker's swarm registry: pure, bounded, time passed in.

Memory is bounded twice: at most ``max_torrents`` swarms and at most
``max_peers_per_torrent`` peers in each; a peer that has not announced for
``expiry_factor`` intervals is forgotten, and a swarm with no peers left goes
with it.  When a swarm is full a new peer replaces the stalest peer of the
client with the most peers in it, so a flood of fake peers from one address
displaces only its own.

One client (an IPv4 address or an IPv6 /64) cannot take the table either: it
may create at most ``max_swarms_per_ip`` swarms, its announces and scrapes are
rate limited, and when the table is full a new swarm replaces a swarm seen
from one address only, created by the client holding the most swarms, least
recently announced first — and only when that client holds more swarms than
the newcomer would.  A swarm that several addresses use is never evicted.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from servent.codec.compact import Address
from servent.codec.tracker import AnnounceRequest, AnnounceResponse, ScrapeEntry
from servent.errors import TrackerFailureError
from servent.proto.dht.ratelimit import QueryRateLimiter
from servent.proto.tracker_limits import CreatorLedger, address_group

_EVICTION_SCAN = 64
"""How many of the heaviest client's swarms are looked at to find one to evict."""


@dataclass(frozen=True, slots=True)
class TrackerConfig:
    interval: int = 1800
    min_interval: int = 60
    expiry_factor: float = 2.0
    max_torrents: int = 10_000
    max_peers_per_torrent: int = 2_000
    max_numwant: int = 200
    max_swarms_per_ip: int = 1_000
    request_rate_per_ip: float = 20.0
    """Announces and scrapes per second per client, on average (0: no limit)."""
    request_burst_per_ip: float = 200.0
    max_tracked_ips: int = 65_536


@dataclass(slots=True)
class _PeerRecord:
    addr: Address
    seed: bool
    last_seen: float


@dataclass(slots=True)
class _Swarm:
    creator: str
    peers: dict[bytes, _PeerRecord] = field(default_factory=dict)
    groups: dict[str, int] = field(default_factory=dict)
    """Peers per client group: ``len(groups)`` is how many clients use the swarm."""
    downloaded: int = 0
    last_seen: float = 0.0

    def put(self, key: bytes, record: _PeerRecord) -> None:
        self.pop(key)
        self.peers[key] = record
        group = address_group(record.addr[0])
        self.groups[group] = self.groups.get(group, 0) + 1

    def stalest_of_busiest_client(self) -> bytes:
        """The peer to replace when full: the client with the most peers here
        gives up its least recently announced one."""
        busiest = max(self.groups, key=self.groups.__getitem__)
        return min(
            (k for k, p in self.peers.items() if address_group(p.addr[0]) == busiest),
            key=lambda k: self.peers[k].last_seen,
        )

    def pop(self, key: bytes) -> None:
        record = self.peers.pop(key, None)
        if record is None:
            return
        group = address_group(record.addr[0])
        left = self.groups[group] - 1
        if left:
            self.groups[group] = left
        else:
            del self.groups[group]


class TrackerState:
    """Announces in, peer lists out; ``expire(now)`` drops the silent."""

    def __init__(self, config: TrackerConfig | None = None, *, rng: random.Random) -> None:
        self.config = config or TrackerConfig()
        self._rng = rng
        self._swarms: dict[bytes, _Swarm] = {}
        self._creators = CreatorLedger()
        cfg = self.config
        self._limiter = QueryRateLimiter(
            cfg.request_rate_per_ip, cfg.request_burst_per_ip, 0.0, cfg.max_tracked_ips
        )

    def __len__(self) -> int:
        return len(self._swarms)

    def peer_count(self, info_hash: bytes) -> int:
        swarm = self._swarms.get(info_hash)
        return len(swarm.peers) if swarm else 0

    def swarms_created_by(self, ip: str) -> int:
        return self._creators.count(address_group(ip))

    def admit_request(self, ip: str, now: float) -> None:
        """Spend one of ``ip``'s request tokens, or refuse with a failure reason."""
        if not self._limiter.allow(address_group(ip), now):
            raise TrackerFailureError("too many requests from your address; retry later")

    def announce(self, req: AnnounceRequest, source: Address, now: float) -> AnnounceResponse:
        """Record ``req`` from ``source`` (the observed IP wins over ``req.ip``)."""
        cfg = self.config
        self.admit_request(source[0], now)
        swarm = self._swarms.get(req.info_hash)
        if swarm is None:
            if req.event == "stopped":
                return AnnounceResponse(interval=cfg.interval, min_interval=cfg.min_interval)
            swarm = self._create_swarm(req.info_hash, address_group(source[0]), now)
        swarm.last_seen = now
        self._creators.touch(swarm.creator, req.info_hash)
        key = req.peer_id
        if req.event == "stopped":
            swarm.pop(key)
        else:
            if key not in swarm.peers and len(swarm.peers) >= cfg.max_peers_per_torrent:
                swarm.pop(swarm.stalest_of_busiest_client())
            if req.event == "completed":
                swarm.downloaded += 1
            swarm.put(key, _PeerRecord((source[0], req.port), req.left == 0, now))
        response = self._peer_list(swarm, req)
        if not swarm.peers:
            self._drop_swarm(req.info_hash)
        return response

    def _peer_list(self, swarm: _Swarm, req: AnnounceRequest) -> AnnounceResponse:
        cfg = self.config
        numwant = max(0, min(req.numwant, cfg.max_numwant))
        others = [p for k, p in swarm.peers.items() if k != req.peer_id and p.addr[1] != 0]
        if req.left == 0:
            others = [p for p in others if not p.seed]  # seeds need leechers only
        chosen = self._rng.sample(others, min(numwant, len(others)))
        entry = self._entry(swarm)
        return AnnounceResponse(
            interval=cfg.interval,
            min_interval=cfg.min_interval,
            peers=tuple(p.addr for p in chosen),
            complete=entry.complete,
            incomplete=entry.incomplete,
        )

    def _create_swarm(self, info_hash: bytes, group: str, now: float) -> _Swarm:
        cfg = self.config
        held = self._creators.count(group)
        if held >= cfg.max_swarms_per_ip:
            raise TrackerFailureError(
                f"your address already has {held} torrents on this tracker (the limit)"
            )
        if len(self._swarms) >= cfg.max_torrents:
            victim = self._eviction_victim(held + 1, now)
            if victim is None:
                raise TrackerFailureError("tracker is full")
            self._drop_swarm(victim)
        swarm = self._swarms[info_hash] = _Swarm(creator=group, last_seen=now)
        self._creators.add(group, info_hash)
        return swarm

    def _eviction_victim(self, newcomer_holds: int, now: float) -> bytes | None:
        """A swarm worth less than a new one: used from one address, created by a
        client that holds more swarms than the newcomer would (or as many, and
        staler), least recently announced first."""
        heaviest = self._creators.heaviest()
        if heaviest is None or heaviest[1] < newcomer_holds:
            return None
        group, holds = heaviest
        for scanned, info_hash in enumerate(self._creators.oldest_first(group)):
            if scanned >= _EVICTION_SCAN:
                return None
            swarm = self._swarms[info_hash]
            if len(swarm.groups) > 1:
                continue
            if holds > newcomer_holds or swarm.last_seen < now:
                return info_hash
            return None
        return None

    def _drop_swarm(self, info_hash: bytes) -> None:
        swarm = self._swarms.pop(info_hash, None)
        if swarm is not None:
            self._creators.remove(swarm.creator, info_hash)

    @staticmethod
    def _entry(swarm: _Swarm) -> ScrapeEntry:
        seeds = sum(1 for p in swarm.peers.values() if p.seed)
        return ScrapeEntry(seeds, swarm.downloaded, len(swarm.peers) - seeds)

    def scrape(self, info_hash: bytes) -> ScrapeEntry:
        swarm = self._swarms.get(info_hash)
        return self._entry(swarm) if swarm else ScrapeEntry()

    def scrape_from(
        self, info_hashes: Sequence[bytes], source: Address, now: float
    ) -> list[ScrapeEntry]:
        """A rate-limited scrape for ``source`` (one request, however many hashes),
        one entry per hash in order."""
        self.admit_request(source[0], now)
        return [self.scrape(h) for h in info_hashes]

    def next_timer(self) -> float | None:
        """When the oldest peer would expire (None when empty)."""
        oldest = min(
            (p.last_seen for s in self._swarms.values() for p in s.peers.values()), default=None
        )
        return None if oldest is None else oldest + self._ttl()

    def _ttl(self) -> float:
        return self.config.interval * self.config.expiry_factor

    def expire(self, now: float) -> None:
        """Forget peers silent for ``expiry_factor`` intervals, then empty swarms."""
        deadline = now - self._ttl()
        for info_hash in list(self._swarms):
            swarm = self._swarms[info_hash]
            for key in [k for k, p in swarm.peers.items() if p.last_seen <= deadline]:
                swarm.pop(key)
            if not swarm.peers:
                self._drop_swarm(info_hash)
        self._limiter.forget_idle(now)

    handle_timer = expire
