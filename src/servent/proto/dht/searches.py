"""Iterative searches of a :class:`~servent.proto.dht.node.DhtNode`, and its queries.

The part of the node that sends queries (with their transactions and
timeouts) and runs lookups to the end: topping up to ``alpha`` in flight,
retrying slow close candidates, collecting what answers carry, and the
store step (``announce_peer`` / ``put``) after ``get_peers`` / ``get``. A
base class rather than a collaborator, so these hot paths cost no extra
indirection; ``DhtNode.__init__`` sets the state declared here.
"""

from __future__ import annotations

import random
from collections.abc import Iterable

from servent.codec.bencode import BValue
from servent.codec.compact import Address, decode_nodes
from servent.errors import CompactEncodingError
from servent.proto.dht import lookup as lk
from servent.proto.dht.config import DhtConfig
from servent.proto.dht.events import DhtEvent, PeersArrived
from servent.proto.dht.krpc import Message, encode_query
from servent.proto.dht.results import (
    as_int,
    collect_item,
    collect_peers,
    collect_samples,
    finished_event,
    own_item_answer,
    own_peers_answer,
    signed_fields,
)
from servent.proto.dht.routing_families import FamilyRoutingTables
from servent.proto.dht.rtt import RoundTripEstimator
from servent.proto.dht.storage import ItemStore, PeerStore
from servent.proto.dht.transactions import (
    PURPOSE_LOOKUP,
    PURPOSE_STORE,
    PURPOSE_TABLE,
    Transaction,
    TransactionTable,
)

_MAX_NODES_PER_REPLY = 16

#: The query a lookup of each kind sends, and the argument naming its target.
QUERY_OF = {
    lk.FIND_NODE: (b"find_node", b"target"),
    lk.REFRESH: (b"find_node", b"target"),
    lk.GET_PEERS: (b"get_peers", b"info_hash"),
    lk.ANNOUNCE: (b"get_peers", b"info_hash"),
    lk.GET_ITEM: (b"get", b"target"),
    lk.PUT_IMMUTABLE: (b"get", b"target"),
    lk.PUT_MUTABLE: (b"get", b"target"),
    lk.SAMPLE: (b"sample_infohashes", b"target"),
}


