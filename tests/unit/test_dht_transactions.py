"""The KRPC transaction table: matching by ID and address, timeouts, slow marks."""

from __future__ import annotations

from servent.proto.dht.transactions import LATE, SLOW, TIMED_OUT, Transaction, TransactionTable

ADDR = ("10.0.0.1", 6881)


def _open(table: TransactionTable, deadline: float, slow_at: float | None = None) -> Transaction:
    tx = Transaction(table.new_tid(), ADDR, 0, None, None, None, 0)
    table.open(tx, deadline, slow_at)
    return tx


def test_reply_matches_only_from_the_queried_address() -> None:
    table = TransactionTable(0, 10)
    tx = _open(table, 2.0)
    assert table.match(tx.tid, ("10.0.0.2", 6881)) is None
    assert table.match(tx.tid, (ADDR[0], 6882)) is None
    assert table.match(b"zz", ADDR) is None
    assert table.match(tx.tid, ADDR) is tx
    assert table.match(tx.tid, ADDR) is None  # a duplicate reply finds nothing
    assert len(table) == 0


def test_timeouts_come_in_deadline_order_and_close_the_transaction() -> None:
    table = TransactionTable(0, 10)
    late = _open(table, 5.0)
    early = _open(table, 2.0, slow_at=1.0)
    assert table.next_deadline() == 1.0
    assert table.pop_due(0.5) is None
    assert table.pop_due(1.5) == (early, True)  # slow, still open
    assert len(table) == 2
    assert table.pop_due(3.0) == (early, False)
    assert table.pop_due(3.0) is None
    assert table.next_deadline() == 5.0
    assert table.match(late.tid, ADDR) is late
    assert table.next_deadline() is None  # answered entries are skipped
    assert table.pop_due(10.0) is None


def test_transaction_ids_are_unique_while_pending_and_the_table_is_bounded() -> None:
    table = TransactionTable(0xFFFE, 3)
    tids = {_open(table, 1.0).tid for _ in range(3)}
    assert len(tids) == 3 and table.is_full()
    assert table.new_tid() not in tids


def test_late_and_slow_marks_come_before_the_timeout_and_keep_it_open() -> None:
    table = TransactionTable(0, 10)
    tx = Transaction(table.new_tid(), ADDR, 2, None, None, None, 1, sent_at=0.5)
    table.open(tx, 2.5, slow_at=0.8, late_at=0.6)
    assert table.next_deadline() == 0.6
    assert table.pop_due(1.0) == (tx, LATE)
    assert table.pop_due(1.0) == (tx, SLOW)
    assert table.pop_due(1.0) is None and len(table) == 1
    assert table.match(tx.tid, ADDR) is tx  # a late answer still closes it
    assert table.pop_due(3.0) is None


def test_marks_past_the_deadline_are_dropped() -> None:
    table = TransactionTable(0, 10)
    tx = _open(table, 1.0)
    other = Transaction(table.new_tid(), ADDR, 2, None, None, None, 1)
    table.open(other, 1.0, slow_at=1.5, late_at=2.0)
    assert table.pop_due(5.0) == (tx, TIMED_OUT)
    assert table.pop_due(5.0) == (other, TIMED_OUT)
    assert table.pop_due(5.0) is None
