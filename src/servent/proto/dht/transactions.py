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


class Transaction:
    """One query awaiting its reply; ``tag`` is the id reported to the application."""

    __slots__ = ("addr", "candidate", "lookup", "node_id", "purpose", "tag", "tid")

    def __init__(  # noqa: PLR0917
        self,
        tid: bytes,
        addr: Address,
        purpose: int,
        node_id: bytes | None,
        lookup: lk.Lookup | None,
        candidate: lk.Candidate | None,
        tag: int,
    ) -> None:
        self.tid = tid
        self.addr = addr
        self.purpose = purpose
        self.node_id = node_id
        self.lookup = lookup
        self.candidate = candidate
        self.tag = tag


class TransactionTable:
    __slots__ = ("_by_tid", "_counter", "_seq", "_timers", "max_pending")

    def __init__(self, first_tid: int, max_pending: int) -> None:
        self._by_tid: dict[bytes, Transaction] = {}
        self._timers: list[tuple[float, int, Transaction, bool]] = []
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

    def open(self, tx: Transaction, deadline: float, slow_at: float | None = None) -> None:
        """Track ``tx`` until ``deadline``; ``slow_at`` reports it slow earlier (lookups)."""
        self._by_tid[tx.tid] = tx
        self._seq += 1
        heapq.heappush(self._timers, (deadline, self._seq, tx, False))
        if slow_at is not None and slow_at < deadline:
            self._seq += 1
            heapq.heappush(self._timers, (slow_at, self._seq, tx, True))

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

    def pop_due(self, now: float) -> tuple[Transaction, bool] | None:
        """The next transaction due by ``now`` and whether it is only slow (still open).

        A transaction that timed out is closed before it is returned.
        """
        timers = self._timers
        by_tid = self._by_tid
        while timers and timers[0][0] <= now:
            _, _, tx, slow = heapq.heappop(timers)
            if by_tid.get(tx.tid) is not tx:
                continue
            if not slow:
                del by_tid[tx.tid]
            return tx, slow
        return None