class SearchRunner:
    """Queries and lookups; the base of ``DhtNode``, which sets the attributes below."""

    __slots__ = (
        "_events", "_lookups", "_next_id", "_out", "_pinging", "_rtt", "_stats", "_table_pings",
        "_tx",
    )  # fmt: skip

    config: DhtConfig
    node_id: bytes
    peers: PeerStore
    items: ItemStore
    routing_table: FamilyRoutingTables
    _events: list[DhtEvent]
    _lookups: dict[int, lk.Lookup]
    _next_id: int
    _out: list[tuple[bytes, Address]]
    _rng: random.Random
    _rtt: RoundTripEstimator
    _stats: dict[str, int]
    _table_pings: int
    #: IDs of the contacts a table ping is on its way to (a list: at most a few).
    _pinging: list[bytes]
    _tx: TransactionTable
    dual_stack: bool

    def _count(self, name: str) -> None:
        self._stats[name] = self._stats.get(name, 0) + 1

    def _new_id(self) -> int:
        value = self._next_id
        self._next_id += 1
        return value

    def _query(  # noqa: PLR0917
        self,
        addr: Address,
        method: bytes,
        args: dict[bytes, BValue],
        now: float,
        purpose: int,
        node_id: bytes | None,
        lookup: lk.Lookup | None = None,
        candidate: lk.Candidate | None = None,
        tag: int = 0,
    ) -> bool:
        """Queue a query and its timeouts; False when too many are pending.

        Every query stays open ``query_timeout`` (a late answer still counts); a
        lookup's query also reports itself slow after the soft timeout measured
        from round trips (:meth:`soft_timeout`).
        """
        transactions = self._tx
        if transactions.is_full():
            self._count("dropped_queries_pending_full")
            return False
        config = self.config
        tid = transactions.new_tid()
        args[b"id"] = self.node_id
        data = encode_query(
            tid, method, args, read_only=config.read_only, version=config.client_version
        )
        slow_at = late_at = None
        if purpose == PURPOSE_LOOKUP and candidate is not None:
            tag = candidate.attempts  # which attempt this is: only the newest one retries
            if tag <= 1:
                candidate.give_up_at = now + config.query_timeout
            soft, late = self._timeouts_for(candidate)
            slow_at = min(now + soft, candidate.give_up_at)
            late_at = now + late
        transactions.open(
            Transaction(tid, addr, purpose, node_id, lookup, candidate, tag, now),
            now + config.query_timeout,
            slow_at,
            late_at,
        )
        if purpose == PURPOSE_TABLE:
            self._table_pings += 1
            if node_id is not None:
                self._pinging.append(node_id)
        self._out.append((data, addr))
        return True

    def soft_timeout(self) -> float:
        """How long a lookup waits for an answer before it calls the query slow."""
        config = self.config
        return self._rtt.timeout(config.slow_after, config.min_slow_after, config.max_slow_after)

    def _timeouts_for(self, candidate: lk.Candidate) -> tuple[float, float]:
        """(soft timeout, late mark) of a query to ``candidate``: from the node's overall
        round trips, or from the contact's own (twice, and 1.25 times, its smoothed
        RTT) when the routing table has measured it: a contact known to sit on a slow
        link is not given up early, a fast one not waited for long."""
        config = self.config
        soft = self.soft_timeout()
        late = self._rtt.late_after(config.slow_after / 2, config.min_late_after)
        entry = self.routing_table.find(candidate.node_id, candidate.addr[0])
        if entry is not None and entry.rtt > 0.0 and entry.addr == candidate.addr:
            soft = min(max(2.0 * entry.rtt, config.min_slow_after), config.max_slow_after)
            late = min(max(1.25 * entry.rtt, config.min_late_after), soft)
        return soft, late

    def _on_late(self, tx: Transaction, now: float) -> None:
        """A lookup query is later than most answers: let the lookup ask another node
        meanwhile, and ask a candidate the result needs once more (a lost datagram
        then costs a fraction of a timeout)."""
        lookup, candidate = tx.lookup, tx.candidate
        if lookup is None or candidate is None or lookup.done:
            return
        lookup.release(candidate)
        if (
            tx.tag == candidate.attempts
            and not lookup.closer_to_ask(candidate)
            and self._wants_retry(lookup, candidate, now)
        ):
            self._retry(lookup, candidate, now)
        self._drive(lookup, now)

    def _on_slow(self, tx: Transaction, now: float) -> None:
        """A lookup query passed its soft timeout (the candidate is settled in ``_drive``)."""
        lookup, candidate = tx.lookup, tx.candidate
        if lookup is None or candidate is None or lookup.done:
            return
        lookup.mark_slow(candidate)
        self._drive(lookup, now)

    def _settle_slow(self, lookup: lk.Lookup, now: float) -> None:
        """Decide on candidates whose every query is past its soft timeout.

        One the result does not need is given up. One it needs is asked again,
        unless closer candidates are still to be asked: they may make it
        irrelevant, so it waits (still blocking the end) until they are settled.
        """
        for candidate in lookup.candidates:
            if candidate.state != lk.IN_FLIGHT or not candidate.slow or candidate.waiting:
                continue
            if now < candidate.give_up_at and lookup.is_needed(candidate):
                if lookup.closer_to_ask(candidate):
                    continue
                if lookup.wants_retry(candidate):
                    self._retry(lookup, candidate, now)
                    continue
            lookup.give_up(candidate)
            self._count("lookup_give_ups")

    @staticmethod
    def _wants_retry(lookup: lk.Lookup, candidate: lk.Candidate, now: float) -> bool:
        return now < candidate.give_up_at and lookup.wants_retry(candidate)

    def _retry(self, lookup: lk.Lookup, candidate: lk.Candidate, now: float) -> None:
        """Ask a slow candidate the lookup needs again (a new transaction)."""
        method, key = QUERY_OF[lookup.kind]
        lookup.retrying(candidate)
        self._count("lookup_retries")
        if not self._query(
            candidate.addr, method, self._lookup_args(key, lookup.target), now, PURPOSE_LOOKUP,
            candidate.node_id, lookup, candidate,
        ):  # fmt: skip
            lookup.failed(candidate)

    # -- lookups -----------------------------------------------------------

    def _start(
        self,
        kind: int,
        target: bytes,
        now: float,
        *,
        seeds: Iterable[Address] = (),
        extra: dict[str, object] | None = None,
    ) -> int:
        config = self.config
        lookup_id = self._new_id()
        lookup = lk.Lookup(
            lookup_id, kind, target, self.node_id,
            alpha=config.alpha, k=config.k, max_candidates=config.max_lookup_candidates,
            one_per_ip=config.restrict_ips, max_attempts=config.lookup_attempts,
            wait_rank=config.lookup_wait_rank, final_alpha=config.final_alpha,
        )  # fmt: skip
        if extra:
            lookup.extra.update(extra)
        self._lookups[lookup_id] = lookup
        lookup.add(
            (entry.node_id, entry.addr)
            for entry in self.routing_table.closest(target, 2 * config.k)
        )
        self._count_own_store(lookup)
        method, key = QUERY_OF[kind]
        for addr in seeds:
            args = self._lookup_args(key, target)
            if self._query(addr, method, args, now, PURPOSE_LOOKUP, None, lookup, None):
                lookup.seeds_pending += 1
        self._drive(lookup, now)
        return lookup_id

    def _count_own_store(self, lookup: lk.Lookup) -> None:
        """Start a peers or item lookup with what this node itself stores for the target
        (libtorrent does the same for its own node): no query goes to ourselves."""
        kind = lookup.kind
        if kind in (lk.GET_PEERS, lk.ANNOUNCE):
            fresh = collect_peers(lookup, own_peers_answer(lookup.target, self.peers, self._rng))
            if fresh:
                self._events.append(PeersArrived(lookup.lookup_id, lookup.target, fresh))
        elif kind in (lk.GET_ITEM, lk.PUT_MUTABLE):
            collect_item(lookup, own_item_answer(lookup.target, self.items))

    def _drive(self, lookup: lk.Lookup, now: float) -> None:
        """Top the lookup up to alpha requests in flight, or finish it."""
        if lookup.done or lookup.pending_stores:
            return
        self._settle_slow(lookup, now)
        method, key = QUERY_OF[lookup.kind]
        while True:
            if lookup.is_finished():
                self._search_finished(lookup, now)
                return
            chosen = lookup.next_to_query()
            if not chosen:
                return
            sent = False
            for candidate in chosen:
                args = self._lookup_args(key, lookup.target)
                if self._query(
                    candidate.addr, method, args, now, PURPOSE_LOOKUP, candidate.node_id,
                    lookup, candidate,
                ):  # fmt: skip
                    sent = True
                else:
                    lookup.failed(candidate)
            if sent:
                return

    def _lookup_args(self, key: bytes, target: bytes) -> dict[bytes, BValue]:
        """A lookup query's arguments; a dual-stack node asks for both families (BEP 32)."""
        if self.dual_stack:
            return {key: target, b"want": [b"n4", b"n6"]}
        return {key: target}

    def _add_nodes(self, lookup: lk.Lookup, nodes: object, ipv6: bool) -> None:
        """Offer the lookup the (bounded) compact node list of one family."""
        if type(nodes) is not bytes or not nodes:
            return
        step = 38 if ipv6 else 26
        nodes = nodes[: step * _MAX_NODES_PER_REPLY]
        nodes = nodes[: len(nodes) - len(nodes) % step]
        try:
            lookup.add(decode_nodes(nodes, ipv6=ipv6))
        except CompactEncodingError:
            self._count("bad_nodes_field")

    def _on_lookup_reply(
        self,
        lookup: lk.Lookup,
        candidate: lk.Candidate | None,
        msg: Message,
        addr: Address,
        now: float,
    ) -> None:
        if candidate is None:
            lookup.seeds_pending -= 1
            candidate = lookup.add_responder(msg.sender_id, addr)
        else:
            given_up = candidate.state == lk.FAILED
            if not lookup.answered(candidate) or lookup.done:
                return  # the other of two queries answered first, or too late
            if given_up:
                self._count("lookup_late_answers")
        if lookup.done:
            return
        args = msg.args
        token = args.get(b"token")
        if candidate is not None and type(token) is bytes and len(token) <= 64:
            candidate.token = token
        if self.dual_stack:
            self._add_nodes(lookup, args.get(b"nodes"), False)
            self._add_nodes(lookup, args.get(b"nodes6"), True)
        else:
            ipv6 = ":" in addr[0]
            self._add_nodes(lookup, args.get(b"nodes6" if ipv6 else b"nodes"), ipv6)
        kind = lookup.kind
        if kind in (lk.GET_PEERS, lk.ANNOUNCE):
            fresh = collect_peers(lookup, args)
            if fresh:  # an announce is a get_peers first: its peers are as early
                self._events.append(PeersArrived(lookup.lookup_id, lookup.target, fresh))
        elif kind in (lk.GET_ITEM, lk.PUT_IMMUTABLE, lk.PUT_MUTABLE):
            collect_item(lookup, args)
            if kind == lk.GET_ITEM and lookup.extra.get("immutable_found"):
                self._search_finished(lookup, now)
                return
        elif kind == lk.SAMPLE:
            collect_samples(lookup, args)
        self._drive(lookup, now)

    def _search_finished(self, lookup: lk.Lookup, now: float) -> None:
        kind = lookup.kind
        if kind in (lk.ANNOUNCE, lk.PUT_IMMUTABLE, lk.PUT_MUTABLE) and not lookup.extra.get(
            "storing"
        ):
            lookup.extra["storing"] = True
            self._store_phase(lookup, now)
            return
        lookup.done = True
        self._lookups.pop(lookup.lookup_id, None)
        event = finished_event(lookup, self.config.k)
        if event is not None:
            self._events.append(event)

    def _store_phase(self, lookup: lk.Lookup, now: float) -> None:
        extra = lookup.extra
        targets = [c for c in lookup.closest_responded(self.config.k) if c.token is not None]
        targets = targets[: self.config.announce_to]
        if lookup.kind == lk.ANNOUNCE:
            method = b"announce_peer"
            base: dict[bytes, BValue] = {
                b"info_hash": lookup.target,
                b"port": as_int(extra.get("port")),
            }
            if extra.get("implied"):
                base[b"implied_port"] = 1
        else:
            method = b"put"
            base = {b"v": extra["value"]}  # type: ignore[dict-item]
            if lookup.kind == lk.PUT_MUTABLE:
                base.update(signed_fields(lookup))
        for candidate in targets:
            args = dict(base)
            args[b"token"] = candidate.token  # type: ignore[assignment]
            node_id = candidate.node_id
            if self._query(candidate.addr, method, args, now, PURPOSE_STORE, node_id, lookup):
                lookup.pending_stores += 1
        if lookup.pending_stores == 0:
            self._search_finished(lookup, now)

    def _store_finished(self, lookup: lk.Lookup, ok: bool, now: float) -> None:
        lookup.pending_stores -= 1
        if ok:
            lookup.stored += 1
        if lookup.pending_stores <= 0 and not lookup.done:
            lookup.pending_stores = 0
            self._search_finished(lookup, now)
