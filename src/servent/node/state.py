"""The node's persistent state: one sqlite database in the data directory.

Why sqlite: every change is a transaction, so a kill -9 at any instant leaves
the database as it was after the last committed change (WAL journal,
``synchronous=FULL`` so a commit is on disk when it returns).  The schema
carries a version (``PRAGMA user_version``) and is brought up to date by an
ordered list of migrations, each applied in its own transaction.

The store also implements STORAGE's :class:`~servent.storage.resume.ResumeStore`
protocol, so resume records (opaque bytes owned by storage) live in the same
database as the torrents they belong to.  Storage may save resume records from
a worker thread, so one lock serialises use of the connection.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from servent.errors import StateError
from servent.node.private_files import private_directory, private_file

DATABASE_NAME = "state.sqlite3"
_JOURNALS = ("-wal", "-shm", "-journal")

#: Ordered schema migrations; entry ``i`` brings version ``i`` to ``i + 1``.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE torrents (
            id TEXT PRIMARY KEY,
            info_hash_v1 BLOB,
            info_hash_v2 BLOB,
            name TEXT NOT NULL,
            metainfo BLOB,
            magnet TEXT,
            save_path TEXT NOT NULL,
            paused INTEGER NOT NULL DEFAULT 0,
            file_priorities TEXT NOT NULL DEFAULT '[]',
            download_limit INTEGER NOT NULL DEFAULT 0,
            upload_limit INTEGER NOT NULL DEFAULT 0,
            added_at REAL NOT NULL
        )""",
        "CREATE TABLE resume (key TEXT PRIMARY KEY, data BLOB NOT NULL)",
        """CREATE TABLE dht_nodes (
            node_id BLOB NOT NULL, host TEXT NOT NULL, port INTEGER NOT NULL,
            PRIMARY KEY (host, port)
        )""",
        "CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        """CREATE TABLE shared_folders (
            path TEXT PRIMARY KEY, torrent_id TEXT, added_at REAL NOT NULL
        )""",
    ),
    # All-time transfer totals of the node (they outlive the torrents they came from).
    ("CREATE TABLE totals (key TEXT PRIMARY KEY, value INTEGER NOT NULL)",),
    # Which files servent created (JSON list of file indexes); NULL = not known, so
    # torrents from before this column never have their data deleted.
    ("ALTER TABLE torrents ADD COLUMN created_files TEXT",),
)
SCHEMA_VERSION = len(MIGRATIONS)


def _json_or_null(indexes: tuple[int, ...] | None) -> str | None:
    return None if indexes is None else json.dumps(sorted(indexes))


def _indexes_or_none(text: str | None) -> tuple[int, ...] | None:
    return None if text is None else tuple(int(i) for i in json.loads(text))


@dataclass(frozen=True, slots=True)
class TorrentRecord:
    """What the node remembers about one torrent across restarts."""

    id: str
    """Hex of the wire info-hash (v1, or the v2 hash truncated to 20 bytes)."""
    name: str
    save_path: str
    info_hash_v1: bytes | None = None
    info_hash_v2: bytes | None = None
    metainfo: bytes | None = None
    """The whole .torrent file once known; ``None`` for a magnet without metadata yet."""
    magnet: str | None = None
    paused: bool = False
    file_priorities: tuple[int, ...] = ()
    download_limit: int = 0
    upload_limit: int = 0
    added_at: float = 0.0
    created_files: tuple[int, ...] | None = None
    """Indexes of the files servent itself created (downloaded); only these may ever be
    deleted.  ``()`` for a share, ``None`` while unknown (a magnet without metadata)."""


@dataclass(frozen=True, slots=True)
class SharedFolder:
    path: str
    torrent_id: str | None
    added_at: float


class StateStore:
    """Typed access to the state database; every mutating call is one transaction."""

    def __init__(self, data_dir: Path) -> None:
        private_directory(data_dir)
        self.path = data_dir / DATABASE_NAME
        private_file(self.path)  # sqlite gives new -wal/-shm files the database's mode
        for suffix in _JOURNALS:
            journal = self.path.with_name(self.path.name + suffix)
            if journal.exists():
                private_file(journal)
        self._lock = threading.RLock()
        self._depth = 0
        try:
            self._db = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=10.0
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise StateError(f"state database {self.path} is unusable: {exc}") from exc

    # -- plumbing -----------------------------------------------------------

    def _migrate(self) -> None:
        version = int(self._db.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise StateError(
                f"state database {self.path} has schema {version}, newer than this servent"
            )
        for target in range(version, SCHEMA_VERSION):
            with self.transaction() as db:
                for statement in MIGRATIONS[target]:
                    db.execute(statement)
                db.execute(f"PRAGMA user_version={target + 1}")

    @property
    def schema_version(self) -> int:
        with self._lock:
            return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """All statements inside commit together or not at all (nesting joins the outer one)."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield self._db
                finally:
                    self._depth -= 1
                return
            self._db.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            else:
                self._db.execute("COMMIT")
            finally:
                self._depth = 0

    def _query(self, sql: str, params: Iterable[object] = ()) -> list[sqlite3.Row]:
        with self._lock:
            cursor = self._db.execute(sql, tuple(params))
            cursor.row_factory = sqlite3.Row
            return list(cursor.fetchall())

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- torrents -----------------------------------------------------------

    def add_torrent(self, record: TorrentRecord) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO torrents (id, info_hash_v1, info_hash_v2, name, metainfo,"
                " magnet, save_path, paused, file_priorities, download_limit, upload_limit,"
                " added_at, created_files) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    record.id,
                    record.info_hash_v1,
                    record.info_hash_v2,
                    record.name,
                    record.metainfo,
                    record.magnet,
                    record.save_path,
                    int(record.paused),
                    json.dumps(list(record.file_priorities)),
                    record.download_limit,
                    record.upload_limit,
                    record.added_at or time.time(),
                    _json_or_null(record.created_files),
                ),
            )

    @staticmethod
    def _record(row: sqlite3.Row) -> TorrentRecord:
        return TorrentRecord(
            id=row["id"],
            name=row["name"],
            save_path=row["save_path"],
            info_hash_v1=row["info_hash_v1"],
            info_hash_v2=row["info_hash_v2"],
            metainfo=row["metainfo"],
            magnet=row["magnet"],
            paused=bool(row["paused"]),
            file_priorities=tuple(int(p) for p in json.loads(row["file_priorities"])),
            download_limit=int(row["download_limit"]),
            upload_limit=int(row["upload_limit"]),
            added_at=float(row["added_at"]),
            created_files=_indexes_or_none(row["created_files"]),
        )

    def torrents(self) -> list[TorrentRecord]:
        return [self._record(r) for r in self._query("SELECT * FROM torrents ORDER BY added_at")]

    def get_torrent(self, torrent_id: str) -> TorrentRecord | None:
        rows = self._query("SELECT * FROM torrents WHERE id = ?", (torrent_id,))
        return self._record(rows[0]) if rows else None

    def _update(self, torrent_id: str, sql: str, params: tuple[object, ...]) -> None:
        with self.transaction() as db:
            cursor = db.execute(f"UPDATE torrents SET {sql} WHERE id = ?", (*params, torrent_id))
            if cursor.rowcount != 1:
                raise StateError(f"no torrent {torrent_id}")

    def set_paused(self, torrent_id: str, paused: bool) -> None:
        self._update(torrent_id, "paused = ?", (int(paused),))

    def set_file_priorities(self, torrent_id: str, priorities: Iterable[int]) -> None:
        self._update(torrent_id, "file_priorities = ?", (json.dumps(list(priorities)),))

    def set_torrent_limits(self, torrent_id: str, download: int, upload: int) -> None:
        self._update(torrent_id, "download_limit = ?, upload_limit = ?", (download, upload))

    def set_metainfo(self, torrent_id: str, metainfo: bytes, name: str) -> None:
        """Remember metadata fetched for a magnet, so a restart never fetches it again."""
        self._update(torrent_id, "metainfo = ?, name = ?", (metainfo, name))

    def set_created_files(self, torrent_id: str, created_files: Iterable[int]) -> None:
        """Which files servent creates for this torrent (the only ones it may delete)."""
        self._update(torrent_id, "created_files = ?", (_json_or_null(tuple(created_files)),))

    def remove_torrent(self, torrent_id: str) -> None:
        """Forget a torrent, its resume record and any shared folder pointing at it."""
        with self.transaction() as db:
            db.execute("DELETE FROM torrents WHERE id = ?", (torrent_id,))
            db.execute("DELETE FROM resume WHERE key = ?", (torrent_id,))
            db.execute("DELETE FROM shared_folders WHERE torrent_id = ?", (torrent_id,))

    # -- resume records (STORAGE's ResumeStore protocol) --------------------

    def load(self, key: str) -> bytes | None:
        rows = self._query("SELECT data FROM resume WHERE key = ?", (key,))
        return bytes(rows[0]["data"]) if rows else None

    def save(self, key: str, data: bytes) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO resume (key, data) VALUES (?, ?)", (key, data))

    def delete(self, key: str) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM resume WHERE key = ?", (key,))

    # -- DHT routing table --------------------------------------------------

    def save_dht_nodes(self, nodes: Iterable[tuple[bytes, tuple[str, int]]]) -> None:
        """Replace the saved routing table with ``nodes`` as ``(id, (host, port))``."""
        with self.transaction() as db:
            db.execute("DELETE FROM dht_nodes")
            db.executemany(
                "INSERT OR REPLACE INTO dht_nodes (node_id, host, port) VALUES (?, ?, ?)",
                [(node_id, host, port) for node_id, (host, port) in nodes],
            )

    def dht_nodes(self) -> list[tuple[bytes, tuple[str, int]]]:
        rows = self._query("SELECT node_id, host, port FROM dht_nodes ORDER BY rowid")
        return [(bytes(r["node_id"]), (r["host"], int(r["port"]))) for r in rows]

    # -- node settings ------------------------------------------------------

    def settings(self) -> dict[str, object]:
        rows = self._query("SELECT key, value FROM settings")
        return {r["key"]: json.loads(r["value"]) for r in rows}

    def set_settings(self, values: dict[str, object]) -> None:
        with self.transaction() as db:
            db.executemany(
                "INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)",
                [(k, json.dumps(v)) for k, v in values.items()],
            )

    # -- transfer totals ----------------------------------------------------

    def totals(self) -> dict[str, int]:
        """All-time counters (``downloaded``, ``uploaded``), 0 when never counted."""
        rows = self._query("SELECT key, value FROM totals")
        return {r["key"]: int(r["value"]) for r in rows}

    def add_totals(self, increments: dict[str, int]) -> None:
        """Add to the all-time counters, in one transaction."""
        with self.transaction() as db:
            db.executemany(
                "INSERT INTO totals (key, value) VALUES (?, ?)"
                " ON CONFLICT(key) DO UPDATE SET value = value + excluded.value",
                [(k, v) for k, v in increments.items() if v],
            )

    # -- shared folders -----------------------------------------------------

    def add_shared_folder(self, path: str, torrent_id: str | None) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO shared_folders (path, torrent_id, added_at) VALUES (?,?,?)",
                (path, torrent_id, time.time()),
            )

    def remove_shared_folder(self, path: str) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM shared_folders WHERE path = ?", (path,))

    def shared_folders(self) -> list[SharedFolder]:
        rows = self._query("SELECT * FROM shared_folders ORDER BY added_at")
        return [SharedFolder(r["path"], r["torrent_id"], float(r["added_at"])) for r in rows]
