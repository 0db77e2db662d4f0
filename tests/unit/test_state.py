"""The node's sqlite state: round trips, migrations, transactions, and kill -9 safety."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from servent.errors import StateError
from servent.node.state import SCHEMA_VERSION, StateStore, TorrentRecord


def _record(n: int, **kw: object) -> TorrentRecord:
    base: dict[str, object] = {
        "id": f"{n:040x}",
        "name": f"t{n}",
        "save_path": "/tmp/x",
        "info_hash_v1": n.to_bytes(20, "big"),
        "added_at": 1000.0 + n,
    }
    base.update(kw)
    return TorrentRecord(**base)  # type: ignore[arg-type]


def test_torrent_round_trip_and_updates(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    record = _record(1, metainfo=b"d4:infod...ee", file_priorities=(1, 0, 7))
    store.add_torrent(record)
    assert store.get_torrent(record.id) == record
    store.set_paused(record.id, True)
    store.set_file_priorities(record.id, [0, 0, 1])
    store.set_torrent_limits(record.id, 100, 200)
    store.set_metainfo(record.id, b"new", "renamed")
    store.close()
    again = StateStore(tmp_path).get_torrent(record.id)
    assert again is not None
    assert again.paused is True
    assert again.file_priorities == (0, 0, 1)
    assert (again.download_limit, again.upload_limit) == (100, 200)
    assert (again.metainfo, again.name) == (b"new", "renamed")


def test_updating_an_unknown_torrent_is_a_state_error(tmp_path: Path) -> None:
    with pytest.raises(StateError):
        StateStore(tmp_path).set_paused("00" * 20, True)


def test_remove_forgets_resume_and_shared_folder(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    record = _record(2)
    store.add_torrent(record)
    store.save(record.id, b"resume")
    store.add_shared_folder("/srv/share", record.id)
    store.remove_torrent(record.id)
    assert store.torrents() == []
    assert store.load(record.id) is None
    assert store.shared_folders() == []


def test_resume_store_protocol(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    assert store.load("ab") is None
    store.save("ab", b"one")
    store.save("ab", b"two")
    assert store.load("ab") == b"two"
    store.delete("ab")
    assert store.load("ab") is None


def test_dht_nodes_settings_and_shared_folders(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    nodes = [(b"a" * 20, ("127.0.0.1", 1)), (b"b" * 20, ("::1", 2))]
    store.save_dht_nodes(nodes)
    assert store.dht_nodes() == nodes
    store.save_dht_nodes(nodes[:1])
    assert store.dht_nodes() == nodes[:1]
    store.set_settings({"upload_rate_limit": 5, "x": [1]})
    assert store.settings() == {"upload_rate_limit": 5, "x": [1]}
    store.add_shared_folder("/a", None)
    assert [f.path for f in store.shared_folders()] == ["/a"]
    store.remove_shared_folder("/a")
    assert store.shared_folders() == []


def test_failed_transaction_leaves_nothing(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    with pytest.raises(RuntimeError), store.transaction():
        store.add_torrent(_record(3))
        store.save(_record(3).id, b"r")
        raise RuntimeError("boom")
    assert store.torrents() == []
    assert store.load(_record(3).id) is None


def test_schema_is_versioned_and_newer_schema_refused(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    assert store.schema_version == SCHEMA_VERSION
    store.close()
    db = sqlite3.connect(tmp_path / "state.sqlite3")
    db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(StateError, match="newer"):
        StateStore(tmp_path)


def test_garbage_database_file_is_a_state_error(tmp_path: Path) -> None:
    (tmp_path / "state.sqlite3").write_bytes(b"not a database" * 100)
    with pytest.raises(StateError):
        StateStore(tmp_path)


_WRITER = """
import sys
from pathlib import Path
from servent.node.state import StateStore, TorrentRecord
store = StateStore(Path(sys.argv[1]))
n = 0
while True:
    with store.transaction():
        record = TorrentRecord(id=f"{n:040x}", name=f"t{n}", save_path="/x", added_at=1.0 + n)
        store.add_torrent(record)
        store.save(record.id, b"r" * 4096)
        store.set_settings({"count": n})
    print(n, flush=True)
    n += 1
"""


def test_kill_9_during_writes_leaves_a_consistent_database(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 30
        last = -1
        while last < 30 and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            last = int(line)
        assert last >= 30
    finally:
        proc.kill()
        proc.wait(timeout=10)
    store = StateStore(tmp_path)
    assert store._query("PRAGMA integrity_check")[0][0] == "ok"
    torrents = store.torrents()
    # Every acknowledged transaction survived, and each one is whole.
    assert len(torrents) >= last + 1
    assert all(store.load(t.id) == b"r" * 4096 for t in torrents)
    assert store.settings()["count"] == len(torrents) - 1
