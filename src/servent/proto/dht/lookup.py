"""An iterative lookup as a state machine (BEP 5 / Kademlia).

Candidates are kept sorted by XOR distance to the target. Whenever an answer
or a timeout arrives, the lookup tops up to ``alpha`` requests in flight with
the closest candidates not yet asked, so a slow node never stalls a round
(there are no rounds). The node times each query from measured round trips:
past the *late* mark a query stops counting against ``alpha`` (the next
candidate is asked) but may still answer; past the *soft* timeout it is
*slow*. A candidate the result needs (fewer than ``wait_rank`` answered
candidates closer) is asked again, up to ``max_attempts`` times, and waited
for until its last query is slow too (one lost datagram must not cost the
lookup its best node); any other slow candidate is given up, and a late one
no longer holds the end. A given-up candidate that answers while the lookup
runs is taken back. The lookup ends when the ``k`` closest candidates that
have not failed have all answered, late ones it does not need aside. Nodes
named by liars simply time out and drop out of the closest set; the
candidate list is bounded and holds each node ID and each address once.
"""

from __future__ import annotations

from bisect import insort
from collections.abc import Iterable

from servent.codec.compact import Address

FRESH = 0
IN_FLIGHT = 1
RESPONDED = 2
FAILED = 3

#: Queries sent to one candidate at most by default (the first and two retries).
MAX_ATTEMPTS = 3

# What the lookup is for; the node picks the query and the final step from it.
FIND_NODE = 0
GET_PEERS = 1
ANNOUNCE = 2
GET_ITEM = 3
PUT_IMMUTABLE = 4
PUT_MUTABLE = 5
SAMPLE = 6
REFRESH = 7  # internal find_node, no event


class Candidate:
    __slots__ = (
        "addr", "attempts", "give_up_at", "key", "node_id", "outstanding", "released", "slow",
        "state", "token", "waiting",
    )  # fmt: skip

    def __init__(self, node_id: bytes, addr: Address, key: int) -> None:
        self.node_id = node_id
        self.addr = addr
        self.key = key
        self.state = FRESH
        self.slow = False  # a query to it passed its soft timeout
        self.released = False  # it no longer counts against alpha
        self.attempts = 0  # queries sent to this node
        self.outstanding = 0  # of which still open
        self.waiting = 0  # of which not yet slow
        self.give_up_at = 0.0  # no retry after this (the first query's hard timeout)
        self.token: bytes | None = None

    def __lt__(self, other: Candidate) -> bool:
        return self.key < other.key


