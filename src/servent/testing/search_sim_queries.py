"""The query side of the search simulator: who asks whom, and what counts as found.

A mixin of :class:`~servent.testing.search_network.SearchSimulation` (its state lives
there): a query goes to the querier's neighbours (their own shares) and through its
registrars (or, for a supernode, itself) to the supernodes closest to its rarest
keyword; recall and latency are counted when its time is up.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import TYPE_CHECKING

from servent.proto.search import (
    SUPERNODE,
    QueryResults,
    SearchEntry,
    keyword_key,
    matches,
    rarest_keyword,
)
from servent.proto.search.supernodes import QUERY_FANOUT
from servent.testing.name_catalogue import NameCatalogue
from servent.testing.search_sim_model import QueryRecord, SearchReport, SearchSimConfig, SimNode

__all__ = ["SimQueries"]


class SimQueries:
    """Queries in the simulated network."""

    config: SearchSimConfig
    rng: random.Random
    now: float
    nodes: list[SimNode]
    report: SearchReport
    catalogue: NameCatalogue
    holders: dict[bytes, set[int]]
    _queries: dict[int, QueryRecord]

    if TYPE_CHECKING:

        def schedule(self, when: float, action: Callable[..., None], *args: object) -> None: ...

        def _alive(self, index: int, incarnation: int) -> bool: ...

        def _entries(self, node: SimNode) -> list[SearchEntry]: ...

        def _send(
            self, node: SimNode, target: int, action: Callable[..., None], *args: object
        ) -> float: ...

    # ------------------------------------------------------------------ queries

    def _query(self, number: int) -> None:
        wanted, text = self._pick_query()
        querier = self._pick_querier(wanted)
        if querier is None:
            return
        node = self.nodes[querier]
        results = QueryResults(text, limit=50, verify=_accept)
        query = QueryRecord(querier, node.incarnation, text, wanted, self.now, results)
        self._queries[number] = query
        self.report.queries += 1
        for neighbour in node.neighbours:  # Tribler's way: ask the open channels too
            other = self.nodes[neighbour]
            if other.online:
                node.channels[neighbour] = self.now  # kept open: no handshake
                self._send(node, neighbour, self._neighbour_answer, neighbour,
                           other.incarnation, number, querier)  # fmt: skip
        if node.role == SUPERNODE:
            self._route(querier, node.incarnation, number, querier)
        else:
            for registrar in node.registrars:
                self._send(node, registrar, self._route, registrar,
                           self.nodes[registrar].incarnation, number, querier)  # fmt: skip
        self.schedule(self.now + self.config.timeout, self._finish, number)

    def _pick_query(self) -> tuple[bytes | None, str]:
        if self.rng.random() < self.config.absent_share:
            return None, " ".join(self.catalogue.absent_words())
        while True:
            holder = self.nodes[self.rng.randrange(len(self.nodes))]
            if holder.online and holder.shares:
                break
        item = self.rng.choice(holder.shares)
        chosen = self.rng.sample(item.words, min(2, len(item.words)))
        longest = max(chosen, key=len)
        if len(chosen) == 2 and self.rng.random() < 0.3:  # a prefix of the shorter word
            shorter = next(w for w in chosen if w is not longest)
            chosen[chosen.index(shorter)] = shorter[: max(3, len(shorter) - 2)]
        return item.info_hash, " ".join(chosen)

    def _pick_querier(self, wanted: bytes | None) -> int | None:
        holders = self.holders.get(wanted, set()) if wanted else set()
        for _ in range(100):
            index = self.rng.randrange(len(self.nodes))
            node = self.nodes[index]
            if node.online and index not in holders and self.now - node.online_since > 10:
                return index
        return None

    def _route(self, index: int, incarnation: int, number: int, querier: int) -> None:
        """At a registrar (or a querying supernode): answer, and ask the responsible."""
        node = self.nodes[index]
        query = self._queries[number]
        if not self._alive(index, incarnation) or node.store is None or node.view is None:
            return
        self._answer(node, number, querier)
        rarest = rarest_keyword(query.text)
        if rarest is None:
            return
        for target in node.view.responsible(keyword_key(rarest), QUERY_FANOUT):
            if target == index:
                continue
            target_node = self.nodes[target]
            arrive = self._send(node, target, self._index_lookup, target,
                                target_node.incarnation, number, index, querier)  # fmt: skip
            if not target_node.online:
                self.schedule(arrive + self.config.connect_timeout, self._failed, index,
                              incarnation, target)  # fmt: skip

    def _failed(self, index: int, incarnation: int, target: int) -> None:
        view = self.nodes[index].view
        if self._alive(index, incarnation) and view is not None and not self.nodes[target].online:
            view.failed(target)

    def _answer(self, node: SimNode, number: int, querier: int) -> None:
        """Answer from ``node``'s store; the batch goes straight back (or is the querier's)."""
        query = self._queries[number]
        assert node.store is not None
        node.handled += 1
        found = node.store.lookup(query.text, self.now, limit=50)
        if node.index == querier:
            self._receive(number, found)
        else:
            self._send(node, querier, self._receive, number, found)

    def _index_lookup(
        self, index: int, incarnation: int, number: int, relay: int, querier: int
    ) -> None:
        node = self.nodes[index]
        if not self._alive(index, incarnation) or node.store is None:
            return
        query = self._queries[number]
        node.handled += 1
        found = node.store.lookup(query.text, self.now, limit=50)
        if relay == querier:
            self._send(node, querier, self._receive, number, found)
        else:  # back to the registrar, which relays it to its leaf
            relay_node = self.nodes[relay]
            self._send(node, relay, self._relay, relay, relay_node.incarnation, number, found)

    def _relay(self, index: int, incarnation: int, number: int, found: list[SearchEntry]) -> None:
        if self._alive(index, incarnation):
            query = self._queries[number]
            self._send(self.nodes[index], query.querier, self._receive, number, found)

    def _neighbour_answer(self, index: int, incarnation: int, number: int, querier: int) -> None:
        """A neighbour answers from what it shares (scope LOCAL)."""
        node = self.nodes[index]
        if not self._alive(index, incarnation):
            return
        text = self._queries[number].text
        found = [e for e in self._entries(node) if matches(text, e.texts)]
        node.channels[querier] = self.now
        self._send(node, querier, self._receive, number, found)

    def _receive(self, number: int, found: list[SearchEntry]) -> None:
        query = self._queries[number]
        if not self._alive(query.querier, query.incarnation):
            return
        if self.now > query.started + self.config.timeout:
            return
        query.results.add(found, self.now)
        query.last_answer = self.now
        if query.found_at is None and query.wanted is not None and query.wanted in query.results:
            query.found_at = self.now

    def _finish(self, number: int) -> None:
        query = self._queries.pop(number)
        report = self.report
        if query.wanted is None:
            report.absent_queries += 1
            report.absent_false_hits += len(query.results)
            report.absent_completion.append(query.last_answer - query.started)
            return
        holders = self.holders.get(query.wanted, set())
        if not any(self.nodes[h].online and h != query.querier for h in holders):
            return  # nobody online holds it: not counted
        if not self._alive(query.querier, query.incarnation):
            return
        report.eligible += 1
        if query.found_at is not None:
            report.found += 1
            report.latencies.append(query.found_at - query.started)


def _accept(_: SearchEntry) -> bool:
    return True
