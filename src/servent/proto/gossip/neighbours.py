"""Which nodes to keep node channels to for gossip: discovery and mesh degree, sans-IO.

A node with no contacts still needs neighbours, or no broadcast reaches it.
:class:`NeighbourBook` keeps the addresses it has heard of (from the DHT
rendezvous, from supernodes, from neighbours' peer exchange) and decides, at
each :meth:`NeighbourBook.tick`, which to dial (while it has fewer than
``degree_low`` neighbours, up to ``degree``; and while a broadcast channel it
keeps has fewer than ``channel_low`` neighbours keeping it, a node found under
that channel's rendezvous) and which channels to drop (beyond ``degree_high``,
down to ``degree``). The driver dials, reports the
outcome, and says when channels open and close. Rules: ``docs/gossip.md``,
*Finding neighbours*. The simulator (``bench/overlay_sim.py``) runs this same
class for every node.
"""

from __future__ import annotations

import random
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field

Peer = Hashable
Address = Hashable


@dataclass(frozen=True, slots=True)
class NeighbourConfig:
    degree: int = 6
    degree_low: int = 4
    degree_high: int = 12
    #: Dials under way at once, at most.
    max_dialing: int = 4
    #: Addresses kept as candidates (the oldest heard of go first).
    max_known: int = 512
    #: A failed dial waits this long before the address is tried again, doubling;
    #: after ``max_failures`` failures in a row the address is forgotten.
    retry_after: float = 15.0
    max_failures: int = 3
    #: A node whose channel closed, or that we dropped, is not dialled for this long.
    rest_after_close: float = 30.0
    #: Entries in one peer exchange.
    exchange_size: int = 16
    #: Neighbours keeping a named channel this node keeps, at least (when known).
    channel_low: int = 2
    #: How often to look in the DHT rendezvous: often while short of neighbours.
    rendezvous_every: float = 900.0
    rendezvous_when_short: float = 30.0


@dataclass(frozen=True, slots=True)
class Dial:
    address: Address
    #: The node expected there, when known (the channel must prove it).
    key: Peer | None


@dataclass(frozen=True, slots=True)
class Drop:
    """Close the channel to this neighbour: the mesh has more than ``degree_high``."""

    key: Peer


@dataclass(slots=True)
class _Candidate:
    key: Peer | None
    not_before: float = 0.0
    failures: int = 0
    #: Named channels under whose rendezvous it was found.
    channels: set[Hashable] = field(default_factory=set)


@dataclass(slots=True)
class _Neighbour:
    address: Address | None
    since: float
    outbound: bool


