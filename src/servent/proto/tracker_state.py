"""The built-in tracker's swarm registry: pure, bounded, time passed in.

Memory is bounded twice: at most ``max_torrents`` swarms and at most
``max_peers_per_torrent`` peers in each; a peer that has not announced for
``expiry_factor`` intervals is forgotten.  When a swarm is full a new peer
replaces the stalest one, so a flood of fake peers cannot lock real ones out
for longer than they keep re-announcing.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from servent.codec.compact import Address
from servent.codec.tracker import AnnounceRequest, AnnounceResponse, ScrapeEntry
from servent.errors import TrackerFailureError


@dataclass(frozen=True, slots=True)
class TrackerConfig:
    interval: int = 1800
    min_interval: int = 60
    expiry_factor: float = 2.0
    max_torrents: int = 10_000
    max_peers_per_torrent: int = 2_000
    max_numwant: int = 200


@dataclass(slots=True)
class _PeerRecord:
    addr: Address
    seed: bool
    last_seen: float


@dataclass(slots=True)
class _Swarm:
    peers: dict[bytes, _PeerRecord] = field(default_factory=dict)
    downloaded: int = 0
    last_seen: float = 0.0


class TrackerState:
    """Announces in, peer lists out; ``expire(now)`` drops the silent."""

    def __init__(self, config: TrackerConfig | None = None, *, rng: random.Random) -> None:
        self.config = config or TrackerConfig()
        self._rng = rng
        self._swarms: dict[bytes, _Swarm] = {}

    def __len__(self) -> int:
        return len(self._swarms)

    def peer_count(self, info_hash: bytes) -> int:
        swarm = self._swarms.get(info_hash)
        return len(swarm.peers) if swarm else 0

    def announce(self, req: AnnounceRequest, source: Address, now: float) -> AnnounceResponse:
        """Record ``req`` from ``source`` (the observed IP wins over ``req.ip``)."""
        cfg = self.config
        swarm = self._swarms.get(req.info_hash)
        if swarm is None:
            if req.event == "stopped":
                return AnnounceResponse(interval=cfg.interval, min_interval=cfg.min_interval)
            if len(self._swarms) >= cfg.max_torrents:
                self.expire(now)
                if len(self._swarms) >= cfg.max_torrents:
                    raise TrackerFailureError("tracker is full")
            swarm = self._swarms[req.info_hash] = _Swarm()
        swarm.last_seen = now
        key = req.peer_id
        if req.event == "stopped":
            swarm.peers.pop(key, None)
        else:
            if key not in swarm.peers and len(swarm.peers) >= cfg.max_peers_per_torrent:
                stalest = min(swarm.peers, key=lambda k: swarm.peers[k].last_seen)
                del swarm.peers[stalest]
            if req.event == "completed":
                swarm.downloaded += 1
            swarm.peers[key] = _PeerRecord((source[0], req.port), req.left == 0, now)
        numwant = max(0, min(req.numwant, cfg.max_numwant))
        others = [p for k, p in swarm.peers.items() if k != key and p.addr[1] != 0]
        if req.left == 0:
            others = [p for p in others if not p.seed]  # seeds need leechers only
        chosen = self._rng.sample(others, min(numwant, len(others)))
        entry = self._entry(swarm)
        if not swarm.peers:
            del self._swarms[req.info_hash]
        return AnnounceResponse(
            interval=cfg.interval,
            min_interval=cfg.min_interval,
            peers=tuple(p.addr for p in chosen),
            complete=entry.complete,
            incomplete=entry.incomplete,
        )

    @staticmethod
    def _entry(swarm: _Swarm) -> ScrapeEntry:
        seeds = sum(1 for p in swarm.peers.values() if p.seed)
        return ScrapeEntry(seeds, swarm.downloaded, len(swarm.peers) - seeds)

    def scrape(self, info_hash: bytes) -> ScrapeEntry:
        swarm = self._swarms.get(info_hash)
        return self._entry(swarm) if swarm else ScrapeEntry()

    def next_timer(self) -> float | None:
        """When the oldest peer would expire (None when empty)."""
        oldest = min(
            (p.last_seen for s in self._swarms.values() for p in s.peers.values()), default=None
        )
        return None if oldest is None else oldest + self._ttl()

    def _ttl(self) -> float:
        return self.config.interval * self.config.expiry_factor

    def expire(self, now: float) -> None:
        deadline = now - self._ttl()
        for info_hash in list(self._swarms):
            swarm = self._swarms[info_hash]
            for key in [k for k, p in swarm.peers.items() if p.last_seen <= deadline]:
                del swarm.peers[key]
            if not swarm.peers:
                del self._swarms[info_hash]

    handle_timer = expire
