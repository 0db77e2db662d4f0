"""How simulated nodes find their gossip neighbours: the production :class:`NeighbourBook`
fed by a modelled DHT rendezvous and by peer exchange along the modelled channels.

A mixin of :class:`~servent.testing.overlay_network.OverlaySimulation`. A node's
address is ``(index, incarnation)``: a node that comes back is at a new one. The
rendezvous is modelled as the DHT's peer store holds it: the last 200 nodes that
announced (``max_peers_per_infohash``), a lookup answering the newest 100 after a
lookup delay. Nothing else tells a node about others (no global view).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from servent.proto.gossip.neighbours import Dial, Drop, NeighbourBook, NeighbourConfig

if TYPE_CHECKING:
    from servent.testing.overlay_model import OverlayConfig, OverlayReport, SimNode

SimAddress = tuple[int, int]
RENDEZVOUS_STORED = 200
RENDEZVOUS_ANSWERED = 100
#: The driver's tick (``servent.node.gossip_peers`` ticks as often).
TICK = 2.0


class MeshMaintenance:
    """Dials, drops, rendezvous lookups and peer exchange of every simulated node."""

    nodes: list[SimNode]
    now: float
    rng: random.Random
    config: OverlayConfig
    report: OverlayReport
    _rendezvous: dict[SimAddress, float]

    if TYPE_CHECKING:

        def schedule(self, when: float, action: Callable[..., None], *args: Any) -> None: ...

        def delay(self, a: SimNode, b: SimNode) -> float: ...

        def _flush(self, node: SimNode) -> None: ...

    def _new_book(self, index: int, incarnation: int, rng: random.Random) -> NeighbourBook:
        config = NeighbourConfig(max_known=self.config.known_addresses)
        return NeighbourBook(
            own_key=index, rng=rng, config=config, own_addresses={(index, incarnation)}
        )

    def _alive(self, index: int, incarnation: int) -> SimNode | None:
        node = self.nodes[index]
        return node if node.online and node.incarnation == incarnation else None

    def _start_mesh(self, node: SimNode) -> None:
        """A node (re)joins: it looks in the rendezvous at once and ticks from then on."""
        self._tick(node.index, node.incarnation)

    def _tick(self, index: int, incarnation: int) -> None:
        node = self._alive(index, incarnation)
        if node is None:
            return
        self._maintain_now(node)
        self.schedule(self.now + TICK, self._tick, index, incarnation)

    def _maintain_now(self, node: SimNode) -> None:
        book = node.book
        if book.wants_rendezvous(self.now):
            book.rendezvous_done(self.now)
            self._lookup_rendezvous(node)
        for decision in book.tick(self.now):
            if isinstance(decision, Dial):
                self._dial_neighbour(node, decision.address)  # type: ignore[arg-type]
            elif isinstance(decision, Drop):
                self._drop_neighbour(node, decision.key)  # type: ignore[arg-type]

    # -- the DHT rendezvous ------------------------------------------------------------

    def _lookup_rendezvous(self, node: SimNode) -> None:
        """``announce`` under the channel's info-hash: a lookup, then our address stored."""
        config = self.config
        took = self.rng.lognormvariate(math.log(config.lookup_median), config.lookup_sigma)
        self.report.rendezvous_lookups += 1
        self.schedule(self.now + took, self._rendezvous_answer, node.index, node.incarnation)

    def _rendezvous_answer(self, index: int, incarnation: int) -> None:
        node = self._alive(index, incarnation)
        if node is None:
            return
        stored = self._rendezvous
        newest = list(stored)[-RENDEZVOUS_ANSWERED:]
        node.book.learn_many(((address, None) for address in newest), self.now)
        stored.pop((index, incarnation), None)
        stored[(index, incarnation)] = self.now
        while len(stored) > RENDEZVOUS_STORED:
            del stored[next(iter(stored))]
        self._maintain_now(node)

    # -- channels ------------------------------------------------------------------

    def _dial_neighbour(self, node: SimNode, address: SimAddress) -> None:
        target_index, target_inc = address
        target = self._alive(target_index, target_inc)
        self.report.mesh_dials += 1
        if target is None or len(target.links) >= self.config.max_links:
            when = self.now + self.config.connect_timeout
            self.schedule(when, self._dial_failed, node.index, node.incarnation, address)
            return
        handshake = 3 * self.delay(node, target)  # TCP, then Noise XX's 1.5 round trips
        self.report.mesh_frames += 3
        self.schedule(self.now + handshake, self._dial_done, node.index, node.incarnation, address)

    def _dial_failed(self, index: int, incarnation: int, address: SimAddress) -> None:
        node = self._alive(index, incarnation)
        if node is not None:
            node.book.dial_finished(address, self.now, key=None)
            self._maintain_now(node)

    def _dial_done(self, index: int, incarnation: int, address: SimAddress) -> None:
        node = self._alive(index, incarnation)
        if node is None:
            return
        target = self._alive(*address)
        if target is None:
            node.book.dial_finished(address, self.now, key=None)
            return
        node.book.dial_finished(address, self.now, key=target.index)
        if target.index in node.links:
            return
        node.book.opened(target.index, self.now, outbound=True, address=address)
        target.book.opened(node.index, self.now, outbound=False)
        self._link(node, target)
        self._send_exchange(node, target)
        self._send_exchange(target, node)

    def _drop_neighbour(self, node: SimNode, other_index: int) -> None:
        """Over ``degree_high``: tell it other nodes, then close (it hears the GOODBYE)."""
        other = self.nodes[other_index]
        self._send_exchange(node, other)
        arrive = self.now + self.delay(node, other)
        self.schedule(arrive, self._closed_by, other_index, other.incarnation, node.index)
        self._close_link(node, other_index)

    def _closed_by(self, index: int, incarnation: int, closer: int) -> None:
        node = self._alive(index, incarnation)
        if node is not None:
            self._close_link(node, closer)
            self._maintain_now(node)

    def _close_link(self, node: SimNode, other_index: int) -> None:
        node.book.closed(other_index, self.now)
        self._unlink(node, other_index)
        self._flush(node)

    # -- peer exchange -----------------------------------------------------------------

    def _send_exchange(self, node: SimNode, to: SimNode) -> None:
        offered = node.book.exchange(to.index)
        node.frames_sent += 1
        self.report.mesh_frames += 1
        arrive = self.now + self.delay(node, to)
        sender = (node.index, node.incarnation)
        self.schedule(arrive, self._exchange_arrives, to.index, to.incarnation, sender, offered)

    def _exchange_arrives(
        self,
        index: int,
        incarnation: int,
        sender: SimAddress,
        offered: list[tuple[int, SimAddress]],
    ) -> None:
        node = self._alive(index, incarnation)
        if node is None or sender[0] not in node.links:
            return
        node.book.listening(sender[0], sender, self.now)
        node.book.learn_many(((address, key) for key, address in offered), self.now)

    if TYPE_CHECKING:

        def _link(self, a: SimNode, b: SimNode) -> None: ...

        def _unlink(self, node: SimNode, other_index: int) -> None: ...
