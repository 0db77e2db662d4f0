"""The node's transfer totals: growth of torrent counters, kept after removals and restarts.

Regression: ``servent status`` summed the current torrents' counters, so the
totals fell when a torrent was removed and started from 0 after every restart.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from servent.node.state import StateStore
from servent.node.totals import Totals, TransferTotals


def test_growth_is_counted_once_and_a_restarted_torrent_counts_from_zero(
    tmp_path: Path,
) -> None:
    store = StateStore(tmp_path)
    totals = TransferTotals(store)
    totals.observe("a", 100, 10)
    totals.observe("a", 100, 10)  # seen twice: counted once
    totals.observe("b", 50, 0)
    totals.observe("a", 300, 40)
    assert (totals.downloaded, totals.uploaded) == (350, 40)
    totals.observe("a", 20, 5)  # its counters reset (restarted with its metadata)
    assert (totals.downloaded, totals.uploaded) == (370, 45)
    totals.forget("b")  # removed: what it moved stays counted
    assert totals.snapshot() == Totals(370, 45, 370, 45)
    totals.observe("b", 7, 0)  # added again later: a new torrent, counted from 0
    assert totals.downloaded == 377
    store.close()


def test_all_time_totals_are_saved_and_survive_a_restart(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    totals = TransferTotals(store)
    totals.observe("a", 1000, 200)
    totals.save(store)
    totals.observe("a", 1500, 200)  # not saved yet, but part of the all-time figure
    assert totals.snapshot() == Totals(1500, 200, 1500, 200)
    totals.save(store)
    totals.save(store)  # nothing new: nothing added twice
    store.close()
    store = StateStore(tmp_path)
    again = TransferTotals(store)
    assert again.snapshot() == Totals(0, 0, 1500, 200)
    again.observe("c", 10, 1)
    again.save(store)
    assert store.totals() == {"downloaded": 1510, "uploaded": 201}
    store.close()


def test_a_database_from_before_the_totals_table_is_migrated(tmp_path: Path) -> None:
    StateStore(tmp_path).close()
    db = sqlite3.connect(tmp_path / "state.sqlite3")
    db.execute("DROP TABLE totals")
    db.execute("ALTER TABLE torrents DROP COLUMN created_files")  # added by schema 3
    db.execute("PRAGMA user_version=1")
    db.close()
    store = StateStore(tmp_path)
    assert store.totals() == {}
    store.add_totals({"downloaded": 5, "uploaded": 0})
    assert store.totals() == {"downloaded": 5}
    store.close()