class Lookup:
    """State of one iterative search; the node owns the transactions."""

    __slots__ = (
        "alpha",
        "candidates",
        "done",
        "extra",
        "final_alpha",
        "in_flight",
        "k",
        "kind",
        "lookup_id",
        "max_attempts",
        "max_candidates",
        "one_per_ip",
        "own_id",
        "pending_stores",
        "queried",
        "seeds_pending",
        "seen_addrs",
        "seen_ids",
        "stored",
        "target",
        "target_key",
        "wait_rank",
    )

    def __init__(
        self,
        lookup_id: int,
        kind: int,
        target: bytes,
        own_id: bytes,
        *,
        alpha: int,
        k: int,
        max_candidates: int,
        one_per_ip: bool = False,
        max_attempts: int = MAX_ATTEMPTS,
        wait_rank: int | None = None,
        final_alpha: int | None = None,
    ) -> None:
        self.lookup_id = lookup_id
        self.kind = kind
        self.target = target
        self.target_key = int.from_bytes(target, "big")
        self.own_id = own_id
        self.alpha = alpha
        self.k = k
        self.max_candidates = max_candidates
        self.max_attempts = max(max_attempts, 1)
        self.wait_rank = k if wait_rank is None else max(wait_rank, 1)
        self.final_alpha = alpha if final_alpha is None else max(final_alpha, alpha)
        self.candidates: list[Candidate] = []
        self.seen_ids: set[bytes] = {own_id}
        #: Addresses already offered; only the IP when ``one_per_ip`` (so one host
        #: cannot fill the candidate list with Sybils on many ports).
        self.seen_addrs: set[Address | str] = set()
        self.one_per_ip = one_per_ip
        self.in_flight = 0
        self.queried = 0
        self.done = False
        self.pending_stores = 0
        self.stored = 0
        self.seeds_pending = 0
        #: Kind-specific results (peers, item, samples ...), filled in by the node.
        self.extra: dict[str, object] = {}

    def add(self, nodes: Iterable[tuple[bytes, Address]]) -> None:
        """Offer nodes learnt from the routing table or from an answer."""
        candidates = self.candidates
        cap = self.max_candidates
        target_key = self.target_key
        for node_id, addr in nodes:
            where: Address | str = addr[0] if self.one_per_ip else addr
            if node_id in self.seen_ids or where in self.seen_addrs or addr[1] == 0:
                continue
            key = int.from_bytes(node_id, "big") ^ target_key
            if len(candidates) >= cap and key >= candidates[-1].key:
                continue
            self.seen_ids.add(node_id)
            self.seen_addrs.add(where)
            insort(candidates, Candidate(node_id, addr, key))
            if len(candidates) > cap:
                self._drop_farthest()

    def _drop_farthest(self) -> None:
        candidates = self.candidates
        for index in range(len(candidates) - 1, -1, -1):
            if candidates[index].state != IN_FLIGHT:
                del candidates[index]
                return

    def add_responder(self, node_id: bytes, addr: Address) -> Candidate | None:
        """A node we asked without knowing its ID (a bootstrap address) answered."""
        if node_id in self.seen_ids:
            return None
        self.seen_ids.add(node_id)
        self.seen_addrs.add(addr[0] if self.one_per_ip else addr)
        candidate = Candidate(node_id, addr, int.from_bytes(node_id, "big") ^ self.target_key)
        candidate.state = RESPONDED
        insort(self.candidates, candidate)
        return candidate

    def next_to_query(self) -> list[Candidate]:
        """Closest fresh candidates to ask now, marked in flight, up to ``alpha`` in flight."""
        if self.done:
            return []
        chosen: list[Candidate] = []
        room = self._width() - self.in_flight
        if room <= 0:
            return chosen
        responded = 0
        for candidate in self.candidates:
            state = candidate.state
            if state == FRESH:
                candidate.state = IN_FLIGHT
                candidate.outstanding = 1
                candidate.waiting = 1
                candidate.attempts = 1
                chosen.append(candidate)
                room -= 1
                if room == 0:
                    break
            elif state == RESPONDED or (state == IN_FLIGHT and not candidate.released):
                responded += 1  # answered, or likely to answer soon
                if responded >= self.k:
                    break  # nothing closer than our k best is left to ask
        self.in_flight += len(chosen)
        self.queried += len(chosen)
        return chosen

    def _width(self) -> int:
        """Requests allowed in flight: ``alpha``, or ``final_alpha`` once the closest
        candidate still standing has answered (the end is near: ask the rest together)."""
        for candidate in self.candidates:
            state = candidate.state
            if state != FAILED:
                return self.final_alpha if state == RESPONDED else self.alpha
        return self.alpha

    def release(self, candidate: Candidate) -> None:
        """Stop counting ``candidate`` against ``alpha`` (its answer is late already)."""
        if candidate.state == IN_FLIGHT and not candidate.released:
            candidate.released = True
            self.in_flight -= 1

    def mark_slow(self, candidate: Candidate) -> None:
        """One query to ``candidate`` passed its soft timeout (it may still answer)."""
        candidate.waiting = max(candidate.waiting - 1, 0)
        if candidate.state == IN_FLIGHT:
            candidate.slow = True
            self.release(candidate)

    def is_needed(self, candidate: Candidate) -> bool:
        """Whether the result still depends on ``candidate``: fewer than ``wait_rank``
        answered and fewer than ``k`` live-looking candidates are closer."""
        answered = ahead = 0
        for other in self.candidates:
            if other is candidate:
                return True
            state = other.state
            if state != FAILED:
                ahead += 1
                if state == RESPONDED:
                    answered += 1
                if answered >= self.wait_rank or ahead >= self.k:
                    return False
        return False

    def closer_to_ask(self, candidate: Candidate) -> bool:
        """Whether a candidate closer than ``candidate`` has not been asked yet (the
        lookup is not near its end: ``candidate`` may well stop mattering)."""
        for other in self.candidates:
            if other is candidate:
                return False
            if other.state == FRESH:
                return True
        return False

    def wants_retry(self, candidate: Candidate) -> bool:
        """True for a late query to a candidate the result needs, with attempts left."""
        return (
            candidate.state == IN_FLIGHT
            and candidate.attempts < self.max_attempts
            and self.is_needed(candidate)
        )

    def retrying(self, candidate: Candidate) -> None:
        """Another query to ``candidate`` is about to go out."""
        candidate.attempts += 1
        candidate.outstanding += 1
        candidate.waiting += 1

    def give_up(self, candidate: Candidate) -> None:
        """Stop waiting for a slow candidate; its queries stay open for a late answer."""
        if candidate.state == IN_FLIGHT:
            self.release(candidate)
            candidate.state = FAILED

    def answered(self, candidate: Candidate) -> bool:
        """Record an answer; True when it is news (not a twin of an earlier answer)."""
        candidate.outstanding = max(candidate.outstanding - 1, 0)
        state = candidate.state
        if state == RESPONDED:
            return False
        if state == IN_FLIGHT and not candidate.released:
            self.in_flight -= 1
        candidate.state = RESPONDED
        return True

    def failed(self, candidate: Candidate) -> None:
        """One query to ``candidate`` timed out; it fails when none is left open."""
        candidate.outstanding = max(candidate.outstanding - 1, 0)
        if candidate.state == IN_FLIGHT and candidate.outstanding == 0:
            self.release(candidate)
            candidate.state = FAILED

    def is_finished(self) -> bool:
        """True once the k closest non-failed candidates have all answered.

        A late candidate with ``wait_rank`` answered candidates closer does not hold
        the lookup back.
        """
        if self.seeds_pending:
            return False
        responded = 0
        for candidate in self.candidates:
            state = candidate.state
            if state == RESPONDED:
                responded += 1
                if responded >= self.k:
                    return True
            elif state == FAILED or (candidate.released and responded >= self.wait_rank):
                continue
            else:
                return False
        return True

    def closest_responded(self, count: int) -> list[Candidate]:
        out = [c for c in self.candidates if c.state == RESPONDED]
        return out[:count]
