"""Search across a servent network in virtual time: supernodes, leaves, churn, queries.

Every node runs the production sans-IO search cores: the role rule
(:func:`decide_role`), a :class:`SupernodeView`, the :class:`KeywordIndexStore`
on supernodes, and :class:`QueryResults` at the querier. What is modelled is
the world around them (the pattern of :mod:`servent.testing.overlay_network`):
one-way delays per hop, node channels that cost a handshake when not open,
nodes that leave without notice and come back at a new address (empty, and
as leaves until their uptime qualifies again), and the supernode membership
(a joining supernode is known to the others after a short gossip delay, a
vanished one is dropped after its failure is noticed).

``bench/search_sim.py`` prints the figures; tests run it small.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Callable

from servent.proto.search import (
    FILE,
    SUPERNODE,
    KeywordIndexStore,
    SearchEntry,
    SupernodeView,
    decide_role,
    keyword_key,
    keywords,
    node_position,
)
from servent.proto.search.supernodes import RESPONSIBLE, UPTIME_THRESHOLD
from servent.testing.name_catalogue import NameCatalogue
from servent.testing.search_sim_model import (
    QueryRecord,
    SearchReport,
    SearchSimConfig,
    SimNode,
    percentile,
)
from servent.testing.search_sim_queries import SimQueries

__all__ = ["SearchReport", "SearchSimConfig", "SearchSimulation", "percentile"]

ENTRY_LIFE = 7200
REPUBLISH = 1800.0
FAKE_ADDRESS = bytes(6)


class SearchSimulation(SimQueries):
    """Builds the network, schedules churn and queries, and runs them to the end."""

    def __init__(self, config: SearchSimConfig) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self.now = 0.0
        self._queue: list[tuple[float, int, Callable[..., None], tuple[object, ...]]] = []
        self._counter = itertools.count()
        files = max(10, int(config.nodes * config.catalogue_factor))
        self.catalogue = NameCatalogue(random.Random(self.rng.getrandbits(64)), files)
        self.nodes = [self._make_node(i) for i in range(config.nodes)]
        self.holders: dict[bytes, set[int]] = {}
        for node in self.nodes:
            for item in node.shares:
                self.holders.setdefault(item.info_hash, set()).add(node.index)
        self.report = SearchReport(nodes=config.nodes)
        self._online_supernodes: dict[int, None] = {}
        self._leaves_of: dict[int, set[int]] = {}
        self._supernode_list: list[int] = []
        self._queries: dict[int, QueryRecord] = {}

    # ------------------------------------------------------------------ setup

    def _make_node(self, index: int) -> SimNode:
        config = self.config
        key = index.to_bytes(32, "big")
        count = min(200, int(self.rng.expovariate(1 / config.files_per_node)))
        shares = list({self.catalogue.popular_file().number: None for _ in range(count)})
        return SimNode(
            index, key, int.from_bytes(node_position(key), "big"),
            self.rng.random() < config.reachable,
            [self.catalogue.files[number] for number in shares],
        )  # fmt: skip

    def schedule(self, when: float, action: Callable[..., None], *args: object) -> None:
        heapq.heappush(self._queue, (when, next(self._counter), action, args))

    def hop(self) -> float:
        return self.rng.uniform(self.config.hop_min, self.config.hop_max)

    def _alive(self, index: int, incarnation: int) -> bool:
        node = self.nodes[index]
        return node.online and node.incarnation == incarnation

    def _supernodes(self) -> list[int]:
        return list(self._online_supernodes)

    def _start(self) -> None:
        for node in self.nodes:
            uptime = self.rng.expovariate(1 / self.config.uptime_mean)
            node.online_since = -uptime
            self._set_role(node)
        supernodes = self._supernodes()
        self.report.supernodes_start = len(supernodes)
        for index in supernodes:
            view = self.nodes[index].view
            assert view is not None
            for other in supernodes:
                view.add(other, self.nodes[other].position)
        for node in self.nodes:
            node.neighbours = self._pick_neighbours(node.index)
            self.schedule(self.rng.uniform(0.0, 5.0), self._join, node.index, 0)

    def _pick_neighbours(self, index: int) -> list[int]:
        count = min(self.config.neighbours, len(self.nodes) - 1)
        return [n for n in self.rng.sample(range(len(self.nodes)), count + 1) if n != index][:count]

    def _set_role(self, node: SimNode) -> None:
        uptime = self.now - node.online_since
        node.role = decide_role("auto", reachable=node.reachable, uptime=uptime)
        if node.role == SUPERNODE:
            node.view = SupernodeView()
            node.store = KeywordIndexStore()
            self._online_supernodes[node.index] = None
            self._supernode_list = []
        elif not node.reachable or uptime >= UPTIME_THRESHOLD:
            return
        else:  # it qualifies once up long enough
            when = node.online_since + UPTIME_THRESHOLD
            self.schedule(when, self._promote, node.index, node.incarnation)

    def _promote(self, index: int, incarnation: int) -> None:
        node = self.nodes[index]
        if not self._alive(index, incarnation) or node.role == SUPERNODE:
            return
        self._set_role(node)
        view = node.view
        assert view is not None
        for other in self._supernodes():
            view.add(other, self.nodes[other].position)
        self.schedule(self.now + self.rng.uniform(1.0, self.config.membership_delay),
                      self._announce, index, incarnation)  # fmt: skip
        self._publish(index, incarnation)

    def _announce(self, index: int, incarnation: int) -> None:
        if not self._alive(index, incarnation):
            return
        for other in self._supernodes():
            view = self.nodes[other].view
            if view is not None and other != index:
                view.add(index, self.nodes[index].position)
        newcomer = self.nodes[index]
        assert newcomer.view is not None
        for neighbour in newcomer.view.responsible(newcomer.position, 2 * RESPONSIBLE):
            if neighbour != index:
                self._hand_over(neighbour, index)

    def _hand_over(self, index: int, newcomer: int) -> None:
        """A supernode sends a new one the entries it is now responsible for (Kad's handoff)."""
        node = self.nodes[index]
        if node.store is None or node.view is None:
            return
        handed = [
            entry for entry in node.store.entries()
            if any(newcomer in node.view.responsible(keyword_key(w), RESPONSIBLE)
                   for w in keywords(entry.texts))
        ]  # fmt: skip
        if handed:
            self._send(node, newcomer, self._store_at, newcomer,
                       self.nodes[newcomer].incarnation, handed)  # fmt: skip

    # ------------------------------------------------------------------ joining, publishing

    def _join(self, index: int, incarnation: int) -> None:
        """Find registrars (a leaf) and publish what the node shares."""
        node = self.nodes[index]
        if not self._alive(index, incarnation):
            return
        if node.role != SUPERNODE:
            self._pick_registrars(node)
        self._publish(index, incarnation)
        when = self.now + REPUBLISH * self.rng.uniform(0.9, 1.1)
        self.schedule(when, self._republish, index, incarnation)

    def _republish(self, index: int, incarnation: int) -> None:
        if self._alive(index, incarnation):
            self._publish(index, incarnation)
            when = self.now + REPUBLISH * self.rng.uniform(0.9, 1.1)
            self.schedule(when, self._republish, index, incarnation)

    def _pick_registrars(self, node: SimNode) -> None:
        if not self._supernode_list:
            self._supernode_list = self._supernodes()
        supernodes = self._supernode_list
        node.registrars = [r for r in node.registrars if self.nodes[r].online]
        while len(node.registrars) < self.config.registrars and supernodes:
            choice = self.rng.choice(supernodes)
            if choice not in node.registrars:
                node.registrars.append(choice)
                self._leaves_of.setdefault(choice, set()).add(node.index)

    def _entries(self, node: SimNode) -> list[SearchEntry]:
        expires = int(self.now) + ENTRY_LIFE
        return [
            SearchEntry(FILE, item.name, node.key, FAKE_ADDRESS, expires,
                        info_hash=item.info_hash, size=item.size, files=1)
            for item in node.shares
        ]  # fmt: skip

    def _publish(self, index: int, incarnation: int) -> None:
        node = self.nodes[index]
        entries = self._entries(node)
        if not entries:
            return
        if node.role == SUPERNODE:
            self._registrar_store(index, incarnation, entries)
            return
        for registrar in node.registrars:
            self._send(node, registrar, self._registrar_store_at, registrar,
                       self.nodes[registrar].incarnation, entries)  # fmt: skip

    def _registrar_store_at(self, index: int, incarnation: int, entries: list[SearchEntry]) -> None:
        if self._alive(index, incarnation):
            self._registrar_store(index, incarnation, entries)

    def _registrar_store(self, index: int, incarnation: int, entries: list[SearchEntry]) -> None:
        """Keep a leaf's (or one's own) entries and forward them to the responsible."""
        node = self.nodes[index]
        assert node.store is not None and node.view is not None
        node.handled += 1
        node.store.store_many(entries, self.now)
        targets: dict[int, list[SearchEntry]] = {}
        for entry in entries:
            for word in keywords(entry.texts):
                for target in node.view.responsible(keyword_key(word), RESPONSIBLE):
                    if target != index:
                        targets.setdefault(target, []).append(entry)
        for target, batch in targets.items():
            arrive = self._send(node, target, self._store_at, target,
                                self.nodes[target].incarnation, batch)  # fmt: skip
            if not self.nodes[target].online:
                self.schedule(arrive + self.config.connect_timeout, self._store_failed,
                              index, incarnation, target, batch)  # fmt: skip

    def _store_failed(
        self, index: int, incarnation: int, failed: int, entries: list[SearchEntry]
    ) -> None:
        """No answer from a responsible supernode: the entries go to the next closest."""
        node = self.nodes[index]
        if not self._alive(index, incarnation) or node.view is None:
            return
        node.view.failed(failed)
        retry: dict[int, list[SearchEntry]] = {}
        for entry in entries:
            for word in keywords(entry.texts):
                closest = node.view.responsible(keyword_key(word), RESPONSIBLE + 1)
                chosen = [t for t in closest if t != failed][:RESPONSIBLE]
                if len(chosen) == RESPONSIBLE and chosen[-1] != index:
                    retry.setdefault(chosen[-1], []).append(entry)
        for target, batch in retry.items():
            self._send(node, target, self._store_at, target,
                       self.nodes[target].incarnation, batch)  # fmt: skip

    def _store_at(self, index: int, incarnation: int, entries: list[SearchEntry]) -> None:
        node = self.nodes[index]
        if self._alive(index, incarnation) and node.store is not None:
            node.handled += 1
            node.store.store_many(entries, self.now)

    def _send(
        self, node: SimNode, target: int, action: Callable[..., None], *args: object
    ) -> float:
        """One message over a node channel (dialled first when none is open); arrival time."""
        delay = self.hop()
        last = node.channels.get(target)
        if last is None or self.now - last > self.config.channel_idle:
            delay += 3 * self.hop()  # Noise XX: 1.5 round trips before the first message
            node.messages += 2
            self.report.messages += 3
        node.channels[target] = self.now
        if len(node.channels) > 256:
            oldest = min(node.channels, key=node.channels.__getitem__)
            del node.channels[oldest]
        node.messages += 1
        self.report.messages += 1
        arrive = self.now + delay
        self.schedule(arrive, action, *args)
        return arrive

    # ------------------------------------------------------------------ churn

    def _leave(self, index: int) -> None:
        node = self.nodes[index]
        if not node.online:
            return
        node.online = False
        self.report.churned += 1
        if node.role == SUPERNODE:
            self._online_supernodes.pop(index, None)
            self._supernode_list = []
            self._supernode_gone(index)
        away = min(3 * self.config.offline_mean, self.rng.expovariate(1 / self.config.offline_mean))
        self.schedule(self.now + away, self._return, index)

    def _supernode_gone(self, index: int) -> None:
        for leaf_index in self._leaves_of.pop(index, set()):
            leaf = self.nodes[leaf_index]
            if leaf.online and index in leaf.registrars:
                detect = self.now + self.rng.uniform(0.5, self.config.detect_max)
                self.schedule(detect, self._registrar_gone, leaf.index, leaf.incarnation, index)
        drop = self.now + self.rng.uniform(5.0, self.config.failure_delay)
        self.schedule(drop, self._drop_supernode, index, self.nodes[index].incarnation)

    def _drop_supernode(self, index: int, incarnation: int) -> None:
        if self._alive(index, incarnation):
            return
        for other in self._supernodes():
            view = self.nodes[other].view
            if view is not None:
                view.remove(index)

    def _registrar_gone(self, index: int, incarnation: int, gone: int) -> None:
        """A leaf noticed its registrar vanished: register with another."""
        node = self.nodes[index]
        if not self._alive(index, incarnation) or gone not in node.registrars:
            return
        node.registrars.remove(gone)
        before = set(node.registrars)
        self._pick_registrars(node)
        entries = self._entries(node)
        for registrar in set(node.registrars) - before:
            if entries:
                self._send(node, registrar, self._registrar_store_at, registrar,
                           self.nodes[registrar].incarnation, entries)  # fmt: skip

    def _return(self, index: int) -> None:
        """Back at a new address: empty store, a leaf until its uptime qualifies again."""
        old = self.nodes[index]
        old.incarnation += 1
        old.online = True
        old.online_since = self.now
        old.registrars = []
        old.channels = {}
        old.neighbours = self._pick_neighbours(index)
        old.view = None
        old.store = None
        self._set_role(old)
        self._join(index, old.incarnation)

    # ------------------------------------------------------------------ run

    def _mark_steady(self) -> None:
        self.report.steady_messages = self.report.messages

    def run(self) -> SearchReport:
        config = self.config
        self._start()
        leavers = self.rng.sample(range(config.nodes), int(config.churn * config.nodes))
        for index in leavers:
            self.schedule(self.rng.uniform(config.warmup, config.duration), self._leave, index)
        for number in range(config.queries):
            when = self.rng.uniform(config.warmup, config.duration)
            self.schedule(when, self._query, number)
        self.schedule(config.warmup, self._mark_steady)
        end = config.duration + config.timeout + 1.0
        events = 0
        while self._queue and self._queue[0][0] <= end:
            when, _, action, args = heapq.heappop(self._queue)
            self.now = when
            action(*args)
            events += 1
        report = self.report
        report.steady_messages = report.messages - report.steady_messages
        report.steady_seconds = config.duration - config.warmup
        report.events = events
        report.virtual_seconds = config.duration
        supernodes = self._supernodes()
        report.supernodes_end = len(supernodes)
        report.supernode_messages = [self.nodes[i].handled for i in supernodes]
        report.store_sizes = [len(self.nodes[i].store or ()) for i in supernodes]
        return report
