"""The KRPC transaction table: pending queries by transaction ID, with timeouts.

A reply is accepted only if its transaction ID is pending *and* it comes from
the address the query went to; everything else is unsolicited (spoofed,
late or reflected) and dropped by the node. Deadlines sit in one heap per
node; entries of answered transactions are skipped lazily, so answering is
O(1) and the table never scans.
"""

from __future__ import annotations

import heapq

from servent.codec.compact import Address
from servent.proto.dht import lookup as lk

#: What a transaction is for (``Transaction.purpose``).
PURPOSE_PING = 0  # a ping the application asked for
PURPOSE_TABLE = 1  # a ping to keep the routing table fresh
PURPOSE_LOOKUP = 2  # a query of an iterative lookup
PURPOSE_STORE = 3  # announce_peer / put at the end of a lookup


#: What a due timer of a transaction means (``TransactionTable.pop_due``).
TIMED_OUT = 0  # the hard timeout: the transaction is closed
SLOW = 1  # the soft timeout of a lookup query: retry or give up, the query stays open
LATE = 2  # a lookup query is late enough to free its slot, the query stays open


class Transaction:
    """One query awaiting its reply; ``tag`` is the id reported to the application."""

    __slots__ = ("addr", "candidate", "lookup", "node_id", "purpose", "sent_at", "tag", "tid")

    def __init__(  # noqa: PLR0917
        self,
        tid: bytes,
        addr: Address,
        purpose: int,
        node_id: bytes | None,
        lookup: lk.Lookup | None,
        candidate: lk.Candidate | None,
        tag: int,
        sent_at: float = 0.0,
    ) -> None:
        self.tid = tid
        self.addr = addr
        self.purpose = purpose
        self.node_id = node_id
        self.lookup = lookup
        self.candidate = candidate
        self.tag = tag
        self.sent_at = sent_at  # for the round-trip time of its answer


class TransactionTable:
    __slots__ = ("_by_tid", "_counter", "_seq", "_timers", "max_pending")

    def __init__(self, first_tid: int, max_pending: int) -> None:
        self._by_tid: dict[bytes, Transaction] = {}
        self._timers: list[tuple[float, int, Transaction, int]] = []
        self._seq = 0
        self._counter = first_tid & 0xFFFF
        self.max_pending = max_pending

    def __len__(self) -> int:
        return len(self._by_tid)

    def is_full(self) -> bool:
        return len(self._by_tid) >= self.max_pending

    def new_tid(self) -> bytes:
        """A 2-byte ID not in use (the table never holds 65,536 transactions)."""
        by_tid = self._by_tid
        counter = self._counter
        while True:
            counter = (counter + 1) & 0xFFFF
            tid = counter.to_bytes(2, "big")
            if tid not in by_tid:
                self._counter = counter
                return tid

    def open(
        self,
        tx: Transaction,
        deadline: float,
        slow_at: float | None = None,
        late_at: float | None = None,
    ) -> None:
        """Track ``tx`` until ``deadline``; lookups also hear ``slow_at`` and ``late_at``."""
        self._by_tid[tx.tid] = tx
        for when, kind in ((deadline, TIMED_OUT), (slow_at, SLOW), (late_at, LATE)):
            if when is not None and (kind == TIMED_OUT or when < deadline):
                self._seq += 1
                heapq.heappush(self._timers, (when, self._seq, tx, kind))

    def match(self, tid: bytes, addr: Address) -> Transaction | None:
        """Close and return the transaction a reply answers, if it really does."""
        tx = self._by_tid.get(tid)
        if tx is None or tx.addr != addr:
            return None
        del self._by_tid[tid]
        return tx

    def next_deadline(self) -> float | None:
        timers = self._timers
        by_tid = self._by_tid
        while timers and by_tid.get(timers[0][2].tid) is not timers[0][2]:
            heapq.heappop(timers)  # answered already: nothing to wake up for
        return timers[0][0] if timers else None

    def pop_due(self, now: float) -> tuple[Transaction, int] | None:
        """The next transaction due by ``now`` and what is due: ``TIMED_OUT`` (the
        transaction is closed before it is returned), ``SLOW`` or ``LATE`` (still open)."""
        timers = self._timers
        by_tid = self._by_tid
        while timers and timers[0][0] <= now:
            _, _, tx, kind = heapq.heappop(timers)
            if by_tid.get(tx.tid) is not tx:
                continue
            if kind == TIMED_OUT:
                del by_tid[tx.tid]
            return tx, kind
        return None