@dataclass(slots=True)
class NeighbourBook:
    """One node's neighbours and the nodes it could dial next."""

    own_key: Peer
    rng: random.Random
    config: NeighbourConfig = field(default_factory=NeighbourConfig)
    own_addresses: set[Address] = field(default_factory=set)
    neighbours: dict[Peer, _Neighbour] = field(default_factory=dict)
    _known: dict[Address, _Candidate] = field(default_factory=dict)
    _dialing: set[Address] = field(default_factory=set)
    _resting: dict[Peer, float] = field(default_factory=dict)
    _next_rendezvous: float = 0.0

    # -- what the driver reports ----------------------------------------------------

    def learn(
        self, address: Address, now: float, key: Peer | None = None, channel: Hashable = None
    ) -> None:
        """Heard of a node at ``address`` (``key`` when the source named it; ``channel``
        when it was found under that named channel's rendezvous)."""
        if address in self.own_addresses or key == self.own_key:
            return
        known = self._known.pop(address, None)
        if known is None:
            known = _Candidate(key)
        elif key is not None:
            known.key = key
        if channel is not None:
            known.channels.add(channel)
        self._known[address] = known  # newest last
        while len(self._known) > self.config.max_known:
            del self._known[next(iter(self._known))]

    def learn_many(
        self, found: Iterable[tuple[Address, Peer | None]], now: float, channel: Hashable = None
    ) -> None:
        for address, key in found:
            self.learn(address, now, key, channel)

    def opened(
        self, key: Peer, now: float, *, outbound: bool, address: Address | None = None
    ) -> None:
        """A channel to ``key`` is up (``address``: where it accepts channels, if known)."""
        known = self.neighbours.get(key)
        if known is not None:
            known.address = known.address or address
            return
        self.neighbours[key] = _Neighbour(address, now, outbound)
        if address is not None:
            self.learn(address, now, key)

    def listening(self, key: Peer, address: Address, now: float) -> None:
        """A neighbour said where it accepts channels (its peer exchange)."""
        neighbour = self.neighbours.get(key)
        if neighbour is not None:
            neighbour.address = address
            self.learn(address, now, key)

    def closed(self, key: Peer, now: float) -> None:
        if self.neighbours.pop(key, None) is not None:
            self._resting[key] = now + self.config.rest_after_close

    def dial_finished(self, address: Address, now: float, *, key: Peer | None) -> None:
        """A dial ended: ``key`` is who answered, ``None`` when nobody did."""
        self._dialing.discard(address)
        known = self._known.get(address)
        if known is None:
            return
        if key is not None:
            known.key, known.failures = key, 0
            return
        known.failures += 1
        if known.failures >= self.config.max_failures:
            del self._known[address]
        else:
            known.not_before = now + self.config.retry_after * 2 ** (known.failures - 1)

    # -- decisions --------------------------------------------------------------------

    def tick(
        self,
        now: float,
        protected: frozenset[Peer] = frozenset(),
        lacking: Iterable[Hashable] = (),
    ) -> list[Dial | Drop]:
        """What to do now: dials while short of neighbours (or of neighbours keeping a
        channel in ``lacking``), drops while over full."""
        config = self.config
        self._resting = {k: t for k, t in self._resting.items() if t > now}
        count = len(self.neighbours)
        if count > config.degree_high:
            return self._drops(count - config.degree, protected)
        dials: list[Dial | Drop] = []
        if count < config.degree_low:
            dialing = len(self._dialing)
            wanted = min(config.degree - count - dialing, config.max_dialing - dialing)
            dials += self._dial(self._dialable(now)[: max(wanted, 0)])
        for channel in lacking:
            if count + len(self._dialing) < config.degree_high:
                dials += self._dial(self._dialable(now, channel)[:1])
        return dials

    def _dial(self, addresses: list[Address]) -> list[Dial | Drop]:
        self._dialing.update(addresses)
        return [Dial(address, self._known[address].key) for address in addresses]

    def _dialable(self, now: float, channel: Hashable = None) -> list[Address]:
        ready = [
            address
            for address, known in self._known.items()
            if address not in self._dialing
            and known.not_before <= now
            and known.key not in self.neighbours
            and known.key not in self._resting
            and (channel is None or channel in known.channels)
        ]
        self.rng.shuffle(ready)
        return ready

    def _drops(self, excess: int, protected: frozenset[Peer]) -> list[Dial | Drop]:
        """Random unprotected neighbours, those that dialled us first (a node keeps
        the links it chose, so an eclipse by many inbound dials is harder)."""
        inbound = [k for k, n in self.neighbours.items() if not n.outbound and k not in protected]
        outbound = [k for k, n in self.neighbours.items() if n.outbound and k not in protected]
        self.rng.shuffle(inbound)
        self.rng.shuffle(outbound)
        return [Drop(key) for key in (inbound + outbound)[:excess]]

    def wants_rendezvous(self, now: float) -> bool:
        """Whether to look in the DHT rendezvous now (the caller then calls
        :meth:`rendezvous_done`)."""
        return now >= self._next_rendezvous

    def rendezvous_soon(self) -> None:
        """Look at the next tick (the DHT became ready, a channel was followed)."""
        self._next_rendezvous = 0.0

    def rendezvous_done(self, now: float) -> None:
        short = len(self.neighbours) < self.config.degree_low
        config = self.config
        self._next_rendezvous = now + (
            config.rendezvous_when_short if short else config.rendezvous_every
        )

    def exchange(self, for_key: Peer) -> list[tuple[Peer, Address]]:
        """Up to ``exchange_size`` nodes to tell ``for_key`` about: neighbours first
        (known to be up), then candidates whose key is known."""
        up = [(k, n.address) for k, n in self.neighbours.items() if n.address and k != for_key]
        self.rng.shuffle(up)
        chosen: list[tuple[Peer, Address]] = [(k, a) for k, a in up if a is not None]
        size = self.config.exchange_size
        if len(chosen) < size:
            others = [
                (c.key, a)
                for a, c in self._known.items()
                if c.key is not None
                and c.key != for_key
                and c.key not in self.neighbours
                and c.failures == 0
            ]
            chosen += self.rng.sample(others, min(len(others), size - len(chosen)))
        return chosen[:size]

    def statistics(self) -> dict[str, int]:
        return {
            "neighbours": len(self.neighbours),
            "known": len(self._known),
            "dialing": len(self._dialing),
        }
