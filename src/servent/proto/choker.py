"""Who may download from us: the choking algorithm, pure and seeded.

While downloading (BEP 3 tit-for-tat): every ``interval`` seconds the
``upload_slots - optimistic_slots`` interested peers that give us the best
download rates are unchoked (snubbed peers, which stopped sending, lose their
place), plus optimistic slots that rotate every ``optimistic_interval``
seconds among the other interested peers, new connections three times as
likely to be drawn, so a newcomer with nothing to trade can prove itself.

While seeding there is no download rate to reciprocate, so slots go round
robin: an unchoked peer keeps its slot until it has been sent
``seed_quota_bytes`` or held it ``seed_slot_time`` seconds while others wait;
free slots go to the interested peers that waited longest.  Everyone gets a
turn and each turn is long enough to finish pieces.

The session calls :meth:`Choker.run` when :meth:`Choker.next_timer` is due
(and may call it early when a peer becomes interested) and sends choke or
unchoke to the peers whose state differs from :attr:`ChokeDecision.unchoke`.
"""

from __future__ import annotations

import random
from collections.abc import Hashable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PeerStats:
    """What the choker needs to know about one connected peer."""

    peer: Hashable
    #: The peer is interested in our pieces.
    interested: bool
    #: Bytes/s we receive from the peer.
    download_rate: float = 0.0
    #: Bytes/s we send to the peer.
    upload_rate: float = 0.0
    #: Total payload bytes we have sent to the peer (round robin quota).
    uploaded: int = 0
    connected_at: float = 0.0
    #: The peer has stopped sending us blocks we asked for.
    snubbed: bool = False


@dataclass(frozen=True, slots=True)
class ChokeDecision:
    """The peers to keep unchoked (every other peer is choked)."""

    unchoke: frozenset[Hashable]
    optimistic: frozenset[Hashable]


@dataclass(frozen=True, slots=True)
class ChokerConfig:
    #: Peers served at once; ``None`` = unlimited (every interested peer is unchoked).
    upload_slots: int | None = 4
    optimistic_slots: int = 1
    interval: float = 10.0
    optimistic_interval: float = 30.0
    #: Peers connected for less than this count as new (3x optimistic weight).
    new_peer_age: float = 60.0
    seed_quota_bytes: int = 4 * 1024 * 1024
    seed_slot_time: float = 30.0


class Choker:
    """Decides the unchoked set for one torrent (or one node, if slots are global)."""

    def __init__(self, *, rng: random.Random, config: ChokerConfig | None = None) -> None:
        self.config = config or ChokerConfig()
        slots = self.config.upload_slots
        if (slots is not None and slots < 0) or self.config.optimistic_slots < 0:
            raise ValueError("slot counts must be >= 0")
        self._rng = rng
        self._last_run: float | None = None
        self._optimistic: dict[Hashable, float] = {}  # peer -> when it got the slot
        self._slot_start: dict[Hashable, tuple[float, int]] = {}  # seeding: (time, uploaded)
        self._last_unchoked: dict[Hashable, float] = {}
        self._unchoked: frozenset[Hashable] = frozenset()

    @property
    def unchoked(self) -> frozenset[Hashable]:
        """The result of the last run."""
        return self._unchoked

    def next_timer(self) -> float | None:
        """When the next regular run is due (``None`` before the first run: run now)."""
        return None if self._last_run is None else self._last_run + self.config.interval

    def run(self, peers: Sequence[PeerStats], now: float, *, seeding: bool) -> ChokeDecision:
        """Choose the peers to unchoke now."""
        self._last_run = now
        if self.config.upload_slots is None:
            everyone = frozenset(stats.peer for stats in peers if stats.interested)
            self._unchoked = everyone
            return ChokeDecision(everyone, frozenset())
        present = {stats.peer for stats in peers}
        for table in (self._optimistic, self._slot_start, self._last_unchoked):
            for gone in [peer for peer in table if peer not in present]:
                del table[gone]
        decision = self._run_seeding(peers, now) if seeding else self._run_leeching(peers, now)
        for peer in decision.unchoke:
            self._last_unchoked[peer] = now
        self._unchoked = decision.unchoke
        return decision

    # ------------------------------------------------------------- leeching

    def _run_leeching(self, peers: Sequence[PeerStats], now: float) -> ChokeDecision:
        config = self.config
        slots = config.upload_slots
        assert slots is not None
        self._slot_start.clear()
        interested = [stats for stats in peers if stats.interested]
        tiebreak = {stats.peer: self._rng.random() for stats in interested}
        optimistic_slots = min(config.optimistic_slots, slots)
        regular_slots = slots - optimistic_slots
        ranked = sorted(
            interested,
            key=lambda s: (s.snubbed, -s.download_rate, -s.upload_rate, tiebreak[s.peer]),
        )
        regular = {stats.peer for stats in ranked[:regular_slots]}
        # Keep optimistic peers until their turn is over.
        kept = {
            peer
            for peer, since in self._optimistic.items()
            if now - since < config.optimistic_interval
            and peer not in regular
            and any(s.peer == peer for s in interested)
        }
        self._optimistic = {peer: self._optimistic[peer] for peer in kept}
        candidates = [s for s in interested if s.peer not in regular and s.peer not in kept]
        while len(self._optimistic) < optimistic_slots and candidates:
            chosen = self._weighted_choice(candidates, now)
            candidates.remove(chosen)
            self._optimistic[chosen.peer] = now
        optimistic = frozenset(self._optimistic)
        return ChokeDecision(frozenset(regular) | optimistic, optimistic)

    def _weighted_choice(self, candidates: list[PeerStats], now: float) -> PeerStats:
        weights = [
            3.0 if now - stats.connected_at < self.config.new_peer_age else 1.0
            for stats in candidates
        ]
        return self._rng.choices(candidates, weights=weights)[0]

    # -------------------------------------------------------------- seeding

    def _run_seeding(self, peers: Sequence[PeerStats], now: float) -> ChokeDecision:
        config = self.config
        slots = config.upload_slots
        assert slots is not None
        self._optimistic.clear()
        interested = [stats for stats in peers if stats.interested]
        waiting = [s for s in interested if s.peer not in self._slot_start]
        holders = [s for s in interested if s.peer in self._slot_start]
        # Fastest holders first if the slot count shrank.
        holders.sort(key=lambda s: -s.upload_rate)
        holders = holders[:slots]

        def used_up(stats: PeerStats) -> bool:
            started_at, uploaded_then = self._slot_start[stats.peer]
            return (
                stats.uploaded - uploaded_then >= config.seed_quota_bytes
                or now - started_at >= config.seed_slot_time
            )

        # Rotate out only as many finished holders as waiting peers lack free slots.
        finished = sorted(
            (s for s in holders if used_up(s)), key=lambda s: self._slot_start[s.peer]
        )
        free = slots - len(holders)
        rotate = {s.peer for s in finished[: max(0, len(waiting) - free)]}
        keep = [s for s in holders if s.peer not in rotate]
        for peer in rotate:
            del self._slot_start[peer]
        tiebreak = {stats.peer: self._rng.random() for stats in waiting}
        waiting.sort(key=lambda s: (self._last_unchoked.get(s.peer, -1.0), tiebreak[s.peer]))
        chosen = keep + waiting[: max(0, slots - len(keep))]
        chosen_peers = {stats.peer for stats in chosen}
        for stats in chosen:
            self._slot_start.setdefault(stats.peer, (now, stats.uploaded))
        for peer in [peer for peer in self._slot_start if peer not in chosen_peers]:
            del self._slot_start[peer]
        return ChokeDecision(frozenset(chosen_peers), frozenset())
