"""The node's local search index: what it shares and has downloaded, in SQLite FTS5.

Its own database file (``search.sqlite3``, mode 0600) so that a rebuilt
index never touches the node's state. The FTS tokenizer folds case, removes
accents (``unicode61 remove_diacritics 2``) and splits on ``_ - .`` as well,
so ``Blue_Danube-Waltz.flac`` is found by ``danube waltz``; prefix indexes
make ``danu walt`` fast. Query words come from the same normaliser as the
network's (:func:`servent.proto.search.words`), quoted, so no query text is
ever read as FTS syntax.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from servent.proto.search.words import MAX_QUERY_WORDS, words

__all__ = ["INDEX_FILE", "IndexedTorrent", "SearchIndex"]

INDEX_FILE = "search.sqlite3"
#: File names of one torrent that go into the index (a huge torrent stays bounded).
MAX_INDEXED_FILES = 1000
SCHEMA = (
    """CREATE TABLE IF NOT EXISTS torrents (
        id INTEGER PRIMARY KEY,
        torrent_id TEXT NOT NULL UNIQUE,
        info_hash BLOB NOT NULL,
        name TEXT NOT NULL,
        size INTEGER NOT NULL,
        file_count INTEGER NOT NULL,
        file_names TEXT NOT NULL,
        shared INTEGER NOT NULL,
        complete INTEGER NOT NULL
    )""",
    """CREATE VIRTUAL TABLE IF NOT EXISTS torrents_fts USING fts5(
        name, file_names,
        tokenize = "unicode61 remove_diacritics 2 separators '_-.'",
        prefix = '2 3 4'
    )""",
)


@dataclass(frozen=True, slots=True)
class IndexedTorrent:
    """One torrent as the index knows it."""

    torrent_id: str
    info_hash: bytes
    name: str
    size: int
    file_names: tuple[str, ...]
    shared: bool = False
    complete: bool = False

    @property
    def file_count(self) -> int:
        return max(1, len(self.file_names))


class SearchIndex:
    """Add, remove and find torrents by words of their names and file names."""

    def __init__(self, data_dir: Path) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        path = data_dir / INDEX_FILE
        if not path.exists():
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        os.chmod(path, 0o600)
        self.path = path
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        for statement in SCHEMA:
            self._db.execute(statement)

    def close(self) -> None:
        self._db.close()

    def put(self, torrent: IndexedTorrent) -> None:
        """Add a torrent or replace what the index had for it."""
        names = torrent.file_names[:MAX_INDEXED_FILES]
        with self._transaction():
            self._delete(torrent.torrent_id)
            cursor = self._db.execute(
                "INSERT INTO torrents (torrent_id, info_hash, name, size, file_count,"
                " file_names, shared, complete) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    torrent.torrent_id, torrent.info_hash, torrent.name, torrent.size,
                    len(torrent.file_names), json.dumps(list(names)), int(torrent.shared),
                    int(torrent.complete),
                ),
            )  # fmt: skip
            self._db.execute(
                "INSERT INTO torrents_fts (rowid, name, file_names) VALUES (?, ?, ?)",
                (cursor.lastrowid, torrent.name, "\n".join(names)),
            )

    def remove(self, torrent_id: str) -> None:
        with self._transaction():
            self._delete(torrent_id)

    def _delete(self, torrent_id: str) -> None:
        row = self._db.execute(
            "SELECT id FROM torrents WHERE torrent_id = ?", (torrent_id,)
        ).fetchone()
        if row is not None:
            self._db.execute("DELETE FROM torrents_fts WHERE rowid = ?", (row[0],))
            self._db.execute("DELETE FROM torrents WHERE id = ?", (row[0],))

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        """Commit when the block ends, roll back on an error."""
        self._db.execute("BEGIN")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def torrent_ids(self) -> set[str]:
        return {row[0] for row in self._db.execute("SELECT torrent_id FROM torrents")}

    def search(
        self, query: str, *, limit: int = 50, answerable_only: bool = False
    ) -> list[IndexedTorrent]:
        """Torrents whose name or file names hold every query word (as a word prefix),
        best match first. ``answerable_only``: complete and shared (what others may get)."""
        asked = words(query, MAX_QUERY_WORDS)
        if not asked:
            return []
        expression = " AND ".join(f'"{word}"*' for word in asked)
        sql = (
            "SELECT t.torrent_id, t.info_hash, t.name, t.size, t.file_names, t.shared,"
            " t.complete, t.file_count FROM torrents_fts f JOIN torrents t ON t.id = f.rowid"
            " WHERE torrents_fts MATCH ?"
        )
        if answerable_only:
            sql += " AND t.complete = 1"
        sql += " ORDER BY bm25(torrents_fts, 10.0, 1.0) LIMIT ?"
        try:
            rows = self._db.execute(sql, (expression, limit)).fetchall()
        except sqlite3.OperationalError:
            return []  # a word the tokenizer turns into nothing
        return [_torrent(row) for row in rows]

    def answerable(self) -> list[IndexedTorrent]:
        """Everything complete: what this node can serve and publish."""
        rows = self._db.execute(
            "SELECT torrent_id, info_hash, name, size, file_names, shared, complete, file_count"
            " FROM torrents WHERE complete = 1 ORDER BY id"
        ).fetchall()
        return [_torrent(row) for row in rows]


def _torrent(row: tuple[str, bytes, str, int, str, int, int, int]) -> IndexedTorrent:
    torrent_id, info_hash, name, size, names, shared, complete, _ = row
    return IndexedTorrent(
        torrent_id, bytes(info_hash), name, size, tuple(json.loads(names)),
        bool(shared), bool(complete),
    )  # fmt: skip
